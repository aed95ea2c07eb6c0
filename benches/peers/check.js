'use strict';
// Quick conformance check of one running peer.
//
//   node check.js ws  HOST:PORT   echo over WebSocket: text, 1 MiB and 16 MiB binary, a
//                                  fragmented text message, ping -> pong, close -> close
//   node check.js raw HOST:PORT   raw-tcp-echo: 101 with the right Sec-WebSocket-Accept, then
//                                  byte-for-byte echo (1 MiB, 16 MiB), and plain TCP echo
//   node check.js pubsub HOST:PORT uws-pubsub: a message on /pub reaches a subscriber and the
//                                  publisher; other paths echo
//   node check.js wss HOST:PORT   as `ws`, over TLS (wss://), verifying the server against the
//                                  CA in the PEM file TLS_CA only (rejectUnauthorized)
//
// Prints one line per step and exits non-zero on the first failure.

const net = require('net');
const crypto = require('crypto');
const WebSocket = require('ws');

const [mode, addr] = process.argv.slice(2);
const MAX = 64 * 1024 * 1024;
const TIMEOUT_MS = 30000;

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}
setTimeout(() => fail('timed out'), TIMEOUT_MS).unref();

// wss: trust the test CA only, and refuse anything that does not verify against it.
const tls = mode === 'wss'
  ? { ca: require('fs').readFileSync(process.env.TLS_CA || fail('wss needs TLS_CA=ca.pem')), rejectUnauthorized: true }
  : {};

function open(path) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${mode === 'wss' ? 'wss' : 'ws'}://${addr}${path}`, { maxPayload: MAX, perMessageDeflate: false, ...tls });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws) {
  return new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })));
}

async function roundTrip(ws, payload, binary) {
  const got = nextMessage(ws);
  ws.send(payload, { binary });
  const { data, isBinary } = await got;
  if (isBinary !== binary) fail(`sent ${binary ? 'binary' : 'text'}, got the other kind`);
  if (!Buffer.from(data).equals(Buffer.from(payload))) fail(`echo of ${payload.length} bytes differs`);
  console.log(`ok  ${binary ? 'binary' : 'text'} ${payload.length} bytes echoed`);
}

async function checkWs() {
  const ws = await open('/any/path?x=1');
  await roundTrip(ws, 'hi', false);
  await roundTrip(ws, crypto.randomBytes(1 << 20), true);
  await roundTrip(ws, crypto.randomBytes(16 << 20), true);

  // Many messages in flight at once: all come back, in order.
  const N = 2000;
  const all = new Promise((resolve) => {
    let i = 0;
    const onMessage = (data, isBinary) => {
      const want = i % 2 ? `m${i}` : Buffer.from([i & 0xff, i >> 8]);
      if (isBinary !== !(i % 2) || !Buffer.from(data).equals(Buffer.from(want))) fail(`pipelined message ${i} differs`);
      if (++i === N) {
        ws.removeListener('message', onMessage);
        resolve();
      }
    };
    ws.on('message', onMessage);
  });
  for (let i = 0; i < N; i++) ws.send(i % 2 ? `m${i}` : Buffer.from([i & 0xff, i >> 8]), { binary: !(i % 2) });
  await all;
  console.log(`ok  ${N} pipelined messages echoed in order`);

  const frag = nextMessage(ws);
  ws.send('hel', { fin: false });
  ws.send('lo wörld', { fin: true });
  const f = await frag;
  if (f.isBinary || f.data.toString() !== 'hello wörld') fail(`fragmented text came back as ${f.data}`);
  console.log('ok  fragmented text message echoed whole');

  const pong = new Promise((resolve) => ws.once('pong', resolve));
  ws.ping('are you there');
  if ((await pong).toString() !== 'are you there') fail('pong payload differs');
  console.log('ok  ping answered with pong');

  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  ws.close(1000, 'bye');
  const code = await closed;
  if (code !== 1000) fail(`close answered with ${code}`);
  console.log('ok  close answered with 1000');
}

function rawConnect() {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => resolve(s));
    s.once('error', reject);
  });
}

// Read from `s` until `n` bytes (or `until` returns an index) have arrived.
function readBytes(s, n) {
  return new Promise((resolve) => {
    const parts = [];
    let have = 0;
    const onData = (chunk) => {
      parts.push(chunk);
      have += chunk.length;
      if (have >= n) {
        s.removeListener('data', onData);
        const all = Buffer.concat(parts);
        if (all.length > n) s.unshift(all.subarray(n));
        resolve(all.subarray(0, n));
      }
    };
    s.on('data', onData);
  });
}

function readHead(s) {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        s.removeListener('data', onData);
        if (buf.length > end + 4) s.unshift(buf.subarray(end + 4));
        resolve(buf.subarray(0, end + 4).toString());
      }
    };
    s.on('data', onData);
  });
}

async function rawEcho(s, payload, label) {
  const got = readBytes(s, payload.length);
  s.write(payload);
  if (!(await got).equals(payload)) fail(`${label}: echo of ${payload.length} bytes differs`);
  console.log(`ok  ${label}: ${payload.length} bytes echoed byte for byte`);
}

async function checkRaw() {
  const s = await rawConnect();
  const head = readHead(s);
  // The request arrives in two pieces, so the "GET " detection is tested across reads.
  s.write('GE');
  await new Promise((r) => setTimeout(r, 50));
  s.write(
    'T /any/path HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const h = await head;
  if (!h.startsWith('HTTP/1.1 101 ')) fail(`no 101: ${JSON.stringify(h)}`);
  if (!h.includes('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n')) fail(`wrong accept: ${h}`);
  console.log('ok  upgrade answered 101 with the RFC 6455 example accept key');
  // A masked client frame ("Hello", RFC 6455 5.7) comes back as is.
  await rawEcho(s, Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]), 'upgraded');
  await rawEcho(s, crypto.randomBytes(1 << 20), 'upgraded');
  await rawEcho(s, crypto.randomBytes(16 << 20), 'upgraded');
  s.end();

  const p = await rawConnect();
  await rawEcho(p, Buffer.from([0x82, 0x02, 0x68, 0x69]), 'plain');
  await rawEcho(p, crypto.randomBytes(16 << 20), 'plain');
  const closed = new Promise((resolve) => p.once('close', resolve));
  p.end();
  await closed;
  console.log('ok  plain: server closed after our FIN');
}

async function checkPubsub() {
  const sub = await open('/');
  const pub = await open('/pub');
  const atSub = nextMessage(sub);
  const atPub = nextMessage(pub);
  const payload = crypto.randomBytes(1 << 20);
  pub.send(payload, { binary: true });
  for (const [who, p] of [['subscriber', atSub], ['publisher', atPub]]) {
    const { data, isBinary } = await p;
    if (!isBinary || !Buffer.from(data).equals(payload)) fail(`${who} got something else`);
    console.log(`ok  published 1 MiB reached the ${who}`);
  }
  await roundTrip(sub, 'hi', false);
  sub.close();
  pub.close();
}

const checks = { ws: checkWs, wss: checkWs, raw: checkRaw, pubsub: checkPubsub };
if (!checks[mode] || !addr) fail('usage: node check.js ws|wss|raw|pubsub HOST:PORT');
checks[mode]().then(
  () => process.exit(0),
  (err) => fail(err && err.stack ? err.stack : String(err)),
);
