#!/usr/bin/env bash
# Run the Autobahn|Testsuite *client* suite (wstest -m fuzzingserver) against a WebSocket client
# and compare the per-case verdicts with autobahn/expected-client.json.
#
# By default the client is weir's own client role, driven by examples/autobahn_client.rs (built
# here in release mode). Any other client can be given after `--`, e.g. autobahn's own:
#   autobahn/client.sh -- .venv/autobahn/bin/wstest -m testeeclient -w ws://127.0.0.1:9001 -i weir
#
# Usage:
#   autobahn/client.sh [--update] [-- CLIENT_CMD ARGS...]
#
#   --update        rewrite autobahn/expected-client.json from this run instead of comparing
#   -- CLIENT_CMD   client to test (overrides WEIR_CLIENT_CMD)
#
# The client must follow the fuzzingserver protocol: GET $AUTOBAHN_SERVER_URL/getCaseCount
# (a text message with N), then for each case 1..N open
# $AUTOBAHN_SERVER_URL/runCase?case=I&agent=$AUTOBAHN_AGENT and echo every data message back until
# the server closes, and finally open $AUTOBAHN_SERVER_URL/updateReports?agent=$AUTOBAHN_AGENT
# (the fuzzingserver writes index.json only then). Both variables are exported to the client.
#
# Environment:
#   WEIR_CLIENT_CMD     client command line as one shell string (may use $AUTOBAHN_SERVER_URL
#                       and $AUTOBAHN_AGENT, which are exported to it)
#   AUTOBAHN_AGENT      agent name the client reports under (default weir)
#   AUTOBAHN_PORT       fuzzingserver port on 127.0.0.1 (default 9001)
#   AUTOBAHN_CASES      JSON list of case patterns (default ["*"]); e.g. '["1.*","2.*"]'
#   AUTOBAHN_EXCLUDE    JSON list of excluded patterns (default ["12.*","13.*"])
#   AUTOBAHN_TIMEOUT    seconds the client run may take (default 600)
#   AUTOBAHN_STARTUP_TIMEOUT seconds to wait for the fuzzingserver's port (default 10)
#   AUTOBAHN_VENV       wstest venv (default <repo>/.venv/autobahn; created by setup-venv.sh)
#   AUTOBAHN_REPORTS    report directory (default autobahn/reports; this run's HTML report goes to
#                       $AUTOBAHN_REPORTS/client, replaced on every run)
#   AUTOBAHN_EXPECTED   expected file (default autobahn/expected-client.json)
#
# Exit status: that of compare.py (0 = matches expected and nothing FAILED), or non-zero if the
# fuzzingserver or the client could not be run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VENV="${AUTOBAHN_VENV:-$REPO/.venv/autobahn}"
REPORTS="${AUTOBAHN_REPORTS:-$HERE/reports}"
EXPECTED="${AUTOBAHN_EXPECTED:-$HERE/expected-client.json}"
PORT="${AUTOBAHN_PORT:-9001}"
STARTUP_TIMEOUT="${AUTOBAHN_STARTUP_TIMEOUT:-10}"
RUN_TIMEOUT="${AUTOBAHN_TIMEOUT:-600}"
CASES="${AUTOBAHN_CASES:-[\"*\"]}"
EXCLUDE="${AUTOBAHN_EXCLUDE:-[\"12.*\", \"13.*\"]}"
AGENT="${AUTOBAHN_AGENT:-weir}"
URL="ws://127.0.0.1:$PORT"
# AUTOBAHN_TLS_KEY and AUTOBAHN_TLS_CERT (PEM files): the fuzzingserver speaks wss:// with them.
if [ -n "${AUTOBAHN_TLS_KEY:-}" ] && [ -n "${AUTOBAHN_TLS_CERT:-}" ]; then
    URL="wss://127.0.0.1:$PORT"
fi

log() { printf 'client.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

update=()
client_cmd=()
while [ $# -gt 0 ]; do
    case "$1" in
        --update) update=(--update); shift ;;
        --) shift; client_cmd=("$@"); break ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (client commands go after --)" ;;
    esac
