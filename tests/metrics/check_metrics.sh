#!/usr/bin/env bash
# Starts weir, opens a WebSocket, publishes and broadcasts (so counters and histograms move),
# then parses /metrics with prometheus_client (installed in a venv here). Used by .ci/run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${METRICS_VENV:-$repo/.venv/metrics}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'prometheus_client==0.21.1'
fi
bin="${WEIR_BIN:-$repo/target/release/weir}"
[ -x "$bin" ] || (cd "$repo" && cargo build --release --bin weir)
log="$(mktemp)"
# A route (to nothing: its families are there whether or not anyone connects).
"$bin" --listen 127.0.0.1:0 --broadcast /room=all --route /app=ws://127.0.0.1:9/ 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    port="$(grep -o 'addr=127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2 || true)"
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "${port:-}" ] || { echo "weir did not start"; cat "$log"; exit 1; }
# Traffic: a publish over HTTP, and a WebSocket round trip through weir's own client.
curl -sf -X POST -d '{"n":1}' "http://127.0.0.1:$port/api/channels/ci/publish" >/dev/null
echo hello | timeout 10 "$bin" client "ws://127.0.0.1:$port/echo" >/dev/null
# A broadcast path that sends a client its own messages too: one delivery, observed when written.
echo hello | timeout 10 "$bin" client "ws://127.0.0.1:$port/room" >/dev/null
"$venv/bin/python" "$here/check_metrics.py" "http://127.0.0.1:$port/metrics"
