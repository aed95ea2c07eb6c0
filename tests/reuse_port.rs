//! `--reuse-port`: several real weir processes listen on one port (SO_REUSEPORT) and the
//! kernel spreads connections over them; without the flag the second process cannot bind and
//! says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/http.rs"]
mod http;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Binary, eventually, run_to_exit, upgraded, weir};
use http::{get, u64_of};

/// Connections opened on the shared port.
const CONNS: u64 = 64;

/// Every address a process logged `listening addr=...` for, in its order (waits for `n`).
fn listening(b: &Binary, n: usize) -> Vec<SocketAddr> {
    let addrs = || -> Vec<SocketAddr> {
        let log = b.log();
        let found = log.lines().filter_map(|l| l.split(" listening addr=").nth(1));
        found.filter_map(|r| r.split(' ').next()?.parse().ok()).collect()
    };
    eventually(Duration::from_secs(10), || Some(addrs()).filter(|a| a.len() >= n))
        .unwrap_or_else(|| panic!("fewer than {n} listening lines:\n{}", b.log()))
}

/// WebSocket connections open on a process (`/api/stats`, asked on its own port).
fn open_connections(addr: SocketAddr) -> u64 {
    let r = get(addr, "/api/stats");
    assert_eq!(r.status, 200, "{r:?}");
    u64_of(&r.json(), "connections")
}

#[test]
fn two_processes_share_one_port_and_both_serve() {
    // a: the shared port first (the one Binary::start asks for), then a port of its own.
    let a = Binary::start(&["--reuse-port", "--listen", "127.0.0.1:0"]);
    let [shared, a_own] = listening(&a, 2)[..] else { panic!("{}", a.log()) };
    assert_eq!(shared, a.addr);
    // b: a port of its own first, then a's shared one.
    let b = Binary::spawn(weir(&[
        "--listen",
        "127.0.0.1:0",
        "--listen",
        &shared.to_string(),
        "--reuse-port",
    ]));
    let b_addrs = listening(&b, 2);
    assert_eq!(b_addrs[1], shared, "{}", b.log());
    let b_own = b_addrs[0];
    assert_eq!((open_connections(a_own), open_connections(b_own)), (0, 0));

    // Every connection to the shared port is served (a 101 and an echo), by one or the other.
    let mut held: Vec<TcpStream> = Vec::new();
    for i in 0..CONNS {
        let mut s = upgraded(shared);
        let text = format!("hello {i}");
        std::io::Write::write_all(&mut s, &common::frame(0x81, text.as_bytes())).unwrap();
        let f = common::read_frame(&mut s).expect("no echo");
        assert_eq!(f.payload, text.as_bytes());
        held.push(s);
    }
    let (on_a, on_b) = (open_connections(a_own), open_connections(b_own));
    assert_eq!(on_a + on_b, CONNS, "a has {on_a}, b {on_b}");
    // The kernel hashes each connection's addresses and ports: all 64 on one process would
    // have a chance of 2^-63.
    assert!(on_a > 0 && on_b > 0, "every connection went to one process: a {on_a}, b {on_b}");

    // a stops: the port stays b's, and new connections reach it.
    drop(held);
    drop(a);
    let before = open_connections(b_own);
    let mut held: Vec<TcpStream> = (0..8).map(|_| upgraded(shared)).collect();
    assert_eq!(open_connections(b_own), before + 8);
    held.clear();
}

#[test]
fn without_the_flag_the_second_process_cannot_bind_and_says_why() {
    let first = Binary::start(&[]);
    let port = first.addr.to_string();
    let (status, log) = run_to_exit(&["--listen", &port]);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("cannot listen"), "{log}");
    assert!(log.contains(&port), "the address is not named: {log}");
    assert!(log.contains("in use"), "{log}");
    assert!(log.contains("--reuse-port"), "no hint at the flag: {log}");
    // Asking for it is not enough when the process that has the port did not.
    let (status, log) = run_to_exit(&["--listen", &port, "--reuse-port"]);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("without --reuse-port"), "{log}");
    // The first one still serves.
    assert_eq!(get(first.addr, "/healthz").status, 200);
}

#[test]
fn the_variable_sets_it_too() {
    let a = Binary::start(&["--reuse-port"]);
    let mut cmd = weir(&["--listen", &a.addr.to_string()]);
    cmd.env("WEIR_REUSE_PORT", "1");
    let b = Binary::spawn(cmd);
    assert_eq!(b.addr, a.addr);
}
