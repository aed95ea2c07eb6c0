//! The core driven in memory: a client core against a server core, with virtual time, and every
//! input also fed one byte at a time and in other splits, which must give the same transcript.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use crate::proto::close::CloseCode;
use crate::proto::connection::{
    Config, Connection, MAX_CONTROL_FRAME_LEN, MessageKind, Role, SendError, State, Timeout,
};
use crate::proto::error::ProtocolError;
use crate::proto::frame::{Opcode, encode_frame};
use crate::proto::transcript::{Record, feed};

const T0: Duration = Duration::from_secs(1000);
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn server() -> Connection {
    Connection::new_open(Role::Server, Config::default(), T0)
}

fn client() -> Connection {
    Connection::new_open(Role::Client, Config::default(), T0)
}

/// A frame as a client sends it (masked).
fn cframe(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; payload.len() + 14];
    let n = encode_frame(fin, opcode, Some(KEY), payload, &mut out).unwrap();
    out.truncate(n);
    out
}

/// A frame as a server sends it (unmasked).
fn sframe(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; payload.len() + 14];
    let n = encode_frame(fin, opcode, None, payload, &mut out).unwrap();
    out.truncate(n);
    out
}

fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// Feeds `input` to a fresh connection made by `make`, whole, byte by byte and in several other
/// splits, asserts every transcript is the same, and returns it.
fn run(make: fn() -> Connection, input: &[u8]) -> Vec<Record> {
    let whole = feed(&mut make(), input, &[], T0);
    for reads in [&[1usize][..], &[2], &[3], &[5, 1], &[7, 13, 2], &[127, 1]] {
        let got = feed(&mut make(), input, reads, T0);
        assert_eq!(got, whole, "reads {reads:?}");
    }
    whole
}

fn close_bytes(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// What the server queues to fail with `code` (an unmasked close frame).
fn server_close(code: u16, reason: &str) -> Record {
    Record::Output(sframe(true, Opcode::Close, &close_bytes(code, reason)))
}

fn fails_with(input: &[u8], err: ProtocolError) {
    let t = run(server, input);
    assert_eq!(
        t.last(),
        Some(&server_close(err.close_code().0, err.reason())),
        "{input:x?}: {t:?}"
    );
    assert_eq!(t.iter().filter(|r| matches!(r, Record::Error(_))).count(), 1);
    assert!(t.contains(&Record::Error(err)), "{t:?}");
}

#[test]
fn single_frame_messages() {
    let input = cat(&[
        cframe(true, Opcode::Text, b"Hello"),
        cframe(true, Opcode::Binary, &[0, 1, 2, 255]),
        cframe(true, Opcode::Text, b""),
    ]);
    assert_eq!(
        run(server, &input),
        vec![
            Record::Message(MessageKind::Text, b"Hello".to_vec()),
            Record::Message(MessageKind::Binary, vec![0, 1, 2, 255]),
            Record::Message(MessageKind::Text, vec![]),
        ]
    );
}

#[test]
fn rfc_5_7_unmasked_and_fragmented_examples_reach_a_client() {
    let input = [
        &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f][..],
        &[0x01, 0x03, 0x48, 0x65, 0x6c],
        &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        &[0x80, 0x02, 0x6c, 0x6f],
        &[0x82, 0x7E, 0x01, 0x00],
        &[7u8; 256],
    ]
    .concat();
    let t = run(client, &input);
    assert_eq!(t[0], Record::Message(MessageKind::Text, b"Hello".to_vec()));
    // The ping between fragments is answered at once with a masked pong.
    assert_eq!(t[1], Record::Ping(b"Hello".to_vec()));
    let Record::Output(pong) = &t[2] else { panic!("{t:?}") };
    assert_eq!(&pong[..2], &[0x8a, 0x85]);
    assert_eq!(t[3], Record::Message(MessageKind::Text, b"Hello".to_vec()));
    assert_eq!(t[4], Record::Message(MessageKind::Binary, vec![7; 256]));
}

