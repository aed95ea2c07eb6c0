#!/usr/bin/env bash
# Run the Autobahn|Testsuite *server* suite (wstest -m fuzzingclient) against weir's echo
# endpoint and compare the per-case verdicts with autobahn/expected-server.json.
#
# Usage:
#   autobahn/server.sh [--update] [-- SERVER_CMD ARGS...]
#
#   --update        rewrite autobahn/expected-server.json from this run instead of comparing
#   -- SERVER_CMD   server to test (overrides WEIR_SERVER_CMD); see below
#
# Environment:
#   WEIR_SERVER_CMD     server command line as one shell string. Default, when neither this nor
#                       `-- SERVER_CMD` is given: `cargo build --release --bin weir`, then
#                       `target/release/weir --listen 127.0.0.1:0`.
#   WEIR_SERVER_ARGS    extra arguments appended to the *default* command (e.g. size limits).
#   WEIR_AUTOBAHN_URL   fixed WebSocket URL to test (e.g. ws://127.0.0.1:9002). Skips port
#                       discovery. If no server command is given explicitly, no server is
#                       started at all (test an already running server); otherwise the given
#                       command is started and the script waits until the URL's port accepts.
#   WEIR_ECHO_PATH      path of the echo endpoint (default /echo)
#   WEIR_STARTUP_TIMEOUT seconds to wait for the server to come up (default 10)
#   AUTOBAHN_CASES      JSON list of case patterns (default ["*"]); e.g. '["1.*","2.*"]'
#   AUTOBAHN_EXCLUDE    JSON list of excluded patterns (default ["12.*","13.*"])
#   AUTOBAHN_TIMEOUT    seconds the whole wstest run may take (default 600)
#   AUTOBAHN_VENV       wstest venv (default <repo>/.venv/autobahn; created by setup-venv.sh)
#   AUTOBAHN_REPORTS    report directory (default autobahn/reports; the HTML report of this run
#                       goes to $AUTOBAHN_REPORTS/server, replaced on every run)
#   AUTOBAHN_EXPECTED   expected file (default autobahn/expected-server.json)
#
# Port discovery: the server's stderr (and stdout) go to a log file; the first
# `127.0.0.1:PORT` in it (weir logs e.g. `level=info msg="listening" addr=127.0.0.1:43123`)
# gives the port. The URL is then ws://127.0.0.1:PORT$WEIR_ECHO_PATH.
#
# Exit status: that of compare.py (0 = matches expected and nothing FAILED), or non-zero if the
# server or wstest could not be run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VENV="${AUTOBAHN_VENV:-$REPO/.venv/autobahn}"
REPORTS="${AUTOBAHN_REPORTS:-$HERE/reports}"
EXPECTED="${AUTOBAHN_EXPECTED:-$HERE/expected-server.json}"
ECHO_PATH="${WEIR_ECHO_PATH:-/echo}"
STARTUP_TIMEOUT="${WEIR_STARTUP_TIMEOUT:-10}"
RUN_TIMEOUT="${AUTOBAHN_TIMEOUT:-600}"
CASES="${AUTOBAHN_CASES:-[\"*\"]}"
EXCLUDE="${AUTOBAHN_EXCLUDE:-[\"12.*\", \"13.*\"]}"
AGENT=weir

log() { printf 'server.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

update=()
server_cmd=()
while [ $# -gt 0 ]; do
    case "$1" in
        --update) update=(--update); shift ;;
        --) shift; server_cmd=("$@"); break ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (server commands go after --)" ;;
    esac
done

