//! `connrate`: connect, upgrade, close handshake, wait for the server's FIN, close; C at once.
//! Over TLS, a full TLS 1.3 handshake first (no resumption), all of it through [`Stream`].

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::stream::{Stream, Tls};
use crate::sys::{Cpu, CpuMeter};
use crate::ws;

const SLOT_BITS: usize = 20;
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Connecting,
    Upgrading,
    Closing,
    AwaitEof,
}

struct Slot {
    sock: Option<Stream>,
    generation: usize,
    st: St,
    buf: Vec<u8>,
    len: usize,
    deadline: Instant,
}

pub struct Stats {
    pub completed: u64,
    pub failed: u64,
    /// Completions where the server closed TCP without a TLS close_notify first.
    pub no_close_notify: u64,
    /// The TLS version, suite and group of the first completion.
    pub tls_desc: Option<String>,
    pub errors: Vec<String>,
}

struct Rate {
    poll: Poll,
    addr: SocketAddr,
    tls: Option<Tls>,
    raw: bool,
    request: Vec<u8>,
    close: Vec<u8>,
    accept: String,
    slots: Vec<Slot>,
    stats: Stats,
}

impl Rate {
    fn start(&mut self, i: usize) {
        let s = &mut self.slots[i];
        s.generation = (s.generation + 1) & ((1 << (usize::BITS as usize - SLOT_BITS - 1)) - 1);
        s.len = 0;
        s.st = St::Connecting;
        s.deadline = Instant::now() + STEP_TIMEOUT;
        let token = Token(s.generation << SLOT_BITS | i);
        let mut sock = match Stream::connect(self.addr, self.tls.as_ref()) {
            Ok(sock) => sock,
            Err(e) => return self.fail(i, format!("connect: {e}")),
        };
        // On loopback the handshake is usually done when connect returns: the request goes
        // out at once, and only the answer is waited for. (No TCP_NODELAY: Nagle holds a small
        // write back only while data is unacknowledged, and the 101 acknowledges the request
        // before the close frame is written.)
        let interest = match sock.write(&self.request) {
            // Over TLS the request waits in the session until the handshake is done, and the
            // handshake needs writable events too.
            Ok(n) if n == self.request.len() && sock.is_tls() => {
                s.st = St::Upgrading;
                Interest::READABLE | Interest::WRITABLE
            }
            Ok(n) if n == self.request.len() => {
                s.st = St::Upgrading;
                Interest::READABLE
            }
            Ok(n) => return self.fail(i, format!("short write ({n} of {})", self.request.len())),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => Interest::READABLE | Interest::WRITABLE,
            Err(e) => return self.fail(i, format!("connect: {e}")),
        };
        match self.poll.registry().register(sock.tcp_mut(), token, interest) {
            Ok(()) => self.slots[i].sock = Some(sock),
            Err(e) => self.fail(i, format!("register: {e}")),
        }
    }

    fn fail(&mut self, i: usize, e: String) {
        let s = &mut self.slots[i];
        // Closing the socket takes it out of the poll.
        s.sock = None;
        self.stats.failed += 1;
        if self.stats.errors.len() < 5 {
            self.stats.errors.push(format!("{e} (state {:?})", s.st));
        }
        s.deadline = Instant::now() + Duration::from_millis(10); // restart soon, not in a hot loop
    }

    fn succeed(&mut self, i: usize) {
        if let Some(sock) = self.slots[i].sock.take() {
            self.stats.no_close_notify += u64::from(sock.no_close_notify());
            if self.stats.tls_desc.is_none() {
                self.stats.tls_desc = sock.describe();
            }
        }
        self.stats.completed += 1;
        self.start(i);
    }