#[test]
fn fragments_with_control_frames_between_them() {
    let input = cat(&[
        cframe(false, Opcode::Text, "κό".as_bytes()),
        cframe(true, Opcode::Ping, b"p1"),
        cframe(false, Opcode::Continuation, b""),
        cframe(true, Opcode::Pong, b"unsolicited"),
        cframe(true, Opcode::Continuation, "σμε".as_bytes()),
    ]);
    assert_eq!(
        run(server, &input),
        vec![
            Record::Ping(b"p1".to_vec()),
            Record::Output(sframe(true, Opcode::Pong, b"p1")),
            Record::Pong(b"unsolicited".to_vec()),
            Record::Message(MessageKind::Text, "κόσμε".as_bytes().to_vec()),
        ]
    );
}

#[test]
fn a_code_point_split_across_fragments_is_valid() {
    let bytes = "€".as_bytes(); // e2 82 ac
    let input = cat(&[
        cframe(false, Opcode::Text, &bytes[..1]),
        cframe(false, Opcode::Continuation, &bytes[1..2]),
        cframe(true, Opcode::Continuation, &bytes[2..]),
    ]);
    assert_eq!(run(server, &input), vec![Record::Message(MessageKind::Text, bytes.to_vec())]);
}

#[test]
fn only_the_latest_ping_gets_a_pong() {
    // Two pings in one read: the pong for the first is replaced before it is written (§5.5.3).
    let mut s = server();
    let mut input = cat(&[cframe(true, Opcode::Ping, b"a"), cframe(true, Opcode::Ping, b"b")]);
    let (n, _) = s.handle_bytes(&mut input, T0).unwrap();
    let (_, _) = s.handle_bytes(&mut input[n..], T0).unwrap();
    let mut out = [0u8; MAX_CONTROL_FRAME_LEN];
    let len = s.poll_transmit(&mut out, [0; 4]).unwrap();
    assert_eq!(&out[..len], &sframe(true, Opcode::Pong, b"b")[..]);
    assert_eq!(s.poll_transmit(&mut out, [0; 4]), None);
}

#[test]
fn header_time_violations_fail_with_their_close_code() {
    let mut rsv1 = cframe(true, Opcode::Text, b"x");
    rsv1[0] |= 0x40;
    let mut rsv3 = cframe(true, Opcode::Binary, b"x");
    rsv3[0] |= 0x10;
    let mut reserved = cframe(true, Opcode::Binary, b"x");
    reserved[0] = 0x83;
    let mut reserved_control = cframe(true, Opcode::Ping, b"");
    reserved_control[0] = 0x8B;
    let unmasked = sframe(true, Opcode::Text, b"hi");
    let long_ping = [&[0x89u8, 0xFE, 0x00, 0x7E][..], &KEY, &[0u8; 126]].concat();
    let mut fragmented_ping = cframe(true, Opcode::Ping, b"");
    fragmented_ping[0] &= 0x7F;
    let top_bit = [&[0x82u8, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1][..], &KEY].concat();
    let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
        (rsv1, ProtocolError::ReservedBits),
        (rsv3, ProtocolError::ReservedBits),
        (reserved, ProtocolError::ReservedOpcode),
        (reserved_control, ProtocolError::ReservedOpcode),
        (unmasked, ProtocolError::UnmaskedFrame),
        (long_ping, ProtocolError::ControlFrameTooLong),
        (fragmented_ping, ProtocolError::FragmentedControlFrame),
        (top_bit, ProtocolError::LengthTopBitSet),
        (cframe(true, Opcode::Continuation, b"x"), ProtocolError::UnexpectedContinuation),
        (
            cat(&[cframe(false, Opcode::Text, b"a"), cframe(true, Opcode::Binary, b"b")]),
            ProtocolError::ExpectedContinuation,
        ),
        (
            cat(&[cframe(false, Opcode::Text, b"a"), cframe(true, Opcode::Text, b"b")]),
            ProtocolError::ExpectedContinuation,
        ),
    ];
    for (input, err) in cases {
        fails_with(&input, err);
    }
    // A server's frames must not be masked.
    let t = run(client, &cframe(true, Opcode::Text, b"hi"));
    assert!(t.contains(&Record::Error(ProtocolError::MaskedFrame)), "{t:?}");
}

