#!/usr/bin/env bash
# Build every benchmark peer: the Rust echo servers (release, LTO) and the Node.js ones.
# Idempotent, needs no stdin; safe in CI. Run from anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# Rust peers: their own workspace, their own target/ here (never weir's).
unset CARGO_TARGET_DIR
cargo build --release --locked

# Node peers: exactly the locked versions. No install script is needed (bufferutil ships
# prebuilt addons, uWebSockets.js ships its binaries), and npm 11 holds them back anyway.
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --ignore-scripts
else
  npm install --no-audit --no-fund --ignore-scripts
fi

# Fail here, not at benchmark time, if a native addon does not load: ws would silently fall
# back to JS masking without bufferutil, and node/uws.js exits if the uWS addon is missing.
node -e 'require("bufferutil"); require("./node/uws"); require("socket.io"); require("socket.io-client"); require("@socket.io/redis-adapter"); require("ioredis")'
echo "peers built: $(ls target/release/raw-tcp-echo target/release/tokio-tungstenite-echo target/release/fastwebsockets-echo target/release/tokio-tungstenite-tls-echo | xargs -n1 basename | tr '\n' ' ')ws-echo.js uws-echo.js uws-pubsub.js ws-tls-echo.js uws-tls-echo.js ws-deflate-echo.js uws-deflate-shared-echo.js uws-deflate-dedicated-echo.js socketio-pubsub.js"
