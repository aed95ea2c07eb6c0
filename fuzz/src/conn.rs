//! Driving a [`Connection`] over arbitrary input, with virtual time, and checking what it
//! reported and every byte it sent.

use core::time::Duration;

use weir::proto::close::{CloseCode, MAX_REASON_LEN, parse_close_payload};
use weir::proto::connection::MAX_CONTROL_FRAME_LEN;
use weir::proto::frame::{FrameHeader, MAX_CONTROL_PAYLOAD};
use weir::proto::mask::apply_mask;
use weir::proto::transcript::{self, Record};
use weir::proto::{Config, Connection, MessageKind, Opcode, Role, State, Status};

/// The virtual time at which the input arrives.
pub const T0: Duration = Duration::from_secs(1_000);

/// Small limits, so the fuzzer reaches them, and every timer on.
pub fn config() -> Config {
    Config {
        max_frame_size: 4096,
        max_message_size: 16384,
        handshake_timeout: Some(Duration::from_secs(10)),
        ping_interval: Some(Duration::from_secs(30)),
        pong_timeout: Duration::from_secs(20),
        idle_timeout: Some(Duration::from_secs(90)),
        close_timeout: Duration::from_secs(5),
    }
}

/// Virtual times (after [`T0`]) at which deadlines are fired: around the ping interval, the pong
/// timeout, the idle timeout and the close timeout of [`config`].
const TIMES: [u64; 10] = [0, 1, 29, 30, 31, 50, 51, 90, 96, 1_000];

/// Everything one run left behind, to compare runs of the same input.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    /// What the connection reported, and the bytes it sent on the way.
    pub records: Vec<Record>,
    /// The state after the input.
    pub state: State,
    /// The next deadline after the input.
    pub timeout: Option<Duration>,
    /// Whether the connection still owed the peer a frame after the input.
    pub wants_transmit: bool,
    /// The bytes sent while deadlines were fired after the input.
    pub timer_output: Vec<u8>,
}

/// Feeds `input` to a fresh open connection of `role` (with [`config`]) at [`T0`], in reads
/// of the sizes `reads` gives (empty: one read), then fires its deadlines. Checks the
/// transcript, the bytes sent, and that a peer of the other role accepts them.
pub fn run(role: Role, input: &[u8], reads: &[usize]) -> Run {
    let cfg = config();
    let mut conn = Connection::new_open(role, cfg, T0);
    assert_eq!(conn.state(), State::Open);
    let records = transcript::feed(&mut conn, input, reads, T0);
    check_transcript(role, &cfg, &records);
    let state = conn.state();
    let timeout = conn.poll_timeout();
    let wants_transmit = conn.wants_transmit();
    if records.iter().any(|r| matches!(r, Record::Close(..) | Record::Error(_))) {
        assert_eq!(state, State::Closed, "after a close or an error: {records:?}");
    }
    // transcript::feed drains after every event, and only events and errors queue frames.
    assert!(!wants_transmit, "a frame left queued after feed: {records:?}");

    let timer_output = drive_timers(&mut conn);

    let mut sent: Vec<u8> = Vec::new();
    for r in &records {
        if let Record::Output(bytes) = r {
            sent.extend_from_slice(bytes);
        }
    }
    sent.extend_from_slice(&timer_output);
    parse_sent(role, &sent);
    check_peer_accepts(role, &sent);

    Run { records, state, timeout, wants_transmit, timer_output }
}

/// Checks that a transcript tells a coherent story.
///
/// - Text messages are UTF-8, and no message is over `max_message_size`.
/// - Close codes are valid on the wire, reasons are at most 123 bytes.
/// - A ping is answered at once with a pong carrying its payload (§5.5.2).
/// - A close is answered at once with a close echoing its code (§5.5.1), and nothing is
///   reported after it.
/// - An error is the last thing reported, and is answered with a close carrying its code.
pub fn check_transcript(role: Role, cfg: &Config, records: &[Record]) {
    let mut ended = false;
    for (i, record) in records.iter().enumerate() {
        let next_output = || match records.get(i + 1) {
            Some(Record::Output(bytes)) => parse_sent(role, bytes),
            other => panic!("record {i} ({record:?}) is not answered: next is {other:?}"),
        };
        if ended {
            assert!(matches!(record, Record::Output(_)), "record {i} after the end: {records:?}");
            continue;
        }
        match record {
            Record::Message(kind, data) => {
                assert!(
                    data.len() as u64 <= cfg.max_message_size,
                    "a message of {} bytes",
                    data.len()
                );
                if *kind == MessageKind::Text {
                    assert!(core::str::from_utf8(data).is_ok(), "a text message that is not UTF-8");
                }
            }
            Record::Ping(p) => {
                assert!(p.len() <= MAX_CONTROL_PAYLOAD);
                let sent = next_output();
                assert_eq!(
                    sent.first(),
                    Some(&(Opcode::Pong, p.clone())),
                    "ping {i} not answered with its pong"
                );
            }
            Record::Pong(p) => assert!(p.len() <= MAX_CONTROL_PAYLOAD),
            Record::Close(code, reason) => {
                match code {
                    Some(c) => assert!(CloseCode(*c).is_valid_on_wire(), "close code {c}"),
                    None => assert!(reason.is_empty(), "a reason without a code"),
                }
                assert!(reason.len() <= MAX_REASON_LEN);
                let sent = next_output();
                let echo = sent.iter().find(|(op, _)| *op == Opcode::Close);
                let echo_code = echo.and_then(|(_, payload)| close_code(payload));
                assert!(echo.is_some(), "close {i} not echoed: {sent:?}");
                assert_eq!(echo_code, *code, "close {i} echoed with another code");
                ended = true;
            }
            Record::Error(e) => {
                let sent = next_output();
                let close = sent.iter().find(|(op, _)| *op == Opcode::Close);
                let code = close.and_then(|(_, payload)| close_code(payload));
                assert_eq!(
                    code,
                    Some(e.close_code().0),
                    "error {e:?} not answered with its close code: {sent:?}"
                );
                ended = true;
            }
            Record::Output(_) => {}
        }
    }
}

