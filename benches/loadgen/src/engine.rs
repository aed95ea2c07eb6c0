//! Long-lived connections on one mio poll: `echo`, `latency` and `idle`.
//!
//! Every connection upgrades, then (echo) keeps `inflight` frames outstanding: each echo that
//! arrives is checked and answered with the next frame. Writes are batched: frames queued while
//! handling one read burst go out in one `write` (small frames, copied into the out buffer) or
//! one `writev` (large frames, pointing at the shared template). Over TLS the same calls go
//! through the connection's rustls session ([`Stream`]).

use std::collections::VecDeque;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::stream::{Stream, Tls};
use crate::sys;
use crate::ws::{self, Template};

/// Frames longer than this are sent with `writev` from the template instead of being copied.
const COPY_MAX: usize = 64 * 1024;
/// Reads per connection per turn before others are served.
const READ_BUDGET: usize = 16;
const MAX_IOV: usize = 32;
/// With `--check-every N`, the payload bytes compared on the echoes not checked in full.
pub const HEAD_CHECK: usize = 4096;
/// The longest server frame header (no mask).
const MAX_HEADER: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Handshake,
    Open,
    /// We sent a close frame; waiting for the server's close (or EOF).
    Closing,
    Closed,
}

enum Item {
    /// A data frame: header and tag here, the rest is the template's.
    Frame([u8; 32]),
    /// A control frame.
    Ctrl(Vec<u8>),
}

pub struct Conn {
    sock: Stream,
    phase: Phase,
    connected: bool,
    readable: bool,
    writable: bool,
    in_again: bool,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    out: Vec<u8>,
    opos: usize,
    big: VecDeque<Item>,
    boff: usize,
    pub next_send: u64,
    pub next_recv: u64,
    sent_at: VecDeque<Instant>,
    /// Payload bytes of the current echo still to discard unread (`--check-every`).
    skip: usize,
    /// `--deflate`: inflates the server's compressed echoes (its context, if it keeps one).
    inflater: Option<flate2::Decompress>,
    /// The server agreed `server_no_context_takeover`: the inflater starts afresh per message.
    inflate_reset: bool,
    /// A fragmented echo being joined: its opcode and the payload so far.
    frag: Option<(u8, Vec<u8>)>,
}

pub struct Ctx {
    pub tpl: Template,
    pub raw: bool,
    /// Data frames to keep in flight per connection once open (0 = idle).
    pub inflight: usize,
    /// Keep sending (false while draining).
    pub running: bool,
    /// Record RTTs (latency scenario, inside the measurement window).
    pub record_rtt: bool,
    pub rtts_ns: Vec<u64>,
    pub rtt_cap: usize,
    pub received: u64,
    pub opened: usize,
    pub closed: usize,
    pub pings: u64,
    accept: String,
    request: Vec<u8>,
    big_mode: bool,
    rbuf_size: usize,
    /// Every `check_every`-th echo of a connection is read and compared in full; the others
    /// (when larger than `HEAD_CHECK`) have their header, tag and first `HEAD_CHECK` bytes
    /// compared and the rest discarded by the kernel unread. 1 = every echo in full.
    pub check_every: u64,
    /// Echoes compared byte for byte, whole.
    pub checked_in_full: u64,
    scratch: Vec<u8>,
    /// TLS for every connection (`wss://`), or none.
    tls: Option<Tls>,
    /// The TLS version, suite and group of the first connection that opened.
    pub tls_desc: Option<String>,
    /// Connections whose server ended TLS without a close_notify alert.
    pub no_close_notify: usize,
    /// `--deflate`: upgrades offer permessage-deflate and must get it; compressed echoes are
    /// inflated (zlib) and checked.
    pub deflate: bool,
    /// The agreed `Sec-WebSocket-Extensions` of the first connection that opened.
    pub extension: Option<String>,
    /// Echoes that came compressed (RSV1), and their payload bytes on the wire.
    pub compressed_echoes: u64,
    /// Echoes that came fragmented (joined, then checked whole).
    pub fragmented_echoes: u64,
    pub wire_down: u64,
    /// Echoes that came as they are, and their payload bytes.
    pub plain_echoes: u64,
    pub plain_down: u64,
    inflated: Vec<u8>,
}

