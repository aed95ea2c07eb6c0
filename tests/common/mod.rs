//! Shared helpers for the integration tests.
//! Starting a real server on 127.0.0.1:0 for a test, and small raw-socket helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub mod example;
pub mod node;
pub mod redis;
#[cfg(feature = "tls")]
pub mod tls;

use weir::app::App;
use weir::server::{Config, Server};

/// A server config for tests: one listener on a free port, signals left alone.
pub fn config() -> Config {
    Config { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Config::default() }
}

/// Runs the echo app (at /echo) on its own thread and returns its address.
pub fn start(config: Config) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::bind(config, App::new(vec!["/echo".into()])).unwrap();
        tx.send(server.local_addrs()[0]).unwrap();
        server.run().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

/// Runs `handler` on a server of its own thread (`config()`) and returns its address.
pub fn serve<H: weir::server::Handler + Send + 'static>(handler: H) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::bind(config(), handler).unwrap();
        tx.send(server.local_addrs()[0]).unwrap();
        server.run().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

/// A WebSocket upgraded at `path` (raw: frames are the test's to write and read).
pub fn upgrade(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = raw(addr);
    let req = UPGRADE.replacen("GET /echo ", &format!("GET {path} "), 1);
    s.write_all(req.as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// A raw TCP connection with a read timeout, so no test can hang.
pub fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A listener whose accept queue is full (never accepted), so the kernel drops the SYNs of a
/// new connect to it: the connect hangs. Keep the three alive while the test needs it.
pub fn listener_whose_connects_hang() -> (SocketAddr, std::net::TcpListener, Vec<TcpStream>) {
    let full = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = full.local_addr().unwrap();
    let mut held = Vec::new();
    while let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
        held.push(s);
        assert!(held.len() < 10_000, "the accept queue never filled");
    }
    (addr, full, held)
}

pub const UPGRADE: &str = "GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Reads an HTTP response head (up to the blank line) and returns it as text.
pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).unwrap();
        assert!(
            n == 1,
            "connection closed inside a response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Reads until EOF (bounded by the read timeout) and returns everything.
pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    all
}

/// A masked client frame.
pub fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    let mut f = vec![b0];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// Upgrades a raw connection and returns it.
pub fn upgraded(addr: SocketAddr) -> TcpStream {
    upgraded_on(addr, "/echo")
}

/// Upgrades a raw connection to `path` and returns it.
pub fn upgraded_on(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = raw(addr);
    s.write_all(UPGRADE.replacen("/echo", path, 1).as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// A frame as the server sent it: the first header byte and the (unmasked) payload.
#[derive(Debug)]
pub struct ServerFrame {
    pub b0: u8,
    pub payload: Vec<u8>,
}

impl ServerFrame {
    pub fn opcode(&self) -> u8 {
        self.b0 & 0x0F
    }

    pub fn fin(&self) -> bool {
        self.b0 & 0x80 != 0
    }

    /// The close code of a close frame (1005 when it has no payload).
    pub fn close_code(&self) -> u16 {
        assert_eq!(self.opcode(), 0x8, "not a close frame: {self:?}");
        match self.payload.as_slice() {
            [] => 1005,
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => panic!("a close payload of one byte: {self:?}"),
        }
    }
}

/// Reads one frame from the server, or `None` at a clean EOF before its first byte. A server
/// frame must not be masked (RFC 6455 §5.1). Bounded by the socket's read timeout.
pub fn read_frame(s: &mut TcpStream) -> Option<ServerFrame> {
    let mut h = [0u8; 2];
    loop {
        match s.read(&mut h[..1]) {
            Ok(0) => return None,
            Ok(_) => break,
            // A signal to this process (SIGCHLD, when the test's own server spawned a child)
            // is no answer: read again, as read_exact does.
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("reading a frame: {e}"),
        }
    }
    s.read_exact(&mut h[1..]).unwrap();
    assert_eq!(h[1] & 0x80, 0, "the server masked a frame");
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).unwrap()];
    s.read_exact(&mut payload).unwrap();
    Some(ServerFrame { b0: h[0], payload })
}

