'use strict';
// Shared by ws-echo.js and ws-deflate-echo.js: a `ws` echo server on HOST:PORT and its
// `listening on` line. `perMessageDeflate`: false, or true for ws's defaults.

const { WebSocketServer } = require('ws');
const { announce } = require('./addr');

function serveWsEcho(host, port, perMessageDeflate) {
  const wss = new WebSocketServer({
    host,
    port,
    maxPayload: 64 * 1024 * 1024,
    perMessageDeflate,
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
}

module.exports = { serveWsEcho };
