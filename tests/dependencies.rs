//! The runtime dependencies of both builds, as `cargo tree -e normal` lists them: the default
//! build has only mio, sha1_smol, base64 and libc; `--features tls` adds rustls and the tree of
//! its ring provider, and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

/// The crate names `cargo tree -e normal` lists for the features given (weir itself left out).
fn runtime_crates(features: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "weir")
        .map(String::from)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const DEFAULT: [&str; 4] = ["base64", "libc", "mio", "sha1_smol"];

#[test]
fn the_default_build_has_four_runtime_dependencies() {
    assert_eq!(runtime_crates(&[]), set(&DEFAULT));
}

#[test]
fn the_tls_build_adds_rustls_and_its_ring_provider_only() {
    let tls = runtime_crates(&["--features", "tls"]);
    let rustls_tree = [
        "rustls",
        "ring",
        "rustls-webpki",
        "rustls-pki-types",
        "untrusted",
        "subtle",
        "zeroize",
        "once_cell",
        "getrandom",
        "cfg-if",
    ];
    let allowed: BTreeSet<String> = set(&DEFAULT).union(&set(&rustls_tree)).cloned().collect();
    let extra: Vec<&String> = tls.difference(&allowed).collect();
    assert!(extra.is_empty(), "--features tls brings in more than rustls on ring: {extra:?}");
    for needed in ["rustls", "ring"] {
        assert!(tls.contains(needed), "--features tls has no {needed}: {tls:?}");
    }
    // No second provider (aws-lc-rs would need cmake on some machines and doubles the size).
    assert!(!tls.iter().any(|c| c.starts_with("aws-lc")), "{tls:?}");
}
