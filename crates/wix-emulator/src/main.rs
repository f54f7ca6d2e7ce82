//! `wix-emulator`: serves the emulated Wix Media Manager API until Ctrl-C.

#[tokio::main]
async fn main() {
    if let Err(message) = wix_emulator::run_cli(std::env::args().skip(1).collect()).await {
        eprintln!("wix-emulator: {message}");
        std::process::exit(2);
    }
}
