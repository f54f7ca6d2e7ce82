//! `.ci/run`'s disk guard (`scripts/lib/disk.sh`), run by bash on scratch directories. The
//! thresholds are set far above or below any disk's free space, so each branch is taken
//! whatever this machine has free.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wix-media-archiver-disk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for build in ["target", "fuzz"] {
            std::fs::create_dir_all(dir.join(build).join("debug")).unwrap();
            std::fs::write(dir.join(build).join("debug").join("artifact"), vec![0u8; 4096]).unwrap();
        }
        Scratch(dir)
    }

    fn build(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn guard(scratch: &Scratch, want_gib: u64, least_gib: u64) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/disk.sh");
    Command::new("bash")
        .arg("-c")
        .arg(r#". "$0" && ensure_build_space "$1" "$2""#)
        .arg(script)
        .arg(scratch.build("target"))
        .arg(scratch.build("fuzz"))
        .env("BUILD_SPACE_GIB", want_gib.to_string())
        .env("BUILD_SPACE_MIN_GIB", least_gib.to_string())
        .output()
        .unwrap()
}

const NO_DISK_HAS: u64 = 1 << 40;

#[test]
fn with_space_enough_the_builds_are_kept() {
    let scratch = Scratch::new("kept");
    let out = guard(&scratch, 0, 0);
    assert!(out.status.success(), "{out:?}");
    for build in ["target", "fuzz"] {
        assert!(scratch.build(build).join("debug/artifact").exists(), "{build} kept");
    }
}

#[test]
fn short_of_a_clean_build_the_builds_are_removed_and_the_run_goes_on() {
    let scratch = Scratch::new("removed");
    let out = guard(&scratch, NO_DISK_HAS, 0);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("for a clean build"),
        "{out:?}"
    );
    assert!(!scratch.build("fuzz").exists(), "the fuzz builds removed");
    let target = scratch.build("target");
    assert!(target.is_dir(), "the build directory is made again, empty");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}

#[test]
fn short_even_after_removing_the_run_stops_and_says_so() {
    let scratch = Scratch::new("stopped");
    let out = guard(&scratch, NO_DISK_HAS, NO_DISK_HAS);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GiB free where the build goes"), "{err}");
}
