// A Node `ws` server with permessage-deflate, for tests/compression.rs (weir as the client, or
// weir's proxy in front of it). Listens on 127.0.0.1:0 and prints `PORT <n>`. For each
// connection it prints `EXT <its Sec-WebSocket-Extensions answer>`; each message is echoed with
// its type and reported as `GOT <bytes> <bytes read on the socket so far>`, so a test can tell
// that what came was compressed. Options (argv[2], JSON) go to ws's perMessageDeflate.
'use strict';
const { WebSocketServer } = require('ws');

const pmd = JSON.parse(process.argv[2] || '{}');
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  maxPayload: 64 * 1024 * 1024,
  perMessageDeflate: { threshold: 0, ...pmd },
});
wss.on('headers', (headers) => {
  const ext = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
  console.log('EXT ' + (ext ? ext.slice(ext.indexOf(':') + 1).trim() : ''));
});
wss.on('connection', (ws, req) => {
  ws.on('message', (data, isBinary) => {
    console.log(`GOT ${data.length} ${req.socket.bytesRead}`);
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
});
wss.on('listening', () => process.stdout.write(`PORT ${wss.address().port}\n`));
// The test closes our stdin (or dies): leave with it.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
