'use strict';
// The Socket.IO side of benches/loadgen's `fanout` (benches/loadgen/src/fanout.rs), written
// with socket.io-client because that is how a Socket.IO server is spoken to: 1 publisher and N
// subscribers on the room of socketio-pubsub.js, closed loop, the same checks and the same
// `RESULT {json}` line as loadgen, so benches/run.sh and report.py take it as they take loadgen.
//
// Every subscriber (and the publisher, whose own copy is its acknowledgement) joins the room
// on connect; the publisher emits `publish` with {t, n, p}: t the send time (ns since the
// generator started), n the publish number, p padding so that the JSON of the data object is
// --size bytes. Every subscriber checks every message: n exactly the next one (no gap,
// duplicate or reordering), p as sent. At most --window publishes are outstanding, counted
// until every subscriber has one (and the publisher's copy came back); --rate R publishes at
// R/s within that window (0, the default: as fast as the window allows). Latency = receive time
// - t, on every 1/100th subscriber, in the measured window only.
//
// Subscriber i connects to the (i mod k)-th of the k --urls; the publisher to the first.
// --pids: the servers' pids, whose CPU time over the measured window is reported (summed, as a
// share of one CPU) with the deliveries per server CPU-second; --redis-pid: Redis's, apart.
//
// Usage: node socketio-fanout.js --urls http://127.0.0.1:P1[,http://127.0.0.1:P2] --subs N
//        [--window 32] [--size 64] [--rate R] [--duration 10] [--warmup 1]
//        [--open-concurrency 256]
//        [--pids P1,P2] [--redis-pid R]
// Exit status: 0 ok, 1 failed run, 2 usage error.

const fs = require('fs');
const { execFileSync } = require('child_process');
const { io } = require('socket.io-client');

function usage(msg) {
  console.error(`socketio-fanout: ${msg}`);
  process.exit(2);
}

function parseArgs(argv) {
  const a = { urls: [], subs: 1000, window: 32, size: 64, rate: 0, duration: 10, warmup: 1, openConcurrency: 256, pids: [], redisPid: null };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, v] = [argv[i], argv[i + 1]];
    if (v === undefined) usage(`${flag} needs a value`);
    const int = () => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) usage(`${flag}: bad integer ${v}`);
      return n;
    };
    switch (flag) {
      case '--urls': a.urls = v.split(',').filter(Boolean); break;
      case '--subs': a.subs = int(); break;
      case '--window': a.window = int(); break;
      case '--size': a.size = int(); break;
      case '--rate': a.rate = Number(v); break;
      case '--duration': a.duration = Number(v); break;
      case '--warmup': a.warmup = Number(v); break;
      case '--open-concurrency': a.openConcurrency = int(); break;
      case '--pids': a.pids = v.split(',').filter(Boolean).map(Number); break;
      case '--redis-pid': a.redisPid = int(); break;
      default: usage(`unknown flag ${flag}`);
    }
  }
  if (a.urls.length === 0) usage('--urls is needed');
  if (a.subs < 1 || a.subs > 19500) usage('--subs in 1..19500');
  if (a.window < 1) usage('--window at least 1');
  if (!(a.rate >= 0 && a.rate <= 1e7)) usage('--rate in 0..10000000 (0 = as fast as the window allows)');
  if (!(a.duration > 0 && a.duration <= 3600) || !(a.warmup >= 0 && a.warmup <= 600)) usage('--duration in (0, 3600], --warmup in [0, 600]');
  return a;
}

const a = parseArgs(process.argv.slice(2));
const T0 = process.hrtime.bigint();
const nowNs = () => Number(process.hrtime.bigint() - T0);
// {"t":T,"n":N,"p":"..."} is --size bytes of JSON with T and N of 16 and 12 digits at most.
const PAD = 'x'.repeat(Math.max(0, a.size - (5 + 16 + 5 + 12 + 6 + 2)));

// CPU time of a process so far (utime + stime of /proc/PID/stat), in seconds.
const HZ = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();
function cpuSeconds(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / HZ;
}
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

let failed = false;
function fail(msg) {
  if (failed) return;
  failed = true;
  console.log(`socketio-fanout: ${msg}`);
  process.exit(1);
}

