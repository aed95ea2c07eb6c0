//! `fanout`: one publisher, N subscribers on one channel; deliveries/s and delivery latency.
//!
//! Two servers are understood:
//!
//! - `weir`: every connection goes to the hub (`/ws`), reads the `connected` event; a subscriber
//!   sends `{"id":1,"method":"subscribe","params":{"channel":"bench"}}` and waits for the ok
//!   answer (whose `seq` is the channel's latest). The publisher sends
//!   `{"id":N,"method":"publish","params":{"channel":"bench","data":DATA}}`; its answers are its
//!   acknowledgements (checked: in order, `"ok":true`).
//! - `uws` (benches/peers/uws-pubsub.js): subscribers connect to the URL's path (every
//!   connection is subscribed to `bench` on open); the publisher connects to `/pub` and sends
//!   DATA itself, which the server publishes verbatim. The publisher is subscribed too: its own
//!   copy is its acknowledgement (checked: in order).
//!
//! DATA is `{"t":T,"n":N,"p":"xxx.."}`: T the send time in ns since the generator started, N the
//! publish number (0, 1, ...), both right-aligned in fixed-width fields padded with spaces (JSON
//! whitespace), so the masked frame is built once and only the digits are patched per publish.
//!
//! Every subscriber checks every event: a text frame, `n` exactly the next one (no gap,
//! duplicate or reordering), the bytes after `n` exactly as sent, and with weir the channel's
//! `seq` exactly the next one too. Any violation fails the run.
//!
//! Flow control: at most `window` publishes are outstanding, counted until **every** subscriber
//! has received it (and the publisher's acknowledgement came back). With `rate` 0 the publisher
//! sends whenever the window allows (closed loop: as fast as the server keeps up); with `rate`
//! R it sends at R/s, still within the window (so a server that cannot keep up shows as
//! publishes/s below R, never as unbounded queues).

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::ws;

pub const CHANNEL: &str = "bench";
/// Width of the `t` field (ns since start: 115 days).
const T_WIDTH: usize = 16;
/// Width of the `n` and `id` fields.
const N_WIDTH: usize = 12;
/// Bytes of DATA besides the padding: `{"t":` T `,"n":` N `,"p":"` `"}`.
pub const DATA_FIXED: usize = 5 + T_WIDTH + 5 + N_WIDTH + 6 + 2;
/// Reads per connection per turn before the others are served.
const READ_BUDGET: usize = 4;
/// Free space kept in the shared read buffer after a connection's carried-over bytes.
const MIN_READ: usize = 64 * 1024;
/// Largest frame accepted from the server.
const MAX_FRAME: usize = 16 << 20;
const EVENT_PREFIX: &[u8] = b"{\"event\":\"message\",\"channel\":\"bench\",\"seq\":";
const EPOCH: &[u8] = b",\"epoch\":\"";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Weir,
    Uws,
}

pub struct Config {
    pub addr: SocketAddr,
    pub host: String,
    /// Path of the subscribers (and, with weir, of the publisher).
    pub path: String,
    pub mode: Mode,
    pub subs: usize,
    /// Publishes per second; 0 = as fast as the window allows.
    pub rate: f64,
    pub window: usize,
    /// Bytes of DATA (at least DATA_FIXED).
    pub size: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub open_concurrency: usize,
    /// The servers' pids: their CPU time over the measured window is reported, summed.
    pub pids: Vec<u32>,
    /// Redis's pid (for the servers that fan out through it), reported apart.
    pub redis_pid: Option<u32>,
}

pub struct Report {
    pub deliveries_per_sec: f64,
    pub publishes_per_sec: f64,
    pub seconds: f64,
    pub open_seconds: f64,
    /// Latencies (ns) of the sampled subscribers inside the measurement window, sorted.
    pub latencies_ns: Vec<u64>,
    pub sampled_subs: usize,
    pub published: u64,
    pub delivered: u64,
    pub pings: u64,
    pub frame_len: usize,
    /// CPU used in the measured window, as shares of one CPU: the servers' (summed; `None`
    /// without pids or when one could not be read), Redis's, and the generator's own.
    pub server_cpu: Option<f64>,
    pub redis_cpu: Option<f64>,
    pub loadgen_cpu: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Connecting,
    /// Upgrade request sent; waiting for the 101.
    Upgrading,
    /// weir: waiting for the `connected` event.
    Welcome,
    /// weir subscriber: waiting for the subscribe answer.
    Subscribing,
    Ready,
}