/// Reads frames until a close frame and returns its code, failing on EOF before it.
/// Pings and other frames before the close are skipped.
pub fn expect_close(s: &mut TcpStream) -> u16 {
    loop {
        let f = read_frame(s).expect("EOF before a close frame");
        if f.opcode() == 0x8 {
            return f.close_code();
        }
    }
}

/// Asserts that the server closes the TCP connection (EOF, or a reset) within `within`,
/// without sending anything more. Returns how long it took.
pub fn expect_eof(s: &mut TcpStream, within: Duration) -> Duration {
    let start = Instant::now();
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 256];
    let r = s.read(&mut b);
    let took = start.elapsed();
    match r {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("expected EOF, got {n} more bytes: {:?}", &b[..n]),
        Err(e) => panic!("expected EOF within {within:?}, got {e} after {took:?}"),
    }
    took
}

/// A close frame from the client with `code` and `reason`.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    frame(0x88, &p)
}

/// Sends `req` on a fresh connection and returns the response head, with the body: as many
/// bytes as `Content-Length` says (a kept-alive connection stays open after them), or to EOF.
pub fn request(addr: SocketAddr, req: &[u8]) -> (String, String) {
    let mut s = raw(addr);
    s.write_all(req).unwrap();
    let head = read_head(&mut s);
    let head = head.trim_end_matches("\r\n").to_owned();
    let len = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
    });
    let body = match len {
        Some(n) => {
            let mut b = vec![0u8; n];
            s.read_exact(&mut b).unwrap();
            b
        }
        None => read_to_end(&mut s),
    };
    (head, String::from_utf8(body).unwrap())
}

/// The status code of a response head.
pub fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad head: {head:?}"))
}

/// Whether a response head has header `name` (case-insensitive) with exactly `value`.
pub fn has_header(head: &str, name: &str, value: &str) -> bool {
    head.lines().skip(1).any(|l| {
        l.split_once(':').is_some_and(|(n, v)| n.eq_ignore_ascii_case(name) && v.trim() == value)
    })
}

/// Polls `f` until it returns `Some`, every 20 ms, for at most `within`.
pub fn eventually<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(t) = f() {
            return Some(t);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many descriptors process `pid` has open (/proc/PID/fd).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// The resident memory of process `pid` in bytes (`VmRSS` in /proc/PID/status).
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
    kib * 1024
}

/// The `weir` binary with `args`, its stdin and stdout closed and its stderr piped.
pub fn weir(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    command
}

/// Runs `weir` with `args` until it exits (at most 10 s) and returns its status and stderr.
pub fn run_to_exit(args: &[&str]) -> (ExitStatus, String) {
    let mut child = weir(args).spawn().unwrap();
    let status = eventually(Duration::from_secs(10), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("weir {args:?} still running after 10 s");
    };
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    (status, log)
}

/// The `weir` binary running in a child process, killed when dropped so a failed test leaves
/// no process behind. Its stderr is drained on a thread (kept for failure messages).
pub struct Binary {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// Disconnected when the log reader has reached the end of stderr.
    log_done: mpsc::Receiver<()>,
}

impl Binary {
    /// Starts `weir` with `--listen 127.0.0.1:0` and `args`, and waits (at most 10 s) for the
    /// `listening addr=...` line to learn its port.
    pub fn start(args: &[&str]) -> Self {
        let mut cmd = weir(&["--listen", "127.0.0.1:0", "--log-level", "info"]);
        cmd.args(args);
        Self::spawn(cmd)
    }

    /// Starts `cmd`, a program on weir's runtime (the binary, an example) that logs
    /// `listening addr=...` at start, and waits (at most 10 s) for that line.
    pub fn spawn(cmd: Command) -> Self {
        Self::spawn_with(cmd, true)
    }

