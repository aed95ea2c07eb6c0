'use strict';
// Echo server on uWebSockets.js (native addon from @trufflesuite/uws-js-unofficial), one
// Node.js thread. Echoes every text and binary message on any path; uWS answers pings and
// closes itself.
//
// Usage: node uws-echo.js [ADDR]   (default 127.0.0.1:9001; port 0 picks a free port)

const uWS = require('./node/uws');
const { parseAddr, announce } = require('./node/addr');

const { host, port } = parseAddr(process.argv[2]);
const MAX = 64 * 1024 * 1024;

uWS.App()
  .ws('/*', {
    maxPayloadLength: MAX,
    maxBackpressure: MAX,
    idleTimeout: 0,
    compression: uWS.DISABLED, // 0
    message: (ws, msg, isBinary) => ws.send(msg, isBinary),
  })
  .listen(host, port, (token) => {
    if (!token) {
      console.error(`cannot listen on ${host}:${port}`);
      process.exit(1);
    }
    announce(host, uWS.us_socket_local_port(token));
  });
