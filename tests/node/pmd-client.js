// A Node `ws` client with permessage-deflate, for tests/compression.rs: connects to argv[2],
// prints `EXT <the Sec-WebSocket-Extensions answer>`, echoes a set of messages through the
// server (text, binary, large, fragmented, below the threshold) and checks each one, then closes
// with a reason and prints `CLOSE <code> <reason>`. Options (argv[3], JSON) go to ws's
// perMessageDeflate. Any mismatch prints `FAIL ...` and exits 1.
'use strict';
const WebSocket = require('ws');

const url = process.argv[2];
const pmd = JSON.parse(process.argv[3] || '{}');
const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0, ...pmd } });
const fail = (why) => { console.log('FAIL ' + why); process.exit(1); };
setTimeout(() => fail('timeout'), 20000).unref();

const json = JSON.stringify({ type: 'message', channel: 'builds', data: { status: 'green' } });
const big = Buffer.alloc(3 << 20);
for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
const cases = [
  ['text', json],
  ['text', json.repeat(500)],
  ['binary', Buffer.from([0, 1, 2, 255])],
  ['binary', big],
  ['text', 'caf\u00e9 \u{1f600} '.repeat(1000)],
  ['frag', ['part one, ', 'part two, ', 'part three']],
  ['text', ''],
];
let next = 0;
let expected = null;

function send() {
  if (next === cases.length) { ws.close(4000, 'done here'); return; }
  const [kind, data] = cases[next++];
  if (kind === 'frag') {
    expected = data.join('');
    data.forEach((p, i) => ws.send(p, { fin: i === data.length - 1, binary: false }));
  } else {
    expected = data;
    ws.send(data, { binary: kind === 'binary' });
  }
}

ws.on('upgrade', (res) => console.log('EXT ' + (res.headers['sec-websocket-extensions'] || '')));
ws.on('open', send);
ws.on('message', (data, isBinary) => {
  const want = Buffer.isBuffer(expected) ? expected : Buffer.from(expected);
  if (Buffer.isBuffer(expected) !== isBinary) fail(`message ${next}: binary ${isBinary}`);
  if (!Buffer.from(data).equals(want)) fail(`message ${next}: ${data.length} bytes, wanted ${want.length}`);
  send();
});
ws.on('close', (code, reason) => { console.log(`CLOSE ${code} ${reason}`); process.exit(0); });
ws.on('error', (e) => fail('error ' + e.message));
