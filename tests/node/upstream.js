// A `ws` upstream for weir's proxy tests (tests/proxy.rs). Listens on 127.0.0.1:0 and prints
// `PORT <n>` on stdout once it accepts. On the WebSocket:
//   - every message is echoed with its type, except these text commands:
//   - "headers?"  -> one text message: JSON of the upgrade request's headers and URL
//   - "close-me"  -> "bye-data", then close 4001 "done"
//   - "flood"     -> 1024 binary messages of 64 KiB (message i: u32 BE i, then bytes i % 251),
//                    as fast as ws takes them, then the text "flood-done"
// Subprotocol: "chat.v2" when offered. An upgrade to a path starting /refuse is answered 403.
// The 101 has `X-Service: upstream-1` and `Keep-Alive: timeout=5` besides the handshake's.
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('websocket only\n');
});
const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 64 * 1024 * 1024,
  handleProtocols: (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false),
});

// The 101 carries a field of the service's own and one of this hop's (tests/tunnel.rs: the
// first reaches the client, the second does not).
wss.on('headers', (headers) => headers.push('X-Service: upstream-1', 'Keep-Alive: timeout=5'));

server.on('upgrade', (req, socket, head) => {
  if (req.url.startsWith('/refuse')) {
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nforbidden\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

wss.on('connection', (ws, req) => {
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString();
    if (text === 'headers?') {
      ws.send(JSON.stringify({ url: req.url, headers: req.headers, protocol: ws.protocol }));
    } else if (text === 'close-me') {
      ws.send('bye-data');
      ws.close(4001, 'done');
    } else if (text === 'flood') {
      for (let i = 0; i < 1024; i++) {
        const b = Buffer.alloc(64 * 1024, i % 251);
        b.writeUInt32BE(i, 0);
        ws.send(b, { binary: true });
      }
      ws.send('flood-done');
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
  ws.on('error', () => {});
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
// The test closes our stdin (or dies): leave with it.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
