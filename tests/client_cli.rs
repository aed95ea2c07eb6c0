//! `weir client URL`, the binary as a console client: stdin to messages, messages to stdout, the
//! exit status from how the connection ended; against weir's echo and a hand-written server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{Binary, read_head};

const TIMEOUT: Duration = Duration::from_secs(10);

/// `weir client URL ARGS` in a child process with piped stdio; killed when dropped. Its
/// stdout arrives in chunks on a channel; its stderr is collected.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    out: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_done: mpsc::Receiver<()>,
}

impl Client {
    fn spawn(url: &str, args: &[&str]) -> Self {
        Self::spawn_with_env(url, args, &[])
    }

    /// [`Client::spawn`] with `vars` set in its environment.
    fn spawn_with_env(url: &str, args: &[&str], vars: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("client")
            .arg(url)
            .args(args)
            .envs(vars.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, out) = mpsc::channel();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 << 10];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let mut err = child.stderr.take().unwrap();
        let (done, stderr_done) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            let _ = done.send(());
        });
        let stdin = child.stdin.take();
        Self { child, stdin, out, pending: Vec::new(), stderr, stderr_done }
    }

    fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin (EOF: the client sends close 1000).
    fn end_input(&mut self) {
        self.stdin = None;
    }

    /// Exactly `n` bytes of stdout, waiting at most `TIMEOUT` for each chunk.
    fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.pending.len() < n {
            match self.out.recv_timeout(TIMEOUT) {
                Ok(chunk) => self.pending.extend_from_slice(&chunk),
                Err(e) => panic!(
                    "stdout: {} of {n} bytes ({e}); stderr: {}",
                    self.pending.len(),
                    self.stderr()
                ),
            }
        }
        self.pending.drain(..n).collect()
    }

    fn read_line(&mut self) -> String {
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                return String::from_utf8(line[..i].to_vec()).unwrap();
            }
            match self.out.recv_timeout(TIMEOUT) {
                Ok(chunk) => self.pending.extend_from_slice(&chunk),
                Err(e) => panic!("no stdout line ({e}); stderr: {}", self.stderr()),
            }
        }
    }

    /// Waits (bounded) for the exit, and for all of stderr.
    fn wait(&mut self) -> ExitStatus {
        let status = common::eventually(TIMEOUT, || self.child.try_wait().unwrap())
            .unwrap_or_else(|| panic!("weir client still running; stderr: {}", self.stderr()));
        let _ = self.stderr_done.recv_timeout(TIMEOUT);
        status
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Stdout the client wrote after what was read (after it exited).
    fn rest(&mut self) -> Vec<u8> {
        while let Ok(chunk) = self.out.recv_timeout(Duration::from_millis(500)) {
            self.pending.extend_from_slice(&chunk);
        }
        std::mem::take(&mut self.pending)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A WebSocket server written by hand for one connection: it sends its 101 (with `protocol`,
/// if any) and then `after`, and returns the request head it got and the bytes it read until
/// the client closed the TCP connection (bounded by a read timeout).
fn hand_server(
    protocol: Option<&'static str>,
    after: Vec<u8>,
) -> (SocketAddr, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Some(mut s) = common::eventually(TIMEOUT, || listener.accept().ok().map(|(s, _)| s))
        else {
            return;
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let head = read_head(&mut s);
        let key = header(&head, "Sec-WebSocket-Key").unwrap();
        let accept = weir::proto::handshake::accept_key(key.as_bytes());
        let mut out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            std::str::from_utf8(&accept).unwrap()
        );
        if let Some(p) = protocol {
            out.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(&after);
        s.write_all(&out).unwrap();
        let rest = common::read_to_end(&mut s);
        let _ = tx.send((head, rest));
    });
    (addr, rx)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// The payload of a masked frame (what a client sends) at the start of `bytes`, with its
/// first header byte. Short frames only (payload < 126).
fn client_frame(bytes: &[u8]) -> (u8, Vec<u8>) {
    assert!(bytes.len() >= 6, "no whole frame: {bytes:?}");
    assert_eq!(bytes[1] & 0x80, 0x80, "a client frame must be masked");
    let len = usize::from(bytes[1] & 0x7F);
    assert!(len < 126);
    let key = &bytes[2..6];
    let payload = bytes[6..6 + len].iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
    (bytes[0], payload)
}

#[test]
fn lines_round_trip_through_echo_and_eof_closes_with_1000() {
    let echo = Binary::start(&["--echo", "/echo"]);
    let mut c = Client::spawn(&format!("ws://{}/echo", echo.addr), &[]);
    c.write(b"first line\nsecond: \xc3\xa9t\xc3\xa9\n");
    assert_eq!(c.read_line(), "first line");
    assert_eq!(c.read_line(), "second: été");
    c.write(b"third\r\n\n");
    assert_eq!(c.read_line(), "third", "CRLF is trimmed");
    assert_eq!(c.read_line(), "", "an empty line is an empty message");
    c.end_input();
    let status = c.wait();
    assert!(status.success(), "exit {status:?} after EOF; stderr: {}", c.stderr());
    assert!(c.rest().is_empty());
}

#[test]
fn binary_mode_sends_stdin_bytes_and_writes_messages_raw() {
    let echo = Binary::start(&["--echo", "/echo"]);
    let mut c = Client::spawn(&format!("ws://{}/echo", echo.addr), &["--binary"]);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    // Written from a thread: the pipe may fill while the client's echo is not being read.
    let mut stdin = c.stdin.take().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&sent).unwrap();
        // Dropping stdin here is EOF: close 1000.
    });
    let got = c.read_exact(data.len());
    assert!(got == data, "binary bytes changed on the way");
    writer.join().unwrap();
    let status = c.wait();
    assert!(status.success(), "exit {status:?}; stderr: {}", c.stderr());
}