#[test]
fn limits_are_refused_at_header_time_before_the_payload() {
    let config = Config { max_frame_size: 100, max_message_size: 150, ..Config::default() };
    // Only the header of a 101-byte frame: refused with nothing of the payload sent.
    let mut s = Connection::new_open(Role::Server, config, T0);
    let mut head = [&[0x82u8, 0x80 | 101][..], &KEY].concat();
    assert_eq!(s.handle_bytes(&mut head, T0), Err(ProtocolError::FrameTooLarge));
    assert_eq!(ProtocolError::FrameTooLarge.close_code(), CloseCode::MESSAGE_TOO_BIG);
    assert_eq!(s.state(), State::Closed);
    // Fragments of 100 each: the second one's header already passes the message limit.
    let mut s = Connection::new_open(Role::Server, config, T0);
    let mut input = cframe(false, Opcode::Binary, &[1; 100]);
    input.extend_from_slice(&[0x80, 0x80 | 100]);
    input.extend_from_slice(&KEY);
    let (n, ev) = s.handle_bytes(&mut input, T0).unwrap();
    assert!(ev.is_some());
    assert_eq!(s.handle_bytes(&mut input[n..], T0), Err(ProtocolError::MessageTooLarge));
    // 64-bit lengths that overflow any sum are refused too.
    let mut s = Connection::new_open(Role::Server, Config::default(), T0);
    let mut huge =
        [&[0x82u8, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF][..], &KEY].concat();
    assert_eq!(s.handle_bytes(&mut huge, T0), Err(ProtocolError::FrameTooLarge));
}

#[test]
fn invalid_utf8_fails_at_once_mid_fragment() {
    // The bad byte is in the first fragment of a message that never ends: 1007 anyway.
    let input = cframe(false, Opcode::Text, b"valid then \xed\xa0\x80 and more");
    fails_with(&input, ProtocolError::InvalidUtf8);
    // Fed byte by byte, it fails on the byte that breaks the text, not later.
    let mut s = server();
    let mut bytes = input.clone();
    let bad = 6 + b"valid then \xed".len() + 1; // header 6 bytes, then up to A0
    let mut failed_at = None;
    for i in 0..bytes.len() {
        if s.handle_bytes(&mut bytes[i..=i], T0).is_err() {
            failed_at = Some(i);
            break;
        }
    }
    assert_eq!(failed_at, Some(bad - 1));
    // A text message that ends inside a code point is invalid too.
    fails_with(&cframe(true, Opcode::Text, b"ab\xe2\x82"), ProtocolError::InvalidUtf8);
    // Binary messages are not checked.
    let t = run(server, &cframe(true, Opcode::Binary, b"\xff"));
    assert_eq!(t, vec![Record::Message(MessageKind::Binary, vec![0xff])]);
}

#[test]
fn close_frames_are_validated_and_echoed() {
    // A valid close: the server echoes the code and reason and is then closed.
    let t = run(server, &cframe(true, Opcode::Close, &close_bytes(1000, "bye")));
    assert_eq!(t, vec![Record::Close(Some(1000), "bye".into()), server_close(1000, "bye")]);
    // An empty close is answered with an empty close.
    let t = run(server, &cframe(true, Opcode::Close, b""));
    assert_eq!(
        t,
        vec![Record::Close(None, String::new()), Record::Output(sframe(true, Opcode::Close, b""))]
    );
    for code in [1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999] {
        let t = run(server, &cframe(true, Opcode::Close, &close_bytes(code, "")));
        assert_eq!(t[1], server_close(code, ""), "{code}");
    }
    for code in [0u16, 999, 1004, 1005, 1006, 1012, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
        fails_with(
            &cframe(true, Opcode::Close, &close_bytes(code, "")),
            ProtocolError::InvalidCloseCode,
        );
    }
    fails_with(&cframe(true, Opcode::Close, &[0x03]), ProtocolError::InvalidClosePayload);
    fails_with(
        &cframe(true, Opcode::Close, b"\x03\xe8\xce\xba\xff"),
        ProtocolError::InvalidCloseReason,
    );
    // Nothing after a close frame is read.
    let input = cat(&[
        cframe(true, Opcode::Close, &close_bytes(1000, "")),
        cframe(true, Opcode::Text, b"ignored"),
        vec![0xff, 0xff],
    ]);
    assert_eq!(
        run(server, &input),
        vec![Record::Close(Some(1000), String::new()), server_close(1000, "")]
    );
}

