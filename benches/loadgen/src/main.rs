//! loadgen: a single-threaded WebSocket load generator for weir's benchmarks.
//!
//! Built so that the server, not the generator, is the bottleneck: one thread on one pinned CPU,
//! edge-triggered mio, client frames masked once and reused, batched writes, echoes checked by
//! header, sequence tag and one memcmp. Any lost, duplicated, reordered or corrupted echo fails
//! the run (exit 1).

mod connrate;
mod engine;
mod fanout;
mod hostile;
mod stream;
mod sys;
mod ws;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use engine::Engine;
use stream::Tls;
use ws::Template;

const USAGE: &str = "\
loadgen SCENARIO [FLAGS]

Scenarios:
  echo      --conns N --inflight W --size S --kind text|binary [--raw] [--check-every K]
            [--open-concurrency K]
            N connections (opened K at a time, default 512, within 300 s), W messages in
            flight on each; msg/s and MB/s. --check-every K
            (default 1): every echo is read and compared whole. K > 1, for sizes over 4 KiB:
            every K-th echo of a connection is compared whole; the others have their header,
            sequence tag and first 4 KiB compared and the rest discarded by the kernel unread
            (recv MSG_TRUNC), so that the generator does less work per echo than any server
            (which must copy every byte in and out).
  latency   [--size 64] [--kind text|binary] [--raw]
            1 connection, 1 message in flight; RTT p50/p99/p99.9 in microseconds.
  connrate  --concurrency C [--raw]
            connect, upgrade, close handshake (1000), wait for the server's FIN; C at once.
  idle      --conns N --pid PID [--hold SECS] [--open-concurrency K]
            open N upgraded connections; server RSS (VmRSS of PID) per connection.
  fanout    --mode weir|uws --subs N [--rate R] [--window W] [--size S] [--open-concurrency K]
            [--pids P1,P2,..] [--redis-pid R]
            1 publisher, N subscribers on one channel: deliveries/s, publishes/s, delivery
            latency p50/p99 (us). weir: every connection to the hub at --url (/ws), subscribers
            subscribe to \"bench\", the publisher publishes {\"t\",\"n\",\"p\"} data with ids (its
            answers are its acks). uws (benches/peers/uws-pubsub.js): subscribers connect to
            --url, the publisher to /pub (its own copies are its acks). Every subscriber checks
            every message in order (n, and weir's seq), no gap, no duplicate. At most W
            publishes (default 32) not yet received by every subscriber; R publishes/s, 0 (the
            default) = as fast as that window allows. S = bytes of the data object (default 64,
            at least 46). Latency = receive time - t, on every 1/100th subscriber. --pids: the
            servers' CPU over the measured window (summed) and deliveries per server
            CPU-second; --redis-pid: Redis's CPU, reported apart.
  hostile   --pid PID[,PID...] [--scenarios LIST] [--pings N] [--flood-secs S] [--hold S]
            [--flood-bound SIZE] [--amp-bound SIZE] [--stall-bound SIZE] [--p99-ms MS]
            [--canary-path PATH] [--stall-path PATH]
            weir (the hub at /ws, echo at /echo, HTTP API) under hostile peers, one scenario at
            a time, each beside a canary echoing 64 B messages on /echo (--canary-path: another
            path, e.g. an echo behind a tunnel route) (p50/p99 reported):
            flood-echo, flood-ws: one connection (SO_RCVBUF 4 KiB) that never reads sends N
              (default 3,000,000) masked 125 B pings, for at most S s (default 20);
            history: 100 x 60 KB published over HTTP, then 10 /ws connections that never read
              send 5 history commands each, then a pong every second for --hold s;
            events: 20 event streams from seq 0 of that channel, never read, for --hold s;
            half-close: a 5 MiB frame to /echo, close 1000, shutdown(SHUT_WR), 64 KiB receive
              buffer: every echoed byte and the close 1000 must come back;
            tunnel-stall (only when named): GET --stall-path (a 1 GB download through a
              tunnel), 64 KiB receive buffer: 1 MiB of it read, then nothing for --hold s,
              then 1 MiB more must come within 5 s; each PID's RSS within --stall-bound
              (default 16MiB).
            Fails (exit 1) when the server's RSS grows over the baseline (VmRSS of PID before
            the first scenario) by more than --flood-bound (default 16MiB) in a flood or
            --amp-bound (default 64MiB) in history/events (each PID's: a tunnel's two ends),
            when the canary's p99 passes
            --p99-ms (default 5), when the half-close echo is incomplete, or the server dies.
            --scenarios: comma-separated, default all (benches/hostile.sh runs it).