#[test]
fn a_server_close_with_4000_is_a_failure_with_code_and_reason() {
    let mut after = vec![0x81, 5];
    after.extend_from_slice(b"hello");
    after.extend_from_slice(&[0x88, 8, 0x0f, 0xa0]);
    after.extend_from_slice(b"reason");
    let (addr, server) = hand_server(Some("chat.v2"), after);
    let mut c = Client::spawn(
        &format!("ws://{addr}/path?q=1"),
        &[
            "--subprotocol",
            "chat.v1",
            "--subprotocol",
            "chat.v2",
            "--header",
            "X-Test:yes",
            "--header",
            "Authorization: Bearer abc",
            "--origin",
            "http://example.com",
        ],
    );
    assert_eq!(c.read_line(), "hello");
    let status = c.wait();
    assert!(!status.success(), "a 4000 close must fail the client: {status:?}");
    let stderr = c.stderr();
    assert!(stderr.contains("4000") && stderr.contains("reason"), "stderr: {stderr}");

    let (head, rest) = server.recv_timeout(TIMEOUT).unwrap();
    assert!(head.starts_with("GET /path?q=1 HTTP/1.1\r\n"), "{head}");
    assert_eq!(header(&head, "Host"), Some(addr.to_string().as_str()), "{head}");
    assert_eq!(header(&head, "Sec-WebSocket-Protocol"), Some("chat.v1, chat.v2"), "{head}");
    assert_eq!(header(&head, "X-Test"), Some("yes"), "{head}");
    assert_eq!(header(&head, "Authorization"), Some("Bearer abc"), "{head}");
    assert_eq!(header(&head, "Origin"), Some("http://example.com"), "{head}");
    // The client answered the close (RFC 6455 §5.5.1), echoing the code.
    let (b0, payload) = client_frame(&rest);
    assert_eq!(b0, 0x88, "expected the close reply, got {rest:?}");
    assert_eq!(payload[..2], [0x0f, 0xa0]);
}

#[test]
fn an_unreachable_server_or_a_refused_upgrade_fails_with_a_message() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = Client::spawn(&format!("ws://127.0.0.1:{port}/"), &[]);
    let status = c.wait();
    assert!(!status.success(), "connecting to a closed port succeeded: {status:?}");
    let stderr = c.stderr();
    assert!(stderr.to_lowercase().contains("refused"), "stderr: {stderr}");
    assert!(c.rest().is_empty());

    let echo = Binary::start(&["--echo", "/echo"]);
    let mut c = Client::spawn(&format!("ws://{}/nothing-here", echo.addr), &[]);
    let status = c.wait();
    assert!(!status.success(), "a 404 upgrade succeeded: {status:?}");
    let stderr = c.stderr();
    assert!(stderr.contains("404"), "stderr: {stderr}");
}

