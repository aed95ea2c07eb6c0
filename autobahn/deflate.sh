#!/usr/bin/env bash
# Autobahn|Testsuite 12.* and 13.* (permessage-deflate, 216 cases) in the three roles at once,
# each diffed against autobahn/expected-deflate.json (every case OK): the server role with
# --compression shared, the client role (examples/autobahn_client offering it, dedicated), and
# through the reverse proxy (--compression dedicated on the proxy and its upstream). Each of the
# 12 groups (12.1-12.5, 13.1-13.7) has 18 cases of 1,000 messages, 16 B to 128 KiB, whole and
# in fragments of 256 B to 32 KiB. wstest sends them one at a time and is CPU-bound (compressing
# in Python; both ends set TCP_NODELAY, nothing waits on the network), so the three roles run
# side by side; wstest_loopback.py makes its echo check cheap, and wstest compresses with zlib
# level 1 instead of its default 6, which was most of its CPU in the heavy cases
# (autobahn/README.md has the profile and the timings). CI runs this: all 216 in each role.
#
# Usage: autobahn/deflate.sh [--update]   (--update rewrites the expected file from each run:
# only with all 216, not with AUTOBAHN_CASES)
# Environment: AUTOBAHN_CASES (JSON list of case patterns, default all 216: '["12.*","13.*"]';
# e.g. '["12.1.1","13.7.*"]' for a hand run, diffed against those cases of the expected file),
# AUTOBAHN_ZLIB_LEVEL (wstest's zlib level, default 1; empty: zlib's default, as wstest itself),
# AUTOBAHN_VENV, AUTOBAHN_REPORTS (this run's reports go to $AUTOBAHN_REPORTS/deflate),
# AUTOBAHN_TIMEOUT (seconds each role may take, default 4800: the proxy role of all 216 took more
# than 2400 on this machine, loaded), AUTOBAHN_PORT (the client role's
# fuzzingserver, default 9001).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
(cd "$REPO" && cargo build --release --bin weir --example autobahn_client)
"$HERE/setup-venv.sh"
cases="${AUTOBAHN_CASES:-[\"12.*\",\"13.*\"]}"
export AUTOBAHN_ZLIB_LEVEL="${AUTOBAHN_ZLIB_LEVEL-1}"
export AUTOBAHN_EXCLUDE='[]'
export AUTOBAHN_TIMEOUT="${AUTOBAHN_TIMEOUT:-4800}"
export AUTOBAHN_EXPECTED="$HERE/expected-deflate.json"
OUT="${AUTOBAHN_REPORTS:-$HERE/reports}/deflate"
mkdir -p "$OUT"
started=$SECONDS

AUTOBAHN_CASES="$cases" AUTOBAHN_REPORTS="$OUT" \
    WEIR_SERVER_ARGS="--compression shared --compression-min-size 0" \
    "$HERE/server.sh" "$@" >"$OUT/server.out" 2>&1 &
server=$!
AUTOBAHN_CASES="$cases" AUTOBAHN_REPORTS="$OUT" WEIR_COMPRESSION=dedicated \
    "$HERE/client.sh" "$@" >"$OUT/client.out" 2>&1 &
client=$!
AUTOBAHN_CASES="$cases" AUTOBAHN_REPORTS="$OUT/proxy" \
    WEIR_SERVER_ARGS="--compression dedicated --compression-min-size 0" \
    "$HERE/proxy.sh" "$@" >"$OUT/proxy.out" 2>&1 &
proxy=$!
trap 'kill "$server" "$client" "$proxy" 2>/dev/null || true' EXIT INT TERM

rc=0
for role in server client proxy; do
    pid=${!role}
    status=0
    wait "$pid" || status=$?
    printf '\n--- %s role (exit %s): %s/%s.out\n' "$role" "$status" "$OUT" "$role"
    tail -n 15 "$OUT/$role.out"
    [ "$status" -eq 0 ] || rc=1
done
trap - EXIT INT TERM
printf '\ndeflate.sh: the three roles took %s s\n' "$((SECONDS - started))"
exit "$rc"