explicit_cmd=1
if [ ${#server_cmd[@]} -eq 0 ]; then
    if [ -n "${WEIR_SERVER_CMD:-}" ]; then
        server_cmd=(bash -c "$WEIR_SERVER_CMD")
    else
        explicit_cmd=0
        # WEIR_SERVER_ARGS is split on whitespace on purpose (plain flags only).
        # shellcheck disable=SC2206
        server_cmd=("$REPO/target/release/weir" --listen 127.0.0.1:0 ${WEIR_SERVER_ARGS:-})
    fi
fi

start_server=1
if [ -n "${WEIR_AUTOBAHN_URL:-}" ] && [ "$explicit_cmd" -eq 0 ]; then
    start_server=0
fi

"$HERE/setup-venv.sh"
[ -x "$VENV/bin/wstest" ] || die "no wstest in $VENV"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-autobahn.XXXXXX")"
server_pid=
run_pid=
cleanup() {
    if [ -n "$run_pid" ]; then
        # timeout(1) passes TERM on to wstest.
        kill -TERM "$run_pid" 2>/dev/null || true
        wait "$run_pid" 2>/dev/null || true
    fi
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        # The server runs in its own process group (setsid below): stop the whole group.
        kill -TERM -- "-$server_pid" 2>/dev/null || true
        for _ in $(seq 1 20); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The spec (its url is filled in once the server is up). Written with Python so the JSON lists
# from the environment are validated, not pasted.
# An empty case selection would make wstest wait forever, so it is refused.
OUTDIR="$REPORTS/server"
python3 - "$WORK/spec.json" "$OUTDIR" "$AGENT" "$CASES" "$EXCLUDE" <<'EOF' || exit 2
import json, sys
path, outdir, agent, cases, exclude = sys.argv[1:]
def patterns(name, text):
    try:
        value = json.loads(text)
    except ValueError as e:
        sys.exit("server.sh: error: %s is not JSON: %s" % (name, e))
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        sys.exit("server.sh: error: %s must be a JSON list of strings" % name)
    return value
spec = {
    "outdir": outdir,
    "servers": [{"agent": agent, "url": None}],
    "cases": patterns("AUTOBAHN_CASES", cases),
    "exclude-cases": patterns("AUTOBAHN_EXCLUDE", exclude),
    "exclude-agent-cases": {},
}
if not spec["cases"]:
    sys.exit("server.sh: error: AUTOBAHN_CASES selects nothing (wstest would hang)")
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
EOF

SERVER_LOG="$WORK/server.log"
show_server_log() {
    if [ -s "$SERVER_LOG" ]; then
        log "last lines of the server's output:"
        tail -n 20 "$SERVER_LOG" | sed 's/^/    /' >&2
    fi
}

# Succeeds once HOST:PORT accepts a TCP connection.
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

if [ "$start_server" -eq 1 ]; then
    if [ "$explicit_cmd" -eq 0 ]; then
        log "building weir (release)"
        (cd "$REPO" && cargo build --release --bin weir)
    fi
    log "starting server: ${server_cmd[*]}"
    # setsid: own process group, so cleanup also stops anything the command spawns.
    # (A background job of a non-interactive shell is not a group leader, so setsid execs in
    # place and $! is the server's pid and process group id.)
    setsid "${server_cmd[@]}" >"$SERVER_LOG" 2>&1 </dev/null &
    server_pid=$!
fi

deadline=$((SECONDS + STARTUP_TIMEOUT))
if [ -n "${WEIR_AUTOBAHN_URL:-}" ]; then
    URL="$WEIR_AUTOBAHN_URL"
else
    addr=
    while :; do
        addr="$(grep -o -m1 -E '127\.0\.0\.1:[0-9]+' "$SERVER_LOG" 2>/dev/null | head -n1 || true)"
        [ -z "$addr" ] || break
        if ! kill -0 "$server_pid" 2>/dev/null; then
            show_server_log; die "server exited before announcing its address"
        fi
        [ "$SECONDS" -lt "$deadline" ] || { show_server_log; die "no '127.0.0.1:PORT' in the server's output after ${STARTUP_TIMEOUT}s"; }
        sleep 0.1
    done
    URL="ws://$addr$ECHO_PATH"
fi

# In both cases, wait (within the same deadline) until the port accepts TCP connections.
hostport="${URL#*://}"
hostport="${hostport%%/*}"
host="${hostport%:*}"
port="${hostport##*:}"
[ "$host" != "$hostport" ] || port=80
until port_open "$host" "$port"; do
    if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then
        show_server_log; die "server exited before accepting connections"
    fi
    [ "$SECONDS" -lt "$deadline" ] || { show_server_log; die "$host:$port not accepting connections after ${STARTUP_TIMEOUT}s"; }
    sleep 0.1
done
log "testing $URL"

python3 -c '
import json, sys
path, url = sys.argv[1:]
with open(path) as f:
    spec = json.load(f)
spec["servers"][0]["url"] = url
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
' "$WORK/spec.json" "$URL"
rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"

log "running wstest -m fuzzingclient (cases $CASES, excluding $EXCLUDE, timeout ${RUN_TIMEOUT}s)"
started=$SECONDS
wstest_rc=0
# In the background plus `wait`, so that INT/TERM reach the traps at once (bash runs traps only
# after a foreground child ends) and cleanup can stop the run.
# wstest_loopback.py: wstest with the cheap echo check of cases 12.*/13.* (see that file).
(cd "$WORK" && exec timeout --kill-after=10 "$RUN_TIMEOUT" \
    "$VENV/bin/python" "$HERE/wstest_loopback.py" -m fuzzingclient -s "$WORK/spec.json") \
    >"$OUTDIR/wstest.log" 2>&1 </dev/null &
run_pid=$!
wait "$run_pid" || wstest_rc=$?
run_pid=
log "wstest finished in $((SECONDS - started)) s (exit $wstest_rc); log: $OUTDIR/wstest.log"

if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then
    log "warning: the server exited during the run"
    show_server_log
fi
if [ "$wstest_rc" -eq 124 ] || [ "$wstest_rc" -eq 137 ]; then
    tail -n 20 "$OUTDIR/wstest.log" | sed 's/^/    /' >&2
    die "wstest did not finish within ${RUN_TIMEOUT}s (it writes index.json only at the end)"
fi
if [ ! -s "$OUTDIR/index.json" ]; then
    tail -n 20 "$OUTDIR/wstest.log" | sed 's/^/    /' >&2
    die "wstest wrote no $OUTDIR/index.json (exit $wstest_rc)"
fi

cmp_rc=0
lenient=()
[ "${AUTOBAHN_ACCEPT_NONSTRICT:-0}" = 1 ] && lenient=(--accept-nonstrict)
python3 "$HERE/compare.py" ${update[@]+"${update[@]}"} ${lenient[@]+"${lenient[@]}"} --agent "$AGENT" --label "autobahn server" \
    "$OUTDIR/index.json" "$EXPECTED" || cmp_rc=$?
[ "$cmp_rc" -eq 0 ] || log "HTML report: $OUTDIR/index.html"
exit "$cmp_rc"
