'use strict';
// Topic pub/sub on uWebSockets.js, for fan-out benchmarks. Every connection, on any path,
// subscribes to the topic `bench` when it opens. A message sent on a connection to `/pub` is
// published to `bench`, so it reaches every subscriber, the publishing connection included.
// A message on any other path is echoed back to its sender only.
//
// Usage: node uws-pubsub.js [ADDR]   (default 127.0.0.1:9001; port 0 picks a free port)

const uWS = require('./node/uws');
const { parseAddr, announce } = require('./node/addr');

const { host, port } = parseAddr(process.argv[2]);
const MAX = 64 * 1024 * 1024;
const TOPIC = 'bench';

const behavior = (message) => ({
  maxPayloadLength: MAX,
  maxBackpressure: MAX,
  idleTimeout: 0,
  compression: uWS.DISABLED,
  open: (ws) => ws.subscribe(TOPIC),
  message,
});

const app = uWS.App();
app
  .ws('/pub', behavior((ws, msg, isBinary) => app.publish(TOPIC, msg, isBinary)))
  .ws('/*', behavior((ws, msg, isBinary) => ws.send(msg, isBinary)))
  .listen(host, port, (token) => {
    if (!token) {
      console.error(`cannot listen on ${host}:${port}`);
      process.exit(1);
    }
    announce(host, uWS.us_socket_local_port(token));
  });
