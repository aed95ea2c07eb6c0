// A Socket.IO server for weir's proxy tests (tests/proxy.rs), WebSocket transport only, or
// with its default transports (polling too) when run as `node sio-server.js polling`
// (tests/proxy_http.rs). Listens on 127.0.0.1:0 and prints `PORT <n>` on stdout.
//   "echo" (payload, ack)  -> ack({ echo: payload })
//   "join" (room, ack)     -> joins the room, ack(room)
//   "shout" (room, msg)    -> "shout" { from: socket.id, msg } to everyone else in the room
'use strict';
const http = require('http');
const { Server } = require('socket.io');

const server = http.createServer();
const transports = process.argv[2] === 'polling' ? ['polling', 'websocket'] : ['websocket'];
const io = new Server(server, { transports, pingInterval: 5000, pingTimeout: 5000 });

io.on('connection', (socket) => {
  socket.on('echo', (payload, ack) => ack({ echo: payload, query: socket.handshake.query }));
  socket.on('join', (room, ack) => {
    socket.join(room);
    ack(room);
  });
  socket.on('shout', (room, msg) => socket.to(room).emit('shout', { from: socket.id, msg }));
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