    /// Starts `cmd`, a program on weir's runtime that listens on nothing (`weir tunnel`): its
    /// `addr` is 0.0.0.0:0; wait for what it logs with [`Binary::log_with`].
    pub fn spawn_unlistening(cmd: Command) -> Self {
        Self::spawn_with(cmd, false)
    }

    fn spawn_with(mut cmd: Command, listens: bool) -> Self {
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        let (done, log_done) = mpsc::channel();
        std::thread::spawn(move || {
            // Dropped when the thread ends, which disconnects `log_done`.
            let _done = done;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // `listening addr=A` in text, `"msg":"listening","addr":"A"` in JSON.
                let text = line.split(" listening addr=").nth(1);
                let json = line.split("\"msg\":\"listening\",\"addr\":\"").nth(1);
                if let Some(rest) = text.or(json) {
                    let addr = rest.split([' ', '"']).next().unwrap_or_default();
                    let _ = tx.send(addr.parse::<SocketAddr>());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let waited = if listens {
            rx.recv_timeout(Duration::from_secs(10))
        } else {
            Ok("0.0.0.0:0".parse())
        };
        let addr = match waited {
            Ok(Ok(a)) => a,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no listening address ({other:?}); log:\n{}", log.lock().unwrap());
            }
        };
        Self { child, addr, log, log_done }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (with kill(1), so the tests need no `unsafe`).
    pub fn sigterm(&self) {
        let st = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(st.success(), "kill -TERM failed");
    }

    /// Waits at most `within` for the process to exit.
    /// Once it has exited, what it logged is all read (at most 2 s more), so [`Binary::log`]
    /// holds its last lines.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let status = eventually(within, || self.child.try_wait().unwrap())
            .unwrap_or_else(|| panic!("still running after {within:?}; log:\n{}", self.log()));
        // Its last lines may still be in the pipe: read them before the test looks at the log
        // (bounded: a child of its own could hold the pipe open).
        let _ = self.log_done.recv_timeout(Duration::from_secs(5));
        status
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Its log once it holds `needle`, waiting at most `within`: a line written just after what
    /// the test saw (a close frame, say) takes a moment more to come through the pipe.
    pub fn log_with(&self, needle: &str, within: Duration) -> String {
        eventually(within, || Some(self.log()).filter(|l| l.contains(needle))).unwrap_or_else(
            || panic!("no {needle:?} in the log within {within:?}:\n{}", self.log()),
        )
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The variable that lets tests needing a missing external program skip instead of failing:
/// program names, comma-separated (`WEIR_SKIP_EXTERNAL=node`). README.md documents it beside
/// the test command.
pub const SKIP_EXTERNAL: &str = "WEIR_SKIP_EXTERNAL";

/// Whether `program` is named in `WEIR_SKIP_EXTERNAL`.
pub fn skip_allowed(program: &str) -> bool {
    std::env::var(SKIP_EXTERNAL).is_ok_and(|v| v.split(',').any(|p| p.trim() == program))
}

/// A test cannot run because `program` (an external program, e.g. `node`) is missing or not
/// usable: `problem` says what is wrong and how to fix it (the command that installs it). The
/// test fails with that, unless `WEIR_SKIP_EXTERNAL` names `program`: then the skip is written
/// straight to the terminal (past the test harness's capture, so `cargo test` shows it even
/// though the test is reported ok) and the caller returns at once.
pub fn missing_external(program: &str, problem: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    if !skip_allowed(program) {
        panic!(
            "{test} needs `{program}`: {problem}\n(to skip the tests that need it instead, \
             set {SKIP_EXTERNAL}={program}; see README.md)"
        );
    }
    // Not eprintln!: the harness captures that for tests that pass.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: {problem} ({SKIP_EXTERNAL}={program}) ***"
    );
}