const st = {
  ready: 0,
  publishing: false,
  sent: 0,
  acked: 0,
  done: 0,
  counts: new Uint32Array(a.window),
  delivered: 0,
  recording: false,
  lat: [],
};
const subs = [];
let pub = null;

// With --rate: when publishing started (ns), so publish k is due at start + k / rate.
let paceFrom = 0;

function pump() {
  if (!st.publishing || !pub) return;
  const due = a.rate > 0 ? Math.floor(((nowNs() - paceFrom) / 1e9) * a.rate) + 1 : Infinity;
  while (st.sent < st.done + a.window && st.sent < st.acked + a.window && st.sent < due) {
    pub.emit('publish', { t: nowNs(), n: st.sent, p: PAD });
    st.sent += 1;
  }
}

function onDelivery(sub, d) {
  if (!d || d.n !== sub.next) {
    const n = d && d.n;
    fail(`subscriber #${sub.idx}: ${typeof n === 'number' && n < sub.next ? 'duplicated or reordered' : 'gap: lost or reordered'}: got n=${n}, expected n=${sub.next}`);
    return;
  }
  if (d.n >= st.sent) return fail(`subscriber #${sub.idx}: got n=${d.n}, never published (${st.sent} sent)`);
  if (d.p !== PAD) return fail(`subscriber #${sub.idx}: corrupted data for n=${d.n}`);
  sub.next += 1;
  st.delivered += 1;
  const slot = d.n % a.window;
  st.counts[slot] += 1;
  if (sub.sampled && st.recording) st.lat.push(nowNs() - d.t);
  if (d.n === st.done) {
    while (st.done < st.sent && st.counts[st.done % a.window] === a.subs) {
      st.counts[st.done % a.window] = 0;
      st.done += 1;
    }
    pump();
  }
}

function onAck(d) {
  if (!d || d.n !== st.acked || d.n >= st.sent || d.p !== PAD) {
    return fail(`publisher: acknowledgement of publish ${d && d.n}, expected ${st.acked} (${st.sent} sent)`);
  }
  st.acked += 1;
  pump();
}

function connect(url, onReady) {
  const s = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 30000 });
  s.on('connect', onReady);
  s.on('connect_error', (e) => fail(`connect to ${url}: ${e.message}`));
  s.on('disconnect', (why) => fail(`${url}: disconnected (${why}) after ${st.ready} connections were ready`));
  return s;
}

