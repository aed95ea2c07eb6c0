//! `loadgen hostile`: weir under hostile peers, one scenario at a time, each beside a canary
//! connection that echoes 64 B messages on /echo (or `--canary-path`). For every scenario: the
//! RSS growth of each process watched (`--pid`: the server, or a tunnel's two ends) over the
//! baseline taken before the first one (peak of samples every 20 ms), and the canary's
//! round-trip p50/p99. Plain blocking sockets, each with read and write timeouts; every loop is
//! bounded in count and in time.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sys;
use crate::ws::{self, Header, MASK, Template};

/// Read and write timeout of every socket (a write that times out is retried until the
/// scenario's own deadline).
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const MIB: f64 = 1048576.0;
/// Canary round trips before the ones measured.
const WARM_UP: u64 = 20;

pub struct Config {
    pub addr: SocketAddr,
    pub host: String,
    /// The processes whose RSS is watched (the server; a tunnel's controller and agent).
    pub pids: Vec<u32>,
    /// Where the canary echoes.
    pub canary_path: String,
    /// tunnel-stall: the path of a long download (through a tunnel) that is read a little, then
    /// not at all.
    pub stall_path: String,
    /// Scenarios to run (flood-echo, flood-ws, history, events, half-close); empty = all.
    pub only: Vec<String>,
    /// Pings each flood sends, at most.
    pub pings: u64,
    /// Longest a flood runs.
    pub flood_secs: f64,
    /// How long the history and event-stream peers are held open.
    pub hold_secs: f64,
    pub flood_bound: u64,
    pub amp_bound: u64,
    pub stall_bound: u64,
    pub p99_ms: f64,
}

/// A TCP connection to `addr` with `SO_RCVBUF` set before `connect` (so the window it
/// advertises is small from the start) and the timeouts set.
fn connect(addr: SocketAddr, rcvbuf: Option<usize>) -> Result<TcpStream, String> {
    let SocketAddr::V4(v4) = addr else { return Err("hostile: IPv4 targets only".into()) };
    // SAFETY: socket() returns a new descriptor or -1; it is owned by the OwnedFd at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let set = |opt: libc::c_int, val: &[u8]| {
        // SAFETY: val points at a live option value of val.len() bytes.
        let rc = unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, opt, val.as_ptr().cast(), val.len() as libc::socklen_t) };
        if rc != 0 { Err(format!("setsockopt({opt}): {}", std::io::Error::last_os_error())) } else { Ok(()) }
    };
    if let Some(n) = rcvbuf {
        set(libc::SO_RCVBUF, &(n as libc::c_int).to_ne_bytes())?;
    }
    // SO_SNDTIMEO bounds connect() too.
    let tv = libc::timeval { tv_sec: IO_TIMEOUT.as_secs() as libc::time_t, tv_usec: 0 };
    // SAFETY: timeval is plain data; the slice covers exactly it.
    let tv_bytes = unsafe { std::slice::from_raw_parts((&tv as *const libc::timeval).cast::<u8>(), std::mem::size_of::<libc::timeval>()) };
    set(libc::SO_SNDTIMEO, tv_bytes)?;
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) },
        sin_zero: [0; 8],
    };
    // SAFETY: sa is a valid sockaddr_in of the length given.
    let rc = unsafe { libc::connect(fd, (&sa as *const libc::sockaddr_in).cast(), std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t) };
    if rc != 0 {
        return Err(format!("connect {addr}: {}", std::io::Error::last_os_error()));
    }
    let s = TcpStream::from(owned);
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(s)
}

/// Reads an HTTP response head (at most `ws::MAX_HEAD` bytes); returns it and the bytes after it.
fn read_head(s: &mut TcpStream) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        if let Some(end) = ws::head_end(&buf) {
            let rest = buf.split_off(end);
            return Ok((buf, rest));
        }
        if buf.len() > ws::MAX_HEAD || Instant::now() > deadline {
            return Err(format!("no response head within {IO_TIMEOUT:?} and {} bytes", ws::MAX_HEAD));
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err(format!("connection closed before the response head ({} bytes)", buf.len())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("reading the response head: {e}")),
        }
    }
}

