#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/seeds/<target>/ (run it from anywhere).

The seeds are small, valid (and a few nearly valid) inputs that get each target past its
first checks at once: upgrade requests and responses, frame headers, and masked / unmasked
frame streams with fragmentation, control frames in between, and close frames.
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])  # RFC 6455 §5.7's key


def frame(opcode, payload=b"", fin=True, mask=None, rsv=0):
    """One frame, with the shortest length form (§5.2)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mbit = 0x80 if mask is not None else 0
    n = len(payload)
    if n <= 125:
        head += bytes([mbit | n])
    elif n <= 0xFFFF:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close(code=None, reason=b""):
    return b"" if code is None else struct.pack(">H", code) + reason


TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def streams(mask):
    """Frame streams as one role sends them (mask given: a client's)."""
    f = lambda *a, **k: frame(*a, mask=mask, **k)  # noqa: E731
    snowman = "héllo ☃ wörld".encode()
    return {
        "text_hello": f(TEXT, b"Hello"),
        "fragmented_with_ping": f(TEXT, b"Hel", fin=False)
        + f(PING, b"are you there")
        + f(CONT, b"lo", fin=False)
        + f(CONT, b"", fin=True)
        + f(CLOSE, close(1000, b"bye")),
        "utf8_split_in_code_point": f(TEXT, snowman[:2], fin=False)
        + f(CONT, snowman[2:9], fin=False)
        + f(CONT, snowman[9:]),
        "binary_16bit_len": f(BINARY, bytes(range(200))) + f(PONG, b"") + f(CLOSE),
        "ping_pong_close": f(PING, b"hi") + f(PONG, b"unsolicited") + f(CLOSE, close(1001, b"going")),
        "two_messages": f(BINARY, b"\x00\x01\x02") + f(TEXT, b"") + f(TEXT, b"second"),
        "invalid_utf8": f(TEXT, b"ok \xc3\x28 not ok"),
        "bad_close_code": f(CLOSE, close(1005)),
    }


REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)

REQUESTS = {
    "rfc_sample": REQUEST,
    "rfc_sample_then_frame": REQUEST + frame(TEXT, b"Hello", mask=MASK),
    "bare_lf_lowercase": b"\r\nGET /ws?room=1 HTTP/1.1\nhost: localhost:9001\nupgrade: WebSocket\n"
    b"connection: keep-alive, Upgrade\nsec-websocket-key: AQIDBAUGBwgJCgsMDQ4PEA==\n"
    b"sec-websocket-version: 13\nsec-websocket-extensions: permessage-deflate; client_max_window_bits\n\n",
    "plain_get": b"GET /healthz HTTP/1.0\r\nUser-Agent: probe\r\n\r\n",
    "wrong_version": REQUEST.replace(b"Version: 13", b"Version: 8"),
    "post_upgrade": REQUEST.replace(b"GET", b"POST"),
    "fragment": REQUEST.replace(b"GET /chat", b"GET /chat/..#x"),
    "two_origins": REQUEST.replace(b"\r\n\r\n", b"\r\norigin: http://evil.example\r\n\r\n"),
}

RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
)

RESPONSES = {
    "rfc_sample_chat": RESPONSE + b"Sec-WebSocket-Protocol: chat\r\n\r\n",
    "no_protocol_then_frame": RESPONSE + b"\r\n" + frame(TEXT, b"Hello"),
    "bare_lf": RESPONSE.replace(b"\r\n", b"\n") + b"\n",
    "extension": RESPONSE + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    "wrong_accept": RESPONSE.replace(b"xOo=", b"xOp=") + b"\r\n",
    "not_101": b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 4\r\n\r\nnope",
}

HEADERS = {
    "rfc_unmasked_hello": bytes([0x81, 0x05]),
    "rfc_masked_hello": bytes([0x81, 0x85]) + MASK,
    "len16": bytes([0x82, 0x7E, 0x01, 0x00]),
    "len64_masked": bytes([0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]) + MASK,
    "len16_not_minimal": bytes([0x02, 0x7E, 0x00, 0x05]),
    "ping": bytes([0x89, 0x80]) + MASK,
    "rsv_close": bytes([0xF8, 0x02]),
}

# Chunked request bodies (RFC 9112 §7.1), valid and nearly valid.
BODIES = {
    "wikipedia": b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\nNEXT",
    "trailers": b"1\r\na\r\n0\r\nT: x\r\nU:\r\nV: y \tz\r\n\r\n",
    "empty": b"0\r\n\r\n",
    "zeros_ext": b"000; a=\"b\"\r\n\r\n",
    "upper_hex": b"A\r\n0123456789\r\n0\r\n\r\n",
    "bare_lf_end": b"0\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "bare_lf_size": b"4\nWiki\r\n0\r\n\r\n",
    "too_large": b"800\r\n",
}


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    for name, data in REQUESTS.items():
        write("request_head", name, data)
    for name, data in RESPONSES.items():
        write("response_head", name, data)
    for name, data in HEADERS.items():
        write("frame_header", name, data)
    client_sent = streams(MASK)  # what a server reads
    server_sent = streams(None)  # what a client reads
    for name, data in client_sent.items():
        write("server_connection", name, data)
    for name, data in server_sent.items():
        write("client_connection", name, data)
    # chunked_body: byte 0 = limit / 8, byte 1 = read size, then the body.
    for name, data in BODIES.items():
        write("chunked_body", name, bytes([128, 3]) + data)
    # chunking: byte 0 = role bit | (number of sizes - 1) << 1, then the sizes, then the stream.
    for name, data in client_sent.items():
        write("chunking", "server_" + name, bytes([0 | (2 << 1), 1, 3, 0x80]) + data)
    for name, data in server_sent.items():
        write("chunking", "client_" + name, bytes([1 | (1 << 1), 2, 7]) + data)


if __name__ == "__main__":
    main()
