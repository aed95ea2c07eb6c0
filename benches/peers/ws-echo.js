'use strict';
// Echo server on `ws` (with `bufferutil`), one Node.js thread. Echoes every text and binary
// message on any path; `ws` answers pings and closes itself. No compression.
//
// Usage: node ws-echo.js [ADDR]   (default 127.0.0.1:9001; port 0 picks a free port)

const { parseAddr } = require('./node/addr');
const { serveWsEcho } = require('./node/ws-echo-app');

const { host, port } = parseAddr(process.argv[2]);
serveWsEcho(host, port, false);
