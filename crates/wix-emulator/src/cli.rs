//! Command-line front end: `wix-emulator [flags]`, also usable as a subcommand.

use std::time::Duration;

use crate::{Emulator, EmulatorConfig, Library, RandomFaults, RateLimit, UnknownIds};

const USAGE: &str = "\
usage: wix-emulator [flags]
  --port N            port on 127.0.0.1 (default 8090, 0 = any free port)
  --files N           size of the seeded media library (default 250)
  --seed N            seed of the library and of random faults (default 7)
  --latency-ms N      latency added to every API call (default 0)
  --rate-limit N      API calls allowed per sliding minute (default: no limit)
  --retry-after       send Retry-After with rate-limit 429s
  --fail-rate F       probability of a 5xx on each API call (default 0)
  --api-key K         accepted API key (default emulator-api-key)
  --site-id S         accepted wix-site-id (default emulator-site-id)
  --unknown-ids M     reject|ignore unknown ids in archives (default reject)";

/// Runs the emulator from command-line flags (without the program name) until Ctrl-C.
pub async fn run_cli(args: Vec<String>) -> Result<(), String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let options = parse(&args)?;
    let emulator = Emulator::start(options.config)
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", options.port))?;
    if let Some(faults) = options.random {
        emulator.set_random_faults(Some(faults));
    }
    println!(
        "wix-emulator listening on {} (api key {}, site id {})",
        emulator.base_url(),
        options.api_key,
        options.site_id
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    emulator.shutdown();
    Ok(())
}

struct Options {
    config: EmulatorConfig,
    random: Option<RandomFaults>,
    port: u16,
    api_key: String,
    site_id: String,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut config = EmulatorConfig {
        port: 8090,
        ..EmulatorConfig::default()
    };
    let mut files = 250usize;
    let mut seed = 7u64;
    let mut rate_limit = None;
    let mut retry_after = false;
    let mut fail_rate = 0.0f64;
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--port" => config.port = number(flag, value()?)?,
            "--files" => files = number(flag, value()?)?,
            "--seed" => seed = number(flag, value()?)?,
            "--latency-ms" => config.latency = Duration::from_millis(number(flag, value()?)?),
            "--rate-limit" => rate_limit = Some(number::<u32>(flag, value()?)?),
            "--retry-after" => retry_after = true,
            "--fail-rate" => {
                fail_rate = number(flag, value()?)?;
                if !(0.0..=1.0).contains(&fail_rate) {
                    return Err(format!("--fail-rate must be between 0 and 1, not {fail_rate}"));
                }
            }
            "--api-key" => config.api_key = value()?.clone(),
            "--site-id" => config.site_id = value()?.clone(),
            "--unknown-ids" => {
                config.unknown_ids = match value()?.as_str() {
                    "reject" => UnknownIds::Reject,
                    "ignore" => UnknownIds::Ignore,
                    other => return Err(format!("--unknown-ids must be reject or ignore, not {other:?}")),
                }
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    config.library = Library::seeded(files, seed);
    config.rate_limit = rate_limit.map(|per_minute| RateLimit {
        per_minute,
        retry_after,
    });
    let random = (fail_rate > 0.0).then_some(RandomFaults {
        seed,
        p_429: 0.0,
        p_5xx: fail_rate,
        p_drop: 0.0,
        p_hang: 0.0,
        hang: Duration::ZERO,
        p_malformed: 0.0,
    });
    Ok(Options {
        port: config.port,
        api_key: config.api_key.clone(),
        site_id: config.site_id.clone(),
        config,
        random,
    })
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} needs a number, not {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_every_flag() {
        let o = parse(&args(&[
            "--port",
            "0",
            "--files",
            "40",
            "--seed",
            "3",
            "--latency-ms",
            "15",
            "--rate-limit",
            "200",
            "--retry-after",
            "--fail-rate",
            "0.1",
            "--api-key",
            "k",
            "--site-id",
            "s",
            "--unknown-ids",
            "ignore",
        ]))
        .unwrap();
        assert_eq!(o.config.port, 0);
        assert_eq!(o.config.library.files.len(), 40);
        assert_eq!(o.config.latency, Duration::from_millis(15));
        let limit = o.config.rate_limit.unwrap();
        assert_eq!((limit.per_minute, limit.retry_after), (200, true));
        assert_eq!(o.random.unwrap().p_5xx, 0.1);
        assert_eq!((o.api_key.as_str(), o.site_id.as_str()), ("k", "s"));
        assert_eq!(o.config.unknown_ids, UnknownIds::Ignore);
    }

    #[test]
    fn defaults_and_errors() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.config.port, 8090);
        assert!(o.config.rate_limit.is_none() && o.random.is_none());
        assert!(parse(&args(&["--port"])).is_err());
        assert!(parse(&args(&["--port", "x"])).is_err());
        assert!(parse(&args(&["--bogus"])).is_err());
        assert!(parse(&args(&["--unknown-ids", "maybe"])).is_err());
        assert!(parse(&args(&["--fail-rate", "2"])).is_err());
    }
}