    /// Drives slot `i` as far as it goes; `Err` fails the attempt, `Ok(true)` completed it.
    /// `hup`: the event said the server's side is closed (so a short read is not the end).
    fn drive(&mut self, i: usize, hup: bool) -> Result<bool, String> {
        let raw = self.raw;
        let s = &mut self.slots[i];
        let Some(sock) = s.sock.as_mut() else { return Ok(false) };
        if s.st == St::Connecting {
            // A failed connect shows here as the write's error.
            match sock.write(&self.request) {
                Ok(n) if n == self.request.len() => {}
                Ok(n) => return Err(format!("short write ({n} of {})", self.request.len())),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => return Ok(false),
                Err(e) => return Err(format!("connect: {e}")),
            }
            s.st = St::Upgrading;
        }
        // TLS records the socket did not take before (the rest waits for a writable event).
        match sock.flush() {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => {}
            Err(e) => return Err(format!("TLS write: {e}")),
        }
        let short_read_drains = sock.short_read_drains();
        let mut drained = false;
        loop {
            if s.len == s.buf.len() {
                return Err("too many bytes from the server".into());
            }
            if drained {
                // The last read was short: nothing more had arrived (edge-triggered: what
                // comes later is a new event), unless the event said the server closed.
                return Ok(false);
            }
            let room = s.buf.len() - s.len;
            match sock.read(&mut s.buf[s.len..]) {
                Ok(0) => {
                    return if s.st == St::AwaitEof { Ok(true) } else { Err("EOF before the close handshake was done".into()) };
                }
                Ok(n) => {
                    s.len += n;
                    drained = n < room && !hup && short_read_drains;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {e}")),
            }
            if s.st == St::Upgrading {
                let Some(n) = ws::head_end(&s.buf[..s.len]) else { continue };
                ws::check_response(&s.buf[..n], &self.accept)?;
                s.buf.copy_within(n..s.len, 0);
                s.len -= n;
                write_all_now(sock, &self.close)?;
                s.st = St::Closing;
            }
            if s.st == St::Closing {
                let Some(h) = ws::parse_header(&s.buf[..s.len])? else { continue };
                let total = h.header_len + h.payload_len;
                if s.len < total {
                    continue;
                }
                if h.opcode != ws::OP_CLOSE {
                    return Err(format!("expected a close frame, got opcode {}", h.opcode));
                }
                if h.mask.is_some() != raw {
                    return Err(format!("close frame masked: {} (raw mode: {raw})", h.mask.is_some()));
                }
                let mut p = s.buf[h.header_len..total].to_vec();
                if let Some(k) = h.mask {
                    ws::apply_mask(&mut p, k, 0);
                }
                if p.len() < 2 || u16::from_be_bytes([p[0], p[1]]) != 1000 {
                    return Err(format!("server close payload {p:?}, expected code 1000"));
                }
                if s.len > total {
                    return Err("bytes after the close frame".into());
                }
                s.len = 0;
                if raw {
                    // The raw echo server never closes: we do.
                    return Ok(true);
                }
                s.st = St::AwaitEof;
            } else if s.st == St::AwaitEof && s.len > 0 {
                return Err("bytes after the close frame".into());
            }
        }
    }
}

fn write_all_now(sock: &mut Stream, data: &[u8]) -> Result<(), String> {
    match sock.write(data) {
        Ok(n) if n == data.len() => Ok(()),
        Ok(n) => Err(format!("short write ({n} of {})", data.len())),
        Err(e) => Err(format!("write: {e}")),
    }
}

/// Runs for `warmup + duration`; returns the completions inside the measurement window and the
/// totals (for the failure rate).
#[allow(clippy::too_many_arguments)]
pub fn run(addr: SocketAddr, host: &str, path: &str, tls: Option<Tls>, raw: bool, concurrency: usize, warmup: Duration, duration: Duration, pids: &[u32]) -> Result<(u64, Duration, Stats, Cpu), String> {
    let mut r = Rate {
        poll: Poll::new().map_err(|e| format!("poll: {e}"))?,
        addr,
        tls,
        raw,
        request: ws::request(host, path),
        close: ws::encode_frame(ws::OP_CLOSE, &1000u16.to_be_bytes(), Some(ws::MASK)),
        accept: ws::accept_key(ws::KEY),
        slots: Vec::new(),
        stats: Stats { completed: 0, failed: 0, no_close_notify: 0, tls_desc: None, errors: Vec::new() },
    };
    let now = Instant::now();
    for i in 0..concurrency.min(1 << SLOT_BITS) {
        r.slots.push(Slot { sock: None, generation: 0, st: St::Connecting, buf: vec![0; 2048], len: 0, deadline: now });
        r.start(i);
    }
    let mut events = Events::with_capacity(1024);
    let t0 = Instant::now();
    let t_measure = t0 + warmup;
    let t_end = t_measure + duration;
    let mut at_start: Option<(u64, Instant)> = None;
    let mut meter: Option<CpuMeter> = None;
    let mut last_scan = Instant::now();
    loop {
        let now = Instant::now();
        if now >= t_end {
            break;
        }
        if at_start.is_none() && now >= t_measure {
            at_start = Some((r.stats.completed, now));
            meter = Some(CpuMeter::start(pids));
        }
        let until = if at_start.is_none() { t_measure } else { t_end };
        let timeout = (until - now).min(Duration::from_millis(20));
        match r.poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        for ev in events.iter() {
            let t = ev.token().0;
            let i = t & ((1 << SLOT_BITS) - 1);
            if i >= r.slots.len() || r.slots[i].generation != t >> SLOT_BITS || r.slots[i].sock.is_none() {
                continue;
            }
            match r.drive(i, ev.is_read_closed()) {
                Ok(true) => r.succeed(i),
                Ok(false) => {}
                Err(e) => r.fail(i, e),
            }
        }
        let now = Instant::now();
        if now - last_scan >= Duration::from_millis(10) {
            last_scan = now;
            for i in 0..r.slots.len() {
                if r.slots[i].deadline <= now {
                    if r.slots[i].sock.is_some() {
                        let st = r.slots[i].st;
                        r.fail(i, format!("timed out after {STEP_TIMEOUT:?} in state {st:?}"));
                    }
                    r.start(i);
                }
            }
        }
        if r.stats.failed > 1000 && r.stats.failed > r.stats.completed {
            return Err(format!("giving up: {} failures, {} completions; first errors: {:?}", r.stats.failed, r.stats.completed, r.stats.errors));
        }
    }
    let end = Instant::now();
    let cpu = meter.map_or((None, 0.0, Vec::new()), |m| m.stop());
    let (c0, m0) = at_start.unwrap_or((0, t_measure));
    Ok((r.stats.completed - c0, end - m0, r.stats, cpu))
}
