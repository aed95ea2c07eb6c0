//! `--exec`: the weir binary running real programs (tests/scripts/) per connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "scripts/support.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::{
    TIMEOUT, Weir, alive, close_code, connect, next_text, rss_kib, script, upgrade_status,
    wait_until,
};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

fn exec(path: &str, script_name: &str) -> String {
    format!("{path}={}", script(script_name))
}

#[test]
fn line_echo_and_exit_codes() {
    let route = exec("/echo-lines", "echo.sh");
    let weir = Weir::start(&["--exec", &route]);
    let mut ws = connect(weir.addr(), "/echo-lines");
    for line in ["hello", "two words", "ünïcødé"] {
        ws.send(Message::text(line)).unwrap();
        assert_eq!(next_text(&mut ws), format!("echo: {line}"));
    }
    // A message larger than one read (gathered across reads) is a line too, not echoed.
    let long = "y".repeat(100_000);
    ws.send(Message::text(long.clone())).unwrap();
    let mut got = String::new();
    while got.len() < long.len() + "echo: ".len() {
        got.push_str(&next_text(&mut ws));
    }
    assert_eq!(got, format!("echo: {long}"));
    // The program exits 0: the connection closes with 1000.
    ws.send(Message::text("exit 0")).unwrap();
    assert_eq!(close_code(&mut ws), 1000);
    // It fails: 1011.
    let mut ws = connect(weir.addr(), "/echo-lines");
    ws.send(Message::text("exit 3")).unwrap();
    assert_eq!(close_code(&mut ws), 1011);
    // A plain GET on the path is told it is a WebSocket endpoint.
    let (head, _) = common::request(
        weir.addr(),
        b"GET /echo-lines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(common::status(&head), 426);
}

/// The environment the program on `target` (a `cgi.sh` route) prints for an upgrade with
/// `headers`, and the client's own address.
fn cgi_env_of(
    addr: std::net::SocketAddr,
    target: &str,
    headers: &[(&'static str, &str)],
) -> (HashMap<String, String>, std::net::SocketAddr) {
    let mut req = format!("ws://{addr}{target}").into_client_request().unwrap();
    for (name, value) in headers {
        req.headers_mut().insert(*name, value.parse().unwrap());
    }
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let local = stream.local_addr().unwrap();
    let (mut ws, _) = tungstenite::client::client(req, stream).unwrap();
    let mut env = HashMap::new();
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => {
                if let Some((k, v)) = t.split_once('=') {
                    env.insert(k.to_string(), v.to_string());
                }
            }
            Message::Close(f) => {
                assert_eq!(f.map(|f| u16::from(f.code)), Some(1000));
                break;
            }
            _ => {}
        }
    }
    (env, local)
}

#[test]
fn cgi_variables_reach_the_program() {
    let route = exec("/cgi", "cgi.sh");
    let weir = Weir::start(&["--exec", &route]);
    let headers = [
        ("X-Custom-Thing", "hello there"),
        ("Proxy", "http://evil.example"),
        // The same variable by another spelling, and credentials.
        ("X_Custom_Thing", "injected"),
        ("Authorization", "Bearer secret"),
    ];
    let (env, local) = cgi_env_of(weir.addr(), "/cgi/extra/path?x=1&y=two", &headers);
    let get = |k: &str| env.get(k).map(String::as_str);
    assert_eq!(get("REMOTE_ADDR"), Some("127.0.0.1"));
    assert_eq!(get("REMOTE_PORT"), Some(local.port().to_string().as_str()));
    assert_eq!(get("SERVER_PORT"), Some(weir.addr().port().to_string().as_str()));
    assert_eq!(get("SERVER_NAME"), Some("127.0.0.1"));
    assert_eq!(get("PATH_INFO"), Some("/extra/path"));
    assert_eq!(get("SCRIPT_NAME"), Some("/cgi"));
    assert_eq!(get("QUERY_STRING"), Some("x=1&y=two"));
    assert_eq!(get("REQUEST_URI"), Some("/cgi/extra/path?x=1&y=two"));
    assert_eq!(get("REQUEST_METHOD"), Some("GET"));
    assert_eq!(get("HTTP_X_CUSTOM_THING"), Some("hello there"));
    assert_eq!(get("HTTP_UPGRADE"), Some("websocket"));
    // The connection's id as the logs write it: c-INDEX.GENERATION.
    let id = get("WEIR_CLIENT_ID").and_then(|v| v.strip_prefix("c-")).unwrap_or_default();
    let parts: Vec<&str> = id.split('.').collect();
    assert!(parts.len() == 2 && parts.iter().all(|p| p.parse::<u32>().is_ok()), "{env:?}");
    // httpoxy: no HTTP_PROXY from a request header; no credentials (RFC 3875 §4.1.18).
    assert_eq!(get("HTTP_PROXY"), None);
    assert_eq!(get("HTTP_AUTHORIZATION"), None);
    // weir's own environment is not passed on (cargo sets CARGO_* for the test and weir).
    if std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
        assert_eq!(get("CARGO_MANIFEST_DIR"), None, "{env:?}");
    }
    assert!(get("PATH").is_some());
}

