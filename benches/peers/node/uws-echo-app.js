'use strict';
// Shared by uws-echo.js and uws-tls-echo.js: the echo route on a uWS App or SSLApp, and the
// listen with its `listening on` line.

const uWS = require('./uws');
const { announce } = require('./addr');

const MAX = 64 * 1024 * 1024;

// `compression`: uWS.DISABLED (the default) or a compressor | decompressor pair
// (uws-deflate-*-echo.js).
function serveEcho(app, host, port, compression = uWS.DISABLED) {
  // send()'s third argument asks for compression (uWS compresses nothing without it).
  const compress = compression !== uWS.DISABLED;
  app
    .ws('/*', {
      maxPayloadLength: MAX,
      maxBackpressure: MAX,
      idleTimeout: 0,
      compression,
      message: (ws, msg, isBinary) => ws.send(msg, isBinary, compress),
    })
    .listen(host, port, (token) => {
      if (!token) {
        console.error(`cannot listen on ${host}:${port}`);
        process.exit(1);
      }
      announce(host, uWS.us_socket_local_port(token));
    });
}

module.exports = { serveEcho };
