'use strict';
// ws-echo.js with permessage-deflate: `perMessageDeflate: true`, ws's defaults (context kept
// both ways unless the client asks otherwise, 32 KiB windows, zlib's default level, messages of
// 1024 bytes and more compressed, at most 10 zlib jobs at once on libuv's thread pool, which
// `taskset` keeps on the server's one CPU).
//
// Usage: node ws-deflate-echo.js [ADDR]   (default 127.0.0.1:9001; port 0 picks a free port)

const { parseAddr } = require('./node/addr');
const { serveWsEcho } = require('./node/ws-echo-app');

const { host, port } = parseAddr(process.argv[2]);
serveWsEcho(host, port, true);
