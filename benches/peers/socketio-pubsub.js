'use strict';
// Socket.IO pub/sub for fan-out benchmarks, one Node process; with REDIS_URL set, several of
// them share rooms through Redis with @socket.io/redis-adapter (the classic pub/sub adapter:
// every broadcast is PUBLISHed once, and every process delivers it to its own members).
//
// Every connection joins the room `bench` when it connects. An event `publish` with any data
// is `io.to('bench').emit('message', data)`: it reaches every member on every process, the
// publishing socket included (which gives the publisher its acknowledgement).
//
// Usage: [REDIS_URL=redis://127.0.0.1:6379] node socketio-pubsub.js [ADDR]
//        (default 127.0.0.1:9001; port 0 picks a free port)

const http = require('http');
const { Server } = require('socket.io');
const { parseAddr, announce } = require('./node/addr');

const { host, port } = parseAddr(process.argv[2]);
const ROOM = 'bench';

async function main() {
  const server = http.createServer();
  // WebSocket only (the generator never polls), no compression (Socket.IO's default), and
  // messages up to 64 MiB as the other peers.
  const io = new Server(server, {
    transports: ['websocket'],
    perMessageDeflate: false,
    maxHttpBufferSize: 64 * 1024 * 1024,
    serveClient: false,
  });
  if (process.env.REDIS_URL) {
    const Redis = require('ioredis');
    const { createAdapter } = require('@socket.io/redis-adapter');
    const pub = new Redis(process.env.REDIS_URL, { lazyConnect: true });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
    // The adapter subscribes without a promise to wait for: ask Redis until it counts this
    // process, so no broadcast is published before this process hears them (at most 10 s).
    const deadline = Date.now() + 10000;
    while ((await io.of('/').adapter.serverCount()) < 1) {
      if (Date.now() > deadline) throw new Error('the Redis adapter did not subscribe within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  io.on('connection', (socket) => {
    socket.join(ROOM);
    socket.on('publish', (data) => io.to(ROOM).emit('message', data));
  });
  server.on('connection', (s) => s.setNoDelay(true));
  server.listen(port, host, () => announce(host, server.address().port));
}

main().catch((e) => {
  console.error(`socketio-pubsub: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