#[test]
fn bad_urls_are_usage_errors() {
    // wss:// is a usage error only in a build without TLS (with it, port 1 refuses: status 1).
    let wss = if cfg!(feature = "tls") { "ws://127.0.0.1:1/#frag" } else { "wss://127.0.0.1:1/" };
    for url in ["http://127.0.0.1:1/", wss, "ws://127.0.0.1:1/#frag"] {
        let mut c = Client::spawn(url, &[]);
        let status = c.wait();
        assert_eq!(status.code(), Some(2), "{url}: {status:?}; stderr: {}", c.stderr());
        assert!(c.stderr().starts_with("weir: "), "{url}: {}", c.stderr());
    }
}

/// A stdin line that is not UTF-8 is sent with U+FFFD for its bad bytes, and the lines after
/// it still go out (before: it ended the session silently, with status 0).
#[test]
fn a_line_that_is_not_utf8_is_sent_lossily_and_input_goes_on() {
    let echo = Binary::start(&["--echo", "/echo"]);
    let mut c = Client::spawn(&format!("ws://{}/echo", echo.addr), &[]);
    c.write(b"a\n\xff\nb\n");
    assert_eq!(c.read_line(), "a");
    assert_eq!(c.read_line(), "\u{fffd}");
    assert_eq!(c.read_line(), "b");
    c.end_input();
    let status = c.wait();
    assert!(status.success(), "exit {status:?}; stderr: {}", c.stderr());
}

/// RFC 6455 §7.1.5: a close that the server never answers is not a normal close (1006), so
/// the status is 1 (before: 0, the code this end had sent).
#[test]
fn a_close_the_server_never_answers_is_a_failure() {
    // The server greets, then reads the client's close and drops TCP without answering.
    let (addr, server) = hand_server(None, Vec::new());
    let mut c = Client::spawn(&format!("ws://{addr}/"), &[]);
    c.end_input();
    let status = c.wait();
    assert_eq!(status.code(), Some(1), "stderr: {}", c.stderr());
    assert!(c.stderr().contains("1006"), "stderr: {}", c.stderr());
    let (_, rest) = server.recv_timeout(TIMEOUT).unwrap();
    assert_eq!(client_frame(&rest).0, 0x88, "the client's close: {rest:?}");
}

/// A host that cannot be resolved is a failure to connect (1), not a usage error (2).
#[test]
fn an_unresolvable_host_fails_with_status_1() {
    let mut c = Client::spawn("ws://nonexistent.invalid/", &[]);
    let status = c.wait();
    assert_eq!(status.code(), Some(1), "stderr: {}", c.stderr());
    assert!(c.stderr().starts_with("weir: "), "{}", c.stderr());
}

/// The upgrade request `weir client` sends with `vars` in its environment.
fn head_sent_with_env(vars: &[(&str, &str)]) -> String {
    // The server closes at once (1000), so the client ends without waiting on anything.
    let (addr, server) = hand_server(None, vec![0x88, 2, 0x03, 0xe8]);
    let mut c = Client::spawn_with_env(&format!("ws://{addr}/"), &[], vars);
    let _ = c.wait();
    server.recv_timeout(TIMEOUT).unwrap().0
}

/// `weir client` reads only its own variables, `WEIR_CLIENT_*`: a shell or unit environment
/// that holds the server's (`WEIR_ORIGIN` is the server's allow-list, `WEIR_HEADER`,
/// `WEIR_SUBPROTOCOL`, `WEIR_INSECURE`...) does not change what the client sends. Before, the
/// two shared their names, so the server's `WEIR_ORIGIN` became the client's `Origin`.
#[test]
fn the_client_reads_its_own_variables_not_the_servers() {
    let servers = [
        ("WEIR_ORIGIN", "https://server.example"),
        ("WEIR_HEADER", "X-Server:1"),
        ("WEIR_SUBPROTOCOL", "server.v1"),
        ("WEIR_COMPRESSION", "shared"),
    ];
    let head = head_sent_with_env(&servers);
    for name in ["Origin", "X-Server", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"] {
        assert_eq!(header(&head, name), None, "{name} from the server's variables:\n{head}");
    }

    let own = [
        ("WEIR_CLIENT_ORIGIN", "https://client.example"),
        ("WEIR_CLIENT_HEADER", "X-Client:1"),
        ("WEIR_CLIENT_SUBPROTOCOL", "client.v1"),
    ];
    let head = head_sent_with_env(&own);
    assert_eq!(header(&head, "Origin"), Some("https://client.example"), "{head}");
    assert_eq!(header(&head, "X-Client"), Some("1"), "{head}");
    assert_eq!(header(&head, "Sec-WebSocket-Protocol"), Some("client.v1"), "{head}");
}
