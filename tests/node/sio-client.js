// A Socket.IO client for weir's proxy tests (tests/proxy.rs): node sio-client.js http://HOST:PORT
// (weir's address; Socket.IO's path /socket.io/ is proxied). WebSocket transport only.
// Prints one line per step; the test waits for each:
//   OK connected            both clients are connected
//   OK ack <json>           an "echo" with acknowledgement came back (json: what the server saw)
//   OK room                 client A received client B's broadcast to room r1
//   READY restart           the test may now restart weir
//   OK disconnected         the connection through weir dropped
//   OK reconnected          auto-reconnect went through the new weir
//   OK ack-again            an "echo" with acknowledgement works again
// Any failure prints `FAIL <why>` and exits 1; it gives up after 30 s.
'use strict';
const { io } = require('socket.io-client');

const url = process.argv[2];
const opts = {
  transports: ['websocket'],
  forceNew: true,
  reconnectionDelay: 100,
  reconnectionDelayMax: 300,
  timeout: 5000,
};
const fail = (why) => {
  process.stdout.write(`FAIL ${why}\n`);
  process.exit(1);
};
setTimeout(() => fail('timeout'), 30000).unref();
const say = (line) => process.stdout.write(`${line}\n`);
const connected = (s) =>
  new Promise((resolve) => (s.connected ? resolve() : s.once('connect', resolve)));

async function main() {
  const a = io(url, opts);
  const b = io(url, opts);
  a.on('connect_error', (e) => process.stderr.write(`a connect_error: ${e.message}\n`));
  await Promise.all([connected(a), connected(b)]);
  say('OK connected');

  const r = await a.timeout(5000).emitWithAck('echo', 'hello');
  if (r.echo !== 'hello') fail(`echo: ${JSON.stringify(r)}`);
  say(`OK ack ${JSON.stringify(r)}`);

  await a.timeout(5000).emitWithAck('join', 'r1');
  await b.timeout(5000).emitWithAck('join', 'r1');
  const got = new Promise((resolve) => a.once('shout', resolve));
  b.emit('shout', 'r1', 'hi room');
  const s = await got;
  if (s.msg !== 'hi room' || s.from !== b.id) fail(`room: ${JSON.stringify(s)}`);
  say('OK room');

  b.disconnect();
  const dropped = new Promise((resolve) => a.once('disconnect', resolve));
  say('READY restart');
  const reason = await dropped;
  say(`OK disconnected ${reason}`);
  await new Promise((resolve) => a.io.once('reconnect', resolve));
  await connected(a);
  say('OK reconnected');
  const r2 = await a.timeout(5000).emitWithAck('echo', 'again');
  if (r2.echo !== 'again') fail(`echo again: ${JSON.stringify(r2)}`);
  say('OK ack-again');
  a.disconnect();
  process.exit(0);
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
