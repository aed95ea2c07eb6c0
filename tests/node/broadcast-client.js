// A Node `ws` client on a weir --broadcast path, for tests/broadcast_endpoint.rs: connects to
// argv[2] and prints `OPEN`; prints each message it gets (`TEXT <text>` or `BINARY <hex>`) and
// sends it back in the same kind (text prefixed `echo: `); after two it prints `DONE` and
// closes. Anything unexpected prints `FAIL ...` and exits 1.
'use strict';
const WebSocket = require('ws');

const ws = new WebSocket(process.argv[2]);
const fail = (why) => { console.log('FAIL ' + why); process.exit(1); };
setTimeout(() => fail('timeout'), 20000).unref();
let got = 0;

ws.on('open', () => console.log('OPEN'));
ws.on('message', (data, isBinary) => {
  if (isBinary) {
    console.log('BINARY ' + Buffer.from(data).toString('hex'));
    ws.send(data, { binary: true });
  } else {
    const text = data.toString('utf8');
    console.log('TEXT ' + text);
    ws.send('echo: ' + text);
  }
  if (++got === 2) {
    console.log('DONE');
    ws.close(1000);
  }
});
ws.on('close', () => process.exit(0));
ws.on('error', (e) => fail(e.message));
