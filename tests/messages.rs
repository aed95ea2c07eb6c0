//! Messages end to end: echo of every kind and size, fragments, ping, and both ways of closing.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Client = WebSocket<MaybeTlsStream<std::net::TcpStream>>;

/// A tungstenite client on `addr`/echo whose reads give up after 10 s.
fn client(addr: SocketAddr) -> Client {
    let (ws, _) = tungstenite::connect(format!("ws://{addr}/echo")).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    ws
}

/// Reads the next data message, answering (and skipping) any ping on the way.
fn next_data(ws: &mut Client) -> Message {
    loop {
        match ws.read().unwrap() {
            Message::Ping(_) | Message::Pong(_) => {}
            m => return m,
        }
    }
}

#[test]
fn text_and_binary_are_echoed() {
    let mut ws = client(common::start(common::config()));
    for m in [
        Message::text("hello"),
        Message::text(""),
        Message::text("héllo wörld ✓ 🎉"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::binary(Vec::new()),
        Message::binary((0..70_000u32).map(|i| i as u8).collect::<Vec<_>>()),
    ] {
        ws.send(m.clone()).unwrap();
        assert_eq!(next_data(&mut ws), m);
    }
}

#[test]
fn sixteen_mib_binary_is_echoed_intact() {
    let mut ws = client(common::start(common::config()));
    let data: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(data.clone())).unwrap();
    match next_data(&mut ws) {
        Message::Binary(got) => assert!(got[..] == data[..], "16 MiB echo differs"),
        m => panic!("expected binary, got {:?}", m.len()),
    }
}

#[test]
fn sixteen_mib_text_is_echoed_intact() {
    let mut ws = client(common::start(common::config()));
    // Multi-byte characters across every read boundary: 4-byte characters, 4 Mi of them.
    let text = "🎉".repeat(4 << 20);
    assert_eq!(text.len(), 16 << 20);
    ws.send(Message::text(text.clone())).unwrap();
    match next_data(&mut ws) {
        Message::Text(got) => assert!(got.as_str() == text, "16 MiB text echo differs"),
        m => panic!("expected text, got {:?}", m.len()),
    }
}

#[test]
fn fragmented_message_is_echoed_whole() {
    let addr = common::start(common::config());
    let mut s = common::upgraded(addr);
    // A text message in three fragments, with a ping between two of them (§5.4: control
    // frames may be injected in the middle of a fragmented message). The UTF-8 sequence of
    // "é" is split between the first two fragments.
    let mut out = common::frame(0x01, b"hel\xC3");
    out.extend(common::frame(0x89, b"mid"));
    out.extend(common::frame(0x00, b"\xA9lo, "));
    s.write_all(&out).unwrap();
    let pong = common::read_frame(&mut s).unwrap();
    assert_eq!((pong.b0, pong.payload.as_slice()), (0x8A, &b"mid"[..]));
    s.write_all(&common::frame(0x80, b"world")).unwrap();
    let f = common::read_frame(&mut s).unwrap();
    assert!(f.fin());
    assert_eq!(f.opcode(), 0x1);
    assert_eq!(String::from_utf8(f.payload).unwrap(), "helélo, world");
    // A binary message in many small fragments, including empty ones.
    let mut out = common::frame(0x02, b"");
    for i in 0..50u8 {
        out.extend(common::frame(0x00, &[i]));
        out.extend(common::frame(0x00, b""));
    }
    out.extend(common::frame(0x80, b""));
    s.write_all(&out).unwrap();
    let f = common::read_frame(&mut s).unwrap();
    assert_eq!(f.b0, 0x82);
    assert_eq!(f.payload, (0..50u8).collect::<Vec<_>>());
}

#[test]
fn ping_gets_a_pong_with_the_same_payload() {
    let addr = common::start(common::config());
    let mut s = common::upgraded(addr);
    for payload in [&b""[..], b"ping payload", &[0xAB; 125]] {
        s.write_all(&common::frame(0x89, payload)).unwrap();
        let f = common::read_frame(&mut s).unwrap();
        assert_eq!(f.b0, 0x8A, "expected a final pong");
        assert_eq!(f.payload, payload);
    }
    // And with tungstenite, which hands the pong back from read().
    let mut ws = client(addr);
    ws.send(Message::Ping(b"abc".to_vec().into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"abc".to_vec().into()));
}

#[test]
fn client_close_is_echoed_with_its_code() {
    let addr = common::start(common::config());
    let mut s = common::upgraded(addr);
    s.write_all(&common::close_frame(4321, "bye")).unwrap();
    let f = common::read_frame(&mut s).unwrap();
    assert_eq!(f.close_code(), 4321);
    common::expect_eof(&mut s, Duration::from_secs(5));

    let mut ws = client(addr);
    ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "done".into() })).unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(f)) => assert_eq!(f.code, CloseCode::Normal),
        m => panic!("expected the close echo, got {m:?}"),
    }
    assert!(matches!(ws.read(), Err(tungstenite::Error::ConnectionClosed)));
}

