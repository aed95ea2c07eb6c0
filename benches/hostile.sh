#!/usr/bin/env bash
# The hostile-peer check: weir (target/release/weir, default flags, 127.0.0.1 port 0) under
# `loadgen hostile`: ping floods on /echo and /ws, history amplification, event-stream replay and
# a half-close, one at a time, each beside a canary echo connection; then a stalled download
# through a tunnel (tunnel-stall). Fails (exit 1) when the server's RSS grows past a bound, the
# canary's p99 passes 5 ms, the half-close echo is incomplete, or the server dies
# (docs/security.md, "The hostile-peer check").
#
# Each scenario runs against a fresh weir (its baseline RSS taken once it listens).
#
# tunnel-stall (issue 18): a weir controller and a `weir tunnel` agent (default flags), the
# agent exposing a weir echo (web) and a Node service sending a generated 1 GiB body (big). A
# client reads 1 MiB of the download, then nothing for --hold s, while the canary echoes 64 B
# through the same tunnel (/t/echo): its p99 must stay under 5 ms, and the RSS of both tunnel
# ends within 16 MiB of their baselines (the stream's window holds the rest back). Needs Node.
#
# Usage: benches/hostile.sh [--no-build] [--only LIST] [LOADGEN FLAGS...]
#   --only LIST   scenarios, comma-separated (default all): flood-echo flood-ws history events
#                 half-close tunnel-stall
#   other flags go to `loadgen hostile` (see `benches/loadgen/target/release/loadgen --help`),
#   e.g. benches/hostile.sh --only history --hold 5 --amp-bound 32MiB
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WEIR="$ROOT/target/release/weir"
LG="$ROOT/benches/loadgen/target/release/loadgen"
BUILD=1
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --only) [ $# -ge 2 ] || { echo "hostile.sh: --only needs a value" >&2; exit 2; }; ONLY=$2; shift ;;
        *) break ;;
    esac
    shift
done
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release) >&2
    (cd "$ROOT/benches/loadgen" && cargo build --release) >&2
fi
[ -x "$WEIR" ] || { echo "hostile.sh: no $WEIR" >&2; exit 2; }
# As benches/run.sh does: weir on CPU 0, the attackers and the canary on CPU 1 (the attackers at
# the lowest priority, so the canary measures weir, not this machine's scheduler).
ON_SERVER="" ON_CLIENT=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    ON_SERVER="taskset -c 0" ON_CLIENT="taskset -c 1"
fi
[ -x "$LG" ] || { echo "hostile.sh: no $LG" >&2; exit 2; }