#[test]
fn close_handshake_initiated_by_either_side() {
    let mut out = [0u8; MAX_CONTROL_FRAME_LEN];
    // The server closes first; the client echoes; both end Closed.
    let (mut s, mut c) = (server(), client());
    s.close(CloseCode::GOING_AWAY, "shutting down", T0).unwrap();
    assert_eq!(s.state(), State::CloseSent);
    assert_eq!(
        s.send(MessageKind::Text, b"late", true, &mut [0u8; 32], [0; 4]),
        Err(SendError::Closing)
    );
    let n = s.poll_transmit(&mut out, [0; 4]).unwrap();
    let t = feed(&mut c, &out[..n], &[], T0);
    assert_eq!(t[0], Record::Close(Some(1001), "shutting down".into()));
    let Record::Output(echo) = &t[1] else { panic!("{t:?}") };
    assert_eq!(c.state(), State::Closed);
    assert!(!s.close_handshake_done());
    let t = feed(&mut s, echo, &[], T0);
    assert_eq!(t, vec![Record::Close(Some(1001), "shutting down".into())]);
    assert_eq!(s.state(), State::Closed);
    assert!(s.close_handshake_done());
    // The client closes first.
    let (mut s, mut c) = (server(), client());
    c.close(CloseCode::NORMAL, "", T0).unwrap();
    let n = c.poll_transmit(&mut out, [9; 4]).unwrap();
    let t = feed(&mut s, &out[..n], &[], T0);
    assert_eq!(s.state(), State::Closed);
    assert!(s.close_handshake_done(), "the echo is written");
    let Record::Output(echo) = &t[1] else { panic!("{t:?}") };
    feed(&mut c, echo, &[], T0);
    assert_eq!(c.state(), State::Closed);
    // A failed connection has sent its close frame but received none: not done.
    let mut s = server();
    let _ = s.handle_bytes(&mut cframe(true, Opcode::Text, b"\xff"), T0);
    s.poll_transmit(&mut out, [0; 4]).unwrap();
    assert_eq!(s.state(), State::Closed);
    assert!(!s.close_handshake_done());
    // Codes that must never be sent are refused.
    assert_eq!(server().close(CloseCode::NO_STATUS, "", T0), Err(SendError::InvalidCloseCode));
}

#[test]
fn the_close_echo_carries_the_peers_code_and_reason() {
    // RFC 6455 §5.5.1: the answer to a close typically echoes the status code it received;
    // clients (Node `ws`, python `websockets`) check the reason too.
    let mut out = [0u8; MAX_CONTROL_FRAME_LEN];
    let longest = "é".repeat(61) + "x"; // 123 bytes: the most a close frame holds
    for (code, reason) in [(1000, "bye"), (4001, "done here"), (1001, ""), (3000, &*longest)] {
        // The client closes; the server (fed whole, byte by byte and in other splits) echoes.
        let mut c = client();
        c.close(CloseCode(code), reason, T0).unwrap();
        let n = c.poll_transmit(&mut out, [9; 4]).unwrap();
        let t = run(server, &out[..n]);
        assert_eq!(t, vec![Record::Close(Some(code), reason.into()), server_close(code, reason)]);
        let Record::Output(echo) = &t[1] else { panic!("{t:?}") };
        assert_eq!(feed(&mut c, echo, &[1], T0), vec![Record::Close(Some(code), reason.into())]);
        assert_eq!(c.state(), State::Closed);
        // The server closes; the client echoes (masked), and the server reads it back.
        let mut s = server();
        s.close(CloseCode(code), reason, T0).unwrap();
        let n = s.poll_transmit(&mut out, [0; 4]).unwrap();
        let t = run(client, &out[..n]);
        assert_eq!(t[0], Record::Close(Some(code), reason.into()));
        let Record::Output(echo) = &t[1] else { panic!("{t:?}") };
        assert_eq!(feed(&mut s, echo, &[1], T0), vec![Record::Close(Some(code), reason.into())]);
        assert!(s.close_handshake_done());
    }
}

