// A Socket.IO client with its default transports (HTTP long-polling first, then the upgrade to
// WebSocket), for tests/proxy_http.rs: node sio-polling-client.js http://HOST:PORT
//   OK polling <json>     the connection opened over HTTP long-polling, and an "echo" came back
//                         (json: what the server saw; its handshake's transport is polling)
//   OK upgraded           the transport is now websocket
//   OK ack <json>         an "echo" with acknowledgement over the WebSocket
// Any failure prints `FAIL <why>` and exits 1; it gives up after 30 s.
'use strict';
const { io } = require('socket.io-client');

const fail = (why) => {
  process.stdout.write(`FAIL ${why}\n`);
  process.exit(1);
};
setTimeout(() => fail('timeout'), 30000).unref();
const say = (line) => process.stdout.write(`${line}\n`);

async function main() {
  const s = io(process.argv[2], { forceNew: true, reconnection: false, timeout: 5000 });
  s.on('connect_error', (e) => fail(`connect_error: ${e.message}`));
  // The transport the connection opened with (the upgrade may come before `connect`).
  let first = null;
  const upgraded = new Promise((resolve) =>
    s.io.on('open', () => {
      first = s.io.engine.transport.name;
      s.io.engine.once('upgrade', resolve);
    }),
  );
  await new Promise((resolve) => s.once('connect', resolve));
  if (first !== 'polling') fail(`first transport: ${first}`);
  const r = await s.timeout(5000).emitWithAck('echo', 'first');
  if (r.echo !== 'first') fail(`echo: ${JSON.stringify(r)}`);
  say(`OK polling ${JSON.stringify(r)}`);
  if (s.io.engine.transport.name !== 'websocket') await upgraded;
  if (s.io.engine.transport.name !== 'websocket') fail(`upgraded to ${s.io.engine.transport.name}`);
  say('OK upgraded');
  const r2 = await s.timeout(5000).emitWithAck('echo', 'over websocket');
  if (r2.echo !== 'over websocket') fail(`echo: ${JSON.stringify(r2)}`);
  say(`OK ack ${JSON.stringify(r2)}`);
  s.disconnect();
  process.exit(0);
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