struct Conn {
    sock: TcpStream,
    phase: Phase,
    is_pub: bool,
    sampled: bool,
    readable: bool,
    writable: bool,
    in_again: bool,
    /// Bytes of an incomplete frame (or response head) left over from the last read.
    carry: Vec<u8>,
    out: Vec<u8>,
    opos: usize,
    /// Subscriber: the next `n` expected. Publisher: unused (acks are in `State::acked`).
    next_n: u64,
    /// weir subscriber: the next channel `seq` expected.
    next_seq: u64,
}

/// The publish frame, masked once; per publish only the digits of id, t and n are patched.
struct PubFrame {
    frame: Vec<u8>,
    header_len: usize,
    /// Payload offsets of the id (weir only), t and n fields.
    id_at: Option<usize>,
    t_at: usize,
    n_at: usize,
    /// What follows the n digits in DATA: `,"p":"xx.."}`.
    tail: Vec<u8>,
}

impl PubFrame {
    fn new(mode: Mode, size: usize) -> PubFrame {
        let pad = size.saturating_sub(DATA_FIXED);
        let tail = format!(",\"p\":\"{}\"}}", "x".repeat(pad)).into_bytes();
        let data = format!("{{\"t\":{:>T_WIDTH$},\"n\":{:>N_WIDTH$}{}", 0, 0, String::from_utf8_lossy(&tail));
        let (payload, id_at, data_at) = match mode {
            Mode::Weir => {
                let head = format!("{{\"id\":{:>N_WIDTH$},\"method\":\"publish\",\"params\":{{\"channel\":\"{CHANNEL}\",\"data\":", 0);
                let data_at = head.len();
                (format!("{head}{data}}}}}"), Some(6), data_at)
            }
            Mode::Uws => (data, None, 0),
        };
        let frame = ws::encode_frame(ws::OP_TEXT, payload.as_bytes(), Some(ws::MASK));
        let header_len = frame.len() - payload.len();
        PubFrame { frame, header_len, id_at, t_at: data_at + 5, n_at: data_at + 5 + T_WIDTH + 5, tail }
    }

    /// Writes `v` right-aligned in `width` bytes at payload offset `at` of the frame at `f`
    /// (leading spaces; the caller keeps `v` below 10^width).
    fn patch(&self, f: &mut [u8], at: usize, width: usize, mut v: u64) {
        let slot = &mut f[self.header_len + at..self.header_len + at + width];
        let mut i = width;
        loop {
            i -= 1;
            slot[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 || i == 0 {
                break;
            }
        }
        slot[..i].fill(b' ');
        ws::apply_mask(slot, ws::MASK, at);
    }

    fn append(&self, n: u64, t: u64, out: &mut Vec<u8>) {
        let s = out.len();
        out.extend_from_slice(&self.frame);
        let f = &mut out[s..];
        if let Some(at) = self.id_at {
            self.patch(f, at, N_WIDTH, n);
        }
        self.patch(f, self.t_at, T_WIDTH, t);
        self.patch(f, self.n_at, N_WIDTH, n);
    }
}

struct State {
    mode: Mode,
    subs: usize,
    window: usize,
    t0: Instant,
    accept: String,
    subscribe: Vec<u8>,
    tpl: PubFrame,
    /// Connections past their handshake (and, for weir subscribers, their subscribe answer).
    ready: usize,
    publishing: bool,
    rate: f64,
    next_due: Instant,
    /// Publishes sent, acknowledged, and received by every subscriber (each a prefix 0..k).
    sent: u64,
    acked: u64,
    done: u64,
    /// counts[n % window]: subscribers that have received publish n (for n in done..sent).
    counts: Vec<u32>,
    delivered: u64,
    recording: bool,
    lat: Vec<u64>,
    lat_cap: usize,
    pings: u64,
}

impl State {
    fn new(mode: Mode, subs: usize, window: usize, rate: f64, size: usize, t0: Instant) -> State {
        let subscribe = format!("{{\"id\":1,\"method\":\"subscribe\",\"params\":{{\"channel\":\"{CHANNEL}\"}}}}");
        State {
            mode,
            subs,
            window,
            t0,
            accept: ws::accept_key(ws::KEY),
            subscribe: ws::encode_frame(ws::OP_TEXT, subscribe.as_bytes(), Some(ws::MASK)),
            tpl: PubFrame::new(mode, size),
            ready: 0,
            publishing: false,
            rate,
            next_due: t0,
            sent: 0,
            acked: 0,
            done: 0,
            counts: vec![0; window],
            delivered: 0,
            recording: false,
            lat: Vec::new(),
            lat_cap: 20_000_000,
            pings: 0,
        }
    }
}

pub struct Fanout {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    st: State,
    buf: Vec<u8>,
    again: Vec<usize>,
    addr: SocketAddr,
    sub_request: Vec<u8>,
    pub_request: Vec<u8>,
    sample_stride: usize,
}

impl Fanout {
    fn connect(&mut self, is_pub: bool) -> Result<(), String> {
        let idx = self.conns.len();
        let mut sock = TcpStream::connect(self.addr).map_err(|e| format!("connect #{idx}: {e}"))?;
        let _ = sock.set_nodelay(true);
        self.poll
            .registry()
            .register(&mut sock, Token(idx), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| format!("register #{idx}: {e}"))?;
        self.conns.push(Conn {
            sock,
            phase: Phase::Connecting,
            is_pub,
            sampled: !is_pub && idx.is_multiple_of(self.sample_stride),
            readable: false,
            writable: false,
            in_again: false,
            carry: Vec::new(),
            out: if is_pub { self.pub_request.clone() } else { self.sub_request.clone() },
            opos: 0,
            next_n: 0,
            next_seq: 0,
        });
        Ok(())
    }

