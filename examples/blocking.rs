//! `weir::proto` over blocking `std::net` sockets, with no runtime at all: a client connects,
//! sends one text message, reads the echo, and closes with a reason (RFC 6455 §4.1, §5, §7).
//!
//! The core does no I/O and reads no clock: this file reads and writes the socket, hands the
//! core the time since it started, and turns the core's next deadline into the socket's read
//! timeout.
//!
//! `cargo run --example blocking -- 127.0.0.1:8080 /echo "hello"` (against `weir`, which
//! echoes at `/echo` by default).

use std::error::Error;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use weir::proto::connection::MAX_CONTROL_FRAME_LEN;
use weir::proto::handshake::ClientHandshake;
use weir::proto::http::{self, HeadReader, Header, Limits};
use weir::proto::{CloseCode, Config, Connection, Event, MessageKind, Role, State, Status};

/// What the server answered: its echo, and the code and reason of its close frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The message the server sent back.
    pub echo: String,
    /// The code (1005 for none) and reason of the server's close frame, if one came.
    pub close: Option<(u16, String)>,
}

/// Connects to `addr` (`host:port`), upgrades at `path`, sends `text`, reads the echo, and
/// closes with 1000 and `reason`.
pub fn echo_once(
    addr: &str,
    path: &str,
    text: &str,
    reason: &str,
) -> Result<Exchange, Box<dyn Error>> {
    let start = Instant::now();
    let now = || start.elapsed();
    let mut sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = vec![0u8; 64 << 10];

    // The opening handshake (§4.1): the request, then the response head, however it is split.
    let handshake = ClientHandshake::new(random()?);
    let n = handshake.write_request(&mut buf, addr, path, &[], &[])?;
    sock.write_all(&buf[..n])?;
    let limits = Limits::default();
    let mut reader = HeadReader::new(&limits);
    let mut input = Vec::new();
    let head_len = loop {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            return Err("the server closed the connection during the handshake".into());
        }
        input.extend_from_slice(&buf[..n]);
        if let Status::Complete(len) = reader.feed(&input)? {
            break len;
        }
    };
    let mut slots = [Header::default(); 32];
    let response = http::parse_response(&input[..head_len], &mut slots, &limits)?;
    handshake.check_response(&response, &[])?;
    input.drain(..head_len); // frames that came with the 101 are read below

    // Frames: a client masks each with a fresh key (§5.3).
    let mut conn = Connection::new_open(Role::Client, Config::default(), now());
    let n = conn.send(MessageKind::Text, text.as_bytes(), true, &mut buf, random()?)?;
    sock.write_all(&buf[..n])?;
    let (mut message, mut echo, mut close) = (Vec::new(), None, None);
    let mut control = [0u8; MAX_CONTROL_FRAME_LEN];
    loop {
        let mut pos = 0;
        while pos < input.len() {
            let (used, event) = conn.handle_bytes(&mut input[pos..], now())?;
            pos += used;
            match event {
                Some(Event::Message { data, fin, .. }) => {
                    message.extend_from_slice(data);
                    if fin && echo.is_none() {
                        echo = Some(String::from_utf8(std::mem::take(&mut message))?);
                        conn.close(CloseCode::NORMAL, reason, now())?; // §7.1.2
                    }
                }
                Some(Event::Close(frame)) => {
                    close = Some((frame.code.map_or(1005, |c| c.0), frame.reason().to_string()));
                }
                _ => {}
            }
        }
        input.clear();
        // What the core owes the peer: pongs, its close frame, the echo of the server's.
        while let Some(n) = conn.poll_transmit(&mut control, random()?) {
            sock.write_all(&control[..n])?;
        }
        if conn.state() == State::Closed {
            // §7.1.1: the server closes the TCP connection first; wait for it (bounded).
            sock.set_read_timeout(Some(conn.config().close_timeout))?;
            while matches!(sock.read(&mut buf), Ok(n) if n > 0) {}
            break;
        }
        // Read until the core's next deadline (a ping to send, the close to time out).
        let wait =
            conn.poll_timeout().map_or(Duration::from_secs(10), |at| at.saturating_sub(now()));
        sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match sock.read(&mut buf) {
            Ok(0) => break, // §7.1.1: the server closes the TCP connection first
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                conn.handle_timeout(now());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Exchange { echo: echo.ok_or("no echo before the close")?, close })
}

/// Bytes from the OS's random source, for the handshake's nonce and the masking keys.
fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0; N];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

#[allow(dead_code)] // the tests include this file for `echo_once`
fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, text] = &args[..] else {
        return Err("usage: blocking HOST:PORT PATH TEXT".into());
    };
    let exchange = echo_once(addr, path, text, "done")?;
    println!("echo: {}", exchange.echo);
    println!("close: {:?}", exchange.close);
    Ok(())
}