#[test]
fn a_token_in_the_query_does_not_reach_the_program() {
    // `?token=` is a credential, as `Authorization` is: the program does not see it, and the
    // other parameters reach it as they came, in order.
    let route = exec("/cgi", "cgi.sh");
    let weir = Weir::start(&["--exec", &route, "--token", "s3cret"]);
    for (target, query, uri) in [
        (
            "/cgi/p?x=1&token=s3cret&y=%41+b&&token2=k",
            "x=1&y=%41+b&&token2=k",
            "/cgi/p?x=1&y=%41+b&&token2=k",
        ),
        ("/cgi?token=s3cret", "", "/cgi"),
        ("/cgi?token=s3cret&token=again&tok=1", "tok=1", "/cgi?tok=1"),
    ] {
        let (env, _) = cgi_env_of(weir.addr(), target, &[]);
        let get = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(get("QUERY_STRING"), Some(query), "{target}");
        assert_eq!(get("REQUEST_URI"), Some(uri), "{target}");
        assert!(!env.values().any(|v| v.contains("s3cret")), "{target}: {env:?}");
    }
    // A bearer token is not passed on either.
    let (env, _) = cgi_env_of(weir.addr(), "/cgi?a=b", &[("Authorization", "Bearer s3cret")]);
    assert_eq!(env.get("QUERY_STRING").map(String::as_str), Some("a=b"));
    assert!(!env.values().any(|v| v.contains("s3cret")), "{env:?}");
}

#[test]
fn a_slow_client_slows_the_program_and_memory_stays_bounded() {
    let route = exec("/flood", "flood.sh");
    // A queue cap far above the bound: only flow control keeps memory down.
    let weir = Weir::start(&["--exec", &route, "--queue-cap", "1GiB", "--kill-grace", "1s"]);
    let mut ws = connect(weir.addr(), "/flood");
    let first = next_text(&mut ws);
    let pid: u32 = first.strip_prefix("pid ").unwrap().parse().unwrap();
    let before = rss_kib(weir.bin.pid());
    let mut expected = 1u64;
    let mut peak = before;
    let start = Instant::now();
    // Read a little, then stop for a while, for about three seconds; meanwhile the program
    // could write hundreds of megabytes.
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..200 {
            let line = next_text(&mut ws);
            let n: u64 = line.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(n, expected, "lines lost or reordered");
            expected += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(rss_kib(weir.bin.pid()));
    }
    assert!(
        peak < before + 32 * 1024,
        "weir's RSS grew from {before} KiB to {peak} KiB while the client read slowly"
    );
    assert!(alive(pid), "the program is still running, blocked on its pipe");
    drop(ws);
    // The client left: the program is ended.
    assert!(wait_until(TIMEOUT, || !alive(pid)), "the program outlived its client");
}

#[test]
fn a_program_that_ignores_sigterm_is_killed_after_the_grace() {
    let route = exec("/stubborn", "stubborn.sh");
    let weir = Weir::start(&["--exec", &route, "--kill-grace", "1s"]);
    let mut ws = connect(weir.addr(), "/stubborn");
    let pid: u32 = next_text(&mut ws).strip_prefix("pid ").unwrap().parse().unwrap();
    assert_eq!(next_text(&mut ws), "tick");
    ws.close(None).unwrap();
    let left = Instant::now();
    // SIGTERM is ignored: it is still there well inside the grace.
    assert!(!wait_until(Duration::from_millis(500), || !alive(pid)), "it died before the grace");
    assert!(wait_until(TIMEOUT, || !alive(pid)), "not killed after the grace");
    let took = left.elapsed();
    assert!(took >= Duration::from_millis(900), "killed after {took:?}, before the 1s grace");
    assert!(weir.log().contains("killing"), "{}", weir.log());
}

#[test]
fn max_processes_refuses_with_503() {
    let route = exec("/echo-lines", "echo.sh");
    let weir = Weir::start(&["--exec", &route, "--max-processes", "1"]);
    let mut first = connect(weir.addr(), "/echo-lines");
    first.send(Message::text("ping")).unwrap();
    assert_eq!(next_text(&mut first), "echo: ping");
    assert_eq!(upgrade_status(weir.addr(), "/echo-lines"), 503);
    // Once the first program has ended, there is room again.
    first.send(Message::text("exit 0")).unwrap();
    assert_eq!(close_code(&mut first), 1000);
    assert!(wait_until(TIMEOUT, || upgrade_status(weir.addr(), "/echo-lines") == 101));
}

