"""A python `websockets` client (compression on, as by default) for tests/compression.rs.

Connects to argv[1], prints `EXT <the Sec-WebSocket-Extensions answer>`, echoes a set of
messages through the server (text, binary, 3 MiB, fragmented, empty, below the threshold) and
checks each one, then closes with 4000 and prints `CLOSE <code> <reason>`. Any mismatch prints
`FAIL ...` and exits 1. Every wait is bounded.
"""
import json
import sys

from websockets.sync.client import connect

url = sys.argv[1]


def fail(why):
    print("FAIL " + why, flush=True)
    sys.exit(1)


small = json.dumps({"type": "message", "channel": "builds", "data": {"status": "green"}})
big = bytes((i * 7 + (i >> 10)) & 0xFF for i in range(3 << 20))
cases = [
    small,
    small * 500,
    b"\x00\x01\x02\xff",
    big,
    "caf\u00e9 \U0001f600 " * 1000,
    ["part one, ", "part two, ", "part three"],
    "",
]

with connect(url, max_size=16 << 20, open_timeout=10, close_timeout=10) as ws:
    print("EXT " + ws.response.headers.get("Sec-WebSocket-Extensions", ""), flush=True)
    for i, case in enumerate(cases):
        ws.send(case)
        want = "".join(case) if isinstance(case, list) else case
        got = ws.recv(timeout=20)
        if got != want:
            fail("message %d: %r... (%d), wanted %d" % (i, got[:20], len(got), len(want)))
    ws.close(4000, "done here")
    print("CLOSE %s %s" % (ws.close_code, ws.close_reason), flush=True)