fn close_code(payload: &[u8]) -> Option<u16> {
    match payload {
        [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}

/// Parses the bytes a connection of `role` sent into (opcode, unmasked payload) pairs.
///
/// Asserts they are whole, valid control frames from that role (masked from a client,
/// unmasked from a server, §5.1), that a close frame carries a valid payload (§5.5.1), and that
/// nothing follows the close frame (§5.5.1: no data after close).
pub fn parse_sent(role: Role, mut bytes: &[u8]) -> Vec<(Opcode, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut closed = false;
    while !bytes.is_empty() {
        assert!(!closed, "bytes sent after the close frame: {bytes:x?}");
        let (h, n) = match FrameHeader::decode(bytes) {
            Ok(Status::Complete(hn)) => hn,
            other => panic!("sent bytes are not a frame: {other:?} in {bytes:x?}"),
        };
        if let Err(e) = h.check(role == Role::Client, MAX_CONTROL_PAYLOAD as u64) {
            panic!("sent frame {h:?} breaks {e:?}");
        }
        assert!(h.fin && h.opcode.is_control(), "the core only sends control frames: {h:?}");
        let len = h.payload_len as usize;
        assert_eq!(n, FrameHeader::len_from_prefix(bytes[1]));
        assert!(n + len <= MAX_CONTROL_FRAME_LEN);
        let Some(payload) = bytes.get(n..n + len) else {
            panic!("sent frame {h:?} cut short: {bytes:x?}")
        };
        let mut payload = payload.to_vec();
        if let Some(key) = h.mask {
            apply_mask(&mut payload, key, 0);
        }
        if h.opcode == Opcode::Close {
            if let Err(e) = parse_close_payload(&payload) {
                panic!("sent close payload {payload:x?} breaks {e:?}");
            }
            closed = true;
        }
        frames.push((h.opcode, payload));
        bytes = &bytes[n + len..];
    }
    frames
}

/// Fires every deadline up to each of [`TIMES`] after [`T0`], taking what the connection then
/// owes the peer, and returns those bytes.
///
/// Asserts that `handle_timeout` acts whenever `poll_timeout` has passed (a driver calling it
/// in a loop must not spin) and that a few calls settle each instant.
pub fn drive_timers(conn: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    for secs in TIMES {
        let now = T0 + Duration::from_secs(secs);
        let mut fired = 0;
        while let Some(deadline) = conn.poll_timeout().filter(|d| *d <= now) {
            let did = conn.handle_timeout(now);
            assert!(
                did.is_some(),
                "deadline {deadline:?} passed at {now:?} but handle_timeout did nothing"
            );
            fired += 1;
            assert!(fired <= 4, "deadlines keep firing at {now:?}: {did:?}");
            transmit(conn, &mut out);
        }
        assert_eq!(conn.handle_timeout(now), None, "handle_timeout before its deadline");
        transmit(conn, &mut out);
    }
    out
}

/// Takes every frame the connection owes the peer, with a bounded loop.
fn transmit(conn: &mut Connection, out: &mut Vec<u8>) {
    let mut frame = [0u8; MAX_CONTROL_FRAME_LEN];
    let mut frames = 0;
    while let Some(n) = conn.poll_transmit(&mut frame, [0xA5, 0x5A, 0x3C, 0xC3]) {
        out.extend_from_slice(&frame[..n]);
        frames += 1;
        assert!(frames <= 3, "poll_transmit never ends");
    }
    assert!(!conn.wants_transmit(), "wants_transmit after poll_transmit said None");
}

/// Feeds what a connection of `role` sent to a peer of the other role (default limits), which
/// must not find a protocol error in it.
pub fn check_peer_accepts(role: Role, sent: &[u8]) {
    let peer_role = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut peer = Connection::new_open(peer_role, Config::default(), T0);
    let records = transcript::feed(&mut peer, sent, &[], T0);
    if let Some(e) = records.iter().find(|r| matches!(r, Record::Error(_))) {
        panic!("the peer refused what was sent: {e:?} in {sent:x?}");
    }
}
