#!/usr/bin/env bash
# Autobahn|Testsuite 12.* and 13.* (permessage-deflate, 216 cases) in the three roles at once,
# each diffed against autobahn/expected-deflate.json (every case OK): the server role with
# --compression shared, the client role (examples/autobahn_client offering it, dedicated), and
# through the reverse proxy (--compression dedicated on the proxy and its upstream). Most of
# their time is wstest's own CPU (compressing in Python), so the three run side by side.
#
# Usage: autobahn/deflate.sh [--update]   (--update rewrites the expected file from each run;
# only with AUTOBAHN_DEFLATE_ALL=1, or the file would hold the subset alone)
# Environment: AUTOBAHN_VENV, AUTOBAHN_REPORTS (this run's reports go to $AUTOBAHN_REPORTS/deflate),
# AUTOBAHN_TIMEOUT (seconds each run may take, default 2400), AUTOBAHN_PORT (the client role's
# fuzzingserver, default 9001).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
(cd "$REPO" && cargo build --release --bin weir --example autobahn_client)
"$HERE/setup-venv.sh"
# Each of the 12 groups (12.1-12.5, 13.1-13.7) has 18 cases: 1,000 messages of 16 B up to 128 KiB.
# wstest masks and compresses in Python, so the large ones take most of the time (12.2.*: 140 s
# here, of which cases 9, 10 and 14-18 took 122 s). CI runs the other 11 of each group (132 cases
# a role: every group and parameter set, messages of 16 B to 32 KiB, whole and in 256-byte
# fragments);
# AUTOBAHN_DEFLATE_ALL=1 runs all 216 (22 to 45 minutes a role on this machine, loaded).
if [ "${AUTOBAHN_DEFLATE_ALL:-0}" = 1 ]; then
    export AUTOBAHN_CASES='["12.*","13.*"]'
else
    # Exact ids: wstest matches a pattern with `*` as a prefix (`12.*.1` takes 12.1.10 too).
    cases=""
    for g in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
        for n in 1 2 3 4 5 6 7 8 11 12 13; do cases="$cases\"$g.$n\","; done
    done
    export AUTOBAHN_CASES="[${cases%,}]"
fi
export AUTOBAHN_EXCLUDE='[]'
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