    fn pub_idx(&self) -> usize {
        self.st.subs
    }

    /// Sends what the window (and the rate) allow.
    fn pump(&mut self) -> Result<(), String> {
        if !self.st.publishing {
            return Ok(());
        }
        let pi = self.pub_idx();
        let st = &mut self.st;
        let p = &mut self.conns[pi];
        if p.phase != Phase::Ready {
            return Ok(());
        }
        let now = Instant::now();
        let w = st.window as u64;
        let t = (now - st.t0).as_nanos() as u64;
        let interval = if st.rate > 0.0 { Duration::from_secs_f64(1.0 / st.rate) } else { Duration::ZERO };
        let mut any = false;
        while st.sent < st.done + w && st.sent < st.acked + w {
            if st.rate > 0.0 {
                if st.next_due > now {
                    break;
                }
                st.next_due += interval;
            }
            if st.sent >= 10u64.pow(N_WIDTH as u32) || t >= 10u64.pow(T_WIDTH as u32) {
                return Err("publish number or send time overflows its field".into());
            }
            st.tpl.append(st.sent, t, &mut p.out);
            st.sent += 1;
            any = true;
        }
        if any {
            flush(p).map_err(|e| format!("publisher: {e}"))?;
        }
        Ok(())
    }

    /// One poll and everything it made ready; waits at most `timeout`.
    fn turn(&mut self, timeout: Duration) -> Result<(), String> {
        self.pump()?;
        let mut timeout = if self.again.is_empty() { timeout } else { Duration::ZERO };
        if self.st.publishing && self.st.rate > 0.0 {
            timeout = timeout.min(self.st.next_due.saturating_duration_since(Instant::now()));
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(format!("poll: {e}")),
        }
        let mut ready: Vec<usize> = std::mem::take(&mut self.again);
        for c in &ready {
            self.conns[*c].in_again = false;
        }
        for ev in self.events.iter() {
            let i = ev.token().0;
            let c = &mut self.conns[i];
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                c.readable = true;
            }
            if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                c.writable = true;
            }
            ready.push(i);
        }
        for i in ready {
            let c = &mut self.conns[i];
            service(c, &mut self.st, &mut self.buf, i).map_err(|e| {
                let who = if c.is_pub { "publisher".to_string() } else { format!("subscriber #{i}") };
                format!("{who}: {e}")
            })?;
            if c.readable && !c.in_again {
                c.in_again = true;
                self.again.push(i);
            }
        }
        self.pump()
    }

    fn run_until(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            self.turn((deadline - now).min(Duration::from_millis(100)))?;
        }
    }

    fn run_while(&mut self, limit: Instant, done: impl Fn(&Fanout) -> bool) -> Result<bool, String> {
        loop {
            if done(self) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= limit {
                return Ok(false);
            }
            self.turn((limit - now).min(Duration::from_millis(50)))?;
        }
    }
}