#[test]
fn client_and_server_exchange_every_kind_of_message() {
    let mut c = client();
    let mut s = server();
    let mut wire = Vec::new();
    let mut buf = vec![0u8; 70_000];
    let big = vec![0xA5u8; 65_536];
    for (kind, payload) in [
        (MessageKind::Text, &b"hello"[..]),
        (MessageKind::Binary, &big[..]),
        (MessageKind::Text, b""),
    ] {
        let n = c.send(kind, payload, true, &mut buf, [1, 2, 3, 4]).unwrap();
        wire.extend_from_slice(&buf[..n]);
    }
    // A fragmented send, with a ping between its frames.
    let n = c.send(MessageKind::Text, "frag".as_bytes(), false, &mut buf, [5; 4]).unwrap();
    wire.extend_from_slice(&buf[..n]);
    c.ping().unwrap();
    let mut out = [0u8; MAX_CONTROL_FRAME_LEN];
    let n = c.poll_transmit(&mut out, [6; 4]).unwrap();
    wire.extend_from_slice(&out[..n]);
    assert_eq!(
        c.send(MessageKind::Binary, b"x", true, &mut buf, [0; 4]),
        Err(SendError::Fragmentation)
    );
    let n = c.send(MessageKind::Text, "ment".as_bytes(), true, &mut buf, [7; 4]).unwrap();
    wire.extend_from_slice(&buf[..n]);
    let t = run(server, &wire);
    assert_eq!(
        t,
        vec![
            Record::Message(MessageKind::Text, b"hello".to_vec()),
            Record::Message(MessageKind::Binary, big.clone()),
            Record::Message(MessageKind::Text, vec![]),
            Record::Ping(vec![]),
            Record::Output(sframe(true, Opcode::Pong, b"")),
            Record::Message(MessageKind::Text, b"fragment".to_vec()),
        ]
    );
    // And the server's answer, zero-copy header plus payload, reaches the client.
    let (head, n) = s.encode_data_header(MessageKind::Binary, big.len() as u64, true).unwrap();
    let reply = [&head[..n], &big[..]].concat();
    let t = feed(&mut c, &reply, &[1000], T0);
    assert_eq!(t, vec![Record::Message(MessageKind::Binary, big)]);
}

#[test]
fn a_million_empty_fragments_cost_only_their_bytes() {
    // 2 + 4 bytes each: no event, no allocation, no state growth until the final one.
    let empty = cframe(false, Opcode::Continuation, b"");
    let mut input = cframe(false, Opcode::Binary, b"");
    for _ in 0..1_000_000 {
        input.extend_from_slice(&empty);
    }
    input.extend_from_slice(&cframe(true, Opcode::Continuation, b"end"));
    let t = feed(&mut server(), &input, &[], T0);
    assert_eq!(t, vec![Record::Message(MessageKind::Binary, b"end".to_vec())]);
    // Autobahn 9.x sends 4 MiB in 64-byte fragments: 65,536 frames, no count cap.
    let mut input = cframe(false, Opcode::Text, &[b'a'; 64]);
    for _ in 1..65_535 {
        input.extend_from_slice(&cframe(false, Opcode::Continuation, &[b'a'; 64]));
    }
    input.extend_from_slice(&cframe(true, Opcode::Continuation, &[b'a'; 64]));
    let t = feed(&mut server(), &input, &[4096], T0);
    assert_eq!(t, vec![Record::Message(MessageKind::Text, vec![b'a'; 4 << 20])]);
}

#[test]
fn handshake_deadline() {
    let mut c = Connection::new(Role::Server, Config::default(), T0);
    assert_eq!(c.state(), State::Connecting);
    let deadline = T0 + Duration::from_secs(10);
    assert_eq!(c.poll_timeout(), Some(deadline));
    assert_eq!(c.handle_timeout(deadline - Duration::from_millis(1)), None);
    assert_eq!(c.handle_timeout(deadline), Some(Timeout::Handshake));
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.poll_timeout(), None);
    // Opened in time: the deadline is gone.
    let mut c = Connection::new(Role::Server, Config::default(), T0);
    c.open(T0 + Duration::from_secs(1));
    assert_eq!(c.state(), State::Open);
    assert_ne!(c.poll_timeout(), Some(deadline));
}

