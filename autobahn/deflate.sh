#!/usr/bin/env bash
# Autobahn|Testsuite 12.* and 13.* (permessage-deflate, 216 cases) in the three roles at once,
# each diffed against autobahn/expected-deflate.json (every case OK): the server role with
# --compression shared, the client role (examples/autobahn_client offering it, dedicated), and
# through the reverse proxy (--compression dedicated on the proxy and its upstream). Most of
# their time is wstest's own CPU (compressing in Python), so the three run side by side.
#
# Usage: autobahn/deflate.sh [--update]   (--update rewrites the expected file from each run)
# Environment: AUTOBAHN_VENV, AUTOBAHN_REPORTS (this run's reports go to $AUTOBAHN_REPORTS/deflate),
# AUTOBAHN_TIMEOUT (seconds each run may take, default 2400), AUTOBAHN_PORT (the client role's
# fuzzingserver, default 9001).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
(cd "$REPO" && cargo build --release --bin weir --example autobahn_client)
"$HERE/setup-venv.sh"
export AUTOBAHN_CASES='["12.*","13.*"]' AUTOBAHN_EXCLUDE='[]'
export AUTOBAHN_TIMEOUT="${AUTOBAHN_TIMEOUT:-2400}"
export AUTOBAHN_EXPECTED="$HERE/expected-deflate.json"
OUT="${AUTOBAHN_REPORTS:-$HERE/reports}/deflate"
mkdir -p "$OUT"
started=$SECONDS

AUTOBAHN_REPORTS="$OUT" WEIR_SERVER_ARGS="--compression shared --compression-min-size 0" \
    "$HERE/server.sh" "$@" >"$OUT/server.out" 2>&1 &
server=$!
AUTOBAHN_REPORTS="$OUT" WEIR_COMPRESSION=dedicated "$HERE/client.sh" "$@" >"$OUT/client.out" 2>&1 &
client=$!
AUTOBAHN_REPORTS="$OUT/proxy" WEIR_SERVER_ARGS="--compression dedicated --compression-min-size 0" \
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
