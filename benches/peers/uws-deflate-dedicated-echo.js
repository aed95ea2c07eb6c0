'use strict';
// uws-echo.js with permessage-deflate: a compressor and a decompressor per connection, each
// keeping its context (`DEDICATED_COMPRESSOR | DEDICATED_DECOMPRESSOR`: the 256 KB compressor,
// a 32 KiB window, and the 32 KiB decompressor), as weir's `--compression dedicated`.
//
// Usage: node uws-deflate-dedicated-echo.js [ADDR]   (default 127.0.0.1:9001; port 0 picks a free port)

const uWS = require('./node/uws');
const { parseAddr } = require('./node/addr');
const { serveEcho } = require('./node/uws-echo-app');

const { host, port } = parseAddr(process.argv[2]);
serveEcho(uWS.App(), host, port, uWS.DEDICATED_COMPRESSOR | uWS.DEDICATED_DECOMPRESSOR);