#[test]
fn ping_when_quiet_then_drop_without_a_pong() {
    let secs = Duration::from_secs;
    let config =
        Config { ping_interval: Some(secs(30)), pong_timeout: secs(10), ..Config::default() };
    let mut s = Connection::new_open(Role::Server, config, T0);
    // Traffic pushes the ping back.
    let mut msg = cframe(true, Opcode::Text, b"hi");
    s.handle_bytes(&mut msg, T0 + secs(20)).unwrap();
    assert_eq!(s.poll_timeout(), Some(T0 + secs(50)));
    assert_eq!(s.handle_timeout(T0 + secs(49)), None);
    assert_eq!(s.handle_timeout(T0 + secs(50)), Some(Timeout::Ping));
    let mut out = [0u8; MAX_CONTROL_FRAME_LEN];
    let n = s.poll_transmit(&mut out, [0; 4]).unwrap();
    assert_eq!(&out[..n], &[0x89, 0x00]);
    assert_eq!(s.poll_timeout(), Some(T0 + secs(60)));
    // A pong clears the deadline; the next ping is an interval after the last one.
    let mut pong = cframe(true, Opcode::Pong, b"");
    s.handle_bytes(&mut pong, T0 + secs(51)).unwrap();
    assert_eq!(s.poll_timeout(), Some(T0 + secs(81)));
    assert_eq!(s.handle_timeout(T0 + secs(81)), Some(Timeout::Ping));
    // No pong this time: at the deadline the connection is closed with 1001.
    assert_eq!(s.handle_timeout(T0 + secs(90)), None);
    assert_eq!(s.handle_timeout(T0 + secs(91)), Some(Timeout::Pong));
    assert_eq!(s.state(), State::Closed);
    let mut rec = Vec::new();
    crate::proto::transcript::drain(&mut s, &mut rec);
    assert_eq!(
        rec,
        // The ping queued at 81 s was never written; a failing connection sends only its close.
        vec![server_close(1001, "pong timeout")]
    );
}

