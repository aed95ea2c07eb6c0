'use strict';
// Shared by the Node peers: parse the first CLI argument (default 127.0.0.1:9001) and print the
// one `listening on HOST:PORT` line once the port is known.

function parseAddr(arg) {
  const addr = arg || '127.0.0.1:9001';
  const colon = addr.lastIndexOf(':');
  if (colon < 0) throw new Error(`bad address (want HOST:PORT): ${addr}`);
  const host = addr.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(addr.slice(colon + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port in ${addr}`);
  return { host, port };
}

function announce(host, port) {
  const shown = host.includes(':') ? `[${host}]` : host;
  // Writes to pipes and files are synchronous on Linux, so the line is out when this returns.
  process.stdout.write(`listening on ${shown}:${port}\n`);
}

module.exports = { parseAddr, announce };
