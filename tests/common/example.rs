//! The programs in examples/: built on demand (`cargo test --test NAME` does not build them)
//! into the target directory and profile of the running test, then run like the binary.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The path of example `name`, built first with `cargo build --example` (a no-op when it is up
/// to date) in the same target directory and profile as this test, and with the `tls` feature
/// when this test has it (`cargo test --features tls` runs the examples' TLS tests).
pub fn example(name: &str) -> PathBuf {
    static BUILDING: Mutex<()> = Mutex::new(());
    // The test runs as <target>/<profile dir>/deps/<test>.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let target = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("no profile directory in {}", exe.display()),
    };
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--quiet", "--example", name, "--profile", profile]);
    #[cfg(feature = "tls")]
    cargo.args(["--features", "tls"]);
    let out = cargo
        .arg("--target-dir")
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo build --example {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir.join("examples").join(name)
}
