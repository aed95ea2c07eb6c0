//! The files an operator installs: `docs/systemd/weir.env` lists every server flag of
//! `weir --help` at its default (so they cannot drift apart), and `docs/systemd/weir.service`
//! is the hardened unit docs/operations.md points at.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

fn file(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// `weir --help`, waited for at most 10 s.
fn help() -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--help")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let exit = common::eventually(Duration::from_secs(10), || child.try_wait().unwrap());
    if exit.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(exit.expect("weir --help did not exit").success());
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    out
}

/// The server's variables in `--help` (`weir client`'s come after "Subcommands:"), each with
/// its default (empty when it has none).
fn server_variables(help: &str) -> Vec<(String, String)> {
    let server = help.split("\nSubcommands:").next().unwrap();
    server
        .lines()
        .filter_map(|l| {
            let var = l.split("[env: ").nth(1)?.split(']').next()?;
            let default = l.split("[default: ").nth(1).map_or("", |d| d.trim_end_matches(']'));
            Some((var.to_string(), default.to_string()))
        })
        .collect()
}

#[test]
fn the_env_file_has_every_flag_of_help_at_its_default() {
    let help = help();
    let vars = server_variables(&help);
    assert!(vars.len() > 30, "too few variables found in --help:\n{help}");
    let env = file("docs/systemd/weir.env");
    // Lines `# WEIR_X=default`: commented out, so the file changes nothing until edited.
    let listed: Vec<(&str, &str)> = env
        .lines()
        .filter_map(|l| l.strip_prefix("# WEIR_"))
        .filter_map(|l| l.split_once('='))
        .collect();
    for (var, default) in &vars {
        let name = var.strip_prefix("WEIR_").unwrap();
        let Some((_, value)) = listed.iter().find(|(n, _)| *n == name) else {
            panic!("{var} is in --help but not in docs/systemd/weir.env");
        };
        if !default.is_empty() {
            assert_eq!(value, default, "{var}: the default in weir.env is not --help's");
        }
    }
    for (name, _) in &listed {
        let var = format!("WEIR_{name}");
        assert!(vars.iter().any(|(v, _)| *v == var), "{var} is in weir.env but not in --help");
    }
    assert_eq!(listed.len(), vars.len(), "a variable is listed twice in weir.env");
    assert!(
        !env.lines().any(|l| l.starts_with("WEIR_")),
        "weir.env sets a variable: every one should stay commented at its default"
    );
}

#[test]
fn the_unit_is_hardened_and_reads_the_env_file() {
    let unit = file("docs/systemd/weir.service");
    let settings: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    for want in [
        "EnvironmentFile=/etc/weir/weir.env",
        "ExecStart=/usr/local/bin/weir",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "LimitNOFILE=65536",
        "Restart=on-failure",
        "KillMode=mixed",
        "WantedBy=multi-user.target",
    ] {
        assert!(settings.contains(&want), "{want} missing from weir.service");
    }
    // SIGHUP's default action ends a process: a reload only where weir handles it.
    let handles_hup = file("src/server/signal.rs").contains("libc::SIGHUP");
    let reloads = settings.iter().any(|l| l.starts_with("ExecReload="));
    assert_eq!(reloads, handles_hup, "ExecReload= must match weir's handling of SIGHUP");
    // The page points at the files instead of keeping its own copy, which would drift.
    let ops = file("docs/operations.md");
    assert!(ops.contains("docs/systemd/weir.service") && ops.contains("docs/systemd/weir.env"));
    assert!(!ops.contains("[Service]"), "docs/operations.md still holds a unit of its own");
    assert!(file("README.md").contains("cargo install --path ."));
}

#[test]
fn the_template_unit_runs_one_process_per_core_with_the_same_sandbox() {
    let one = file("docs/systemd/weir.service");
    let per_core = file("docs/systemd/weir@.service");
    let settings = |unit: &str| -> Vec<String> {
        unit.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(String::from).collect()
    };
    let (one, per_core) = (settings(&one), settings(&per_core));
    // Every setting of the single unit, the same (the sandbox, the limits, the drain), but the
    // two the template changes.
    for line in &one {
        if line.starts_with("Description=") || line.starts_with("ExecStart=") {
            continue;
        }
        assert!(per_core.contains(line), "{line} is in weir.service but not in weir@.service");
    }
    for want in [
        // A flag beats its variable: no environment file can take the shared port away.
        "ExecStart=/usr/local/bin/weir --reuse-port",
        // The instance name is the CPU: weir@0, weir@1, ...
        "CPUAffinity=%i",
        "EnvironmentFile=-/etc/weir/weir-%i.env",
    ] {
        assert!(per_core.iter().any(|l| l == want), "{want} missing from weir@.service");
    }
    let ops = file("docs/operations.md");
    assert!(ops.contains("docs/systemd/weir@.service"), "docs/operations.md does not show it");
    assert!(ops.contains("--reuse-port"));
}
