'use strict';
// ws-echo.js over TLS: `ws` (with `bufferutil`) on a Node `https` server, one Node.js thread.
// Node's TLS is OpenSSL (the one built into Node 20) with its defaults; ALPN `http/1.1`.
//
// Usage: TLS_CERT=cert.pem TLS_KEY=key.pem node ws-tls-echo.js [ADDR]
//        (default 127.0.0.1:9001; port 0 picks a free port)

const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');
const { parseAddr, announce } = require('./node/addr');
const { tlsFiles } = require('./node/tls');

const { host, port } = parseAddr(process.argv[2]);
const files = tlsFiles();
const server = https.createServer({
  cert: fs.readFileSync(files.cert),
  key: fs.readFileSync(files.key),
  ALPNProtocols: ['http/1.1'],
  noDelay: true,
});
const wss = new WebSocketServer({
  server,
  maxPayload: 64 * 1024 * 1024,
  perMessageDeflate: false,
  clientTracking: false,
});

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.on('tlsClientError', () => {}); // a client that fails its handshake costs only itself
server.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
server.listen(port, host, () => announce(host, server.address().port));