impl Ctx {
    /// Whether echo `seq` is checked by its head only (the rest discarded unread).
    fn head_only(&self, seq: u64) -> bool {
        self.check_every > 1 && !seq.is_multiple_of(self.check_every) && self.tpl.size > HEAD_CHECK
    }
}

pub struct Engine {
    poll: Poll,
    events: Events,
    pub conns: Vec<Conn>,
    pub ctx: Ctx,
    again: Vec<usize>,
    addr: SocketAddr,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(addr: SocketAddr, host: &str, path: &str, tls: Option<Tls>, tpl: Template, raw: bool, inflight: usize, rbuf_size: usize) -> Result<Engine, String> {
        let big_mode = tpl.frame.len() > COPY_MAX;
        let rbuf_size = if inflight > 0 { rbuf_size.max(2 * tpl.frame.len() + 64 * 1024) } else { rbuf_size };
        Ok(Engine {
            poll: Poll::new().map_err(|e| format!("poll: {e}"))?,
            events: Events::with_capacity(1024),
            conns: Vec::new(),
            ctx: Ctx {
                tpl,
                raw,
                inflight,
                running: true,
                record_rtt: false,
                rtts_ns: Vec::new(),
                rtt_cap: 50_000_000,
                received: 0,
                opened: 0,
                closed: 0,
                pings: 0,
                accept: ws::accept_key(ws::KEY),
                request: ws::request(host, path),
                big_mode,
                rbuf_size,
                check_every: 1,
                checked_in_full: 0,
                scratch: vec![0; 256 * 1024],
                tls,
                tls_desc: None,
                no_close_notify: 0,
                deflate: false,
                extension: None,
                compressed_echoes: 0,
                fragmented_echoes: 0,
                wire_down: 0,
                plain_echoes: 0,
                plain_down: 0,
                inflated: Vec::new(),
            },
            again: Vec::new(),
            addr,
        })
    }

    /// Starts one more connection (its upgrade goes out once connected).
    pub fn connect(&mut self) -> Result<(), String> {
        let idx = self.conns.len();
        let mut sock = Stream::connect(self.addr, self.ctx.tls.as_ref()).map_err(|e| format!("connect #{idx}: {e}"))?;
        let _ = sock.tcp().set_nodelay(true);
        self.poll
            .registry()
            .register(sock.tcp_mut(), Token(idx), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| format!("register #{idx}: {e}"))?;
        self.conns.push(Conn {
            sock,
            phase: Phase::Handshake,
            connected: false,
            readable: false,
            writable: false,
            in_again: false,
            rbuf: vec![0; self.ctx.rbuf_size],
            rstart: 0,
            rend: 0,
            out: self.ctx.request.clone(),
            opos: 0,
            big: VecDeque::new(),
            boff: 0,
            next_send: 0,
            next_recv: 0,
            sent_at: VecDeque::new(),
            skip: 0,
            inflater: None,
            inflate_reset: false,
            frag: None,
        });
        Ok(())
    }

