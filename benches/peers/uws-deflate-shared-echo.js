'use strict';
// uws-echo.js with permessage-deflate: one compressor shared by every connection and one
// decompressor (`SHARED_COMPRESSOR | SHARED_DECOMPRESSOR`: no context kept between messages
// either way, as weir's `--compression shared`).
//
// Usage: node uws-deflate-shared-echo.js [ADDR]   (default 127.0.0.1:9001; port 0 picks a free port)

const uWS = require('./node/uws');
const { parseAddr } = require('./node/addr');
const { serveEcho } = require('./node/uws-echo-app');

const { host, port } = parseAddr(process.argv[2]);
serveEcho(uWS.App(), host, port, uWS.SHARED_COMPRESSOR | uWS.SHARED_DECOMPRESSOR);
