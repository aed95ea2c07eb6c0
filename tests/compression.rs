//! permessage-deflate (RFC 7692) on the binary, with Node `ws` as the client (tests/node):
//! negotiation per mode, and text, binary, large, fragmented and empty messages echoed through
//! it; and the raw rules a client must not break.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::node::{Node, node_ready};
use common::{Binary, read_frame, read_head};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Node's client against weir started with `args`: the extension answer it got.
fn node_echo(args: &[&str], options: &str) -> String {
    let weir = Binary::start(args);
    let url = format!("ws://{}/echo", weir.addr);
    let mut node = Node::spawn("pmd-client.js", &[&url, options]);
    let ext = node.expect_line("EXT ", TIMEOUT);
    assert_eq!(node.expect_line("CLOSE ", TIMEOUT), "4000 done here");
    assert!(node.wait_exit(TIMEOUT).success());
    ext
}

#[test]
fn node_ws_round_trips_through_each_mode() {
    if !node_ready() {
        return;
    }
    let dedicated = node_echo(&["--compression", "dedicated", "--compression-min-size", "0"], "{}");
    assert_eq!(dedicated, "permessage-deflate");
    let small = node_echo(&["--compression", "dedicated:9"], "{}");
    assert_eq!(small, "permessage-deflate; server_max_window_bits=9");
    let shared = node_echo(&["--compression", "shared"], "{}");
    assert_eq!(
        shared,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    // The client asks for a small server window: honoured in the shared mode too.
    let asked = node_echo(&["--compression", "shared"], r#"{"serverMaxWindowBits":10}"#);
    assert!(asked.contains("server_max_window_bits=10"), "{asked}");
    // Off: declined, and the messages still go through.
    assert_eq!(node_echo(&[], "{}"), "");
}

/// A raw client that offers the extension on /echo and reads the 101.
fn raw_with_extension(weir: &Binary, offer: &str) -> (std::net::TcpStream, String) {
    raw_offer(weir, "/echo", offer)
}

/// A raw client that offers the extension on `path` and reads the 101.
fn raw_offer(weir: &Binary, path: &str, offer: &str) -> (std::net::TcpStream, String) {
    let mut s = common::raw(weir.addr);
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {offer}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let head = read_head(&mut s);
    (s, head)
}

#[test]
fn bad_offers_are_declined_and_broken_frames_fail_the_connection() {
    let weir = Binary::start(&["--compression", "dedicated"]);
    // A bad parameter declines that offer; the next one is taken (RFC 7692 §5, §7.1).
    let (_, head) = raw_with_extension(
        &weir,
        "permessage-deflate; server_max_window_bits=7, permessage-deflate",
    );
    assert!(head.contains("Sec-WebSocket-Extensions: permessage-deflate\r\n"), "{head}");
    let (_, head) = raw_with_extension(&weir, "permessage-deflate; x=1");
    assert!(head.starts_with("HTTP/1.1 101") && !head.contains("Extensions"), "{head}");

    // RSV1 on a continuation frame: 1002.
    let (mut s, _) = raw_with_extension(&weir, "permessage-deflate");
    s.write_all(&common::frame(0x01, b"a")).unwrap();
    s.write_all(&common::frame(0x80 | 0x40, b"b")).unwrap();
    assert_eq!(common::expect_close(&mut s), 1002);

    // Data that does not inflate: 1007.
    let (mut s, _) = raw_with_extension(&weir, "permessage-deflate");
    s.write_all(&common::frame(0x80 | 0x40 | 0x2, &[0xFF; 8])).unwrap();
    assert_eq!(common::expect_close(&mut s), 1007);

    // A bomb (8 MiB of zeros in about 8 KiB) past --max-message-size (1 MiB here): 1009.
    let weir = Binary::start(&["--compression", "dedicated", "--max-message-size", "1MiB"]);
    let (mut s, _) = raw_with_extension(&weir, "permessage-deflate");
    let bomb = miniz_oxide::deflate::compress_to_vec(&vec![0u8; 8 << 20], 6);
    s.write_all(&common::frame(0x80 | 0x40 | 0x2, &bomb)).unwrap();
    assert_eq!(common::expect_close(&mut s), 1009);
    // A compressed message from the server carries RSV1 and inflates to what was sent.
    let weir = Binary::start(&["--compression", "dedicated", "--compression-min-size", "0"]);
    let (mut s, _) = raw_with_extension(&weir, "permessage-deflate");
    let packed = miniz_oxide::deflate::compress_to_vec(b"hello hello hello", 6);
    s.write_all(&common::frame(0x80 | 0x40 | 0x1, &packed)).unwrap();
    let f = read_frame(&mut s).expect("an echo");
    assert_eq!(f.opcode(), 1);
    assert!(f.b0 & 0x40 != 0, "RSV1 set on a compressed message");
    let mut input = f.payload.clone();
    // The tail left off (RFC 7692 §7.2.2), then an empty final block to end the stream.
    input.extend_from_slice(&[0, 0, 0xFF, 0xFF, 0x03, 0x00]);
    let data = miniz_oxide::inflate::decompress_to_vec(&input).unwrap();
    assert_eq!(data, b"hello hello hello");
}

/// `weir client URL ARGS` with `input` on its stdin (then EOF: close 1000): its stdout, once
/// it exited with status 0 (bounded by `TIMEOUT`).
fn weir_client(url: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("client")
        .arg(url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    std::thread::spawn(move || stdin.write_all(&input));
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let status = common::eventually(TIMEOUT, || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("weir client still running after {TIMEOUT:?}");
    };
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert!(status.success(), "weir client: {status}; stderr:\n{err}");
    out.join().unwrap()
}

#[test]
fn weir_client_offers_compresses_and_inflates() {
    if !node_ready() {
        return;
    }
    let json = r#"{"type":"message","channel":"builds","data":{"status":"green"}}"#;
    let big = json.repeat(2000);
    let text = "café 😀 ".repeat(1000);
    let input = format!("{json}\n{big}\n{text}\n");
    let check = |args: &[&str], pmd: &str| -> (String, Vec<(usize, usize)>) {
        let mut node = Node::spawn("pmd-server.js", &[pmd]);
        let port = node.expect_line("PORT ", TIMEOUT);
        let url = format!("ws://127.0.0.1:{}/", port.trim());
        let out = weir_client(&url, args, input.as_bytes());
        // What Node sent came compressed (threshold 0): it inflated to the lines sent.
        assert_eq!(String::from_utf8(out).unwrap(), input);
        let ext = node.expect_line("EXT ", TIMEOUT);
        let got = (0..3)
            .map(|_| {
                let line = node.expect_line("GOT ", TIMEOUT);
                let (n, read) = line.split_once(' ').unwrap();
                (n.parse().unwrap(), read.parse().unwrap())
            })
            .collect();
        (ext, got)
    };
    let (ext, got) = check(&["--compression", "shared"], "{}");
    assert_eq!(ext, "permessage-deflate; client_no_context_takeover; server_no_context_takeover");
    // The 137 KB of lines crossed the socket compressed (Node reads at most 64 KiB at a time, so
    // only the total after the last one tells).
    assert_eq!(got[1].0, big.len());
    assert!(got[2].1 < 20_000, "{got:?}");

    let (ext, got) = check(&["--compression", "dedicated:10", "--compression-min-size", "0"], "{}");
    assert_eq!(ext, "permessage-deflate; client_max_window_bits=10");
    assert!(got[2].1 < 20_000, "{got:?}");
    // The server keeps a small window of its own: the client inflates with it.
    let (ext, _) = check(&["--compression", "dedicated"], r#"{"serverMaxWindowBits":9}"#);
    assert_eq!(ext, "permessage-deflate; server_max_window_bits=9");

    // Off: nothing offered, and the messages go through as they are.
    let (ext, got) = check(&[], "{}");
    assert_eq!(ext, "");
    assert!(got[2].1 > big.len() + text.len(), "{got:?}");
}

/// A server frame's message: its payload, inflated if RSV1 says it is compressed (with the tail
/// put back, RFC 7692 §7.2.2, and an empty final block to end the stream).
fn message_of(f: &common::ServerFrame) -> String {
    if f.b0 & 0x40 == 0 {
        return String::from_utf8(f.payload.clone()).unwrap();
    }
    let mut input = f.payload.clone();
    input.extend_from_slice(&[0, 0, 0xFF, 0xFF, 0x03, 0x00]);
    String::from_utf8(miniz_oxide::inflate::decompress_to_vec(&input).unwrap()).unwrap()
}

/// `/metrics`' `weir_compressed_messages_total`.
fn compressed_total(weir: &Binary) -> u64 {
    let req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (_, body) = common::request(weir.addr, req);
    body.lines()
        .find_map(|l| l.strip_prefix("weir_compressed_messages_total ")?.parse().ok())
        .unwrap_or_else(|| panic!("no weir_compressed_messages_total:\n{body}"))
}

#[test]
fn a_hub_publish_is_compressed_once_for_the_subscribers_that_share_the_compressor() {
    let weir = Binary::start(&["--compression", "shared"]);
    // Three subscribers on the shared compressor, one that asked for a smaller server window
    // (a compressor of its own), one without the extension.
    let offers = [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate",
        "permessage-deflate; server_max_window_bits=10",
        "x-none",
    ];
    let mut subs: Vec<_> = offers
        .iter()
        .map(|offer| {
            let (mut s, head) = raw_offer(&weir, "/ws", offer);
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            assert!(message_of(&read_frame(&mut s).unwrap()).contains("connected"));
            let sub = r#"{"id":"1","method":"subscribe","params":{"channel":"c"}}"#;
            s.write_all(&common::frame(0x81, sub.as_bytes())).unwrap();
            assert!(message_of(&read_frame(&mut s).unwrap()).contains(r#""id":"1""#));
            s
        })
        .collect();
    let before = compressed_total(&weir);
    let (mut publisher, _) = raw_offer(&weir, "/ws", "x-none");
    read_frame(&mut publisher).unwrap();
    let data = format!("\"{}\"", "all green, ".repeat(200));
    for id in ["p1", "p2"] {
        let publish = format!(
            r#"{{"id":"{id}","method":"publish","params":{{"channel":"c","data":{data}}}}}"#
        );
        publisher.write_all(&common::frame(0x81, publish.as_bytes())).unwrap();
        assert!(message_of(&read_frame(&mut publisher).unwrap()).contains(id));
        for (i, s) in subs.iter_mut().enumerate() {
            let f = read_frame(s).unwrap();
            assert_eq!(f.b0 & 0x40 != 0, i < 4, "subscriber {i}: RSV1 {:#x}", f.b0);
            assert!(f.payload.len() < 1000 || i == 4, "subscriber {i}: {} bytes", f.payload.len());
            assert!(message_of(&f).contains(&data), "subscriber {i}");
        }
    }
    // Per publish: once for the three that share the compressor, once for the one with its own.
    assert_eq!(compressed_total(&weir) - before, 4);
}

#[test]
fn the_proxy_negotiates_each_side_and_carries_compressed_messages_both_ways() {
    if !node_ready() {
        return;
    }
    // The upstream (Node ws) compresses everything, with a small window of its own.
    let mut upstream = Node::spawn("pmd-server.js", &[r#"{"serverMaxWindowBits":9}"#]);
    let port = upstream.expect_line("PORT ", TIMEOUT);
    let route = format!("/up=ws://127.0.0.1:{}/", port.trim());
    for (mode, client_ext, upstream_ext) in [
        (
            "shared",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; \
             server_max_window_bits=9",
        ),
        (
            "dedicated:12",
            "permessage-deflate; server_max_window_bits=12",
            "permessage-deflate; client_max_window_bits=12; server_max_window_bits=9",
        ),
    ] {
        let weir = Binary::start(&[
            "--compression",
            mode,
            "--compression-min-size",
            "0",
            "--route",
            &route,
        ]);
        let url = format!("ws://{}/up", weir.addr);
        // Node's client: text, binary, 3 MiB, fragmented and empty messages, each checked.
        let mut node = Node::spawn("pmd-client.js", &[&url, "{}"]);
        assert_eq!(node.expect_line("EXT ", TIMEOUT), client_ext, "{mode}");
        assert_eq!(node.expect_line("CLOSE ", TIMEOUT), "4000 done here", "{mode}");
        assert!(node.wait_exit(TIMEOUT).success());
        assert_eq!(upstream.expect_line("EXT ", TIMEOUT), upstream_ext, "{mode}");
        for _ in 0..7 {
            upstream.expect_line("GOT ", TIMEOUT);
        }
    }
}

/// How to get python `websockets` (compression on by default).
const INSTALL_WEBSOCKETS: &str = "install python3 and its websockets package (13 or newer), e.g. `apt-get install python3 \
     python3-websockets` or `pip install websockets`";

/// Whether `python3` with `websockets.sync` is there: a test that needs it fails with the
/// command to install it, unless `WEIR_SKIP_EXTERNAL=python3`.
fn python_ready() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import websockets.sync.client"])
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::missing_external("python3", INSTALL_WEBSOCKETS);
    }
    ok
}

#[test]
fn python_websockets_round_trips_through_each_mode() {
    use std::process::{Command, Stdio};
    if !python_ready() {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/pmd_client.py");
    for (args, ext) in [
        (
            &["--compression", "shared"][..],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            &["--compression", "dedicated:10", "--compression-min-size", "0"][..],
            "permessage-deflate; server_max_window_bits=10",
        ),
        (&[][..], ""),
    ] {
        let weir = Binary::start(args);
        let mut child = Command::new("python3")
            .arg(script)
            .arg(format!("ws://{}/echo", weir.addr))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = common::eventually(TIMEOUT, || child.try_wait().unwrap());
        if status.is_none() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report = format!("{args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{report}");
        assert!(stdout.contains(&format!("EXT {ext}\n")), "{report}");
        assert!(stdout.contains("CLOSE 4000 done here"), "{report}");
    }
}

/// In the shared mode one inflater is lent to each compressed message in turn: what one
/// connection sent must not be in its window when another's message borrows it (RFC 7692
/// §7.1.1: without context takeover each message starts on an empty window). A message whose
/// first code is a back-reference (a fixed-Huffman block: length 3, distance 1) must fail with
/// 1007 (RFC 1951 §3.2.5), not copy the previous connection's bytes.
#[test]
fn the_lent_inflater_carries_nothing_from_one_connection_to_another() {
    let weir = Binary::start(&["--compression", "shared"]);
    let (mut a, head) = raw_with_extension(&weir, "permessage-deflate");
    assert!(head.contains("permessage-deflate"), "{head}");
    let packed = miniz_oxide::deflate::compress_to_vec(b"secret", 6);
    a.write_all(&common::frame(0x80 | 0x40 | 0x1, &packed)).unwrap();
    let echo = read_frame(&mut a).expect("the echo");
    assert_eq!(echo.payload, b"secret", "sent below --compression-min-size: plain");

    let (mut b, _) = raw_with_extension(&weir, "permessage-deflate");
    // BFINAL 1, BTYPE 01; code 257 (0000001), distance code 0 (00000); end of block (0000000).
    b.write_all(&common::frame(0x80 | 0x40 | 0x1, &[0x03, 0x02, 0x00])).unwrap();
    assert_eq!(common::expect_close(&mut b), 1007);
    // The first connection is unharmed.
    a.write_all(&common::frame(0x80 | 0x40 | 0x1, &packed)).unwrap();
    assert_eq!(read_frame(&mut a).expect("a second echo").payload, b"secret");
}