    /// One poll and everything it made ready; waits at most `timeout`.
    pub fn turn(&mut self, timeout: Duration) -> Result<(), String> {
        let timeout = if self.again.is_empty() { timeout } else { Duration::ZERO };
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
            if c.phase == Phase::Closed {
                continue;
            }
            service(c, &mut self.ctx).map_err(|e| format!("connection #{i}: {e}"))?;
            if c.readable && c.phase != Phase::Closed && !c.in_again {
                c.in_again = true;
                self.again.push(i);
            }
        }
        Ok(())
    }

    /// Runs turns until `deadline`.
    pub fn run_until(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            self.turn((deadline - now).min(Duration::from_millis(100)))?;
        }
    }

    /// Runs turns until `done` holds or `limit` passes; returns whether `done` held.
    pub fn run_while(&mut self, limit: Instant, done: impl Fn(&Engine) -> bool) -> Result<bool, String> {
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

    /// Sends a close frame (1000) on every open connection.
    pub fn close_all(&mut self) -> Result<(), String> {
        let close = ws::encode_frame(ws::OP_CLOSE, &1000u16.to_be_bytes(), Some(ws::MASK));
        for (i, c) in self.conns.iter_mut().enumerate() {
            if c.phase == Phase::Open {
                c.phase = Phase::Closing;
                queue_ctrl(c, &self.ctx, close.clone());
                flush(c, &self.ctx).map_err(|e| format!("connection #{i}: {e}"))?;
            }
        }
        Ok(())
    }

    /// Echoes still outstanding, over all connections.
    pub fn outstanding(&self) -> u64 {
        self.conns.iter().map(|c| c.next_send - c.next_recv).sum()
    }
}