function openAll() {
  return new Promise((resolve) => {
    const stride = Math.max(1, Math.floor(a.subs / 100));
    let opened = 0;
    const next = () => {
      while (opened < a.subs && opened - st.ready < a.openConcurrency) {
        const idx = opened++;
        const sub = { idx, next: 0, sampled: idx % stride === 0 };
        subs.push(sub);
        sub.socket = connect(a.urls[idx % a.urls.length], () => {
          st.ready += 1;
          if (st.ready === a.subs) {
            pub = connect(a.urls[0], () => resolve());
            pub.on('message', onAck);
          } else {
            next();
          }
        });
        sub.socket.on('message', (d) => onDelivery(sub, d));
      }
    };
    next();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  // A run that cannot open its connections fails instead of hanging.
  const openTimer = setTimeout(() => fail(`only ${st.ready} of ${a.subs} subscribers connected within 120 s`), 120000);
  const tOpen = Date.now();
  await openAll();
  clearTimeout(openTimer);
  const openSeconds = (Date.now() - tOpen) / 1000;
  st.publishing = true;
  paceFrom = nowNs();
  // Paced: a publish may fall due while nothing arrives, so look every millisecond.
  const pacer = a.rate > 0 ? setInterval(pump, 1) : null;
  pump();
  await sleep(a.warmup * 1000);
  const cpu0 = a.pids.map(cpuSeconds);
  const redis0 = a.redisPid ? cpuSeconds(a.redisPid) : 0;
  const self0 = selfCpu();
  const [d0, s0, m0] = [st.delivered, st.sent, process.hrtime.bigint()];
  st.recording = true;
  await sleep(a.duration * 1000);
  const [d1, s1, m1] = [st.delivered, st.sent, process.hrtime.bigint()];
  st.recording = false;
  const secs = Number(m1 - m0) / 1e9;
  const serverCpu = a.pids.length ? a.pids.map((p, i) => cpuSeconds(p) - cpu0[i]).reduce((x, y) => x + y, 0) / secs : null;
  const redisCpu = a.redisPid ? (cpuSeconds(a.redisPid) - redis0) / secs : null;
  const selfShare = (selfCpu() - self0) / secs;
  st.publishing = false;
  if (pacer) clearInterval(pacer);
  // Drain: every publish must reach every subscriber, and be acknowledged, within 60 s: a
  // window of 32 publishes to 10,000 subscribers is 320,000 deliveries, which Socket.IO took
  // 15 s to make on the loaded benchmark machine (loadgen allows 10 s).
  const drainUntil = Date.now() + 60000;
  while (!(st.done === st.sent && st.acked === st.sent)) {
    if (Date.now() > drainUntil) {
      const behind = subs.find((s) => s.next < st.sent);
      return fail(`not drained within 60 s of the end: ${st.sent} published, ${st.done} received by every subscriber, ${st.acked} acknowledged${behind ? `; subscriber #${behind.idx} has ${behind.next} of them` : ''}`);
    }
    await sleep(10);
  }
  if (st.delivered !== st.sent * a.subs) return fail(`${st.delivered} deliveries counted, expected ${st.sent} x ${a.subs}`);
  const v = st.lat.sort((x, y) => x - y);
  if (v.length === 0) return fail('no delivery was sampled for latency');
  const pct = (p) => v[Math.min(v.length, Math.max(1, Math.ceil(v.length * p))) - 1] / 1000;
  const [p50, p99, p999, max] = [pct(0.5), pct(0.99), pct(0.999), v[v.length - 1] / 1000];
  const mean = v.reduce((x, y) => x + y, 0) / v.length / 1000;
  const dps = (d1 - d0) / secs;
  const pps = (s1 - s0) / secs;
  const perCpu = serverCpu ? dps / serverCpu : null;
  const f1 = (x) => (x === null ? 'null' : x.toFixed(3));
  console.log(`fanout socketio ${a.subs} subs over ${a.urls.length} server(s), ${a.size} B data, window ${a.window}, rate ${a.rate > 0 ? `${a.rate}/s` : 'max'}: ${dps.toFixed(0)} deliveries/s, ${pps.toFixed(1)} publishes/s, latency p50 ${p50.toFixed(0)} us, p99 ${p99.toFixed(0)} us, p99.9 ${p999.toFixed(0)} us, max ${max.toFixed(0)} us (${v.length} samples; ${st.delivered} deliveries of ${st.sent} publishes checked; opened in ${openSeconds.toFixed(1)} s; server CPU ${serverCpu === null ? '?' : (serverCpu * 100).toFixed(0)}%, redis CPU ${redisCpu === null ? '-' : (redisCpu * 100).toFixed(0)}%, generator CPU ${(selfShare * 100).toFixed(0)}%)`);
  const json = `{"scenario":"fanout","mode":"socketio","subs":${a.subs},"servers":${a.urls.length},"size":${a.size},"rate":${a.rate},"window":${a.window},"deliveries_per_sec":${dps.toFixed(1)},"publishes_per_sec":${pps.toFixed(2)},"p50_us":${p50.toFixed(1)},"p99_us":${p99.toFixed(1)},"p999_us":${p999.toFixed(1)},"max_us":${max.toFixed(1)},"mean_us":${mean.toFixed(1)},"samples":${v.length},"seconds":${secs.toFixed(3)},"open_seconds":${openSeconds.toFixed(3)},"published":${st.sent},"deliveries_checked":${st.delivered},"server_cpu":${f1(serverCpu)},"redis_cpu":${f1(redisCpu)},"loadgen_cpu":${selfShare.toFixed(3)},"deliveries_per_server_cpu_sec":${perCpu === null ? 'null' : perCpu.toFixed(1)}}`;
  console.log(`RESULT ${json}`);
  process.exit(0);
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
