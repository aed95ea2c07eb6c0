//! Out of file descriptors: `accept` failing with EMFILE must not spin the event loop, and the
//! server serves again once descriptors are free.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::eventually;

/// `weir` under `ulimit -n 64`, killed when dropped.
struct Limited {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Limited {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new("sh")
            .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_weir")])
            .args(["--listen", "127.0.0.1:0", "--log-level", "info"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split(" listening addr=").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(addr.parse::<SocketAddr>());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(a)) => a,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no listening address ({other:?}); log:\n{}", log.lock().unwrap());
            }
        };
        Self { child, addr, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// User plus system CPU time so far, in clock ticks (`/proc/PID/stat` fields 14 and 15).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // The command name (field 2) is in parentheses and may hold spaces: count after it.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // `after` starts at field 3 (state).
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// The numbers of its open descriptors.
    fn fds(&self) -> Vec<u32> {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks_per_second() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

/// `GET /healthz` on a fresh connection: the status, or `None` if it failed in any way.
fn healthz(addr: SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8(out).ok()?;
    text.split(' ').nth(1)?.parse().ok()
}

/// A server out of descriptors, with the connections that took them, once it has said so.
fn exhausted() -> (Limited, Vec<TcpStream>) {
    // More connections allowed than descriptors: accept itself runs out (EMFILE).
    let server = Limited::start(&["--max-connections", "1000", "--handshake-timeout", "60s"]);
    let held: Vec<TcpStream> = (0..100)
        .map(|i| TcpStream::connect(server.addr).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    eventually(Duration::from_secs(10), || {
        server.log().contains("accept failed: out of resources").then_some(())
    })
    .unwrap_or_else(|| panic!("no EMFILE warning; log:\n{}", server.log()));
    (server, held)
}

#[test]
fn emfile_does_not_spin_the_loop_and_the_server_recovers() {
    let (server, held) = exhausted();
    // Every descriptor below the limit is taken (ones inherited above it do not count).
    let low = server.fds().into_iter().filter(|&n| n < 64).count();
    assert_eq!(low, 64, "the descriptor table is not full");
    // Clients wait in the backlog; the loop must sleep meanwhile, not retry at once.
    let hz = clock_ticks_per_second();
    let start = Instant::now();
    let before = server.cpu_ticks();
    // The measuring window (not a wait for anything).
    std::thread::sleep(Duration::from_millis(1500));
    let ticks = server.cpu_ticks() - before;
    let secs = start.elapsed().as_secs_f64();
    let busy = ticks as f64 / hz as f64 / secs;
    assert!(
        busy < 0.2,
        "the loop spun: {ticks} ticks of CPU in {secs:.2} s ({:.0}%)",
        busy * 100.0
    );
    // Descriptors free again: the server serves new clients.
    drop(held);
    let status =
        eventually(Duration::from_secs(10), || healthz(server.addr)).unwrap_or_else(|| {
            panic!("not served after the connections closed; log:\n{}", server.log())
        });
    assert_eq!(status, 200);
    let mut ws = common::raw(server.addr);
    ws.write_all(common::UPGRADE.replace("GET /echo", "GET /ws").as_bytes()).unwrap();
    let head = common::read_head(&mut ws);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

#[test]
fn accept_failures_are_logged_at_most_once_a_second() {
    let (server, _held) = exhausted();
    let warned = |log: &str| log.matches("accept failed").count();
    let before = warned(&server.log());
    let start = Instant::now();
    // The measuring window (not a wait for anything): the backlog stays full throughout.
    std::thread::sleep(Duration::from_millis(3500));
    let lines = warned(&server.log()) - before;
    let secs = start.elapsed().as_secs_f64();
    assert!(
        lines as f64 <= secs + 1.0,
        "{lines} accept warnings in {secs:.1} s; log:\n{}",
        server.log()
    );
    // The lines after the first say how many failures they stand for.
    assert!(server.log().contains("suppressed="), "{}", server.log());
}