#[test]
fn binary_mode_and_stderr_to_the_client() {
    let cat = "/cat=cat";
    let fail = exec("/fail", "fail.sh");
    let weir = Weir::start(&["--exec", cat, "--exec", &fail, "--exec-binary", "--pass-stderr"]);
    let mut ws = connect(weir.addr(), "/cat");
    let bytes = vec![0u8, 1, 2, 255, b'\n', 7];
    ws.send(Message::binary(bytes.clone())).unwrap();
    let mut got = Vec::new();
    while got.len() < bytes.len() {
        match ws.read().unwrap() {
            Message::Binary(b) => got.extend_from_slice(&b),
            other => panic!("expected binary, got {other:?}"),
        }
    }
    assert_eq!(got, bytes);
    // stderr comes as text lines beside stdout, then the failure closes with 1011.
    let mut ws = connect(weir.addr(), "/fail");
    let mut texts = Vec::new();
    let code = loop {
        match ws.read().unwrap() {
            Message::Text(t) => texts.push(t.to_string()),
            Message::Binary(b) => texts.push(String::from_utf8_lossy(&b).into_owned()),
            Message::Close(f) => break f.map(|f| u16::from(f.code)),
            _ => {}
        }
    };
    assert!(texts.iter().any(|t| t.contains("about to fail")), "{texts:?}");
    assert_eq!(code, Some(1011));
}

#[test]
fn shutdown_ends_the_programs() {
    let route = exec("/stubborn", "stubborn.sh");
    let mut weir = Weir::start(&["--exec", &route, "--kill-grace", "300ms"]);
    let mut ws = connect(weir.addr(), "/stubborn");
    let pid: u32 = next_text(&mut ws).strip_prefix("pid ").unwrap().parse().unwrap();
    weir.bin.sigterm();
    assert_eq!(close_code(&mut ws), 1001);
    let status = weir.bin.wait_exit(TIMEOUT);
    assert!(status.success(), "{status:?}");
    assert!(!alive(pid), "weir exited and left its child running");
}

/// Bytes a process has written so far (`wchar` in /proc/PID/io).
fn written(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines().find_map(|l| l.strip_prefix("wchar:")).and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_client_leaving_while_output_is_paused_frees_the_slot() {
    let route = exec("/flood", "flood.sh");
    let weir = Weir::start(&[
        "--exec",
        &route,
        "--max-processes",
        "1",
        "--kill-grace",
        "1s",
        "--close-timeout",
        "1s",
    ]);
    let mut ws = connect(weir.addr(), "/flood");
    let pid: u32 = next_text(&mut ws).strip_prefix("pid ").unwrap().parse().unwrap();
    // The client reads no more: the queue fills, weir stops reading, and the program blocks on
    // its full pipe (what it has written stops growing).
    let stalled = wait_until(TIMEOUT, || {
        let before = written(pid);
        std::thread::sleep(Duration::from_millis(250));
        before.is_some() && written(pid) == before
    });
    assert!(stalled, "the program never blocked on its output");
    // A close frame, still without reading: the client is gone once the close timeout passes.
    ws.close(None).unwrap();
    assert!(wait_until(TIMEOUT, || !alive(pid)), "the program outlived its client");
    drop(ws);
    // The process is gone: its slot is free again.
    assert!(
        wait_until(TIMEOUT, || upgrade_status(weir.addr(), "/flood") == 101),
        "the slot of a process that is gone is still taken; log:\n{}",
        weir.log()
    );
}

#[test]
fn what_a_program_leaves_in_its_group_is_ended_when_it_exits() {
    let route = exec("/leftover", "leftover.sh");
    let weir = Weir::start(&["--exec", &route, "--kill-grace", "1s"]);
    let mut ws = connect(weir.addr(), "/leftover");
    let pids: Vec<u32> =
        (0..2).map(|_| next_text(&mut ws).strip_prefix("pid ").unwrap().parse().unwrap()).collect();
    assert_eq!(close_code(&mut ws), 1000);
    let exited = Instant::now();
    // The program exited on its own: its group gets SIGTERM, and SIGKILL after the grace.
    assert!(wait_until(TIMEOUT, || !alive(pids[0])), "a child outlived its program");
    assert!(wait_until(TIMEOUT, || !alive(pids[1])), "a child ignoring SIGTERM was not killed");
    let took = exited.elapsed();
    assert!(took < Duration::from_secs(5), "killed after {took:?}, with a 1s grace");
    assert!(
        wait_until(TIMEOUT, || weir.log().contains("left in the process group")),
        "{}",
        weir.log()
    );
}
