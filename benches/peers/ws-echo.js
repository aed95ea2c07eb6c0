'use strict';
// Echo server on `ws` (with `bufferutil`), one Node.js thread. Echoes every text and binary
// message on any path; `ws` answers pings and closes itself.
//
// Usage: node ws-echo.js [ADDR]   (default 127.0.0.1:9001; port 0 picks a free port)

const { WebSocketServer } = require('ws');
const { parseAddr, announce } = require('./node/addr');

const { host, port } = parseAddr(process.argv[2]);
const wss = new WebSocketServer({
  host,
  port,
  maxPayload: 64 * 1024 * 1024,
  perMessageDeflate: false,
  clientTracking: false, // an echo needs no set of clients
});

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => announce(host, wss.address().port));
wss.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
