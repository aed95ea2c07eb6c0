//! Raw TCP echo on mio: one thread, edge-triggered, no WebSocket framing.
//!
//! The practical ceiling of the machine for an echo workload. Every byte read is written back
//! as it comes. A connection whose first bytes are `GET ` is first answered with a valid
//! `101 Switching Protocols` (so a WebSocket client can connect), and from then on its bytes are
//! echoed raw too: masked client frames come back masked, which the load generator's `--raw`
//! mode expects.
//!
//! Usage: `raw-tcp-echo [ADDR]` (default `127.0.0.1:9001`; port 0 picks a free port).

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);
/// One read buffer for all connections, as large as weir's (256 KiB).
const READ_CHUNK: usize = 256 * 1024;
/// Stop reading a connection while any echo is still unwritten (resumed once drained): only
/// the unwritten tail of one read is ever copied aside, and memory stays bounded.
const PENDING_HIGH_WATER: usize = 1;
/// Largest HTTP upgrade request accepted.
const MAX_REQUEST: usize = 16 * 1024;
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

enum Phase {
    /// Fewer than 4 bytes seen yet: is this an HTTP upgrade or raw bytes?
    Detect(Vec<u8>),
    /// Collecting an HTTP request until the blank line.
    Request(Vec<u8>),
    /// Echoing bytes.
    Echo,
}

struct Conn {
    stream: TcpStream,
    phase: Phase,
    /// Bytes accepted for echo but not yet written, from `pending_off` on.
    pending: Vec<u8>,
    pending_off: usize,
    /// Reading was paused because `pending` was too large.
    read_paused: bool,
    /// The peer closed its side: close once `pending` is written.
    eof: bool,
}

enum Outcome {
    Keep,
    Close,
}

impl Conn {
    fn unwritten(&self) -> usize {
        self.pending.len() - self.pending_off
    }

    /// Queue `data` for writing, writing directly when nothing is queued.
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let mut data = data;
        if self.unwritten() == 0 {
            while !data.is_empty() {
                match self.stream.write(data) {
                    Ok(0) => return Err(ErrorKind::WriteZero.into()),
                    Ok(n) => data = &data[n..],
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if data.is_empty() {
                return Ok(());
            }
            self.pending.clear();
            self.pending_off = 0;
        }
        self.pending.extend_from_slice(data);
        Ok(())
    }

    /// Write as much of `pending` as the socket takes.
    fn flush(&mut self) -> io::Result<()> {
        while self.pending_off < self.pending.len() {
            match self.stream.write(&self.pending[self.pending_off..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.pending_off += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.pending_off == self.pending.len() {
            self.pending.clear();
            self.pending_off = 0;
            if self.pending.capacity() > READ_CHUNK {
                self.pending.shrink_to(READ_CHUNK);
            }
        }
        Ok(())
    }

    /// Handle bytes just read.
    fn input(&mut self, data: &[u8]) -> io::Result<Outcome> {
        match &mut self.phase {
            Phase::Echo => {
                self.send(data)?;
                Ok(Outcome::Keep)
            }
            Phase::Detect(seen) => {
                seen.extend_from_slice(data);
                let n = seen.len().min(4);
                if seen[..n] != b"GET "[..n] {
                    let seen = std::mem::take(seen);
                    self.phase = Phase::Echo;
                    self.send(&seen)?;
                    Ok(Outcome::Keep)
                } else if seen.len() >= 4 {
                    let seen = std::mem::take(seen);
                    self.phase = Phase::Request(Vec::new());
                    self.input(&seen)
                } else {
                    Ok(Outcome::Keep)
                }
            }
            Phase::Request(req) => {
                // Search only where the blank line can newly end.
                let from = req.len().saturating_sub(3);
                req.extend_from_slice(data);
                let Some(end) = find(&req[from..], b"\r\n\r\n").map(|i| from + i + 4) else {
                    return Ok(if req.len() > MAX_REQUEST {
                        Outcome::Close
                    } else {
                        Outcome::Keep
                    });
                };
                let req = std::mem::take(req);
                self.phase = Phase::Echo;
                match accept_key(&req[..end]) {
                    Some(accept) => {
                        let response = format!(
                            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                        );
                        self.send(response.as_bytes())?;
                        self.send(&req[end..])?;
                        Ok(Outcome::Keep)
                    }
                    None => {
                        let _ = self.stream.write(
                            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                        );
                        Ok(Outcome::Close)
                    }
                }
            }
        }
    }

    /// Read until the socket is drained (edge-triggered), echoing as we go. A short read
    /// drained it (new data raises a new edge), unless the peer's FIN came with this edge
    /// (`hup`): then read on to EOF.
    fn on_readable(&mut self, buf: &mut [u8], hup: bool) -> io::Result<Outcome> {
        loop {
            if self.unwritten() >= PENDING_HIGH_WATER {
                self.read_paused = true;
                return Ok(Outcome::Keep);
            }
            match self.stream.read(buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(if self.unwritten() == 0 { Outcome::Close } else { Outcome::Keep });
                }
                Ok(n) => {
                    if let Outcome::Close = self.input(&buf[..n])? {
                        return Ok(Outcome::Close);
                    }
                    if n < buf.len() && !hup {
                        return Ok(Outcome::Keep);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Outcome::Keep),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn on_writable(&mut self, buf: &mut [u8]) -> io::Result<Outcome> {
        self.flush()?;
        if self.unwritten() == 0 && self.eof {
            return Ok(Outcome::Close);
        }
        if self.read_paused && self.unwritten() < PENDING_HIGH_WATER {
            self.read_paused = false;
            return self.on_readable(buf, true);
        }
        Ok(Outcome::Keep)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `Sec-WebSocket-Accept` for the request's `Sec-WebSocket-Key`, if it has one.
fn accept_key(request: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(request).ok()?;
    let key = text.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim())
    })?;
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(WS_GUID.as_bytes());
    Some(STANDARD.encode(sha1.digest().bytes()))
}

fn main() -> io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned())
        .parse()
        .map_err(|e| io::Error::new(ErrorKind::InvalidInput, format!("bad address: {e}")))?;
    let mut listener = TcpListener::bind(addr)?;
    let mut poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "listening on {}", listener.local_addr()?)?;
        out.flush()?;
    }

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; READ_CHUNK];

    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let slot = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            if poll
                                .registry()
                                .register(
                                    &mut stream,
                                    Token(slot),
                                    Interest::READABLE | Interest::WRITABLE,
                                )
                                .is_err()
                            {
                                free.push(slot);
                                continue;
                            }
                            conns[slot] = Some(Conn {
                                stream,
                                phase: Phase::Detect(Vec::new()),
                                pending: Vec::new(),
                                pending_off: 0,
                                read_paused: false,
                                eof: false,
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        // EMFILE and the like: drop this round, try again on the next event.
                        Err(_) => break,
                    }
                }
                continue;
            }
            let slot = event.token().0;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else { continue };
            let mut close = false;
            if event.is_writable() {
                close = !matches!(conn.on_writable(&mut buf), Ok(Outcome::Keep));
            }
            if !close
                && (event.is_readable() || event.is_read_closed() || event.is_error())
                && !conn.read_paused
            {
                let hup = event.is_read_closed() || event.is_error();
                close = !matches!(conn.on_readable(&mut buf, hup), Ok(Outcome::Keep));
            }
            if close {
                if let Some(mut conn) = conns[slot].take() {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
                free.push(slot);
            }
        }
    }
}
