"""A python `websockets` client over TLS, for tests/tls_interop.rs: connects to argv[1] with an
ssl context that trusts only the CA in argv[2], echoes text, binary, 1 MiB and a fragmented
message through the server and checks each, then closes with a reason and prints
`CLOSE <code> <reason>`. A mismatch prints `FAIL ...` and exits 1."""
import asyncio
import ssl
import sys

import websockets


async def main(url, ca):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    async with websockets.connect(url, ssl=ctx, max_size=None, compression=None) as ws:
        big = bytes((i * 7) % 251 for i in range(1 << 20))
        for sent in ["h\u00e9llo", b"\x00\x01\x02\xff", big]:
            await ws.send(sent)
            got = await asyncio.wait_for(ws.recv(), 10)
            if got != sent:
                print(f"FAIL echo of {type(sent).__name__} {len(sent)}: got {len(got)}")
                return 1
        await ws.send(["fra", "gmen", "ted"])
        got = await asyncio.wait_for(ws.recv(), 10)
        if got != "fragmented":
            print(f"FAIL fragmented: {got!r}")
            return 1
        await ws.close(1000, "python bye")
        print(f"CLOSE {ws.close_code} {ws.close_reason}", flush=True)
    return 0


sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