#[test]
fn server_closes_with_1009_past_max_message_size() {
    let mut config = common::config();
    config.ws.max_message_size = 1000;
    config.ws.max_frame_size = 1000;
    let mut ws = client(common::start(config));
    ws.send(Message::binary(vec![1u8; 1000])).unwrap();
    assert_eq!(next_data(&mut ws), Message::binary(vec![1u8; 1000]));
    ws.send(Message::binary(vec![1u8; 1001])).unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(f)) => assert_eq!(f.code, CloseCode::Size),
        m => panic!("expected close 1009, got {m:?}"),
    }
    // tungstenite answers the close; the server then ends the connection.
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed) => {}
        Ok(m) => panic!("nothing may follow the close, got {m:?}"),
        Err(e) => panic!("expected a clean close, got {e}"),
    }
}

#[test]
fn frames_in_the_same_packet_as_the_upgrade_are_answered() {
    let addr = common::start(common::config());
    // A small text message, a 40,000-byte binary one (over the 16 KiB read buffer), and a
    // ping, all in the write that carries the upgrade.
    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
    let mut req = common::UPGRADE.as_bytes().to_vec();
    req.extend(common::frame(0x81, b"same packet"));
    req.extend(common::frame(0x82, &big));
    req.extend(common::frame(0x89, b"p"));
    let mut s = common::raw(addr);
    s.write_all(&req).unwrap();
    let head = common::read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let f = common::read_frame(&mut s).unwrap();
    assert_eq!((f.b0, f.payload.as_slice()), (0x81, &b"same packet"[..]));
    let f = common::read_frame(&mut s).unwrap();
    assert_eq!(f.b0, 0x82);
    assert!(f.payload == big, "the big echo differs");
    let f = common::read_frame(&mut s).unwrap();
    assert_eq!((f.b0, f.payload.as_slice()), (0x8A, &b"p"[..]));
}

#[test]
fn upgrade_one_byte_at_a_time_then_frames() {
    let addr = common::start(common::config());
    let mut s = common::raw(addr);
    let mut req = common::UPGRADE.as_bytes().to_vec();
    req.extend(common::frame(0x81, b"after a slow head"));
    for b in &req {
        s.write_all(std::slice::from_ref(b)).unwrap();
    }
    let head = common::read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let f = common::read_frame(&mut s).unwrap();
    assert_eq!((f.b0, f.payload.as_slice()), (0x81, &b"after a slow head"[..]));
}

#[test]
fn a_thousand_pipelined_messages_come_back_in_order() {
    let addr = common::start(common::config());
    let mut s = common::upgraded(addr);
    let mut out = Vec::new();
    for i in 0..1000u32 {
        out.extend(common::frame(0x82, &i.to_be_bytes().repeat(1 + (i % 7) as usize)));
    }
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || s.write_all(&out).unwrap())
    };
    for i in 0..1000u32 {
        let f = common::read_frame(&mut s).expect("EOF before every echo");
        assert_eq!(f.b0, 0x82);
        assert_eq!(f.payload, i.to_be_bytes().repeat(1 + (i % 7) as usize), "message {i}");
    }
    writer.join().unwrap();
}

/// The read that ends a large frame read in place also takes the header after it (and nothing
/// more): large and small messages and pings back to back, in one write, each come back in
/// order, whatever the reads' boundaries.
#[test]
fn large_and_small_messages_back_to_back_come_back_in_order() {
    let addr = common::start(common::config());
    let mut s = common::upgraded(addr);
    let big = |seed: u32, len: u32| (0..len).map(|i| (i.wrapping_mul(seed) >> 3) as u8).collect();
    let messages: Vec<(u8, Vec<u8>)> = vec![
        (0x82, big(7, 1 << 20)),
        (0x82, big(11, 1 << 20)),
        (0x89, b"ping".to_vec()),
        (0x82, big(13, 100_000)),
        (0x82, b"x".to_vec()),
        (0x82, big(17, 65_536)),
        (0x81, b"small text".to_vec()),
        (0x82, big(19, 300_000)),
        (0x82, Vec::new()),
    ];
    let wire: Vec<u8> = messages.iter().flat_map(|(b0, p)| common::frame(*b0, p)).collect();
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || s.write_all(&wire).unwrap())
    };
    for (i, (b0, payload)) in messages.iter().enumerate() {
        let f = common::read_frame(&mut s).expect("EOF before every answer");
        let want = if *b0 == 0x89 { 0x8A } else { *b0 };
        assert_eq!(f.b0, want, "answer {i}");
        assert!(f.payload == *payload, "answer {i} differs ({} bytes)", f.payload.len());
    }
    writer.join().unwrap();
}

/// Large frames' payload is read straight into the message being gathered (once its header is
/// in): a fragmented text message with a ping between its frames
/// and code points split across frame and read boundaries comes back whole, after the pong.
#[test]
fn large_fragmented_text_with_a_ping_between_its_frames_is_echoed_whole() {
    let addr = common::start(common::config());
    let mut s = common::upgraded(addr);
    let text = "aé€😀".repeat(60_000);
    let (a, b) = text.as_bytes().split_at(300_001);
    let wire = [common::frame(0x01, a), common::frame(0x89, b"between"), common::frame(0x80, b)];
    for chunk in wire.concat().chunks(65_537) {
        s.write_all(chunk).unwrap();
    }
    let pong = common::read_frame(&mut s).expect("a pong");
    assert_eq!((pong.b0, pong.payload.as_slice()), (0x8A, &b"between"[..]));
    let echo = common::read_frame(&mut s).expect("the echo");
    assert_eq!(echo.b0, 0x81);
    assert!(echo.payload == text.as_bytes(), "the echo differs from what was sent");
}
