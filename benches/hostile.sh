#!/usr/bin/env bash
# The hostile-peer check: weir (target/release/weir, default flags, 127.0.0.1 port 0) under
# `loadgen hostile`: ping floods on /echo and /ws, history amplification, event-stream replay and
# a half-close, one at a time, each beside a canary echo connection. Fails (exit 1) when the
# server's RSS grows past a bound, the canary's p99 passes 5 ms, the half-close echo is
# incomplete, or the server dies (docs/security.md, "The hostile-peer check").
#
# Each scenario runs against a fresh weir (its baseline RSS taken once it listens).
#
# Usage: benches/hostile.sh [--no-build] [--only LIST] [LOADGEN FLAGS...]
#   --only LIST   scenarios, comma-separated (default all): flood-echo flood-ws history events
#                 half-close
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

SCENARIOS="flood-echo flood-ws history events half-close"
[ -z "$ONLY" ] || SCENARIOS=${ONLY//,/ }
LOG=$(mktemp /tmp/weir-hostile.XXXXXX)
PID=""
stop_weir() {
    [ -n "$PID" ] || return 0
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
}
trap 'stop_weir; rm -f "$LOG"' EXIT
trap 'exit 130' INT TERM

# Each scenario gets a fresh weir, so that what one leaves behind (memory the allocator keeps)
# is not counted against the next: the baseline is its RSS once it listens.
failed=""
for scen in $SCENARIOS; do
    : >"$LOG" # before the start: the child truncating it may come after the first grep
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