SCENARIOS="flood-echo flood-ws history events half-close tunnel-stall"
[ -z "$ONLY" ] || SCENARIOS=${ONLY//,/ }
LOG=$(mktemp /tmp/weir-hostile.XXXXXX)
TDIR=$(mktemp -d /tmp/weir-hostile-tunnel.XXXXXX)
PID=""
# tunnel-stall's other processes (the echo and download services, the agent), last started last.
MORE=()
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
stop_weir() {
    local n
    for ((n = ${#MORE[@]} - 1; n >= 0; n--)); do stop_pid "${MORE[$n]}"; done
    MORE=()
    [ -n "$PID" ] || return 0
    stop_pid "$PID"
    PID=""
}
trap 'stop_weir; rm -rf "$LOG" "$TDIR"' EXIT
trap 'exit 130' INT TERM

# wait_for LOG REGEX PID: prints the first match of REGEX in LOG, waiting up to 10 s while PID
# lives; fails (with LOG) if it never comes.
wait_for() {
    local m
    for _ in $(seq 100); do
        m=$(grep -oE "$2" "$1" | head -1 || true)
        [ -z "$m" ] || { echo "$m"; return 0; }
        kill -0 "$3" 2>/dev/null || break
        sleep 0.1
    done
    echo "hostile.sh: no /$2/ from pid $3; its output:" >&2
    sed 's/^/    /' "$1" >&2
    return 1
}

# A generated body of 1 GiB (Content-Length), written only as the socket drains.
BIG_JS='const n = 2 ** 30, piece = Buffer.alloc(65536, 120);
require("http").createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": n });
  let sent = 0;
  const more = () => {
    while (sent < n) { sent += piece.length; if (!res.write(piece)) return res.once("drain", more); }
    res.end();
  };
  more();
}).listen(0, "127.0.0.1", function () { console.log("PORT " + this.address().port); });'

# tunnel-stall's path: an echo and the download service, the controller (PID, its public port
# in PORT, routes /t to the echo and /big to the download), the agent exposing both.
start_tunnel() {
    local eport bport token="$TDIR/token"
    command -v node >/dev/null || { echo "hostile.sh: tunnel-stall needs Node: apt-get install nodejs" >&2; return 1; }
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token"
    $ON_SERVER "$WEIR" --listen 127.0.0.1:0 >"$TDIR/echo.log" 2>&1 &
    MORE+=("$!")
    eport=$(wait_for "$TDIR/echo.log" 'listening addr=127\.0\.0\.1:[0-9]+' "$!") || return 1
    $ON_SERVER node -e "$BIG_JS" >"$TDIR/big.log" 2>&1 &
    MORE+=("$!")
    bport=$(wait_for "$TDIR/big.log" 'PORT [0-9]+' "$!") || return 1
    $ON_SERVER "$WEIR" --listen 127.0.0.1:0 --tunnel-token-file "$token" \
        --route /t=tunnel://bench/web --route /big=tunnel://bench/big >>"$LOG" 2>&1 &
    PID=$!
    PORT=$(wait_for "$LOG" 'listening addr=127\.0\.0\.1:[0-9]+' "$PID") || return 1
    PORT=${PORT##*:}
    $ON_SERVER "$WEIR" tunnel "ws://127.0.0.1:$PORT/_tunnel" --name bench --token-file "$token" \
        --expose "web=ws://127.0.0.1:${eport##*:}" --expose "big=http://127.0.0.1:${bport##* }" \
        >"$TDIR/agent.log" 2>&1 &
    MORE+=("$!")
    wait_for "$TDIR/agent.log" 'tunnel connected' "$!" >/dev/null
}

# Each scenario gets a fresh weir, so that what one leaves behind (memory the allocator keeps)
# is not counted against the next: the baseline is its RSS once it listens.
failed=""
for scen in $SCENARIOS; do
    : >"$LOG" # before the start: the child truncating it may come after the first grep
    if [ "$scen" = tunnel-stall ]; then
        if ! start_tunnel; then
            failed="$failed $scen"
            stop_weir
            continue
        fi
        agent=${MORE[-1]}
        echo "== $scen (controller pid $PID, port $PORT; agent pid $agent)"
        timeout 300 $ON_CLIENT "$LG" hostile --url "ws://127.0.0.1:$PORT/" --pid "$PID,$agent" --hold 10 \
            --canary-path /t/echo --stall-path /big/download "$@" --scenarios "$scen" || failed="$failed $scen"
        for p in "$PID" "${MORE[@]}"; do
            kill -0 "$p" 2>/dev/null && continue
            echo "hostile.sh: pid $p exited during $scen" >&2
            [[ "$failed" == *" $scen" ]] || failed="$failed $scen"
        done
        grep -hE '^[^ ]+ (warn|error) ' "$LOG" "$TDIR/agent.log" | cut -c1-200 | sort -k2 | uniq -c -f1 | head -5 | sed 's/^/    weir: /' || true
        stop_weir
        continue
    fi
    $ON_SERVER "$WEIR" --listen 127.0.0.1:0 >>"$LOG" 2>&1 &
    PID=$!
    PORT=""
    for _ in $(seq 100); do
        PORT=$(grep -oE 'listening addr=127\.0\.0\.1:[0-9]+' "$LOG" | head -1 | grep -oE '[0-9]+$' || true)
        [ -n "$PORT" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$PORT" ]; then
        echo "hostile.sh: weir did not start; its output:" >&2
        sed 's/^/    /' "$LOG" >&2
        exit 1
    fi
    echo "== $scen (weir pid $PID, port $PORT)"
    timeout 300 $ON_CLIENT "$LG" hostile --url "ws://127.0.0.1:$PORT/" --pid "$PID" --hold 10 "$@" --scenarios "$scen" || failed="$failed $scen"
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "hostile.sh: weir exited during $scen" >&2
        [[ "$failed" == *" $scen" ]] || failed="$failed $scen"
    fi
    grep -E '^[^ ]+ (warn|error) ' "$LOG" | cut -c1-200 | sort -k2 | uniq -c -f1 | head -5 | sed 's/^/    weir: /' || true
    stop_weir
done
if [ -n "$failed" ]; then
    echo "hostile.sh: FAILED:$failed"
    exit 1
fi
echo "hostile.sh: every scenario passed"