/// A WebSocket client connection on `path`, upgraded; the bytes read past the 101 are returned.
fn upgraded(cfg: &Config, path: &str, rcvbuf: Option<usize>) -> Result<(TcpStream, Vec<u8>), String> {
    let mut s = connect(cfg.addr, rcvbuf)?;
    s.write_all(&ws::request(&cfg.host, path)).map_err(|e| format!("upgrade {path}: {e}"))?;
    let (head, rest) = read_head(&mut s)?;
    ws::check_response(&head, &ws::accept_key(ws::KEY)).map_err(|e| format!("upgrade {path}: {e}"))?;
    Ok((s, rest))
}

/// Frames read from a blocking socket: a buffer of bytes not yet parsed.
struct Frames {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Frames {
    /// The next whole frame, waiting at most until `deadline` (and `IO_TIMEOUT` per read).
    fn next(&mut self, deadline: Instant) -> Result<(Header, Vec<u8>), String> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(h) = ws::parse_header(&self.buf)?
                && self.buf.len() >= h.header_len + h.payload_len
            {
                let payload = self.buf[h.header_len..h.header_len + h.payload_len].to_vec();
                self.buf.drain(..h.header_len + h.payload_len);
                return Ok((h, payload));
            }
            if Instant::now() > deadline {
                return Err(format!("no whole frame by the deadline ({} bytes buffered)", self.buf.len()));
            }
            match self.s.read(&mut chunk) {
                Ok(0) => return Err(format!("connection closed ({} bytes of a frame buffered)", self.buf.len())),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
}

/// Round trips of 64 B binary messages on the canary path, one in flight, one every millisecond, until
/// stopped (or at most 10 minutes). The first 20 (a new connection's first round trips, cold)
/// are not counted.
struct Canary {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    handle: JoinHandle<(Vec<u64>, Option<String>)>,
}

impl Canary {
    fn start(cfg: &Config) -> Result<Canary, String> {
        let (s, rest) = upgraded(cfg, &cfg.canary_path, None)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let done = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&done);
        let handle = std::thread::spawn(move || {
            let tpl = Template::new(ws::OP_BINARY, 64);
            let mut w = match s.try_clone() {
                Ok(w) => w,
                Err(e) => return (Vec::new(), Some(format!("canary: {e}"))),
            };
            let mut frames = Frames { s, buf: rest };
            let mut rtts = Vec::new();
            let end = Instant::now() + Duration::from_secs(600);
            let mut seq = 0u64;
            let mut out = Vec::with_capacity(tpl.frame.len());
            while !flag.load(Ordering::Relaxed) && Instant::now() < end {
                out.clear();
                tpl.append(seq, &mut out);
                let t0 = Instant::now();
                if let Err(e) = w.write_all(&out) {
                    return (rtts, Some(format!("canary write: {e}")));
                }
                // Control frames (a keepalive ping) may come first.
                let got = loop {
                    match frames.next(t0 + IO_TIMEOUT) {
                        Ok((h, _)) if h.opcode == ws::OP_PING || h.opcode == ws::OP_PONG => continue,
                        other => break other,
                    }
                };
                match got.and_then(|(h, p)| tpl.check_echo(&h, &p, false, seq % tpl.modulus)) {
                    Ok(()) if seq < WARM_UP => {}
                    Ok(()) => rtts.push(t0.elapsed().as_nanos() as u64),
                    Err(e) => return (rtts, Some(format!("canary, echo {seq}: {e}"))),
                }
                seq += 1;
                count.store(seq, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
            (rtts, None)
        });
        let canary = Canary { stop, done, handle };
        // Bounded: a canary that cannot warm up in 5 s ends with its error (or a p99 over the bound).
        let end = Instant::now() + Duration::from_secs(5);
        while canary.done.load(Ordering::Relaxed) < WARM_UP && !canary.handle.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(canary)
    }

    /// (p50 ms, p99 ms, samples, the error that ended it early).
    fn finish(self) -> (f64, f64, usize, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut v, err) = self.handle.join().unwrap_or_else(|_| (Vec::new(), Some("canary thread panicked".into())));
        v.sort_unstable();
        let pct = |p: f64| if v.is_empty() { f64::NAN } else { v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1e6 };
        (pct(0.50), pct(0.99), v.len(), err)
    }
}

/// The server's peak RSS while a scenario runs: sampled every 20 ms on a thread.
struct Peak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: JoinHandle<()>,
}

impl Peak {
    fn start(pid: u32) -> Peak {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(sys::rss_bytes(pid).unwrap_or(0)));
        let (flag, max) = (Arc::clone(&stop), Arc::clone(&peak));
        let handle = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(600);
            while !flag.load(Ordering::Relaxed) && Instant::now() < end {
                if let Ok(r) = sys::rss_bytes(pid) {
                    max.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Peak { stop, peak, handle }
    }

    fn finish(self, pid: u32) -> u64 {
        if let Ok(r) = sys::rss_bytes(pid) {
            self.peak.fetch_max(r, Ordering::Relaxed);
        }
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
        self.peak.load(Ordering::Relaxed)
    }
}

/// Writes `data` within `deadline`; a write that times out (the peer not reading) is retried.
/// Ok(false) if the deadline passed first; Err if the connection failed (the server closed it).
fn write_by(s: &mut TcpStream, data: &[u8], deadline: Instant) -> Result<bool, std::io::Error> {
    let mut off = 0;
    while off < data.len() {
        if Instant::now() > deadline {
            return Ok(false);
        }
        match s.write(&data[off..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => off += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// One connection (SO_RCVBUF 4 KiB) that never reads sends up to `cfg.pings` masked pings of
/// 125 bytes on `path`, for at most `cfg.flood_secs`.
fn ping_flood(cfg: &Config, path: &str) -> Result<String, String> {
    let (mut s, _) = upgraded(cfg, path, Some(4096))?;
    s.set_write_timeout(Some(Duration::from_millis(200))).map_err(|e| e.to_string())?;
    let one = ws::encode_frame(ws::OP_PING, &[b'p'; 125], Some(MASK));
    const BATCH: u64 = 1000;
    let batch = one.repeat(BATCH as usize);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(cfg.flood_secs);
    let mut sent = 0u64;
    let mut end = "all sent";
    while sent < cfg.pings {
        let n = BATCH.min(cfg.pings - sent) as usize;
        match write_by(&mut s, &batch[..n * one.len()], deadline) {
            Ok(true) => sent += n as u64,
            Ok(false) => {
                end = "time limit";
                break;
            }
            Err(_) => {
                end = "the server closed the connection";
                break;
            }
        }
    }
    Ok(format!("{sent} pings of 125 B sent in {:.1} s ({end})", t0.elapsed().as_secs_f64()))
}

/// Publishes `n` messages of `size` bytes (a JSON string) to `channel` over HTTP.
fn fill_history(cfg: &Config, channel: &str, n: usize, size: usize) -> Result<(), String> {
    for i in 0..n {
        let mut body = format!("\"{i} ");
        body.push_str(&"h".repeat(size.saturating_sub(body.len() + 1)));
        body.push('"');
        let req = format!(
            "POST /api/channels/{channel}/publish HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            cfg.host,
            body.len()
        );
        let mut s = connect(cfg.addr, None)?;
        s.write_all(req.as_bytes()).map_err(|e| format!("publish {i}: {e}"))?;
        let (head, _) = read_head(&mut s).map_err(|e| format!("publish {i}: {e}"))?;
        let status = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
        if !status.starts_with("HTTP/1.1 200") {
            return Err(format!("publish {i}: {status}"));
        }
    }
    Ok(())
}

/// Ten /ws connections that never read each ask five times for the whole history of `channel`,
/// then send an unsolicited pong every second for `cfg.hold_secs`.
fn history_amplification(cfg: &Config, channel: &str) -> Result<String, String> {
    let mut conns = Vec::new();
    for _ in 0..10 {
        let (s, _) = upgraded(cfg, "/ws", Some(4096))?;
        s.set_write_timeout(Some(Duration::from_millis(200))).map_err(|e| e.to_string())?;
        conns.push(Some(s));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(cfg.hold_secs) + Duration::from_secs(5);
    let mut closed = 0;
    for (c, slot) in conns.iter_mut().enumerate() {
        let mut cmds = Vec::new();
        for k in 0..5 {
            let id = c * 5 + k;
            let cmd = format!("{{\"id\":{id},\"method\":\"history\",\"params\":{{\"channel\":\"{channel}\"}}}}");
            cmds.extend_from_slice(&ws::encode_frame(ws::OP_TEXT, cmd.as_bytes(), Some(MASK)));
        }
        if let Some(s) = slot
            && write_by(s, &cmds, deadline).is_err()
        {
            *slot = None;
            closed += 1;
        }
    }
    let pong = ws::encode_frame(ws::OP_PONG, b"", Some(MASK));
    let t0 = Instant::now();
    let seconds = cfg.hold_secs.ceil() as u64;
    for tick in 1..=seconds {
        std::thread::sleep((t0 + Duration::from_secs(tick)).saturating_duration_since(Instant::now()));
        for slot in conns.iter_mut() {
            if let Some(s) = slot
                && write_by(s, &pong, Instant::now() + Duration::from_millis(200)).is_err()
            {
                *slot = None;
                closed += 1;
            }
        }
    }
    Ok(format!("10 connections x 5 history commands, pongs for {seconds} s; {closed} of 10 found closed by the server (a write failed)"))
}

/// Twenty `GET /api/channels/CHANNEL/events?since=0` (SO_RCVBUF 4 KiB) that never read, held
/// open for `cfg.hold_secs`.
fn event_replay(cfg: &Config, channel: &str) -> Result<String, String> {
    let mut conns = Vec::new();
    let req = format!("GET /api/channels/{channel}/events?since=0 HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n", cfg.host);
    for i in 0..20 {
        let mut s = connect(cfg.addr, Some(4096))?;
        s.write_all(req.as_bytes()).map_err(|e| format!("event stream {i}: {e}"))?;
        conns.push(s);
    }
    std::thread::sleep(Duration::from_secs_f64(cfg.hold_secs));
    Ok(format!("20 event streams from seq 0 held unread for {:.0} s", cfg.hold_secs))
}

/// Byte `i` of the half-close message.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

/// A 5 MiB binary frame to /echo, then close 1000, then shutdown(SHUT_WR), with a 64 KiB
/// receive buffer; every byte of the echo and the close (1000) must come back. A writer thread
/// sends while this one reads, so that an echo streamed back early cannot deadlock us.
fn half_close(cfg: &Config) -> Result<String, String> {
    const SIZE: usize = 5 << 20;
    let (s, rest) = upgraded(cfg, "/echo", Some(64 * 1024))?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let writer = std::thread::spawn(move || -> Result<(), String> {
        let payload: Vec<u8> = (0..SIZE).map(pattern).collect();
        let mut out = ws::encode_frame(ws::OP_BINARY, &payload, Some(MASK));
        // RFC 6455 §5.5.1: the close body is the code, big-endian.
        out.extend_from_slice(&ws::encode_frame(ws::OP_CLOSE, &1000u16.to_be_bytes(), Some(MASK)));
        match write_by(&mut w, &out, deadline) {
            Ok(true) => {}
            Ok(false) => return Err("sending did not finish within 60 s".into()),
            Err(e) => return Err(format!("send: {e}")),
        }
        w.shutdown(Shutdown::Write).map_err(|e| format!("shutdown: {e}"))
    });
    let mut frames = Frames { s, buf: rest };
    let mut got = 0usize;
    let mut problem = None;
    let mut close = None;
    while close.is_none() && problem.is_none() {
        match frames.next(deadline) {
            Ok((h, p)) if h.opcode == ws::OP_BINARY || h.opcode == ws::OP_CONT => {
                if let Some(i) = p.iter().enumerate().position(|(k, &b)| b != pattern(got + k)) {
                    problem = Some(format!("echo byte {} differs", got + i));
                }
                got += p.len();
            }
            Ok((h, p)) if h.opcode == ws::OP_CLOSE => {
                close = Some(if p.len() >= 2 { u16::from_be_bytes([p[0], p[1]]) } else { 1005 });
            }
            Ok(_) => {}
            Err(e) => problem = Some(e),
        }
    }
    let sent = writer.join().unwrap_or_else(|_| Err("writer panicked".into()));
    let summary = format!("{got} of {SIZE} echo bytes back in whole frames, close {close:?}");
    match (problem, sent) {
        (Some(p), _) => Err(format!("{summary}: {p}")),
        (None, Err(e)) => Err(format!("{summary}: {e}")),
        _ if got != SIZE || close != Some(1000) => Err(format!("{summary}: incomplete")),
        _ => Ok(summary),
    }
}

/// A download being read: its connection, and how many bytes after its head were read.
struct Download {
    s: TcpStream,
    read: usize,
}

impl Download {
    /// Reads until `n` more bytes came (or the deadline passed, or EOF): how many came.
    fn read(&mut self, n: usize, deadline: Instant) -> Result<usize, String> {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut got = 0;
        while got < n && Instant::now() < deadline {
            match self.s.read(&mut chunk[..(n - got).min(64 * 1024)]) {
                Ok(0) => return Err(format!("the download ended after {} bytes", self.read + got)),
                Ok(k) => got += k,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(e) => return Err(format!("reading the download after {} bytes: {e}", self.read + got)),
            }
        }
        self.read += got;
        Ok(got)
    }
}

/// A `GET` of `cfg.stall_path` (a long download, 1 GB through a tunnel), SO_RCVBUF 64 KiB: its
/// head and 1 MiB of its body read, then nothing for `cfg.hold_secs`; then 1 MiB more must come
/// within 5 s (the stream was stalled, not cut).
fn stalled_download(cfg: &Config) -> Result<String, String> {
    const SOME: usize = 1 << 20;
    let mut s = connect(cfg.addr, Some(64 * 1024))?;
    let req = format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", cfg.stall_path, cfg.host);
    s.write_all(req.as_bytes()).map_err(|e| format!("GET {}: {e}", cfg.stall_path))?;
    let (head, rest) = read_head(&mut s)?;
    let status = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {}: {status}", cfg.stall_path));
    }
    let mut d = Download { s, read: rest.len() };
    let first = d.read(SOME.saturating_sub(d.read), Instant::now() + IO_TIMEOUT)?;
    std::thread::sleep(Duration::from_secs_f64(cfg.hold_secs));
    let more = d.read(SOME, Instant::now() + IO_TIMEOUT)?;
    if more < SOME {
        return Err(format!("after the stall only {more} more bytes came within {IO_TIMEOUT:?}"));
    }
    Ok(format!(
        "GET {}: {} bytes read, then none for {:.0} s; then {} more within {IO_TIMEOUT:?}",
        cfg.stall_path,
        first + rest.len(),
        cfg.hold_secs,
        more
    ))
}

struct Outcome {
    name: String,
    ok: bool,
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Runs `attack` beside a canary and an RSS sampler, prints one line, and says whether it
/// passed: RSS growth over `baseline` within `bound` (when there is one), the canary's p99
/// within the bound, the attack itself fine.
fn scenario(cfg: &Config, baselines: &[u64], name: &str, bound: Option<u64>, attack: impl FnOnce() -> Result<String, String> + Send) -> Outcome {
    let starts: Vec<u64> = cfg.pids.iter().zip(baselines).map(|(&p, &b)| sys::rss_bytes(p).unwrap_or(b)).collect();
    let peaks: Vec<Peak> = cfg.pids.iter().map(|&p| Peak::start(p)).collect();
    let canary = match Canary::start(cfg) {
        Ok(c) => c,
        Err(e) => {
            for (peak, &pid) in peaks.into_iter().zip(&cfg.pids) {
                let _ = peak.finish(pid);
            }
            println!("{name}: FAIL: the canary could not connect: {e}");
            return Outcome { name: name.into(), ok: false };
        }
    };
    // The attack runs at the lowest priority: on this machine it shares the CPUs with the
    // canary, where a real attacker would be on another host. What is measured is how weir
    // shares its own time between the two.
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                sys::lowest_priority();
                attack()
            })
            .join()
            .unwrap_or_else(|_| Err("the attack thread panicked".into()))
    });
    let (p50, p99, samples, canary_err) = canary.finish();
    let peaks: Vec<u64> = peaks.into_iter().zip(&cfg.pids).map(|(peak, &pid)| peak.finish(pid)).collect();
    let mut fails = Vec::new();
    let detail = match &result {
        Ok(d) => format!("; {d}"),
        Err(e) => {
            fails.push(e.clone());
            String::new()
        }
    };
    let mut rss = Vec::new();
    for (((&pid, &baseline), &start), &peak) in cfg.pids.iter().zip(baselines).zip(&starts).zip(&peaks) {
        let growth = peak.saturating_sub(baseline);
        let who = if cfg.pids.len() > 1 { format!("pid {pid}: ") } else { String::new() };
        if let Some(b) = bound
            && growth > b
        {
            fails.push(format!("{who}RSS grew {:.1} MiB, over {:.1} MiB", growth as f64 / MIB, b as f64 / MIB));
        }
        rss.push(format!(
            "{who}RSS +{:.1} MiB over the baseline (peak {:.1} MiB, +{:.1} MiB during this scenario)",
            growth as f64 / MIB,
            peak as f64 / MIB,
            peak.saturating_sub(start) as f64 / MIB
        ));
    }
    if let Some(e) = canary_err {
        fails.push(e);
    }
    if samples == 0 || p99 > cfg.p99_ms {
        fails.push(format!("canary p99 {p99:.2} ms, over {:.2} ms", cfg.p99_ms));
    }
    for &pid in &cfg.pids {
        if !alive(pid) {
            fails.push(format!("the server (pid {pid}) died"));
        }
    }
    let bound_text = bound.map_or("no bound".into(), |b| format!("bound {:.0} MiB", b as f64 / MIB));
    println!(
        "{name}: {} ({bound_text}); canary p50 {p50:.2} ms, p99 {p99:.2} ms ({samples} round trips){detail}{}",
        rss.join(", "),
        if fails.is_empty() { ": ok".to_string() } else { format!(": FAIL: {}", fails.join("; ")) }
    );
    Outcome { name: name.into(), ok: fails.is_empty() }
}

pub const SCENARIOS: [&str; 6] = ["flood-echo", "flood-ws", "history", "events", "half-close", "tunnel-stall"];

/// Runs the chosen scenarios; Err (exit 1) names those that failed.
pub fn run(cfg: &Config) -> Result<String, String> {
    for s in &cfg.only {
        if !SCENARIOS.contains(&s.as_str()) {
            return Err(format!("unknown hostile scenario {s:?} (known: {})", SCENARIOS.join(", ")));
        }
    }
    // tunnel-stall needs a tunnel in front (benches/hostile.sh makes one): only when named.
    let want = |s: &str| (cfg.only.is_empty() && s != "tunnel-stall") || cfg.only.iter().any(|o| o == s);
    let mut baselines = Vec::new();
    for &pid in &cfg.pids {
        let b = sys::rss_bytes(pid)?;
        println!("hostile: pid {pid}, baseline RSS {:.1} MiB", b as f64 / MIB);
        baselines.push(b);
    }
    let baseline = &baselines[..];
    let channel = "hostile";
    let mut out = Vec::new();
    if want("flood-echo") {
        out.push(scenario(cfg, baseline, "ping flood /echo", Some(cfg.flood_bound), || ping_flood(cfg, "/echo")));
    }
    if want("flood-ws") {
        out.push(scenario(cfg, baseline, "ping flood /ws", Some(cfg.flood_bound), || ping_flood(cfg, "/ws")));
    }
    if want("history") || want("events") {
        fill_history(cfg, channel, 100, 60_000)?;
        println!("history: 100 x 60 KB published to {channel:?}; RSS {:.1} MiB", sys::rss_bytes(cfg.pids[0])? as f64 / MIB);
    }
    if want("history") {
        out.push(scenario(cfg, baseline, "history amplification", Some(cfg.amp_bound), || history_amplification(cfg, channel)));
    }
    if want("events") {
        out.push(scenario(cfg, baseline, "event-stream replay", Some(cfg.amp_bound), || event_replay(cfg, channel)));
    }
    if want("half-close") {
        out.push(scenario(cfg, baseline, "half-close", None, || half_close(cfg)));
    }
    if want("tunnel-stall") {
        out.push(scenario(cfg, baseline, "stalled download", Some(cfg.stall_bound), || stalled_download(cfg)));
    }
    let failed: Vec<&str> = out.iter().filter(|o| !o.ok).map(|o| o.name.as_str()).collect();
    let json = format!(
        "{{\"scenario\":\"hostile\",\"baseline_rss\":{},\"run\":{},\"failed\":{}}}",
        baselines[0],
        out.len(),
        failed.len()
    );
    if failed.is_empty() { Ok(json) } else { Err(format!("{} of {} hostile scenarios failed: {}", failed.len(), out.len(), failed.join(", "))) }
}
