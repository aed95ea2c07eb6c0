#!/usr/bin/env bash
# Autobahn|Testsuite 12.* and 13.* (permessage-deflate, 216 cases) in the three roles at once,
# each diffed against autobahn/expected-deflate.json (every case OK): the server role with
# --compression shared, the client role (examples/autobahn_client offering it, dedicated), and
# through the reverse proxy (--compression dedicated on the proxy and its upstream). Each of the
# 12 groups (12.1-12.5, 13.1-13.7) has 18 cases of 1,000 messages, 16 B to 128 KiB, whole and
# in fragments of 256 B to 32 KiB. wstest sends them one at a time and is CPU-bound (compressing
# in Python; both ends set TCP_NODELAY, nothing waits on the network), so the three roles run
# side by side; wstest_loopback.py makes its echo check cheap (autobahn/README.md has the
# profile and the timings).
#
# Usage: autobahn/deflate.sh [--update]   (--update rewrites the expected file from each run:
# only with all 216, neither AUTOBAHN_CASES nor AUTOBAHN_DEFLATE_CI)
# Environment: AUTOBAHN_CASES (JSON list of case patterns, default all 216: '["12.*","13.*"]';
# e.g. '["12.1.1","13.7.*"]' for a hand run, diffed against those cases of the expected file),
# AUTOBAHN_VENV, AUTOBAHN_REPORTS (this run's reports go to $AUTOBAHN_REPORTS/deflate),
# AUTOBAHN_TIMEOUT (seconds each role may take, default 4800: the proxy role of all 216 took more
# than 2400 on this machine, loaded), AUTOBAHN_PORT (the client role's
# fuzzingserver, default 9001).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
(cd "$REPO" && cargo build --release --bin weir --example autobahn_client)
"$HERE/setup-venv.sh"
# AUTOBAHN_DEFLATE_CI=1 (CI): every one of the 216 cases in each run, but not each in every
# role: the 132 light ones (cases 1-8 and 11-13 of each group: 16 B to 32 KiB, whole and in
# 256-byte fragments) in all three, and each of the 84 heavy ones (9, 10, 14-18: 64 KiB and
# 128 KiB messages, three quarters of the time) in one role, turn about by group and case
# number, so each role runs about 160. That is about half the time of all 216 in three roles.
ci_cases() {
    local role=$1 cases="" g n i=0
    for g in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
        for n in $(seq 1 18); do
            case $n in
                9 | 10 | 14 | 15 | 16 | 17 | 18) [ $(((i + n) % 3)) -eq "$role" ] || continue ;;
            esac
            # Exact ids: wstest takes a pattern with `*` as a prefix (`12.1.1*` is 12.1.1x too).
            cases="$cases\"$g.$n\","
        done
        i=$((i + 1))
    done
    printf '[%s]' "${cases%,}"
}
all='["12.*","13.*"]'
if [ "${AUTOBAHN_DEFLATE_CI:-0}" = 1 ] && [ -z "${AUTOBAHN_CASES:-}" ]; then
    server_cases="$(ci_cases 0)" client_cases="$(ci_cases 1)" proxy_cases="$(ci_cases 2)"
else
    server_cases="${AUTOBAHN_CASES:-$all}" client_cases="${AUTOBAHN_CASES:-$all}"
    proxy_cases="${AUTOBAHN_CASES:-$all}"
fi
export AUTOBAHN_EXCLUDE='[]'
export AUTOBAHN_TIMEOUT="${AUTOBAHN_TIMEOUT:-4800}"
export AUTOBAHN_EXPECTED="$HERE/expected-deflate.json"
OUT="${AUTOBAHN_REPORTS:-$HERE/reports}/deflate"
mkdir -p "$OUT"
started=$SECONDS

AUTOBAHN_CASES="$server_cases" AUTOBAHN_REPORTS="$OUT" \
    WEIR_SERVER_ARGS="--compression shared --compression-min-size 0" \
    "$HERE/server.sh" "$@" >"$OUT/server.out" 2>&1 &
server=$!
AUTOBAHN_CASES="$client_cases" AUTOBAHN_REPORTS="$OUT" WEIR_COMPRESSION=dedicated \
    "$HERE/client.sh" "$@" >"$OUT/client.out" 2>&1 &
client=$!
AUTOBAHN_CASES="$proxy_cases" AUTOBAHN_REPORTS="$OUT/proxy" \
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
