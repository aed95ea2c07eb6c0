'use strict';
// uws-echo.js over TLS: uWebSockets.js `SSLApp` (its own statically linked TLS library), one
// Node.js thread, same WebSocket options. SSLApp's other options (`passphrase`,
// `ssl_ciphers`, `ssl_prefer_low_memory_usage`, ...) are left at their defaults.
//
// Usage: TLS_CERT=cert.pem TLS_KEY=key.pem node uws-tls-echo.js [ADDR]
//        (default 127.0.0.1:9001; port 0 picks a free port)

const fs = require('fs');
const uWS = require('./node/uws');
const { parseAddr } = require('./node/addr');
const { serveEcho } = require('./node/uws-echo-app');
const { tlsFiles } = require('./node/tls');

const { host, port } = parseAddr(process.argv[2]);
const files = tlsFiles();
// SSLApp does not say when a file is missing: it then serves TLS handshakes that all fail.
for (const f of [files.cert, files.key]) fs.accessSync(f, fs.constants.R_OK);
serveEcho(uWS.SSLApp({ cert_file_name: files.cert, key_file_name: files.key }), host, port);