fn service(c: &mut Conn, st: &mut State, buf: &mut Vec<u8>, idx: usize) -> Result<(), String> {
    if c.phase == Phase::Connecting {
        if !(c.readable || c.writable) {
            return Ok(());
        }
        if let Some(e) = c.sock.take_error().map_err(|e| format!("connect: {e}"))? {
            return Err(format!("connect: {e}"));
        }
        match c.sock.peer_addr() {
            Ok(_) => c.phase = Phase::Upgrading,
            Err(e) if e.kind() == ErrorKind::NotConnected => {
                c.readable = false;
                c.writable = false;
                return Ok(());
            }
            Err(e) => return Err(format!("connect: {e}")),
        }
    }
    flush(c)?;
    let mut reads = 0;
    while c.readable && reads < READ_BUDGET {
        reads += 1;
        let len0 = c.carry.len();
        if buf.len() < len0 + MIN_READ {
            buf.resize(len0 + MIN_READ, 0);
        }
        buf[..len0].copy_from_slice(&c.carry);
        let space = buf.len() - len0;
        match c.sock.read(&mut buf[len0..]) {
            Ok(0) => {
                return Err(format!("server closed the connection (phase {:?}, {} of {} publishes received)", c.phase, c.next_n, st.sent));
            }
            Ok(n) => {
                // A short read drained the socket: with edge-triggered epoll, more data (or the
                // FIN) raises a new event.
                if n < space {
                    c.readable = false;
                }
                c.carry.clear();
                let len = len0 + n;
                let used = process(c, st, &buf[..len], idx)?;
                c.carry.extend_from_slice(&buf[used..len]);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => c.readable = false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    flush(c)
}

/// Handles every complete frame (or the response head) in `data`; returns the bytes used.
fn process(c: &mut Conn, st: &mut State, data: &[u8], idx: usize) -> Result<usize, String> {
    let mut pos = 0;
    while pos < data.len() {
        let avail = &data[pos..];
        if c.phase == Phase::Upgrading {
            let Some(n) = ws::head_end(avail) else {
                if avail.len() > ws::MAX_HEAD {
                    return Err("response head too long".into());
                }
                break;
            };
            ws::check_response(&avail[..n], &st.accept)?;
            pos += n;
            match st.mode {
                Mode::Weir => c.phase = Phase::Welcome,
                Mode::Uws => {
                    c.phase = Phase::Ready;
                    st.ready += 1;
                }
            }
            continue;
        }
        let Some(h) = ws::parse_header(avail)? else { break };
        if h.payload_len > MAX_FRAME {
            return Err(format!("frame of {} bytes from the server", h.payload_len));
        }
        let total = h.header_len + h.payload_len;
        if avail.len() < total {
            break;
        }
        if h.mask.is_some() {
            return Err("masked frame from the server".into());
        }
        let p = &avail[h.header_len..total];
        match h.opcode {
            ws::OP_TEXT if h.fin => on_text(c, st, p, idx)?,
            ws::OP_TEXT | ws::OP_BINARY | ws::OP_CONT => {
                return Err(format!("unexpected frame (opcode {}, fin {}, {} bytes); fragmented messages are not supported", h.opcode, h.fin, p.len()));
            }
            ws::OP_PING => {
                st.pings += 1;
                c.out.extend_from_slice(&ws::encode_frame(ws::OP_PONG, p, Some(ws::MASK)));
            }
            ws::OP_PONG => {}
            ws::OP_CLOSE => {
                let code = if p.len() >= 2 { u16::from_be_bytes([p[0], p[1]]) } else { 1005 };
                return Err(format!("server sent close (code {code}, reason {:?})", String::from_utf8_lossy(&p[p.len().min(2)..])));
            }
            op => return Err(format!("unknown opcode {op}")),
        }
        pos += total;
    }
    Ok(pos)
}

fn show(p: &[u8]) -> String {
    let s = String::from_utf8_lossy(&p[..p.len().min(300)]).into_owned();
    if p.len() > 300 { s + "..." } else { s }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The unsigned integer at `p[at..]` after optional spaces; (value, end offset).
fn number(p: &[u8], mut at: usize) -> Option<(u64, usize)> {
    while at < p.len() && p[at] == b' ' {
        at += 1;
    }
    let start = at;
    let mut v: u64 = 0;
    while at < p.len() && p[at].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add((p[at] - b'0') as u64)?;
        at += 1;
    }
    (at > start).then_some((v, at))
}

/// Parses DATA at the start of `d`: (t, n, end offset), checking every byte after `n`.
fn parse_data(d: &[u8], tail: &[u8]) -> Result<(u64, u64, usize), String> {
    let bad = || format!("malformed data {:?}", show(d));
    if !d.starts_with(b"{\"t\":") {
        return Err(bad());
    }
    let (t, k) = number(d, 5).ok_or_else(bad)?;
    if !d[k..].starts_with(b",\"n\":") {
        return Err(bad());
    }
    let (n, k) = number(d, k + 5).ok_or_else(bad)?;
    if !d[k..].starts_with(tail) {
        return Err(format!("corrupted data after n={n}: {:?}", show(d)));
    }
    Ok((t, n, k + tail.len()))
}

fn on_text(c: &mut Conn, st: &mut State, p: &[u8], idx: usize) -> Result<(), String> {
    match c.phase {
        Phase::Welcome => {
            if !p.starts_with(b"{\"event\":\"connected\"") {
                return Err(format!("expected the connected event, got {:?}", show(p)));
            }
            if find(p, b"\"auth_required\":false").is_none() {
                return Err(format!("the hub requires authentication: {:?}", show(p)));
            }
            if c.is_pub {
                c.phase = Phase::Ready;
                st.ready += 1;
            } else {
                c.out.extend_from_slice(&st.subscribe);
                c.phase = Phase::Subscribing;
            }
            Ok(())
        }
        Phase::Subscribing => {
            if !p.starts_with(b"{\"id\":1,\"ok\":true,") {
                return Err(format!("subscribe failed: {:?}", show(p)));
            }
            let at = find(p, b"\"seq\":").ok_or_else(|| format!("subscribe answer without seq: {:?}", show(p)))?;
            let (seq, _) = number(p, at + 6).ok_or_else(|| format!("bad seq in {:?}", show(p)))?;
            c.next_seq = seq + 1;
            c.phase = Phase::Ready;
            st.ready += 1;
            Ok(())
        }
        Phase::Ready if c.is_pub => on_ack(st, p),
        Phase::Ready => on_delivery(c, st, p, idx),
        ph => Err(format!("text frame in phase {ph:?}")),
    }
}

/// The publisher's acknowledgement of publish `st.acked`: weir's answer, or (uws) its own copy.
fn on_ack(st: &mut State, p: &[u8]) -> Result<(), String> {
    let n = match st.mode {
        Mode::Weir => {
            if !p.starts_with(b"{\"id\":") {
                return Err(format!("unexpected frame: {:?}", show(p)));
            }
            let (id, k) = number(p, 6).ok_or_else(|| format!("bad answer {:?}", show(p)))?;
            if !p[k..].starts_with(b",\"ok\":true") {
                return Err(format!("publish {id} failed: {:?}", show(p)));
            }
            id
        }
        Mode::Uws => {
            let (_, n, end) = parse_data(p, &st.tpl.tail)?;
            if end != p.len() {
                return Err(format!("own message has trailing bytes: {:?}", show(p)));
            }
            n
        }
    };
    if n != st.acked || n >= st.sent {
        return Err(format!("acknowledgement of publish {n}, expected {} ({} sent)", st.acked, st.sent));
    }
    st.acked += 1;
    Ok(())
}

fn on_delivery(c: &mut Conn, st: &mut State, p: &[u8], idx: usize) -> Result<(), String> {
    let (seq, d) = match st.mode {
        Mode::Weir => {
            if !p.starts_with(EVENT_PREFIX) {
                return Err(format!("expected a message event on {CHANNEL:?}, got {:?}", show(p)));
            }
            let (seq, mut k) = number(p, EVENT_PREFIX.len()).ok_or_else(|| format!("bad seq in {:?}", show(p)))?;
            // With --redis the channel's epoch follows seq: `,"epoch":"HEX"`.
            if p[k..].starts_with(EPOCH) {
                let end = p[k + EPOCH.len()..].iter().position(|b| *b == b'"').ok_or_else(|| format!("unterminated epoch in {:?}", show(p)))?;
                k += EPOCH.len() + end + 1;
            }
            if !p[k..].starts_with(b",\"data\":") {
                return Err(format!("expected data after seq: {:?}", show(p)));
            }
            (Some(seq), &p[k + 8..])
        }
        Mode::Uws => (None, p),
    };
    let (t, n, end) = parse_data(d, &st.tpl.tail)?;
    if seq.is_none() && end != d.len() {
        return Err(format!("message has trailing bytes: {:?}", show(p)));
    }
    if n != c.next_n {
        let what = if n < c.next_n { "duplicated or reordered" } else { "gap: lost or reordered" };
        return Err(format!("{what}: got n={n}, expected n={}", c.next_n));
    }
    if n >= st.sent {
        return Err(format!("got n={n}, never published ({} sent)", st.sent));
    }
    if let Some(seq) = seq {
        if seq != c.next_seq {
            return Err(format!("channel seq {seq} for n={n}, expected seq {}", c.next_seq));
        }
        c.next_seq += 1;
    }
    c.next_n += 1;
    st.delivered += 1;
    let w = st.window as u64;
    st.counts[(n % w) as usize] += 1;
    if n == st.done {
        while st.done < st.sent && st.counts[(st.done % w) as usize] as usize == st.subs {
            st.counts[(st.done % w) as usize] = 0;
            st.done += 1;
        }
    }
    if c.sampled && st.recording && st.lat.len() < st.lat_cap {
        let now = st.t0.elapsed().as_nanos() as u64;
        if t > now {
            return Err(format!("send time {t} ns is in the future (now {now} ns; subscriber #{idx})"));
        }
        st.lat.push(now - t);
    }
    Ok(())
}

fn flush(c: &mut Conn) -> Result<(), String> {
    if c.phase == Phase::Connecting || !c.writable {
        return Ok(());
    }
    while c.opos < c.out.len() {
        match c.sock.write(&c.out[c.opos..]) {
            Ok(0) => return Err("write returned 0".into()),
            Ok(n) => c.opos += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                c.writable = false;
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    c.out.clear();
    c.opos = 0;
    Ok(())
}

pub fn run(cfg: &Config) -> Result<Report, String> {
    if cfg.size < DATA_FIXED {
        return Err(format!("--size at least {DATA_FIXED} for fanout (the data's t and n fields)"));
    }
    let pub_path = match cfg.mode {
        Mode::Weir => cfg.path.clone(),
        Mode::Uws => "/pub".to_string(),
    };
    let t0 = Instant::now();
    let mut f = Fanout {
        poll: Poll::new().map_err(|e| format!("poll: {e}"))?,
        events: Events::with_capacity(1024),
        conns: Vec::with_capacity(cfg.subs + 1),
        st: State::new(cfg.mode, cfg.subs, cfg.window, cfg.rate, cfg.size, t0),
        buf: vec![0; 256 * 1024],
        again: Vec::new(),
        addr: cfg.addr,
        sub_request: ws::request(&cfg.host, &cfg.path),
        pub_request: ws::request(&cfg.host, &pub_path),
        sample_stride: (cfg.subs / 100).max(1),
    };
    // Open every subscriber (at most `open_concurrency` still handshaking), then the publisher.
    let limit = Duration::from_secs(120);
    let deadline = Instant::now() + limit;
    let k = cfg.open_concurrency.max(1);
    let t_open = Instant::now();
    let (mut last_ready, mut last_progress) = (0, t_open);
    while f.st.ready < cfg.subs + 1 {
        while f.conns.len() < cfg.subs && f.conns.len() - f.st.ready < k {
            f.connect(false)?;
        }
        if f.st.ready == cfg.subs && f.conns.len() == cfg.subs {
            f.connect(true)?;
        }
        let now = Instant::now();
        if f.st.ready != last_ready {
            (last_ready, last_progress) = (f.st.ready, now);
        }
        if now >= deadline || now - last_progress >= Duration::from_secs(10) {
            let mut phases: Vec<(Phase, usize)> = Vec::new();
            for c in f.conns.iter().filter(|c| c.phase != Phase::Ready) {
                match phases.iter_mut().find(|(p, _)| *p == c.phase) {
                    Some((_, n)) => *n += 1,
                    None => phases.push((c.phase, 1)),
                }
            }
            return Err(format!(
                "only {} of {} connections (subscribers and the publisher) ready after {:.0?} (no progress for {:.0?}); waiting: {phases:?}",
                f.st.ready,
                cfg.subs + 1,
                now - t_open,
                now - last_progress
            ));
        }
        f.turn(Duration::from_millis(20))?;
    }
    let open_seconds = t_open.elapsed().as_secs_f64();
    f.st.publishing = true;
    f.st.next_due = Instant::now();
    f.run_until(Instant::now() + cfg.warmup)?;
    let cpu = |pids: &[u32]| -> Option<f64> { pids.iter().map(|p| crate::sys::cpu_seconds(*p).ok()).sum() };
    let redis_pids: Vec<u32> = cfg.redis_pid.into_iter().collect();
    let (server0, redis0, self0) = (cpu(&cfg.pids), cpu(&redis_pids), crate::sys::self_cpu_seconds());
    let (d0, s0, m0) = (f.st.delivered, f.st.sent, Instant::now());
    f.st.recording = true;
    f.run_until(m0 + cfg.duration)?;
    let (d1, s1, m1) = (f.st.delivered, f.st.sent, Instant::now());
    let wall = (m1 - m0).as_secs_f64();
    let share = |before: Option<f64>, after: Option<f64>| Some((after? - before?) / wall);
    let server_cpu = if cfg.pids.is_empty() { None } else { share(server0, cpu(&cfg.pids)) };
    let redis_cpu = if redis_pids.is_empty() { None } else { share(redis0, cpu(&redis_pids)) };
    let loadgen_cpu = (crate::sys::self_cpu_seconds() - self0) / wall;
    f.st.recording = false;
    f.st.publishing = false;
    // Drain: every publish must reach every subscriber, and be acknowledged.
    let drained = f.run_while(Instant::now() + Duration::from_secs(10), |f| f.st.done == f.st.sent && f.st.acked == f.st.sent)?;
    if !drained {
        let behind = f.conns[..cfg.subs].iter().enumerate().find(|(_, c)| c.next_n < f.st.sent);
        let who = match behind {
            Some((i, c)) => format!("; subscriber #{i} has {} of them", c.next_n),
            None => String::new(),
        };
        return Err(format!(
            "not drained within 10 s of the end: {} published, {} received by every subscriber, {} acknowledged{who}",
            f.st.sent, f.st.done, f.st.acked
        ));
    }
    if f.st.delivered != f.st.sent * cfg.subs as u64 {
        return Err(format!("{} deliveries counted, expected {} x {}", f.st.delivered, f.st.sent, cfg.subs));
    }
    let secs = (m1 - m0).as_secs_f64();
    let mut lat = std::mem::take(&mut f.st.lat);
    lat.sort_unstable();
    Ok(Report {
        deliveries_per_sec: (d1 - d0) as f64 / secs,
        publishes_per_sec: (s1 - s0) as f64 / secs,
        seconds: secs,
        open_seconds,
        latencies_ns: lat,
        sampled_subs: f.conns[..cfg.subs].iter().filter(|c| c.sampled).count(),
        published: f.st.sent,
        delivered: f.st.delivered,
        pings: f.st.pings,
        frame_len: f.st.tpl.frame.len(),
        server_cpu,
        redis_cpu,
        loadgen_cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmasked(pf: &PubFrame, n: u64, t: u64) -> String {
        let mut f = Vec::new();
        pf.append(n, t, &mut f);
        let h = ws::parse_header(&f).unwrap().unwrap();
        assert_eq!(h.header_len + h.payload_len, f.len());
        let mut p = f[h.header_len..].to_vec();
        ws::apply_mask(&mut p, h.mask.unwrap(), 0);
        String::from_utf8(p).unwrap()
    }

    #[test]
    fn publish_frames() {
        let pf = PubFrame::new(Mode::Uws, 64);
        let s = unmasked(&pf, 42, 1234567);
        assert_eq!(s.len(), 64);
        assert_eq!(s, format!("{{\"t\":{:>16},\"n\":{:>12},\"p\":\"{}\"}}", 1234567, 42, "x".repeat(18)));
        let (t, n, end) = parse_data(s.as_bytes(), &pf.tail).unwrap();
        assert_eq!((t, n, end), (1234567, 42, 64));
        // zero is written as "0", not as spaces only
        let s = unmasked(&pf, 0, 0);
        assert_eq!(parse_data(s.as_bytes(), &pf.tail).unwrap(), (0, 0, 64));

        let pw = PubFrame::new(Mode::Weir, 100);
        let s = unmasked(&pw, 7, 99);
        let data = format!("{{\"t\":{:>16},\"n\":{:>12},\"p\":\"{}\"}}", 99, 7, "x".repeat(54));
        assert_eq!(s, format!("{{\"id\":{:>12},\"method\":\"publish\",\"params\":{{\"channel\":\"bench\",\"data\":{data}}}}}", 7));
    }

    fn conn() -> (Conn, std::net::TcpListener) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let c = Conn {
            sock,
            phase: Phase::Ready,
            is_pub: false,
            sampled: true,
            readable: false,
            writable: false,
            in_again: false,
            carry: Vec::new(),
            out: Vec::new(),
            opos: 0,
            next_n: 0,
            next_seq: 11,
        };
        (c, l)
    }

    /// weir's event for publish `n` (sent at `t`) with channel seq `seq`.
    fn event(tail: &[u8], seq: u64, n: u64, t: u64) -> Vec<u8> {
        let data = format!("{{\"t\":{:>16},\"n\":{:>12}{}", t, n, String::from_utf8_lossy(tail));
        format!("{{\"event\":\"message\",\"channel\":\"bench\",\"seq\":{seq},\"data\":{data},\"from\":\"c-1\",\"ts\":1}}").into_bytes()
    }

    #[test]
    fn deliveries_are_checked_and_counted() {
        let mut st = State::new(Mode::Weir, 2, 4, 0.0, 64, Instant::now());
        st.sent = 4;
        st.recording = true;
        let tail = st.tpl.tail.clone();
        let (mut a, _la) = conn();
        let (mut b, _lb) = conn();
        for n in 0..3 {
            on_delivery(&mut a, &mut st, &event(&tail, 11 + n, n, 0), 0).unwrap();
        }
        assert_eq!((st.done, st.delivered, st.lat.len()), (0, 3, 3));
        on_delivery(&mut b, &mut st, &event(&tail, 11, 0, 0), 1).unwrap();
        on_delivery(&mut b, &mut st, &event(&tail, 12, 1, 0), 1).unwrap();
        assert_eq!(st.done, 2);
        // duplicate, gap, wrong seq, never published, corrupted data, another channel
        let e = on_delivery(&mut b, &mut st, &event(&tail, 12, 1, 0), 1).unwrap_err();
        assert!(e.contains("duplicated"), "{e}");
        let e = on_delivery(&mut b, &mut st, &event(&tail, 14, 3, 0), 1).unwrap_err();
        assert!(e.contains("gap"), "{e}");
        let e = on_delivery(&mut b, &mut st, &event(&tail, 99, 2, 0), 1).unwrap_err();
        assert!(e.contains("channel seq 99"), "{e}");
        let e = on_delivery(&mut a, &mut st, &event(&tail, 14, 3, 0), 0);
        assert!(e.is_ok());
        let e = on_delivery(&mut a, &mut st, &event(&tail, 15, 4, 0), 0).unwrap_err();
        assert!(e.contains("never published"), "{e}");
        let mut bad = event(&tail, 13, 2, 0);
        let i = bad.len() - 30;
        bad[i] = b'y';
        assert!(on_delivery(&mut b, &mut st, &bad, 1).unwrap_err().contains("corrupted"));
        let other = String::from_utf8(event(&tail, 13, 2, 0)).unwrap().replace("bench", "bexch");
        assert!(on_delivery(&mut b, &mut st, other.as_bytes(), 1).is_err());
        // weir with --redis: the channel's epoch between seq and data
        let with_epoch = String::from_utf8(event(&tail, 13, 2, 0)).unwrap().replace(",\"data\":", ",\"epoch\":\"c2c110d0b5be00bb\",\"data\":");
        let mut b2 = Conn { next_n: 2, next_seq: 13, ..conn().0 };
        on_delivery(&mut b2, &mut st, with_epoch.as_bytes(), 1).unwrap();
        assert_eq!((b2.next_n, b2.next_seq), (3, 14));
        st.counts[2] -= 1;
        st.delivered -= 1;
        // in order again: the window slot of n=2 completes, then n=3 (already received by a)
        on_delivery(&mut b, &mut st, &event(&tail, 13, 2, 0), 1).unwrap();
        on_delivery(&mut b, &mut st, &event(&tail, 14, 3, 0), 1).unwrap();
        assert_eq!((st.done, st.delivered), (4, 8));
    }

    #[test]
    fn acks_are_checked() {
        let mut st = State::new(Mode::Weir, 1, 4, 0.0, 64, Instant::now());
        st.sent = 2;
        on_ack(&mut st, b"{\"id\":0,\"ok\":true,\"result\":{\"seq\":5}}").unwrap();
        assert!(on_ack(&mut st, b"{\"id\":2,\"ok\":true,\"result\":{\"seq\":6}}").is_err());
        let e = on_ack(&mut st, b"{\"id\":1,\"ok\":false,\"error\":{\"code\":\"rate_limited\"}}").unwrap_err();
        assert!(e.contains("rate_limited"), "{e}");
        let mut su = State::new(Mode::Uws, 1, 4, 0.0, 64, Instant::now());
        su.sent = 1;
        let mut f = Vec::new();
        su.tpl.append(0, 7, &mut f);
        let h = ws::parse_header(&f).unwrap().unwrap();
        let mut p = f[h.header_len..].to_vec();
        ws::apply_mask(&mut p, ws::MASK, 0);
        on_ack(&mut su, &p).unwrap();
        assert!(on_ack(&mut su, &p).is_err());
    }

    #[test]
    fn data_checks() {
        let pf = PubFrame::new(Mode::Uws, 64);
        let good = unmasked(&pf, 5, 10);
        let mut bad = good.clone().into_bytes();
        let l = bad.len();
        bad[l - 3] = b'y';
        assert!(parse_data(&bad, &pf.tail).unwrap_err().contains("corrupted"));
        assert!(parse_data(b"{\"t\":1}", &pf.tail).is_err());
        assert_eq!(number(b"   123,", 0), Some((123, 6)));
        assert_eq!(number(b"  ,", 0), None);
        assert_eq!(number(b"99999999999999999999999", 0), None);
    }
}