fn service(c: &mut Conn, ctx: &mut Ctx) -> Result<(), String> {
    if !c.connected {
        if !(c.readable || c.writable) {
            return Ok(());
        }
        if let Some(e) = c.sock.tcp().take_error().map_err(|e| format!("connect: {e}"))? {
            return Err(format!("connect: {e}"));
        }
        match c.sock.tcp().peer_addr() {
            Ok(_) => c.connected = true,
            Err(e) if e.kind() == ErrorKind::NotConnected => {
                c.readable = false;
                c.writable = false;
                return Ok(());
            }
            Err(e) => return Err(format!("connect: {e}")),
        }
    }
    flush(c, ctx)?;
    let mut reads = 0;
    while c.readable && reads < READ_BUDGET && c.phase != Phase::Closed {
        reads += 1;
        if c.skip > 0 {
            let want = c.skip.min(ctx.scratch.len());
            match sys::recv_discard(c.sock.tcp().as_raw_fd(), &mut ctx.scratch[..want]) {
                Ok(0) => return Err(format!("server closed the connection mid-echo ({} echoes outstanding)", c.next_send - c.next_recv)),
                Ok(n) => {
                    c.skip -= n;
                    if n < want {
                        c.readable = false;
                    }
                    if c.skip == 0 {
                        echo_done(c, ctx);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => c.readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("recv: {e}")),
            }
            continue;
        }
        if c.rend == c.rbuf.len() {
            if c.rstart > 0 {
                c.rbuf.copy_within(c.rstart..c.rend, 0);
                c.rend -= c.rstart;
                c.rstart = 0;
            } else {
                // One incomplete frame fills the buffer; its length was checked at header time.
                let n = c.rbuf.len() * 2;
                c.rbuf.resize(n, 0);
            }
        }
        let mut space = c.rbuf.len() - c.rend;
        // A fragment (FIN clear, or a continuation) is read whole, to be joined.
        let fragment = c.frag.is_some() || (c.rstart < c.rend && (c.rbuf[c.rstart] & 0x80 == 0 || c.rbuf[c.rstart] & 0x0F == ws::OP_CONT));
        if c.phase == Phase::Open && ctx.head_only(c.next_recv) && !fragment {
            // Read no further than the head to compare: the rest is discarded unread.
            space = space.min((MAX_HEADER + HEAD_CHECK).saturating_sub(c.rend - c.rstart).max(1));
        }
        match c.sock.read(&mut c.rbuf[c.rend..c.rend + space]) {
            Ok(0) => {
                if c.phase == Phase::Closing {
                    c.phase = Phase::Closed;
                    ctx.closed += 1;
                    ctx.no_close_notify += usize::from(c.sock.no_close_notify());
                    return Ok(());
                }
                return Err(format!("server closed the connection (phase {:?}, {} echoes outstanding)", c.phase, c.next_send - c.next_recv));
            }
            Ok(n) => {
                c.rend += n;
                // A short read drained the socket: with edge-triggered epoll, more data (or the
                // FIN) raises a new event, so the read that would say WouldBlock is saved.
                if n < space && c.sock.short_read_drains() {
                    c.readable = false;
                }
                process(c, ctx)?;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => c.readable = false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    if c.phase != Phase::Closed {
        flush(c, ctx)?;
    }
    Ok(())
}

fn process(c: &mut Conn, ctx: &mut Ctx) -> Result<(), String> {
    loop {
        let avail = &c.rbuf[c.rstart..c.rend];
        if avail.is_empty() {
            break;
        }
        if c.phase == Phase::Handshake {
            let Some(n) = ws::head_end(avail) else {
                if avail.len() > ws::MAX_HEAD {
                    return Err("response head too long".into());
                }
                break;
            };
            ws::check_response(&avail[..n], &ctx.accept)?;
            if ctx.deflate {
                // RFC 7692 §5: the server's answer names the extension and its parameters.
                let agreed = ws::header_value(&avail[..n], "sec-websocket-extensions").unwrap_or_default();
                if !agreed.trim_start().starts_with("permessage-deflate") {
                    return Err(format!("--deflate: the server did not agree permessage-deflate (answer {agreed:?})"));
                }
                c.inflate_reset = agreed.contains("server_no_context_takeover");
                c.inflater = Some(flate2::Decompress::new(false));
                ctx.extension.get_or_insert(agreed);
            }
            c.rstart += n;
            c.phase = Phase::Open;
            ctx.opened += 1;
            if ctx.tls_desc.is_none() {
                ctx.tls_desc = c.sock.describe();
            }
            if ctx.running {
                for _ in 0..ctx.inflight {
                    send_one(c, ctx);
                }
            }
            continue;
        }
        if c.phase == Phase::Closed {
            break;
        }
        let Some(h) = ws::parse_header(avail)? else { break };
        let data = h.opcode == ws::OP_TEXT || h.opcode == ws::OP_BINARY || h.opcode == ws::OP_CONT;
        if h.compressed {
            // A compressed echo (RFC 7692 §6), read whole and inflated before it is checked.
            let total = h.header_len + h.payload_len;
            if avail.len() < total {
                break;
            }
            if c.next_recv >= c.next_send {
                return Err(format!("echo of a frame never sent (seq {})", c.next_recv));
            }
            let Some(z) = c.inflater.as_mut() else {
                return Err("a compressed frame (RSV1) without permessage-deflate agreed".into());
            };
            inflate(z, &avail[h.header_len..total], &mut ctx.inflated, ctx.tpl.size)?;
            if c.inflate_reset {
                z.reset(false);
            }
            let plain = ws::Header { compressed: false, payload_len: ctx.inflated.len(), ..h };
            ctx.tpl.check_echo(&plain, &ctx.inflated, false, c.next_recv)?;
            ctx.compressed_echoes += 1;
            ctx.wire_down += h.payload_len as u64;
            ctx.checked_in_full += 1;
            c.rstart += total;
            echo_done(c, ctx);
            continue;
        }
        if data && !ctx.raw && (!h.fin || h.opcode == ws::OP_CONT) {
            // A fragmented echo: an intermediary may fragment a message anew (RFC 6455 §5.4;
            // weir's tunnel relays in pieces of at most 64 KiB). Its frames are read whole and
            // joined, and the message is checked whole.
            let total = h.header_len + h.payload_len;
            if avail.len() < total {
                break;
            }
            let payload = &avail[h.header_len..total];
            match (h.opcode, c.frag.as_mut()) {
                (ws::OP_CONT, Some((_, buf))) => buf.extend_from_slice(payload),
                (ws::OP_CONT, None) => return Err("a continuation frame with no message begun".into()),
                (op, None) => c.frag = Some((op, payload.to_vec())),
                (op, Some(_)) => return Err(format!("a data frame (opcode {op}) inside a fragmented message")),
            }
            c.rstart += total;
            let Some((op, buf)) = c.frag.take_if(|(_, buf)| h.fin || buf.len() > ctx.tpl.size) else { continue };
            if c.next_recv >= c.next_send {
                return Err(format!("echo of a frame never sent (seq {})", c.next_recv));
            }
            let whole = ws::Header { fin: true, opcode: op, compressed: false, mask: None, header_len: 0, payload_len: buf.len() };
            ctx.tpl.check_echo(&whole, &buf, false, c.next_recv)?;
            ctx.plain_echoes += 1;
            ctx.plain_down += buf.len() as u64;
            ctx.checked_in_full += 1;
            ctx.fragmented_echoes += 1;
            echo_done(c, ctx);
            continue;
        }
        if data && (ctx.inflight == 0 || h.payload_len != ctx.tpl.size) {
            return Err(format!("unexpected data frame (opcode {}, {} bytes)", h.opcode, h.payload_len));
        }
        let total = h.header_len + h.payload_len;
        let head_only = data && ctx.head_only(c.next_recv);
        if avail.len() < total && !(head_only && avail.len() >= h.header_len + HEAD_CHECK) {
            break;
        }
        let end = total.min(avail.len());
        let payload = &avail[h.header_len..end];
        match h.opcode {
            ws::OP_TEXT | ws::OP_BINARY | ws::OP_CONT => {
                if c.next_recv >= c.next_send {
                    return Err(format!("echo of a frame never sent (seq {})", c.next_recv));
                }
                ctx.tpl.check_echo(&h, payload, ctx.raw, c.next_recv)?;
                ctx.plain_echoes += 1;
                ctx.plain_down += h.payload_len as u64;
                c.rstart += end;
                if end < total {
                    // Checked by its head: the rest goes unread.
                    c.skip = total - end;
                    break;
                }
                ctx.checked_in_full += 1;
                echo_done(c, ctx);
            }
            ws::OP_PING => {
                let mut p = payload.to_vec();
                if let Some(k) = h.mask {
                    ws::apply_mask(&mut p, k, 0);
                }
                c.rstart += total;
                ctx.pings += 1;
                if c.phase == Phase::Open {
                    queue_ctrl(c, ctx, ws::encode_frame(ws::OP_PONG, &p, Some(ws::MASK)));
                }
            }
            ws::OP_PONG => c.rstart += total,
            ws::OP_CLOSE => {
                if c.phase != Phase::Closing {
                    let mut p = payload.to_vec();
                    if let Some(k) = h.mask {
                        ws::apply_mask(&mut p, k, 0);
                    }
                    let code = if p.len() >= 2 { u16::from_be_bytes([p[0], p[1]]) } else { 1005 };
                    return Err(format!("server sent close (code {code}, reason {:?})", String::from_utf8_lossy(&p[p.len().min(2)..])));
                }
                c.rstart += total;
                c.phase = Phase::Closed;
                ctx.closed += 1;
                break;
            }
            op => return Err(format!("unknown opcode {op}")),
        }
    }
    if c.rstart == c.rend {
        c.rstart = 0;
        c.rend = 0;
    }
    Ok(())
}

/// Inflates one compressed message (its tail put back, RFC 7692 §7.2.2) into `out`, which must
/// come to at most `max` bytes.
fn inflate(z: &mut flate2::Decompress, payload: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), String> {
    out.clear();
    out.reserve(max + 1);
    for (i, mut part) in [payload, &ws::DEFLATE_TAIL[..]].into_iter().enumerate() {
        while !part.is_empty() {
            let (in0, out0) = (z.total_in(), out.len());
            let status = z.decompress_vec(part, out, flate2::FlushDecompress::Sync).map_err(|e| format!("inflating an echo: {e}"))?;
            part = &part[(z.total_in() - in0) as usize..];
            if out.len() > max {
                return Err(format!("an echo inflates past {max} bytes"));
            }
            if status == flate2::Status::StreamEnd {
                // A final block: the stream is over, the tail is not needed.
                z.reset(false);
                if i == 0 && !part.is_empty() {
                    return Err(format!("{} bytes after an echo's final block", part.len()));
                }
                return Ok(());
            }
            if z.total_in() == in0 && out.len() == out0 {
                if out.len() == out.capacity() {
                    return Err(format!("an echo inflates past {max} bytes"));
                }
                return Err("inflating an echo made no progress".into());
            }
        }
    }
    Ok(())
}

/// The echo `c.next_recv` has arrived (and been checked): count it and send the next frame.
fn echo_done(c: &mut Conn, ctx: &mut Ctx) {
    c.next_recv += 1;
    ctx.received += 1;
    if let Some(t) = c.sent_at.pop_front()
        && ctx.record_rtt && ctx.rtts_ns.len() < ctx.rtt_cap {
            ctx.rtts_ns.push(t.elapsed().as_nanos() as u64);
        }
    if ctx.running && c.phase == Phase::Open {
        send_one(c, ctx);
    }
}

fn send_one(c: &mut Conn, ctx: &mut Ctx) {
    let seq = c.next_send;
    c.next_send += 1;
    if ctx.big_mode {
        c.big.push_back(Item::Frame(ctx.tpl.prefix(seq)));
    } else {
        ctx.tpl.append(seq, &mut c.out);
    }
    if ctx.record_rtt || ctx.inflight == 1 {
        c.sent_at.push_back(Instant::now());
    }
}

fn queue_ctrl(c: &mut Conn, ctx: &Ctx, frame: Vec<u8>) {
    if ctx.big_mode {
        c.big.push_back(Item::Ctrl(frame));
    } else {
        c.out.extend_from_slice(&frame);
    }
}

fn flush(c: &mut Conn, ctx: &Ctx) -> Result<(), String> {
    if !c.connected || !c.writable {
        return Ok(());
    }
    // TLS records the socket did not take last time go first.
    if !push_tls(c)? {
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
    let pl = ctx.tpl.prefix_len();
    let frame_len = ctx.tpl.frame.len();
    while !c.big.is_empty() {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let mut k = 0;
        let mut skip = c.boff;
        for item in c.big.iter() {
            if k + 2 > MAX_IOV {
                break;
            }
            let parts: [&[u8]; 2] = match item {
                Item::Frame(p) => [&p[..pl], &ctx.tpl.frame[pl..]],
                Item::Ctrl(v) => [v.as_slice(), &[]],
            };
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                iov[k] = IoSlice::new(&part[skip..]);
                skip = 0;
                k += 1;
            }
        }
        match c.sock.write_vectored(&iov[..k]) {
            Ok(0) => return Err("writev returned 0".into()),
            Ok(mut n) => {
                while n > 0 {
                    let len = match c.big.front() {
                        Some(Item::Frame(_)) => frame_len,
                        Some(Item::Ctrl(v)) => v.len(),
                        None => break,
                    };
                    let left = len - c.boff;
                    if n >= left {
                        n -= left;
                        c.boff = 0;
                        c.big.pop_front();
                    } else {
                        c.boff += n;
                        n = 0;
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                c.writable = false;
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("writev: {e}")),
        }
    }
    push_tls(c)?;
    Ok(())
}

/// Pushes the TLS records waiting in the session (none over plain TCP); false (and not
/// writable) when the socket is full.
fn push_tls(c: &mut Conn) -> Result<bool, String> {
    match c.sock.flush() {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            c.writable = false;
            Ok(false)
        }
        Err(e) => Err(format!("TLS write: {e}")),
    }
}
