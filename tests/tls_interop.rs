//! Real TLS clients against weir's `--listen-tls` (feature `tls`): Node `ws` over `https` and
//! python `websockets` with an ssl context, each trusting only the test CA, each echoing text,
//! binary, 1 MiB and a fragmented message and closing with a reason. A missing Node or python
//! `websockets` fails with the command that installs it (unless `WEIR_SKIP_EXTERNAL` names it).
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::node::{Node, node_ready};
use common::tls::{Certs, TlsBinary};

#[test]
fn node_ws_over_https_echoes_and_closes_with_a_reason() {
    if !node_ready() {
        return;
    }
    let certs = Certs::new();
    let srv = TlsBinary::start(&certs, &[]);
    let url = format!("wss://localhost:{}/echo", srv.tls.port());
    let ca = certs.ca_str();
    // pmd-client.js echoes text, 3 MiB binary, fragmented and empty messages; weir declines
    // compression here (off by default), so this is plain WebSocket over TLS.
    let mut node = Node::spawn_env("pmd-client.js", &[&url], &[("NODE_EXTRA_CA_CERTS", &ca)]);
    assert_eq!(node.expect_line("EXT ", Duration::from_secs(10)), "");
    assert_eq!(node.expect_line("CLOSE ", Duration::from_secs(30)), "4000 done here");
    assert!(node.wait_exit(Duration::from_secs(10)).success());
}

/// Whether `python3` can import `websockets`; if not, the test fails with how to install it.
fn python_websockets_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import websockets"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        common::missing_external(
            "python3-websockets",
            "`python3 -c 'import websockets'` failed: `pip install websockets` \
             (or `apt-get install python3-websockets`)",
        );
    }
    ok
}

#[test]
fn python_websockets_with_an_ssl_context_echoes_and_closes_with_a_reason() {
    if !python_websockets_ready() {
        return;
    }
    let certs = Certs::new();
    let srv = TlsBinary::start(&certs, &[]);
    let url = format!("wss://localhost:{}/echo", srv.tls.port());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/tls_client.py");
    let mut child = Command::new("python3")
        .args([script, &url, &certs.ca_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exit = common::eventually(Duration::from_secs(30), || child.try_wait().unwrap());
    if exit.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}\n{}", srv.bin.log());
    assert_eq!(stdout.trim(), "CLOSE 1000 python bye", "{stderr}");
}
