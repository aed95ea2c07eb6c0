'use strict';
// Echo server on uWebSockets.js (native addon from @trufflesuite/uws-js-unofficial), one
// Node.js thread. Echoes every text and binary message on any path; uWS answers pings and
// closes itself.
//
// Usage: node uws-echo.js [ADDR]   (default 127.0.0.1:9001; port 0 picks a free port)

const uWS = require('./node/uws');
const { parseAddr } = require('./node/addr');
const { serveEcho } = require('./node/uws-echo-app');

const { host, port } = parseAddr(process.argv[2]);
serveEcho(uWS.App(), host, port);
