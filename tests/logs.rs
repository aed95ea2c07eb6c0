//! What the `weir` binary logs: start-up in the right order, failures that name what failed,
//! JSON values typed, and one form of connection id shared by the logs, the hub and the proxy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::{Binary, eventually, read_frame, read_head, run_to_exit};

/// A raw upgrade to `path`; returns the open stream.
fn upgrade(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = common::raw(addr);
    s.write_all(common::UPGRADE.replacen("/echo", path, 1).as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// The value of `key=` in the first line of `log` that holds `msg` (text format).
fn field(log: &str, msg: &str, key: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains(msg))?;
    let rest = line.split(&format!(" {key}=")).nth(1)?;
    Some(rest.split_whitespace().next().unwrap_or_default().to_string())
}

#[test]
fn a_bad_configuration_is_refused_before_anything_says_starting() {
    let (status, log) = run_to_exit(&["--listen", "127.0.0.1:0", "--token-file", "/nonexistent/t"]);
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("--token-file /nonexistent/t"), "{log}");
    assert!(!log.contains("starting"), "a refused configuration logged starting:\n{log}");
}

#[test]
fn cannot_listen_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, log) = run_to_exit(&["--listen", &addr]);
    assert_eq!(status.code(), Some(1), "{log}");
    let line = log.lines().find(|l| l.contains("cannot listen")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(&addr), "{line}");
}

#[test]
fn json_logs_write_numbers_and_ids_as_json_values() {
    let weir = Binary::start(&["--log-format", "json"]);
    let mut ws = upgrade(weir.addr, "/echo");
    ws.write_all(&common::close_frame(1000, "")).unwrap();
    assert_eq!(read_frame(&mut ws).unwrap().close_code(), 1000);
    let log = eventually(Duration::from_secs(5), || {
        let log = weir.log();
        log.contains("\"msg\":\"open\"").then_some(log)
    })
    .unwrap_or_else(|| panic!("no open line:\n{}", weir.log()));
    let starting = log.lines().find(|l| l.contains("\"msg\":\"starting\"")).unwrap();
    assert!(starting.contains("\"max_connections\":10000,"), "a number is bare: {starting}");
    let open = log.lines().find(|l| l.contains("\"msg\":\"open\"")).unwrap();
    assert!(open.contains("\"id\":\"c-"), "an id is a string in the one form: {open}");
}

#[test]
fn the_hub_names_a_client_by_the_id_the_logs_use() {
    let weir = Binary::start(&[]);
    let mut ws = upgrade(weir.addr, "/ws");
    let hello = String::from_utf8(read_frame(&mut ws).unwrap().payload).unwrap();
    let name = hello.split("\"client\":\"").nth(1).and_then(|r| r.split('"').next()).unwrap();
    let logged = eventually(Duration::from_secs(5), || field(&weir.log(), " info open ", "id"))
        .unwrap_or_else(|| panic!("no open line:\n{}", weir.log()));
    assert_eq!(name, logged, "{hello}\n{}", weir.log());
}

#[test]
fn a_proxied_client_is_logged_with_its_upstream() {
    let echo = Binary::start(&[]);
    let proxy = Binary::start(&["--route", &format!("/up=ws://{}/echo", echo.addr)]);
    let _ws = upgrade(proxy.addr, "/up");
    let log = eventually(Duration::from_secs(5), || {
        let log = proxy.log();
        log.contains(" info open ").then_some(log)
    })
    .unwrap_or_else(|| panic!("no open line:\n{}", proxy.log()));
    let client = field(&log, " info open ", "id").unwrap();
    let upstream = field(&log, " info connected ", "id").unwrap();
    let linked =
        log.lines().find(|l| l.contains("proxy: linked")).unwrap_or_else(|| panic!("{log}"));
    assert!(linked.contains(&format!(" client={client} ")), "{linked}");
    assert!(linked.contains(&format!(" upstream={upstream} ")), "{linked}");
}

#[test]
fn a_refused_request_is_logged_with_the_rule_it_broke() {
    let weir = Binary::start(&[]);
    let mut s = common::raw(weir.addr);
    let request = common::UPGRADE.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    s.write_all(request.as_bytes()).unwrap();
    assert!(read_head(&mut s).starts_with("HTTP/1.1 426"));
    let line = eventually(Duration::from_secs(5), || {
        weir.log().lines().find(|l| l.contains("request refused")).map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no refusal logged:\n{}", weir.log()));
    assert!(line.contains(" status=426 "), "{line}");
    assert!(line.ends_with(" rule=\"RFC 6455 §4.4\""), "{line}");
}
