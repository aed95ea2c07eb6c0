// A Node `ws` client, as a dashboard's users run it (tests/examples/dashboard_events.rs):
// connects to argv[2] with HTTP Basic credentials argv[3] (`user:password`, or '' for none),
// prints `UNEXPECTED <status>` if the upgrade is refused, else `OPEN`, sends each further
// argument as a text message once open, prints every message as `MSG <text>` and the close as
// `CLOSE <code> <reason>`, then exits. Any failure prints `FAIL ...` and exits 1.
'use strict';
const WebSocket = require('ws');

const [url, auth, ...messages] = process.argv.slice(2);
const headers = auth ? { Authorization: 'Basic ' + Buffer.from(auth).toString('base64') } : {};
const ws = new WebSocket(url, { headers });
const fail = (why) => { console.log('FAIL ' + why); process.exit(1); };
setTimeout(() => fail('timeout'), 30000).unref();

ws.on('unexpected-response', (req, res) => {
  console.log(`UNEXPECTED ${res.statusCode} ${res.headers['www-authenticate'] || ''}`);
  process.exit(0);
});
ws.on('open', () => {
  console.log('OPEN');
  messages.forEach((m) => ws.send(m));
});
ws.on('message', (data, isBinary) => {
  if (isBinary) fail('a binary message');
  console.log('MSG ' + data.toString());
});
ws.on('close', (code, reason) => { console.log(`CLOSE ${code} ${reason}`); process.exit(0); });
ws.on('error', (e) => fail('error ' + e.message));
