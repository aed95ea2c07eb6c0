// A plain HTTP upstream for weir's proxy tests (tests/proxy_http.rs). Listens on 127.0.0.1:0
// and prints `PORT <n>` on stdout.
//   GET  /hello       -> 200, JSON of the request's method, URL and headers (Content-Length)
//   POST /count       -> 200, JSON { bytes, sum, te, cl }: the body's length and byte sum
//                        (read as it streams, never kept), its Transfer-Encoding, Content-Length;
//                        with ?wait=MS the body is not read for the first MS milliseconds
//   POST /echo        -> 200, the body back, chunked, as it streams
//   GET  /big?n=N     -> 200, N bytes (byte i is i % 251), chunked, written as the socket drains
//   GET  /sse         -> text/event-stream: `data: <i>` every 100 ms until the client goes
'use strict';
const http = require('http');

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname.endsWith('/hello')) {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  } else if (req.method === 'POST' && url.pathname.endsWith('/count')) {
    let bytes = 0;
    let sum = 0;
    const wait = Number(url.searchParams.get('wait') || 0);
    if (wait > 0) {
      req.pause();
      setTimeout(() => req.resume(), wait);
    }
    req.on('data', (c) => {
      bytes += c.length;
      for (const b of c) sum = (sum + b) % 1000000007;
    });
    req.on('end', () => {
      const body = JSON.stringify({
        bytes, sum, te: req.headers['transfer-encoding'] || null, cl: req.headers['content-length'] || null,
      });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
  } else if (req.method === 'POST' && url.pathname.endsWith('/echo')) {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    req.pipe(res);
  } else if (req.method === 'GET' && url.pathname.endsWith('/big')) {
    const n = Number(url.searchParams.get('n'));
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    let sent = 0;
    const piece = Buffer.alloc(64 * 1024);
    const more = () => {
      while (sent < n) {
        const len = Math.min(piece.length, n - sent);
        for (let i = 0; i < len; i++) piece[i] = (sent + i) % 251;
        sent += len;
        if (!res.write(len === piece.length ? piece : piece.subarray(0, len))) {
          res.once('drain', more);
          return;
        }
      }
      res.end();
    };
    more();
  } else if (req.method === 'GET' && url.pathname.endsWith('/sse')) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    let i = 0;
    const t = setInterval(() => res.write(`data: ${i++}\n\n`), 100);
    res.on('close', () => clearInterval(t));
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 10 });
    res.end('not found\n');
  }
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