done
if [ ${#client_cmd[@]} -eq 0 ]; then
    if [ -n "${WEIR_CLIENT_CMD:-}" ]; then
        client_cmd=(bash -c "$WEIR_CLIENT_CMD")
    else
        (cd "$REPO" && cargo build --release --example autobahn_client) || die "cannot build the client"
        target_dir="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
        client_cmd=(bash -c "exec \"$target_dir/release/examples/autobahn_client\" \"\$AUTOBAHN_SERVER_URL\"")
    fi
fi

"$HERE/setup-venv.sh"
[ -x "$VENV/bin/python" ] || die "no python in $VENV"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-autobahn-client.XXXXXX")"
fuzz_pid=
stop_group() {
    local pid=$1
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
run_pid=
cleanup() {
    if [ -n "$run_pid" ]; then
        # timeout(1) passes TERM on to the client.
        kill -TERM "$run_pid" 2>/dev/null || true
        wait "$run_pid" 2>/dev/null || true
    fi
    stop_group "$fuzz_pid"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Succeeds once HOST:PORT accepts a TCP connection.
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

OUTDIR="$REPORTS/client"
# Spec, written with Python so the JSON lists from the environment are validated. An empty case
# selection would make wstest wait forever, so it is refused.
python3 - "$WORK/spec.json" "$OUTDIR" "$URL" "$CASES" "$EXCLUDE" \
    "${AUTOBAHN_TLS_KEY:-}" "${AUTOBAHN_TLS_CERT:-}" <<'EOF' || exit 2
import json, sys
path, outdir, url, cases, exclude, key, cert = sys.argv[1:]
def patterns(name, text):
    try:
        value = json.loads(text)
    except ValueError as e:
        sys.exit("client.sh: error: %s is not JSON: %s" % (name, e))
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        sys.exit("client.sh: error: %s must be a JSON list of strings" % name)
    return value
spec = {
    "url": url,
    "outdir": outdir,
    "cases": patterns("AUTOBAHN_CASES", cases),
    "exclude-cases": patterns("AUTOBAHN_EXCLUDE", exclude),
    "exclude-agent-cases": {},
}
if key and cert:
    spec["key"], spec["cert"] = key, cert
if not spec["cases"]:
    sys.exit("client.sh: error: AUTOBAHN_CASES selects nothing (wstest would hang)")
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
EOF

if port_open 127.0.0.1 "$PORT"; then
    die "127.0.0.1:$PORT is already in use (set AUTOBAHN_PORT)"
fi
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"

FUZZ_LOG="$OUTDIR/fuzzingserver.log"
log "starting wstest -m fuzzingserver on $URL (cases $CASES, excluding $EXCLUDE)"
# wstest_loopback.py binds the fuzzingserver to 127.0.0.1 (plain wstest binds 0.0.0.0);
# -u 0 disables its embedded web server (default port 8080). setsid: own process group, stopped
# as a whole by cleanup.
(cd "$WORK" && exec setsid "$VENV/bin/python" "$HERE/wstest_loopback.py" \
    -m fuzzingserver -s "$WORK/spec.json" -u 0) >"$FUZZ_LOG" 2>&1 </dev/null &
fuzz_pid=$!

deadline=$((SECONDS + STARTUP_TIMEOUT))
until port_open 127.0.0.1 "$PORT"; do
    if ! kill -0 "$fuzz_pid" 2>/dev/null; then
        tail -n 20 "$FUZZ_LOG" | sed 's/^/    /' >&2
        die "fuzzingserver exited before listening"
    fi
    [ "$SECONDS" -lt "$deadline" ] || { tail -n 20 "$FUZZ_LOG" | sed 's/^/    /' >&2; die "fuzzingserver not listening on $PORT after ${STARTUP_TIMEOUT}s"; }
    sleep 0.1
done

log "running client (timeout ${RUN_TIMEOUT}s): ${client_cmd[*]}"
export AUTOBAHN_SERVER_URL="$URL" AUTOBAHN_AGENT="$AGENT"
started=$SECONDS
client_rc=0
# In the background plus `wait`, so that INT/TERM reach the traps at once (bash runs traps only
# after a foreground child ends) and cleanup can stop the run.
(cd "$REPO" && exec timeout --kill-after=10 "$RUN_TIMEOUT" "${client_cmd[@]}") \
    >"$OUTDIR/client.log" 2>&1 </dev/null &
run_pid=$!
wait "$run_pid" || client_rc=$?
run_pid=
log "client finished in $((SECONDS - started)) s (exit $client_rc); log: $OUTDIR/client.log"

if [ "$client_rc" -eq 124 ] || [ "$client_rc" -eq 137 ]; then
    tail -n 20 "$OUTDIR/client.log" | sed 's/^/    /' >&2
    die "client did not finish within ${RUN_TIMEOUT}s (no report without /updateReports)"
fi
# The fuzzingserver writes the report while answering /updateReports; give it a moment in case
# the client hung up right after asking.
for _ in $(seq 1 50); do
    [ ! -s "$OUTDIR/index.json" ] || break
    sleep 0.1
done
if [ ! -s "$OUTDIR/index.json" ]; then
    tail -n 20 "$OUTDIR/client.log" | sed 's/^/    /' >&2
    die "no $OUTDIR/index.json: did the client open /updateReports?agent=$AGENT ? (exit $client_rc)"
fi
stop_group "$fuzz_pid"
fuzz_pid=

cmp_rc=0
python3 "$HERE/compare.py" ${update[@]+"${update[@]}"} --agent "$AGENT" --label "autobahn client" \
    "$OUTDIR/index.json" "$EXPECTED" || cmp_rc=$?
[ "$cmp_rc" -eq 0 ] || log "HTML report: $OUTDIR/index.html"
if [ "$client_rc" -ne 0 ] && [ "$cmp_rc" -eq 0 ]; then
    log "error: the client exited with status $client_rc"
    exit 1
fi
exit "$cmp_rc"
