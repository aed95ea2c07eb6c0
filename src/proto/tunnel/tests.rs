//! The tunnel driven in memory: a controller session against an agent session, with virtual
//! time, and hand-made messages for what a correct end never sends.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use crate::proto::close::CloseCode;
use crate::proto::frame::Opcode;
use crate::proto::tunnel::codec::{self, MAX_CONTROL_LEN, MAX_MESSAGE_LEN, MAX_WINDOW, Message};
use crate::proto::tunnel::session::STREAM_SIZE;
use crate::proto::tunnel::{
    Config, Event, ResetCause, Role, SendError, Sent, Session, TunnelError, WireError,
};

const T0: Duration = Duration::from_secs(1000);
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\n\r\n";

fn enc(m: Message<'_>) -> Vec<u8> {
    let mut out = vec![0u8; m.encoded_len()];
    let n = codec::encode(&m, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

/// The result of a message, as text (events borrow the message, the text does not).
fn recv(to: &mut Session, msg: &[u8]) -> String {
    match to.handle_message(msg) {
        Ok(Some(e)) => format!("{e:?}"),
        Ok(None) => String::from("dropped"),
        Err(e) => format!("error {}", e.name()),
    }
}

/// Everything `from` owes, as messages.
fn owed(from: &mut Session) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; MAX_CONTROL_LEN];
    while let Some(n) = from.poll_transmit(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// Delivers what `from` owes to `to`, returning what each did there.
fn flush(from: &mut Session, to: &mut Session) -> Vec<String> {
    owed(from).iter().map(|m| recv(to, m)).collect()
}

fn config() -> Config {
    Config { max_streams: 4, window: 16, open_timeout: Some(Duration::from_secs(10)) }
}

fn pair() -> (Session, Session) {
    (Session::new(Role::Controller, config(), &[]), Session::new(Role::Agent, config(), &["web"]))
}

/// Opens a stream from `c` to `a`'s `web` and accepts it.
fn open(c: &mut Session, a: &mut Session) -> u32 {
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    let (id, n) = c.open_stream("web", false, GET, T0, &mut buf).unwrap();
    assert!(recv(a, &buf[..n]).starts_with("Opened"));
    let n = a.accept(id, OK, &mut buf).unwrap();
    assert!(recv(c, &buf[..n]).starts_with("Accepted"));
    id
}

/// Sends `data` from `from` to `to` on `id` as far as credit allows, in messages of at most
/// `piece` bytes; returns what arrived.
fn pour(from: &mut Session, to: &mut Session, id: u32, data: &[u8], piece: usize) -> Vec<u8> {
    let mut buf = vec![0u8; codec::HEADER_LEN + piece];
    let mut got = Vec::new();
    let mut pos = 0;
    loop {
        let sent = from.send_data(id, &data[pos..], &mut buf).unwrap();
        if sent.taken == 0 {
            return got;
        }
        pos += sent.taken;
        match to.handle_message(&buf[..sent.len]) {
            Ok(Some(Event::Data { data, .. })) => got.extend_from_slice(data),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn header_layout_is_type_flags_then_stream_id() {
    let golden: [(Message<'_>, &[u8]); 7] = [
        (
            Message::Open { stream: 1, window: 16, websocket: true, target: "web", head: b"GET" },
            b"\x01\x01\0\0\0\x01\0\0\0\x10\x03webGET",
        ),
        (Message::OpenOk { stream: 2, window: 7, head: b"H" }, b"\x02\0\0\0\0\x02\0\0\0\x07H"),
        (Message::Data { stream: 0x01020304, data: b"ab" }, b"\x03\0\x01\x02\x03\x04ab"),
        (
            Message::Relay { stream: 5, opcode: Opcode::Text, more: true, data: b"hi" },
            b"\x04\x01\0\0\0\x05\x01hi",
        ),
        (Message::Window { stream: 5, increment: 256 }, b"\x05\0\0\0\0\x05\0\0\x01\0"),
        (Message::Fin { stream: 5 }, b"\x06\0\0\0\0\x05"),
        (Message::Reset { stream: 5, cause: ResetCause::REFUSED }, b"\x07\0\0\0\0\x05\x01"),
    ];
    for (m, bytes) in golden {
        assert_eq!(enc(m), bytes, "{m:?}");
        assert_eq!(codec::decode(bytes), Ok(m));
        // A message cut anywhere inside its fixed fields is refused, never misread.
        let fixed = match m {
            Message::Open { .. } => 10 + 3,
            Message::OpenOk { .. } => 10,
            Message::Relay { .. } => 7,
            _ => 6,
        };
        for cut in 0..fixed {
            assert!(codec::decode(&bytes[..cut]).is_err(), "{m:?} cut at {cut}");
        }
    }
}

#[test]
fn every_wire_rule_has_its_error() {
    use WireError::*;
    let cases: &[(&[u8], WireError)] = &[
        (b"", Truncated),
        (b"\x03\0\0\0\0", Truncated),
        (b"\x01\0\0\0\0\x01\0\0\0\x10", Truncated),
        (b"\x01\0\0\0\0\x01\0\0\0\x10\x04web", Truncated),
        (b"\x02\0\0\0\0\x01\0\0\0", Truncated),
        (b"\x04\0\0\0\0\x01", Truncated),
        (b"\x00\0\0\0\0\x01", UnknownType),
        (b"\x08\0\0\0\0\x01", UnknownType),
        (b"\xff\0\0\0\0\x01", UnknownType),
        (b"\x03\x01\0\0\0\x01", BadFlags),
        (b"\x01\x02\0\0\0\x01\0\0\0\x10\x03web", BadFlags),
        (b"\x04\x02\0\0\0\x01\x01", BadFlags),
        (b"\x03\0\0\0\0\0", ZeroStreamId),
        (b"\x05\0\0\0\0\x01\0\0\x01", BadLength),
        (b"\x06\0\0\0\0\x01\0", BadLength),
        (b"\x07\0\0\0\0\x01", BadLength),
        (b"\x07\0\0\0\0\x01\x01\x01", BadLength),
        (b"\x05\0\0\0\0\x01\0\0\0\0", BadWindow),
        (b"\x05\0\0\0\0\x01\x80\0\0\0", BadWindow),
        (b"\x02\0\0\0\0\x01\x80\0\0\0", BadWindow),
        (b"\x01\0\0\0\0\x01\0\0\0\x10\x00", BadTarget),
        (b"\x01\0\0\0\0\x01\0\0\0\x10\x03w/b", BadTarget),
        (b"\x01\0\0\0\0\x01\0\0\0\x10\x03w\xc3\xa9", BadTarget),
        (b"\x04\0\0\0\0\x01\x03", BadOpcode),
        (b"\x04\0\0\0\0\x01\x0b", BadOpcode),
        (b"\x04\x01\0\0\0\x01\x09", BadControl),
    ];
    for &(bytes, err) in cases {
        assert_eq!(codec::decode(bytes), Err(err), "{bytes:x?}");
    }
    let mut ping = b"\x04\0\0\0\0\x01\x09".to_vec();
    ping.extend_from_slice(&[0; 126]);
    assert_eq!(codec::decode(&ping), Err(BadControl));
    ping.pop();
    assert!(codec::decode(&ping).is_ok());
    let long_name = [b'a'; 65];
    let mut open = b"\x01\0\0\0\0\x01\0\0\0\x10\x41".to_vec();
    open.extend_from_slice(&long_name);
    assert_eq!(codec::decode(&open), Err(BadTarget));
    let mut data = vec![0u8; MAX_MESSAGE_LEN + 1];
    data[..6].copy_from_slice(b"\x03\0\0\0\0\x01");
    assert_eq!(codec::decode(&data), Err(TooLong));
    assert!(codec::decode(&data[..MAX_MESSAGE_LEN]).is_ok());
    // Every type and flag byte, on a short payload: an answer, never a panic.
    for ty in 0..=255u8 {
        for flags in 0..=255u8 {
            let _ = codec::decode(&[ty, flags, 0, 0, 0, 1, 0, 0, 0, 1, 1, b'a']);
        }
    }
}

#[test]
fn a_stream_opens_carries_data_both_ways_and_half_closes_both_ways() {
    let (mut c, mut a) = pair();
    let mut buf = vec![0u8; 64];
    // A GET has no body: the controller half-closes before the answer.
    let (id, n) = c.open_stream("web", false, GET, T0, &mut buf).unwrap();
    assert_eq!(id, 1);
    assert_eq!(
        recv(&mut a, &buf[..n]),
        format!("Opened {{ stream: 1, target: \"web\", websocket: false, head: {GET:?} }}")
    );
    let n = c.finish(id, &mut buf).unwrap();
    // The agent may not send before it accepts.
    assert_eq!(a.send_data(id, b"x", &mut buf), Err(SendError::NotAccepted));
    assert_eq!(recv(&mut a, &buf[..n]), "Fin { stream: 1 }");
    let n = a.accept(id, OK, &mut buf).unwrap();
    assert_eq!(recv(&mut c, &buf[..n]), format!("Accepted {{ stream: 1, head: {OK:?} }}"));
    assert_eq!(pour(&mut a, &mut c, id, b"hello", 64), b"hello");
    assert_eq!(c.send_data(id, b"x", &mut buf), Err(SendError::Finished));
    let n = a.finish(id, &mut buf).unwrap();
    assert_eq!(a.live_streams(), 0, "FIN went both ways");
    assert_eq!(recv(&mut c, &buf[..n]), "Fin { stream: 1 }");
    assert_eq!(c.live_streams(), 0);
    // A late grant for the forgotten stream is dropped, not an error.
    let late = enc(Message::Window { stream: 1, increment: 5 });
    assert_eq!(recv(&mut c, &late), "dropped");
    assert_eq!(recv(&mut a, &late), "dropped");

    // The other way round: the agent opens (even ids); the controller exposes nothing.
    let (id, n) = a.open_stream("web", false, GET, T0, &mut buf).unwrap();
    assert_eq!(id, 2);
    assert_eq!(recv(&mut c, &buf[..n]), "Refused { stream: 2, cause: ResetCause(2) }");
    let answers = flush(&mut c, &mut a);
    assert_eq!(answers, ["Reset { stream: 2, cause: ResetCause(2), by_peer: true }"]);
    assert_eq!(a.live_streams(), 0);
}

#[test]
fn data_after_fin_resets_the_stream_only() {
    let (mut c, mut a) = pair();
    let one = open(&mut c, &mut a);
    let two = open(&mut c, &mut a);
    let mut buf = vec![0u8; 64];
    let n = a.finish(one, &mut buf).unwrap();
    recv(&mut c, &buf[..n]);
    let n = a.finish(one, &mut buf).map(|_| ()).unwrap_err();
    assert_eq!(n, SendError::Finished);
    // Forged: the agent "sends" after its FIN.
    let data = enc(Message::Data { stream: one, data: b"x" });
    assert_eq!(recv(&mut c, &data), "Reset { stream: 1, cause: ResetCause(5), by_peer: false }");
    assert_eq!(flush(&mut c, &mut a), ["Reset { stream: 1, cause: ResetCause(5), by_peer: true }"]);
    assert_eq!(pour(&mut a, &mut c, two, b"still", 64), b"still");
    // A second FIN is the same fault.
    let fin = enc(Message::Fin { stream: two });
    assert_eq!(recv(&mut c, &fin), "Fin { stream: 3 }");
    assert!(recv(&mut c, &fin).starts_with("Reset { stream: 3, cause: ResetCause(5)"));
}

#[test]
fn a_stream_without_credit_stalls_alone() {
    let (mut c, mut a) = pair();
    let slow = open(&mut c, &mut a);
    let fast = open(&mut c, &mut a);
    let big = [7u8; 100];
    // The window is 16 bytes: the slow stream's receiver never consumes.
    assert_eq!(pour(&mut a, &mut c, slow, &big, 5).len(), 16);
    assert_eq!(a.send_credit(slow), Some(0));
    let mut buf = vec![0u8; 64];
    assert_eq!(a.send_data(slow, &big, &mut buf), Ok(Sent::default()));
    // The other stream flows for as long as its receiver consumes.
    let mut total = 0;
    for _ in 0..10 {
        let got = pour(&mut a, &mut c, fast, &big, 5);
        assert!(!got.is_empty());
        total += got.len();
        c.consume(fast, got.len()).unwrap();
        let grants = flush(&mut c, &mut a);
        assert!(grants.iter().all(|g| g.starts_with("Window { stream: 3")), "{grants:?}");
    }
    assert!(total >= 100, "{total}");
    assert_eq!(a.send_credit(slow), Some(0));
    // Consuming less than half the window grants nothing yet; half of it does.
    c.consume(slow, 7).unwrap();
    assert!(owed(&mut c).is_empty());
    c.consume(slow, 1).unwrap();
    assert_eq!(flush(&mut c, &mut a), ["Window { stream: 1, credit: 8 }"]);
    assert_eq!(c.consume(slow, 9), Err(SendError::OverConsumed));
    assert_eq!(pour(&mut a, &mut c, slow, &big, 64).len(), 8);
}

#[test]
fn the_same_bytes_arrive_in_any_piece_size() {
    let data: Vec<u8> = (0..200u8).collect();
    for piece in [1, 2, 3, 7, 16, 64] {
        let (mut c, mut a) = pair();
        let id = open(&mut c, &mut a);
        let mut got = Vec::new();
        while got.len() < data.len() {
            let more = pour(&mut c, &mut a, id, &data[got.len()..], piece);
            assert!(more.len() <= 16, "never more than the window outstanding");
            a.consume(id, more.len()).unwrap();
            got.extend_from_slice(&more);
            flush(&mut a, &mut c);
        }
        assert_eq!(got, data, "piece {piece}");
    }
}

#[test]
fn sending_past_the_window_resets_the_stream() {
    let (mut c, mut a) = pair();
    let id = open(&mut c, &mut a);
    let other = open(&mut c, &mut a);
    let over = enc(Message::Data { stream: id, data: &[0; 17] });
    assert_eq!(recv(&mut c, &over), "Reset { stream: 1, cause: ResetCause(4), by_peer: false }");
    assert_eq!(flush(&mut c, &mut a), ["Reset { stream: 1, cause: ResetCause(4), by_peer: true }"]);
    // Within the window, then one byte past it.
    let full =
        enc(Message::Relay { stream: other, opcode: Opcode::Binary, more: true, data: &[0; 15] });
    assert!(recv(&mut c, &full).starts_with("Relay"));
    let one =
        enc(Message::Relay { stream: other, opcode: Opcode::Continuation, more: false, data: b"" });
    assert!(recv(&mut c, &one).starts_with("Reset { stream: 3, cause: ResetCause(4)"));
    // A grant that takes the credit past 2^31-1 is the same fault.
    let id = open(&mut c, &mut a);
    let grant = enc(Message::Window { stream: id, increment: MAX_WINDOW - 16 });
    assert_eq!(recv(&mut a, &grant), format!("Window {{ stream: {id}, credit: {MAX_WINDOW} }}"));
    let grant = enc(Message::Window { stream: id, increment: 1 });
    assert!(recv(&mut a, &grant).starts_with("Reset { stream: 5, cause: ResetCause(4)"));
    assert_eq!(c.failed(), None);
    assert_eq!(a.failed(), None);
}

#[test]
fn an_unknown_stream_id_fails_the_tunnel() {
    for msg in [
        enc(Message::Data { stream: 9, data: b"x" }),
        enc(Message::Window { stream: 2, increment: 1 }),
        enc(Message::Fin { stream: 3 }),
        enc(Message::Reset { stream: 7, cause: ResetCause::CANCEL }),
    ] {
        let (mut c, mut a) = pair();
        open(&mut c, &mut a);
        assert_eq!(recv(&mut a, &msg), "error unknown_stream", "{msg:x?}");
        let err = a.failed().unwrap();
        assert_eq!(err, TunnelError::UnknownStream);
        assert_eq!(err.close_code(), CloseCode::PROTOCOL_ERROR);
        // Failed for good: every later call says so, and nothing more is sent.
        assert_eq!(recv(&mut a, &enc(Message::Fin { stream: 1 })), "error unknown_stream");
        assert_eq!(a.live_streams(), 0);
        assert_eq!(a.send_data(1, b"x", &mut [0; 64]), Err(SendError::Failed));
    }
}

#[test]
fn ids_must_be_of_the_peers_parity_and_increase() {
    let open_msg = |stream| {
        enc(Message::Open { stream, window: 4, websocket: false, target: "web", head: b"" })
    };
    let (_, mut a) = pair();
    assert_eq!(recv(&mut a, &open_msg(2)), "error wrong_parity");
    let (_, mut a) = pair();
    assert!(recv(&mut a, &open_msg(5)).starts_with("Opened"));
    // Ids may be skipped; a stream never opened below the highest one is dropped as stale.
    assert_eq!(recv(&mut a, &enc(Message::Fin { stream: 3 })), "dropped");
    assert_eq!(recv(&mut a, &open_msg(3)), "error stream_id_not_increasing");
    let (_, mut a) = pair();
    recv(&mut a, &open_msg(5));
    assert_eq!(recv(&mut a, &open_msg(5)), "error stream_id_not_increasing");
    // An OPEN_OK for a stream the peer opened is not a stream fault: the peer is confused.
    let (_, mut a) = pair();
    recv(&mut a, &open_msg(1));
    let ok = enc(Message::OpenOk { stream: 1, window: 1, head: b"" });
    assert_eq!(recv(&mut a, &ok), "error unexpected_open_ok");
    let (mut c, mut a) = pair();
    let id = open(&mut c, &mut a);
    let ok = enc(Message::OpenOk { stream: id, window: 1, head: b"" });
    assert_eq!(recv(&mut c, &ok), "error unexpected_open_ok");
    assert_eq!(
        recv(&mut a, &enc(Message::Data { stream: 1, data: b"" })),
        "Data { stream: 1, data: [] }"
    );
    assert_eq!(recv(&mut a, &[0xff]), "error truncated");
}

#[test]
fn a_flood_past_the_stream_cap_is_refused() {
    let (mut c, mut a) = pair();
    for _ in 0..4 {
        open(&mut c, &mut a);
    }
    assert_eq!(c.open_stream("web", false, GET, T0, &mut [0; 64]), Err(SendError::TooManyStreams));
    // A forged fifth OPEN is refused; the four live streams go on.
    let fifth =
        enc(Message::Open { stream: 9, window: 4, websocket: false, target: "web", head: b"" });
    assert_eq!(recv(&mut a, &fifth), "Refused { stream: 9, cause: ResetCause(1) }");
    assert_eq!(a.live_streams(), 4);
    assert_eq!(owed(&mut a), [enc(Message::Reset { stream: 9, cause: ResetCause::REFUSED })]);
    // Once one ends, a new one is taken.
    let n = c.reset(1, ResetCause::CANCEL, &mut [0; 64]).unwrap();
    assert_eq!(n, 7);
    recv(&mut a, &enc(Message::Reset { stream: 1, cause: ResetCause::CANCEL }));
    let next =
        enc(Message::Open { stream: 11, window: 4, websocket: false, target: "web", head: b"" });
    assert!(recv(&mut a, &next).starts_with("Opened { stream: 11"));
    // A peer that floods without reading the RESETs it is owed: bounded, then failed.
    let mut id = 13;
    let err = loop {
        let flood = enc(Message::Open {
            stream: id,
            window: 4,
            websocket: false,
            target: "web",
            head: b"",
        });
        id += 2;
        match a.handle_message(&flood) {
            Ok(Some(Event::Refused { .. })) => {}
            Err(e) => break e,
            other => panic!("{other:?}"),
        }
        assert!(id < 100, "the owed RESETs are bounded");
    };
    assert_eq!(err, TunnelError::TooManyPendingResets);
    assert_eq!(err.close_code(), CloseCode::POLICY_VIOLATION);
}

#[test]
fn an_open_for_a_target_not_exposed_is_refused() {
    let (mut c, mut a) = pair();
    let mut buf = vec![0u8; 64];
    let (id, n) = c.open_stream("admin", false, GET, T0, &mut buf).unwrap();
    assert_eq!(recv(&mut a, &buf[..n]), "Refused { stream: 1, cause: ResetCause(2) }");
    assert_eq!(a.live_streams(), 0);
    assert_eq!(flush(&mut a, &mut c), ["Reset { stream: 1, cause: ResetCause(2), by_peer: true }"]);
    assert!(!c.is_live(id));
    assert_eq!(c.poll_timeout(), None, "its deadline went with it");
    assert_eq!(c.open_stream("a/b", false, GET, T0, &mut buf), Err(SendError::BadTarget));
    assert_eq!(c.open_stream("", false, GET, T0, &mut buf), Err(SendError::BadTarget));
    let huge = vec![0u8; codec::MAX_PAYLOAD];
    assert_eq!(c.open_stream("web", false, &huge, T0, &mut buf), Err(SendError::TooLong));
    assert!(matches!(
        c.open_stream("web", false, GET, T0, &mut buf[..8]),
        Err(SendError::BufferTooSmall(_))
    ));
    assert_eq!(c.live_streams(), 0, "nothing is opened by a call that failed");
}

#[test]
fn an_open_not_answered_in_time_is_reset() {
    let (mut c, mut a) = pair();
    let mut buf = vec![0u8; 64];
    let (first, n) = c.open_stream("web", false, GET, T0, &mut buf).unwrap();
    recv(&mut a, &buf[..n]);
    let later = T0 + Duration::from_secs(3);
    let (second, n) = c.open_stream("web", true, GET, later, &mut buf).unwrap();
    assert!(recv(&mut a, &buf[..n]).contains("websocket: true"));
    let n = a.accept(second, OK, &mut buf).unwrap();
    recv(&mut c, &buf[..n]);
    let deadline = T0 + Duration::from_secs(10);
    assert_eq!(c.poll_timeout(), Some(deadline), "only the unanswered stream has one");
    assert_eq!(c.handle_timeout(deadline - Duration::from_millis(1)), None);
    let event = c.handle_timeout(deadline);
    assert_eq!(
        event,
        Some(Event::Reset { stream: first, cause: ResetCause::OPEN_TIMEOUT, by_peer: false })
    );
    assert_eq!(event.map(|e| e.stream()), Some(first));
    assert_eq!(c.handle_timeout(deadline), None);
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(flush(&mut c, &mut a), ["Reset { stream: 1, cause: ResetCause(3), by_peer: true }"]);
    // The agent's answer crossed the RESET: dropped.
    assert_eq!(
        recv(&mut c, &enc(Message::OpenOk { stream: first, window: 9, head: b"" })),
        "dropped"
    );
    assert!(c.is_live(second));
}

#[test]
fn reset_either_way() {
    let (mut c, mut a) = pair();
    let mut buf = vec![0u8; 64];
    for (from_controller, cause) in
        [(true, ResetCause::CANCEL), (false, ResetCause::CONNECT_FAILED)]
    {
        let id = open(&mut c, &mut a);
        let (from, to) = if from_controller { (&mut c, &mut a) } else { (&mut a, &mut c) };
        let n = from.reset(id, cause, &mut buf).unwrap();
        assert!(!from.is_live(id));
        assert_eq!(
            recv(to, &buf[..n]),
            format!("Reset {{ stream: {id}, cause: {cause:?}, by_peer: true }}")
        );
        assert!(!to.is_live(id));
        assert_eq!(from.reset(id, cause, &mut buf), Err(SendError::UnknownStream));
        // What the other end sent before it saw the RESET is dropped.
        assert_eq!(recv(from, &enc(Message::Data { stream: id, data: b"x" })), "dropped");
    }
    assert_eq!(ResetCause::CONNECT_FAILED.name(), "connect_failed");
    assert_eq!(ResetCause(200).name(), "other");
}

#[test]
fn relayed_messages_are_pieced_within_credit_and_kept_in_order() {
    let (mut c, mut a) = pair();
    let id = open(&mut c, &mut a);
    let mut buf = vec![0u8; 64];
    let text = b"a text message longer than the window";
    let mut got = Vec::new();
    let mut opcode = Opcode::Text;
    let mut pos = 0;
    while pos < text.len() {
        let sent = c.send_relay(id, opcode, &text[pos..], true, &mut buf).unwrap();
        if sent.taken == 0 {
            // A ping still needs credit for its whole payload.
            assert_eq!(c.send_relay(id, Opcode::Ping, b"p", true, &mut buf), Ok(Sent::default()));
            flush(&mut a, &mut c);
            continue;
        }
        pos += sent.taken;
        let Ok(Some(Event::Relay { opcode: op, more, data, .. })) =
            a.handle_message(&buf[..sent.len])
        else {
            panic!()
        };
        assert_eq!(op, opcode);
        assert_eq!(more, pos < text.len());
        got.extend_from_slice(data);
        a.consume(id, 1 + data.len()).unwrap();
        opcode = Opcode::Continuation;
    }
    assert_eq!(got, text);
    assert_eq!(
        c.send_relay(id, Opcode::Continuation, b"x", true, &mut buf),
        Err(SendError::BadSequence)
    );
    assert_eq!(c.send_relay(id, Opcode::Pong, &[0; 126], true, &mut buf), Err(SendError::TooLong));
    // Out of order from the peer: the stream is reset, the tunnel stays.
    let cont =
        enc(Message::Relay { stream: id, opcode: Opcode::Continuation, more: false, data: b"" });
    assert!(recv(&mut a, &cont).starts_with("Reset { stream: 1, cause: ResetCause(5)"));
    let id = open(&mut c, &mut a);
    let start = enc(Message::Relay { stream: id, opcode: Opcode::Binary, more: true, data: b"" });
    let ping = enc(Message::Relay { stream: id, opcode: Opcode::Ping, more: false, data: b"" });
    assert!(recv(&mut a, &start).starts_with("Relay"));
    assert!(recv(&mut a, &ping).starts_with("Relay"), "control between pieces");
    assert!(recv(&mut a, &start).starts_with("Reset { stream: 3, cause: ResetCause(5)"));
    assert_eq!(a.failed(), None);
}

#[test]
fn an_idle_stream_takes_a_few_dozen_bytes() {
    // The stream's state and its key; the map adds its node overhead (under 2x).
    const { assert!(STREAM_SIZE <= 40) };
}

#[test]
fn a_small_output_buffer_takes_less_of_a_message_not_nothing() {
    let (mut c, mut a) = pair();
    let id = open(&mut c, &mut a);
    // Room for the header, the type byte and three bytes: a piece of three, marked MORE.
    let mut buf = [0u8; codec::HEADER_LEN + 4];
    let sent = c.send_relay(id, Opcode::Binary, b"0123456789", true, &mut buf).unwrap();
    assert_eq!(sent, Sent { taken: 3, len: buf.len() });
    assert_eq!(
        codec::decode(&buf),
        Ok(Message::Relay { stream: id, opcode: Opcode::Binary, more: true, data: b"012" })
    );
    assert_eq!(c.send_credit(id), Some(12));
    let err = c.send_relay(id, Opcode::Continuation, b"3", true, &mut buf[..6]);
    assert!(matches!(err, Err(SendError::BufferTooSmall(_))));
    assert_eq!(c.send_credit(id), Some(12));
}

/// The default window is OpenSSH's channel window, 2 MiB: a 1 MiB echo with two messages in
/// flight spent a 256 KiB window eight times over per round trip, waiting for a `WINDOW` each
/// time (docs/tunnel.md, Measured: 1.8x the messages per second, 2.3x per CPU-second).
#[test]
fn the_default_window_is_two_mebibytes_each_way() {
    let mut c = Session::new(Role::Controller, Config::default(), &[]);
    let mut a = Session::new(Role::Agent, Config::default(), &["web"]);
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    let (id, n) = c.open_stream("web", false, GET, T0, &mut buf).unwrap();
    assert!(matches!(codec::decode(&buf[..n]), Ok(Message::Open { window: 0x20_0000, .. })));
    assert!(recv(&mut a, &buf[..n]).starts_with("Opened"));
    let n = a.accept(id, OK, &mut buf).unwrap();
    assert!(matches!(codec::decode(&buf[..n]), Ok(Message::OpenOk { window: 0x20_0000, .. })));
}