#[test]
fn idle_timeout_then_close_timeout() {
    let secs = Duration::from_secs;
    let config = Config {
        ping_interval: None,
        idle_timeout: Some(secs(60)),
        close_timeout: secs(5),
        ..Config::default()
    };
    let mut s = Connection::new_open(Role::Server, config, T0);
    // Pings and pongs are not activity; data is.
    let mut ping = cframe(true, Opcode::Ping, b"");
    s.handle_bytes(&mut ping, T0 + secs(30)).unwrap();
    assert_eq!(s.poll_timeout(), Some(T0 + secs(60)));
    let mut msg = cframe(true, Opcode::Binary, b"x");
    s.handle_bytes(&mut msg, T0 + secs(40)).unwrap();
    assert_eq!(s.handle_timeout(T0 + secs(99)), None);
    assert_eq!(s.handle_timeout(T0 + secs(100)), Some(Timeout::Idle));
    assert_eq!(s.state(), State::CloseSent);
    assert_eq!(s.poll_timeout(), Some(T0 + secs(105)));
    assert_eq!(s.handle_timeout(T0 + secs(105)), Some(Timeout::Close));
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn no_timers_when_all_are_off() {
    let config = Config {
        handshake_timeout: None,
        ping_interval: None,
        idle_timeout: None,
        ..Config::default()
    };
    assert_eq!(Connection::new(Role::Server, config, T0).poll_timeout(), None);
    assert_eq!(Connection::new_open(Role::Server, config, T0).poll_timeout(), None);
    // Durations too long for the clock saturate: they never come, and never wrap around.
    for ping in [Duration::MAX, Duration::from_nanos(u64::MAX - 1)] {
        let config = Config { ping_interval: Some(ping), ..Config::default() };
        let c = Connection::new_open(Role::Server, config, T0);
        assert_eq!(c.poll_timeout(), None, "{ping:?}");
    }
}

#[test]
fn send_refuses_what_the_rfc_forbids() {
    let mut c = Connection::new(Role::Server, Config::default(), T0);
    assert_eq!(
        c.send(MessageKind::Text, b"x", true, &mut [0u8; 16], [0; 4]),
        Err(SendError::NotOpen)
    );
    let mut s = server();
    assert_eq!(s.pong(&[0u8; 126]), Err(SendError::ControlTooLong));
    assert_eq!(
        s.send(MessageKind::Text, b"hello", true, &mut [0u8; 4], [0; 4]),
        Err(SendError::BufferTooSmall(crate::proto::BufferTooSmall { needed: 7 }))
    );
    // Nothing was recorded by the failed call: a continuation is still refused.
    assert!(!s.tx_is_fragmenting());
}

#[test]
fn the_connection_stays_small_and_heartbeats_allocate_nothing() {
    // A server holds one per open connection; the idle-memory goal depends on it.
    assert!(core::mem::size_of::<Connection>() <= 200, "{}", core::mem::size_of::<Connection>());
    // Empty pings and pongs (the heartbeat) need no control buffer; a payload does, and the
    // buffer is freed once the pong is written.
    let mut s = server();
    let mut ping = cframe(true, Opcode::Ping, b"");
    s.handle_bytes(&mut ping, T0).unwrap();
    assert!(!s.holds_control_buffer());
    let mut ping = cframe(true, Opcode::Ping, b"payload");
    s.handle_bytes(&mut ping, T0).unwrap();
    assert!(s.holds_control_buffer());
    // Freed as soon as the pong is written, without another poll.
    let mut out = [0u8; MAX_CONTROL_FRAME_LEN];
    let n = s.poll_transmit(&mut out, [0; 4]).unwrap();
    assert_eq!(&out[..n], &sframe(true, Opcode::Pong, b"payload")[..]);
    assert!(!s.wants_transmit());
    assert!(!s.holds_control_buffer());
}

#[test]
fn a_close_reply_can_be_left_to_the_caller() {
    let secs = Duration::from_secs;
    let mut s = server();
    s.set_auto_close_reply(false);
    let t = feed(&mut s, &cframe(true, Opcode::Close, &close_bytes(4000, "bye")), &[], T0);
    // Reported, not answered: the connection may still send until the caller replies.
    assert_eq!(t, vec![Record::Close(Some(4000), "bye".into())]);
    assert_eq!(s.state(), State::CloseReceived);
    let mut out = [0u8; 32];
    assert!(s.send(MessageKind::Text, b"late reply", true, &mut out, [0; 4]).is_ok());
    assert_eq!(s.poll_timeout(), Some(T0 + secs(5)));
    s.close(CloseCode(4000), "bye", T0).unwrap();
    let mut rec = Vec::new();
    crate::proto::transcript::drain(&mut s, &mut rec);
    assert_eq!(rec, vec![server_close(4000, "bye")]);
    assert_eq!(s.state(), State::Closed);
    // A caller that never replies is bounded by the close timeout.
    let mut s = server();
    s.set_auto_close_reply(false);
    feed(&mut s, &cframe(true, Opcode::Close, b""), &[], T0);
    assert_eq!(s.handle_timeout(T0 + secs(5)), Some(Timeout::Close));
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn a_close_left_to_the_caller_walks_every_closing_state() {
    // RFC 6455 §7.1.2-§7.1.3 with the reply left to the caller (a proxy): the peer's close
    // came and this end has queued nothing yet. The state derived from four flags called this
    // combination unreachable; it is where every manual close passes.
    let secs = Duration::from_secs;
    let mut out = [0u8; MAX_CONTROL_FRAME_LEN];
    let mut s = server();
    s.set_auto_close_reply(false);
    let mut close = cframe(true, Opcode::Close, &close_bytes(1000, "done"));
    let (_, event) = s.handle_bytes(&mut close, T0).unwrap();
    assert!(event.is_some());
    assert_eq!(s.state(), State::CloseReceived);
    assert!(!s.wants_transmit(), "nothing is owed until the caller replies");
    assert_eq!(s.poll_transmit(&mut out, [0; 4]), None);
    assert!(!s.close_handshake_done());
    assert_eq!(s.payload_remaining(), 0);
    // §5.5.1: nothing the peer sends after its close is read.
    let mut late = cframe(true, Opcode::Text, b"late");
    let len = late.len();
    assert_eq!(s.handle_bytes(&mut late, T0), Ok((len, None)));
    // Until it replies, this end may still send data and pings.
    assert!(s.send(MessageKind::Binary, b"x", true, &mut [0u8; 16], [0; 4]).is_ok());
    assert_eq!(s.ping(), Ok(()));
    assert_eq!(s.poll_transmit(&mut out, [0; 4]), Some(2));
    assert_eq!(s.poll_timeout(), Some(T0 + secs(5)));
    // The reply: queued, then written, and the closing handshake is done.
    s.close(CloseCode::NORMAL, "done", T0 + secs(1)).unwrap();
    assert_eq!(s.state(), State::CloseReceived);
    assert!(s.wants_transmit());
    assert_eq!(
        s.send(MessageKind::Text, b"y", true, &mut [0u8; 16], [0; 4]),
        Err(SendError::Closing)
    );
    let n = s.poll_transmit(&mut out, [0; 4]).unwrap();
    assert_eq!(&out[..n], &sframe(true, Opcode::Close, &close_bytes(1000, "done"))[..]);
    assert_eq!(s.state(), State::Closed);
    assert!(s.close_handshake_done());
    // A connection that fails while the reply is the caller's still sends its close frame.
    let mut s = server();
    s.set_auto_close_reply(false);
    s.handle_bytes(&mut cframe(true, Opcode::Close, b""), T0).unwrap();
    s.fail_with(ProtocolError::InvalidCompressedData, T0);
    assert_eq!(s.state(), State::Closed);
    let n = s.poll_transmit(&mut out, [0; 4]).unwrap();
    assert_eq!(
        &out[..n],
        &sframe(true, Opcode::Close, &close_bytes(1007, "invalid compressed data"))[..]
    );
    assert!(s.close_handshake_done(), "a close frame went each way");
}

#[test]
fn a_connection_failed_before_it_opened_sends_no_close_frame() {
    // RFC 6455 §7.1.7: a close frame is sent when failing an established connection; before
    // the opening handshake is done, the peer does not read frames yet.
    let mut out = [0u8; MAX_CONTROL_FRAME_LEN];
    let mut c = Connection::new(Role::Server, Config::default(), T0);
    c.fail_with(ProtocolError::InvalidCompressedData, T0);
    assert_eq!(c.state(), State::Closed);
    assert!(!c.wants_transmit());
    assert_eq!(c.poll_transmit(&mut out, [0; 4]), None);
    assert_eq!(c.poll_timeout(), None);
    // Opening it afterwards changes nothing.
    c.open(T0);
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn a_large_payload_can_be_read_in_place_into_the_callers_message() {
    // The text spans two frames and code points straddle every chunk boundary below.
    let text: Vec<u8> = "aé€😀".repeat(10_000).into_bytes();
    let (p1, p2) = text.split_at(40_001);
    let wire = cat(&[cframe(false, Opcode::Text, p1), cframe(true, Opcode::Continuation, p2)]);
    let mut ws = server();
    let mut msg: Vec<u8> = Vec::new();
    let mut fins = 0;
    let mut pos = 0;
    assert_eq!(ws.payload_remaining(), 0);
    while pos < wire.len() {
        let want = usize::try_from(ws.payload_remaining()).unwrap();
        if want > 0 {
            // Payload owed: the caller reads it straight into its message (here: copies the
            // wire bytes there) and hands that region over.
            let n = want.min(7_777).min(wire.len() - pos);
            let start = msg.len();
            msg.extend_from_slice(&wire[pos..pos + n]);
            let region = &mut msg[start..];
            let at = region.as_ptr();
            let (used, ev) = ws.handle_bytes(region, T0).unwrap();
            assert_eq!(used, n);
            match ev {
                Some(crate::proto::connection::Event::Message { kind, data, fin }) => {
                    assert_eq!(kind, MessageKind::Text);
                    assert_eq!((data.as_ptr(), data.len()), (at, n), "unmasked in place");
                    fins += usize::from(fin);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(ws.payload_remaining(), (want - n) as u64);
            pos += n;
        } else {
            // A header (and the first bytes after it) through the usual path.
            let mut chunk = wire[pos..(pos + 1_000).min(wire.len())].to_vec();
            let (used, ev) = ws.handle_bytes(&mut chunk, T0).unwrap();
            if let Some(crate::proto::connection::Event::Message { data, fin, .. }) = ev {
                msg.extend_from_slice(data);
                fins += usize::from(fin);
            }
            pos += used;
        }
    }
    assert_eq!(fins, 1);
    assert_eq!(msg, text);
    assert_eq!(ws.payload_remaining(), 0);
    // Nothing is owed inside a control frame, nor once the connection has failed.
    let mut ws = server();
    let mut ping = cframe(true, Opcode::Ping, &[1; 100]);
    ws.handle_bytes(&mut ping[..50], T0).unwrap();
    assert_eq!(ws.payload_remaining(), 0);
    let mut ws = server();
    let mut bad = cframe(true, Opcode::Text, &[0xff; 300]);
    assert!(ws.handle_bytes(&mut bad[..100], T0).is_err());
    assert_eq!(ws.payload_remaining(), 0);
}
