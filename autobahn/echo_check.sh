#!/usr/bin/env bash
# Checks that wstest_loopback.py's cheap echo check of cases 12.*/13.* fails as wstest's own
# does: a python `websockets` echo server with permessage-deflate corrupts the 500th echo (one
# byte changed, one byte dropped, the message type changed), and cases 12.1.3 (text) and
# 12.2.3 (binary) are run with wstest's code (AUTOBAHN_PRISTINE=1) and with the cheap check.
# Each run must report FAILED, and both the same verdicts and the same result text.
# Usage: autobahn/echo_check.sh   (needs `python3 -m pip install websockets`; about 30 s)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VENV="${AUTOBAHN_VENV:-$REPO/.venv/autobahn}"
python3 -c 'import websockets' 2>/dev/null \
    || { echo "echo_check.sh: needs python websockets: python3 -m pip install websockets" >&2; exit 2; }
"$HERE/setup-venv.sh"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-echo-check.XXXXXX")"
server=
cleanup() {
    [ -z "$server" ] || { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
    rm -rf "$WORK"
}
trap cleanup EXIT
cat >"$WORK/bad_echo.py" <<'PY'
import asyncio, sys, websockets
mode = sys.argv[1]
async def echo(ws):
    n = 0
    async for msg in ws:
        n += 1
        if n == 500:
            if mode == "flip":
                last = msg[-1:]
                msg = msg[:-1] + (("y" if last == "x" else "x") if isinstance(msg, str) else bytes([msg[-1] ^ 1]))
            elif mode == "short":
                msg = msg[:-1]
            else:
                msg = msg.encode() if isinstance(msg, str) else msg.decode("latin-1")
        await ws.send(msg)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None) as srv:
        print(srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
PY
rc=0
for mode in flip short type; do
    python3 "$WORK/bad_echo.py" "$mode" >"$WORK/port" 2>"$WORK/server.log" &
    server=$!
    for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
    [ -s "$WORK/port" ] || { cat "$WORK/server.log" >&2; echo "echo_check.sh: the echo server did not start" >&2; exit 2; }
    port="$(head -n1 "$WORK/port")"
    for pristine in 1 0; do
        out="$WORK/$mode-$pristine"
        python3 -c 'import json, sys; json.dump({"outdir": sys.argv[1], "servers": [{"agent": "weir",
            "url": "ws://127.0.0.1:" + sys.argv[2]}], "cases": ["12.1.3", "12.2.3"],
            "exclude-cases": [], "exclude-agent-cases": {}}, open(sys.argv[3], "w"))' \
            "$out" "$port" "$WORK/spec.json"
        (cd "$WORK" && AUTOBAHN_PRISTINE=$pristine timeout 300 "$VENV/bin/python" \
            "$HERE/wstest_loopback.py" -m fuzzingclient -s "$WORK/spec.json") >"$out.log" 2>&1 </dev/null \
            || { tail -n 20 "$out.log" >&2; echo "echo_check.sh: wstest failed ($mode)" >&2; exit 2; }
    done
    kill "$server"; wait "$server" 2>/dev/null || true; server=
    python3 - "$WORK/$mode-1" "$WORK/$mode-0" "$mode" <<'PY' || rc=1
import json, os, sys
def verdicts(d):
    index = json.load(open(os.path.join(d, "index.json")))["weir"]
    return {c: (r["behavior"], r["behaviorClose"],
                json.load(open(os.path.join(d, r["reportfile"])))["result"]) for c, r in index.items()}
pristine, cheap = verdicts(sys.argv[1]), verdicts(sys.argv[2])
ok = pristine == cheap and sorted(pristine) == ["12.1.3", "12.2.3"] \
    and all(v[0] == "FAILED" for v in cheap.values())
for c in sorted(cheap):
    print("echo_check.sh: %-5s %s %s/%s %s" % (sys.argv[3], c, cheap[c][0], cheap[c][1], cheap[c][2]))
if not ok:
    print("echo_check.sh: differs from wstest's own check: %r" % pristine)
sys.exit(0 if ok else 1)
PY
done
[ "$rc" -eq 0 ] && echo "echo_check.sh: the cheap echo check fails as wstest's does (3 corruptions, 2 cases)"
exit "$rc"