Common flags:
  --url ws://127.0.0.1:PORT/PATH   target (127.0.0.1 only)           [default ws://127.0.0.1:8080/echo]
                                   wss://127.0.0.1:PORT/PATH: over TLS (echo, latency, connrate,
                                   idle): TLS 1.3 only, TLS13_AES_128_GCM_SHA256, X25519, ALPN
                                   http/1.1, no session resumption (every connection makes a
                                   full handshake); needs --ca
  --tls                            the same as a wss:// URL
  --ca FILE                        over TLS, trust only the PEM certificates in FILE
  --duration SECS                  measured time, after warm-up     [default 10]
  --warmup SECS                    warm-up, not measured            [default 1]
  --cpu N                          pin loadgen to CPU N             [default: not pinned]
  --offer-deflate                  upgrades offer permessage-deflate as browsers do (idle: the
                                   memory a server keeps once it agreed it)
  --deflate                        echo, latency: offer permessage-deflate (as browsers do) and
                                   require it; send a JSON text of --size bytes (128 B to 32 KiB)
                                   compressed (RFC 7692; made once by zlib with only the tag
                                   stored, so a send costs what a plain one does), inflate every
                                   compressed echo with zlib (the server's context kept if it
                                   keeps it) and check it whole; reports the bytes on the wire
  --raw                            the server echoes raw TCP bytes after the 101 (raw-tcp-echo):
                                   expect our own masked frames back
  --pid PID[,PID...]               the server's pid: echo, latency and connrate also report the
                                   CPU it used in the measured window (and loadgen's own), to
                                   show which side was the bottleneck. Several pids (a service
                                   behind a tunnel and the tunnel's two ends): the CPU and, for
                                   idle, the RSS are summed, and also reported per pid in that
                                   order (cpu_by_pid, bytes_per_conn_by_pid); hostile
                                   watches each one's RSS

Sizes accept a suffix: 64, 16KiB, 1MiB. Prints one human line and `RESULT {json}` (over TLS
with \"tls\": the version, suite and group negotiated).
Exit status: 0 ok, 1 failed run (lost/duplicated/reordered/corrupted echo, connection error,
connrate failures over 0.1%), 2 usage error.";

struct Args {
    scenario: String,
    url: String,
    duration: f64,
    warmup: f64,
    cpu: Option<usize>,
    conns: usize,
    inflight: usize,
    size: usize,
    kind: String,
    raw: bool,
    concurrency: usize,
    pids: Vec<u32>,
    hold: f64,
    check_every: u64,
    /// Connections still handshaking at once while opening (each scenario has its default).
    open_concurrency: Option<usize>,
    mode: String,
    subs: usize,
    redis_pid: Option<u32>,
    rate: f64,
    window: usize,
    scenarios: Vec<String>,
    pings: u64,
    flood_secs: f64,
    flood_bound: usize,
    amp_bound: usize,
    stall_bound: usize,
    canary_path: String,
    stall_path: String,
    p99_ms: f64,
    tls: bool,
    ca: Option<String>,
    deflate: bool,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let (num, mult) = if let Some(n) = s.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KiB") {
        (n, 1 << 10)
    } else if let Some(n) = s.strip_suffix('B') {
        (n, 1)
    } else {
        (s, 1)
    };
    num.trim().parse::<usize>().map(|n| n * mult).map_err(|_| format!("bad size {s:?}"))
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let scenario = it.next().ok_or("missing scenario")?;
    if scenario == "-h" || scenario == "--help" {
        return Err(String::new());
    }
    let mut a = Args {
        scenario,
        url: "ws://127.0.0.1:8080/echo".into(),
        duration: 10.0,
        warmup: 1.0,
        cpu: None,
        conns: 100,
        inflight: 1,
        size: 64,
        kind: "binary".into(),
        raw: false,
        concurrency: 32,
        pids: Vec::new(),
        hold: 5.0,
        check_every: 1,
        open_concurrency: None,
        mode: "weir".into(),
        subs: 1000,
        redis_pid: None,
        rate: 0.0,
        window: 32,
        scenarios: Vec::new(),
        pings: 3_000_000,
        flood_secs: 20.0,
        flood_bound: 16 << 20,
        amp_bound: 64 << 20,
        stall_bound: 16 << 20,
        canary_path: "/echo".into(),
        stall_path: String::new(),
        p99_ms: 5.0,
        tls: false,
        ca: None,
        deflate: false,
    };
    while let Some(flag) = it.next() {
        if flag == "--offer-deflate" {
            ws::OFFER_DEFLATE.store(true, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        if flag == "--raw" {
            a.raw = true;
            continue;
        }
        if flag == "--deflate" {
            a.deflate = true;
            ws::OFFER_DEFLATE.store(true, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        if flag == "--tls" {
            a.tls = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|_| format!("{flag}: bad number {v:?}"));
        let int = |v: &str| v.parse::<usize>().map_err(|_| format!("{flag}: bad integer {v:?}"));
        match flag.as_str() {
            "--url" => a.url = v,
            "--duration" => a.duration = num(&v)?,
            "--warmup" => a.warmup = num(&v)?,
            "--cpu" => a.cpu = Some(int(&v)?),
            "--conns" => a.conns = int(&v)?,
            "--inflight" => a.inflight = int(&v)?,
            "--size" => a.size = parse_size(&v)?,
            "--kind" => a.kind = v,
            "--concurrency" => a.concurrency = int(&v)?,
            "--pid" => a.pids = v.split(',').map(|p| int(p).map(|p| p as u32)).collect::<Result<_, _>>()?,
            "--hold" => a.hold = num(&v)?,
            "--check-every" => a.check_every = (int(&v)? as u64).max(1),
            "--open-concurrency" => a.open_concurrency = Some(int(&v)?.max(1)),
            "--mode" => a.mode = v,
            "--subs" => a.subs = int(&v)?,
            "--pids" => a.pids = v.split(',').filter(|s| !s.is_empty()).map(|p| int(p).map(|p| p as u32)).collect::<Result<_, _>>()?,
            "--redis-pid" => a.redis_pid = Some(int(&v)? as u32),
            "--rate" => a.rate = num(&v)?,
            "--window" => a.window = int(&v)?,
            "--scenarios" => a.scenarios = v.split(',').filter(|s| !s.is_empty()).map(String::from).collect(),
            "--pings" => a.pings = int(&v)? as u64,
            "--flood-secs" => a.flood_secs = num(&v)?,
            "--flood-bound" => a.flood_bound = parse_size(&v)?,
            "--amp-bound" => a.amp_bound = parse_size(&v)?,
            "--stall-bound" => a.stall_bound = parse_size(&v)?,
            "--canary-path" => a.canary_path = v,
            "--stall-path" => a.stall_path = v,
            "--p99-ms" => a.p99_ms = num(&v)?,
            "--ca" => a.ca = Some(v),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let ok = a.duration > 0.0 && a.duration <= 3600.0 && (0.0..=600.0).contains(&a.warmup) && (0.0..=3600.0).contains(&a.hold);
    if !ok {
        return Err("--duration must be in (0, 3600], --warmup in [0, 600], --hold in [0, 3600]".into());
    }
    if a.kind != "text" && a.kind != "binary" {
        return Err(format!("--kind must be text or binary, not {:?}", a.kind));
    }
    if a.size > 64 << 20 {
        return Err("--size at most 64MiB".into());
    }
    if a.deflate && (a.raw || a.check_every > 1 || !matches!(a.scenario.as_str(), "echo" | "latency")) {
        return Err("--deflate is for echo and latency, without --raw or --check-every".into());
    }
    a.tls |= a.url.starts_with("wss://");
    if a.tls {
        if a.ca.is_none() {
            return Err("over TLS, --ca FILE (the CA the server's certificate chains to)".into());
        }
        if a.raw || a.check_every > 1 {
            return Err("--raw and --check-every K > 1 are for plain TCP (TLS records are read whole)".into());
        }
        if matches!(a.scenario.as_str(), "fanout" | "hostile") {
            return Err("TLS is for echo, latency, connrate and idle".into());
        }
    } else if a.ca.is_some() {
        return Err("--ca is for TLS (a wss:// URL or --tls)".into());
    }
    Ok(a)
}

/// The target of echo, latency, connrate and idle: address, Host header value, path, and TLS
/// when the URL is wss:// (or --tls).
fn target(a: &Args) -> Result<(SocketAddr, String, String, Option<Tls>), String> {
    let (addr, host, path) = parse_url(&a.url.replacen("wss://", "ws://", 1))?;
    let tls = match (&a.ca, a.tls) {
        (Some(ca), true) => Some(Tls::new(&host, ca)?),
        _ => None,
    };
    Ok((addr, host, path, tls))
}

/// `"tls":...` for a RESULT line, and a phrase for the human one.
fn tls_fields(desc: &Option<String>) -> (String, String) {
    match desc {
        Some(d) => (format!("\"tls\":\"{d}\""), format!("; {d}")),
        None => ("\"tls\":null".into(), String::new()),
    }
}

/// `"deflate":...` for a RESULT line (what was agreed, the payload bytes per message each way
/// on the wire, how many echoes came compressed), and a phrase for the human one.
fn deflate_fields(ctx: &engine::Ctx) -> (String, String) {
    if !ctx.deflate {
        return ("\"deflate\":null".into(), String::new());
    }
    let up = ctx.tpl.mean_frame_len() - ctx.tpl.header_len as f64;
    let n = ctx.compressed_echoes + ctx.plain_echoes;
    let down = (ctx.wire_down + ctx.plain_down) as f64 / n.max(1) as f64;
    let ext = ctx.extension.clone().unwrap_or_default().replace('"', "'");
    (
        format!(
            "\"deflate\":{{\"agreed\":\"{ext}\",\"wire_up_bytes\":{up:.1},\"wire_down_bytes\":{down:.1},\"compressed_echoes\":{},\"plain_echoes\":{}}}",
            ctx.compressed_echoes, ctx.plain_echoes
        ),
        format!("; deflate {ext:?}: {up:.0} B up, {down:.0} B down per message, {} of {n} echoes compressed", ctx.compressed_echoes),
    )
}

/// (address, Host header value, path) of a ws://127.0.0.1:PORT/PATH URL.
fn parse_url(url: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = url.strip_prefix("ws://").ok_or(format!("--url must start with ws:// ({url})"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("--url {url}: {e}"))?
        .next()
        .ok_or(format!("--url {url}: no address"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("--url {url}: only loopback targets are allowed"));
    }
    Ok((addr, hostport.to_string(), path))
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn opcode(kind: &str) -> u8 {
    if kind == "text" { ws::OP_TEXT } else { ws::OP_BINARY }
}

/// Opens `n` connections (at most `k` upgrading at once) and waits for all to be open.
fn open_all(e: &mut Engine, n: usize, k: usize, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while e.ctx.opened < n {
        while e.conns.len() < n && e.conns.len() - e.ctx.opened < k {
            e.connect()?;
        }
        if Instant::now() >= deadline {
            return Err(format!("only {} of {n} connections opened within {limit:?}", e.ctx.opened));
        }
        e.turn(Duration::from_millis(20))?;
    }
    Ok(())
}

fn echo(a: &Args, latency: bool) -> Result<String, String> {
    let (addr, host, path, tls) = target(a)?;
    let (conns, inflight) = if latency { (1, 1) } else { (a.conns, a.inflight) };
    if conns == 0 || conns > 19_500 || inflight == 0 || inflight > 4096 {
        return Err("--conns in 1..=19500, --inflight in 1..=4096".into());
    }
    let tpl = if a.deflate { Template::deflated(opcode(&a.kind), a.size)? } else { Template::new(opcode(&a.kind), a.size) };
    let mut e = Engine::new(addr, &host, &path, tls, tpl, a.raw, inflight, 64 * 1024)?;
    e.ctx.check_every = a.check_every;
    e.ctx.deflate = a.deflate;
    // 10,000 streams through ssh -R open at about 100 a second (docs/tunnel.md).
    open_all(&mut e, conns, a.open_concurrency.unwrap_or(512), Duration::from_secs(300))?;
    let t0 = Instant::now();
    e.run_until(t0 + secs(a.warmup))?;
    let (r0, m0) = (e.ctx.received, Instant::now());
    let meter = sys::CpuMeter::start(&a.pids);
    e.ctx.record_rtt = latency;
    e.run_until(m0 + secs(a.duration))?;
    let (r1, m1) = (e.ctx.received, Instant::now());
    let (cpu_json, cpu_human) = sys::cpu_fields(meter.stop());
    e.ctx.record_rtt = false;
    e.ctx.running = false;
    // Drain: every frame sent must come back.
    let drained = e.run_while(Instant::now() + Duration::from_secs(10), |e| e.outstanding() == 0)?;
    if !drained {
        return Err(format!("{} echoes never came back (lost) within 10 s of the end", e.outstanding()));
    }
    let elapsed = (m1 - m0).as_secs_f64();
    let msgs = (r1 - r0) as f64 / elapsed;
    let mbps = msgs * a.size as f64 / 1e6;
    let wire_up = msgs * e.ctx.tpl.mean_frame_len() / 1e6;
    let total: u64 = e.conns.iter().map(|c| c.next_recv).sum();
    let (tls_json, tls_human) = tls_fields(&e.ctx.tls_desc);
    if latency {
        let mut v = std::mem::take(&mut e.ctx.rtts_ns);
        if v.is_empty() {
            return Err("no round trip completed".into());
        }
        v.sort_unstable();
        let pct = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0;
        let (p50, p99, p999, max) = (pct(0.50), pct(0.99), pct(0.999), *v.last().unwrap_or(&0) as f64 / 1000.0);
        let mean = v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0;
        println!(
            "latency {} B {}: {} samples, p50 {p50:.1} us, p99 {p99:.1} us, p99.9 {p999:.1} us, max {max:.1} us ({msgs:.0} msg/s; {cpu_human}{tls_human})",
            a.size, a.kind, v.len()
        );
        return Ok(format!(
            "{{\"scenario\":\"latency\",\"size\":{},\"kind\":\"{}\",\"raw\":{},\"samples\":{},\"p50_us\":{p50:.2},\"p99_us\":{p99:.2},\"p999_us\":{p999:.2},\"max_us\":{max:.2},\"mean_us\":{mean:.2},\"msgs_per_sec\":{msgs:.1},\"seconds\":{elapsed:.3},\"echoes_checked\":{total},{cpu_json},{tls_json}}}",
            a.size, a.kind, a.raw, v.len()
        ));
    }
    let (deflate_json, deflate_human) = deflate_fields(&e.ctx);
    println!(
        "echo {} conns x {} in flight, {} B {}: {msgs:.0} msg/s, {mbps:.2} MB/s payload each way ({} echoes checked, {} of them whole, {} came fragmented; {:.1} s; {cpu_human}{tls_human}{deflate_human})",
        conns, inflight, a.size, a.kind, total, e.ctx.checked_in_full, e.ctx.fragmented_echoes, elapsed
    );
    Ok(format!(
        "{{\"scenario\":\"echo\",\"conns\":{conns},\"inflight\":{inflight},\"size\":{},\"kind\":\"{}\",\"raw\":{},\"msgs_per_sec\":{msgs:.1},\"mb_per_sec_up\":{mbps:.3},\"mb_per_sec_down\":{mbps:.3},\"wire_mb_per_sec_up\":{wire_up:.3},\"seconds\":{elapsed:.3},\"echoes_checked\":{total},\"checked_whole\":{},\"fragmented_echoes\":{},\"check_every\":{},\"pings\":{},{cpu_json},{tls_json},{deflate_json}}}",
        a.size, a.kind, a.raw, e.ctx.checked_in_full, e.ctx.fragmented_echoes, a.check_every, e.ctx.pings
    ))
}

fn connrate(a: &Args) -> Result<String, String> {
    let (addr, host, path, tls) = target(a)?;
    if a.concurrency == 0 || a.concurrency > 10_000 {
        return Err("--concurrency in 1..=10000".into());
    }
    let (n, elapsed, st, cpu) = connrate::run(addr, &host, &path, tls, a.raw, a.concurrency, secs(a.warmup), secs(a.duration), &a.pids)?;
    let (cpu_json, cpu_human) = sys::cpu_fields(cpu);
    let rate = n as f64 / elapsed.as_secs_f64();
    let attempts = st.completed + st.failed;
    let (tls_json, tls_human) = tls_fields(&st.tls_desc);
    let no_notify = if a.tls { format!("; {} without close_notify", st.no_close_notify) } else { String::new() };
    println!(
        "connrate C={}: {rate:.0} conn/s ({} completed, {} failed of {attempts} attempts; {cpu_human}{tls_human}{no_notify}){}",
        a.concurrency,
        st.completed,
        st.failed,
        if st.errors.is_empty() { String::new() } else { format!("; first errors: {:?}", st.errors) }
    );
    let json = format!(
        "{{\"scenario\":\"connrate\",\"concurrency\":{},\"raw\":{},\"conns_per_sec\":{rate:.1},\"completed\":{},\"failed\":{},\"seconds\":{:.3},\"no_close_notify\":{},{cpu_json},{tls_json}}}",
        a.concurrency,
        a.raw,
        st.completed,
        st.failed,
        elapsed.as_secs_f64(),
        st.no_close_notify
    );
    if st.failed * 1000 > attempts {
        println!("RESULT {json}");
        return Err(format!("{} of {attempts} connection attempts failed (over 0.1%)", st.failed));
    }
    Ok(json)
}

fn idle(a: &Args) -> Result<String, String> {
    let (addr, host, path, tls) = target(a)?;
    if a.pids.is_empty() {
        return Err("idle needs --pid PID[,PID...] (the server's)".into());
    }
    let n = a.conns;
    if n == 0 || n > 19_500 {
        return Err("--conns in 1..=19500 (20,000 open files per process)".into());
    }
    // Each pid's VmRSS; the server's is their sum.
    let rss = || a.pids.iter().map(|&p| sys::rss_bytes(p)).collect::<Result<Vec<u64>, String>>();
    let before_each = rss()?;
    let before: u64 = before_each.iter().sum();
    let mut e = Engine::new(addr, &host, &path, tls, Template::new(ws::OP_BINARY, 0), a.raw, 0, 512)?;
    let t_open = Instant::now();
    // 300 s: 10,000 streams through ssh -R take about 100 s to open on a loaded machine.
    open_all(&mut e, n, a.open_concurrency.unwrap_or(256), Duration::from_secs(300))?;
    let open_secs = t_open.elapsed().as_secs_f64();
    // Settle: sample once a second until two samples agree within 1% (at most 10 samples).
    let mut after_each = rss()?;
    let mut prev: u64 = after_each.iter().sum();
    for _ in 0..10 {
        e.run_until(Instant::now() + Duration::from_secs(1))?;
        after_each = rss()?;
        let after: u64 = after_each.iter().sum();
        if after.abs_diff(prev) <= (after / 100).max(64 * 1024) {
            break;
        }
        prev = after;
    }
    let after: u64 = after_each.iter().sum();
    let by_pid: Vec<Option<f64>> = before_each.iter().zip(&after_each).map(|(&b, &f)| Some((f as f64 - b as f64) / n as f64)).collect();
    let per_conn = (after as f64 - before as f64) / n as f64;
    e.run_until(Instant::now() + secs(a.hold))?;
    if e.ctx.opened != n || e.ctx.closed != 0 {
        return Err(format!("{} of {n} connections still open after the hold", e.ctx.opened - e.ctx.closed));
    }
    e.close_all()?;
    let all_closed = e.run_while(Instant::now() + Duration::from_secs(5), |e| e.ctx.closed == n)?;
    let closed = e.ctx.closed;
    let (tls_json, tls_human) = tls_fields(&e.ctx.tls_desc);
    println!(
        "idle {n} conns: {per_conn:.0} bytes/conn (server RSS {:.1} MiB -> {:.1} MiB; opened in {open_secs:.1} s; {} pings answered; {closed} closed cleanly{}{tls_human})",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        e.ctx.pings,
        if all_closed { "" } else { ", the rest dropped" }
    );
    Ok(format!(
        "{{\"scenario\":\"idle\",\"conns\":{n},\"bytes_per_conn\":{per_conn:.1},\"rss_before\":{before},\"rss_after\":{after},\"open_seconds\":{open_secs:.3},\"pings\":{},\"closed_cleanly\":{closed},{by_pid}{tls_json}}}",
        e.ctx.pings,
        by_pid = if by_pid.len() > 1 { format!("\"bytes_per_conn_by_pid\":{},", sys::json_list(&by_pid, 1)) } else { String::new() }
    ))
}

fn fanout(a: &Args) -> Result<String, String> {
    let (addr, host, path) = parse_url(&a.url)?;
    let mode = match a.mode.as_str() {
        "weir" => fanout::Mode::Weir,
        "uws" => fanout::Mode::Uws,
        m => return Err(format!("--mode must be weir or uws, not {m:?}")),
    };
    if a.subs == 0 || a.subs > 19_500 {
        return Err("--subs in 1..=19500 (20,000 open files per process)".into());
    }
    if a.window == 0 || a.window > 1 << 20 {
        return Err("--window in 1..=1048576".into());
    }
    if !(0.0..=10_000_000.0).contains(&a.rate) {
        return Err("--rate in 0..=10000000 (0 = as fast as the window allows)".into());
    }
    if a.size > 1 << 20 {
        return Err("--size at most 1MiB for fanout".into());
    }
    let cfg = fanout::Config {
        addr,
        host,
        path,
        mode,
        subs: a.subs,
        rate: a.rate,
        window: a.window,
        size: a.size,
        warmup: secs(a.warmup),
        duration: secs(a.duration),
        open_concurrency: a.open_concurrency.unwrap_or(256),
        pids: a.pids.clone(),
        redis_pid: a.redis_pid,
    };
    let r = fanout::run(&cfg)?;
    let v = &r.latencies_ns;
    if v.is_empty() {
        return Err("no delivery was sampled for latency".into());
    }
    let pct = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0;
    let (p50, p99, p999, max) = (pct(0.50), pct(0.99), pct(0.999), *v.last().unwrap_or(&0) as f64 / 1000.0);
    let mean = v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0;
    let rate = if a.rate > 0.0 { format!("{:.0}/s", a.rate) } else { "max".to_string() };
    println!(
        "fanout {} {} subs, {} B data, rate {rate}, window {}: {:.0} deliveries/s, {:.1} publishes/s, latency p50 {p50:.0} us, p99 {p99:.0} us, p99.9 {p999:.0} us, max {max:.0} us ({} samples from {} subs; {} deliveries of {} publishes checked; opened in {:.1} s)",
        a.mode, a.subs, a.size, a.window, r.deliveries_per_sec, r.publishes_per_sec, v.len(), r.sampled_subs, r.delivered, r.published, r.open_seconds
    );
    let opt = |x: Option<f64>| x.map_or("null".to_string(), |x| format!("{x:.3}"));
    let per_cpu = r.server_cpu.filter(|c| *c > 0.0).map(|c| r.deliveries_per_sec / c);
    println!(
        "fanout CPU: servers {}, redis {}, loadgen {:.3} (shares of one CPU); {} deliveries per server CPU-second",
        opt(r.server_cpu),
        opt(r.redis_cpu),
        r.loadgen_cpu,
        per_cpu.map_or("?".to_string(), |x| format!("{x:.0}"))
    );
    if a.rate > 0.0 && r.publishes_per_sec < a.rate * 0.95 {
        println!("note: publishes/s below the target {:.0}/s: the server (or loadgen) did not keep up within the window", a.rate);
    }
    Ok(format!(
        "{{\"scenario\":\"fanout\",\"mode\":\"{}\",\"subs\":{},\"size\":{},\"frame_len\":{},\"rate\":{},\"window\":{},\"deliveries_per_sec\":{:.1},\"publishes_per_sec\":{:.2},\"p50_us\":{p50:.1},\"p99_us\":{p99:.1},\"p999_us\":{p999:.1},\"max_us\":{max:.1},\"mean_us\":{mean:.1},\"samples\":{},\"sampled_subs\":{},\"seconds\":{:.3},\"open_seconds\":{:.3},\"published\":{},\"deliveries_checked\":{},\"pings\":{},\"server_cpu\":{},\"redis_cpu\":{},\"loadgen_cpu\":{:.3},\"deliveries_per_server_cpu_sec\":{}}}",
        a.mode, a.subs, a.size, r.frame_len, a.rate, a.window, r.deliveries_per_sec, r.publishes_per_sec, v.len(), r.sampled_subs, r.seconds, r.open_seconds, r.published, r.delivered, r.pings,
        opt(r.server_cpu), opt(r.redis_cpu), r.loadgen_cpu, per_cpu.map_or("null".to_string(), |x| format!("{x:.1}"))
    ))
}

fn hostile(a: &Args) -> Result<String, String> {
    let (addr, host, _) = parse_url(&a.url)?;
    if a.pids.is_empty() {
        return Err("hostile needs --pid PID[,PID...] (the server's; a tunnel's two ends)".into());
    }
    if a.scenarios.iter().any(|s| s == "tunnel-stall") && !a.stall_path.starts_with('/') {
        return Err("tunnel-stall needs --stall-path /PATH (a long download)".into());
    }
    if a.pings > 100_000_000 || !(0.0..=600.0).contains(&a.flood_secs) || a.hold > 600.0 {
        return Err("--pings at most 100000000, --flood-secs and --hold at most 600".into());
    }
    hostile::run(&hostile::Config {
        addr,
        host,
        pids: a.pids.clone(),
        canary_path: a.canary_path.clone(),
        stall_path: a.stall_path.clone(),
        only: a.scenarios.clone(),
        pings: a.pings,
        flood_secs: a.flood_secs,
        hold_secs: a.hold,
        flood_bound: a.flood_bound as u64,
        amp_bound: a.amp_bound as u64,
        stall_bound: a.stall_bound as u64,
        p99_ms: a.p99_ms,
    })
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if e.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("loadgen: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    sys::raise_nofile();
    if let Some(cpu) = a.cpu
        && let Err(e) = sys::pin_cpu(cpu) {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    let r = match a.scenario.as_str() {
        "echo" => echo(&a, false),
        "latency" => echo(&a, true),
        "connrate" => connrate(&a),
        "idle" => idle(&a),
        "fanout" => fanout(&a),
        "hostile" => hostile(&a),
        s => {
            eprintln!("loadgen: unknown scenario {s:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(json) => {
            println!("RESULT {json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
