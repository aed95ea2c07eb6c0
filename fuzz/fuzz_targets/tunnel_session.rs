//! A `proto::tunnel::Session` driven by a script of peer messages (raw bytes, or messages built
//! from a few fields so that most are well formed) and local calls (open, accept, send, relay,
//! consume, finish, reset, time passing, flushing). Byte 0 picks the role. Beside "never
//! panics", a model kept here from the events and the messages must agree with the session at
//! every step:
//! - this end never sends more than the credit the peer granted it (opening window, `OPEN_OK`,
//!   `WINDOW`), and the peer's data is taken only within the credit this end granted;
//! - every message the session writes decodes, is about the stream it was asked about, and
//!   takes the credit the call said;
//! - live streams stay within the cap; a passed deadline is acted on; a failed session stays
//!   failed, forgets every stream and owes nothing.

#![no_main]

use std::collections::BTreeMap;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use weir::proto::frame::Opcode;
use weir::proto::tunnel::codec::{self, MAX_CONTROL_LEN, MAX_MESSAGE_LEN, Message};
use weir::proto::tunnel::{Config, Event, ResetCause, Role, Session};

const WINDOW: u32 = 64;

/// The credit each way of one live stream, as the model sees it.
#[derive(Debug, Clone, Copy, Default)]
struct Credit {
    send: u64,
    recv: u64,
}

struct Harness<'d> {
    input: &'d [u8],
    session: Session,
    model: BTreeMap<u32, Credit>,
    /// Ids seen (opened by either end), for the calls to pick from.
    ids: Vec<u32>,
    now: Duration,
    out: Vec<u8>,
}

impl Harness<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.input.split_first() else { return 0 };
        self.input = rest;
        b
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.input.len());
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        head.to_vec()
    }

    fn pick(&mut self) -> u32 {
        let b = self.byte();
        if self.ids.is_empty() || b >= 0xf0 {
            return u32::from(b);
        }
        self.ids[usize::from(b) % self.ids.len()]
    }

    fn peer_message(&mut self, msg: &[u8]) {
        let decoded = codec::decode(msg);
        let result = self.session.handle_message(msg);
        let event = match result {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                assert_eq!(self.session.failed(), Some(e));
                return;
            }
        };
        let m = decoded.expect("an event comes from a well-formed message");
        assert_eq!(m.stream(), event.stream());
        match (event, m) {
            (Event::Opened { stream, .. }, Message::Open { window, .. }) => {
                assert!(self.session.live_streams() <= 8, "the stream cap");
                self.ids.push(stream);
                self.model.insert(stream, Credit { send: window.into(), recv: 0 });
            }
            (Event::Refused { stream, cause }, Message::Open { .. }) => {
                assert!(cause == ResetCause::REFUSED || cause == ResetCause::UNKNOWN_TARGET);
                assert!(!self.session.is_live(stream));
            }
            (Event::Accepted { stream, .. }, Message::OpenOk { window, .. }) => {
                self.credit(stream).send = window.into();
            }
            (Event::Window { stream, credit }, Message::Window { increment, .. }) => {
                let c = self.credit(stream);
                c.send += u64::from(increment);
                assert_eq!(u64::from(credit), c.send);
            }
            (Event::Data { stream, .. } | Event::Relay { stream, .. }, m) => {
                let c = self.credit(stream);
                let cost = m.credit() as u64;
                assert!(cost <= c.recv, "the peer's data is taken within its credit");
                c.recv -= cost;
            }
            (Event::Fin { .. }, Message::Fin { .. }) => {}
            (Event::Reset { by_peer: true, .. }, Message::Reset { .. }) => {}
            (Event::Reset { by_peer: false, cause, .. }, _) => {
                assert!(cause == ResetCause::FLOW_CONTROL || cause == ResetCause::PROTOCOL);
            }
            (e, m) => panic!("event {e:?} from {m:?}"),
        }
    }

    fn credit(&mut self, stream: u32) -> &mut Credit {
        self.model.get_mut(&stream).expect("an event names a stream the model knows")
    }

    /// A message this end wrote for `stream`, taking `cost` credit.
    fn sent(&mut self, stream: u32, len: usize, cost: usize) {
        let m = codec::decode(&self.out[..len]).expect("what the session writes decodes");
        assert_eq!(m.stream(), stream);
        assert_eq!(m.credit(), cost);
        if let Some(c) = self.model.get_mut(&stream) {
            assert!(cost as u64 <= c.send, "never more than the credit granted");
            c.send -= cost as u64;
        }
    }

    fn flush(&mut self) {
        let mut buf = [0u8; MAX_CONTROL_LEN];
        while let Some(n) = self.session.poll_transmit(&mut buf) {
            match codec::decode(&buf[..n]).expect("owed messages decode") {
                Message::Window { stream, increment } => {
                    let c = self.credit(stream);
                    c.recv += u64::from(increment);
                    assert!(c.recv <= u64::from(WINDOW), "never more than the window");
                }
                Message::Reset { .. } => {}
                m => panic!("owed {m:?}"),
            }
        }
    }

    fn step(&mut self) {
        match self.byte() % 10 {
            0 => {
                let n = usize::from(self.byte());
                let msg = self.take(n);
                self.peer_message(&msg);
            }
            1 => {
                let msg = self.built();
                self.peer_message(&msg);
            }
            2 => {
                let b = self.byte();
                let target = if b & 1 == 0 { "web" } else { "other" };
                let head = self.take(usize::from(b >> 4));
                let out = &mut self.out;
                if let Ok((id, n)) =
                    self.session.open_stream(target, b & 2 != 0, &head, self.now, out)
                {
                    assert!(codec::decode(&self.out[..n]).is_ok());
                    self.ids.push(id);
                    self.model.insert(id, Credit { send: 0, recv: WINDOW.into() });
                }
            }
            3 => {
                let id = self.pick();
                if self.session.accept(id, b"HTTP/1.1 200 OK\r\n\r\n", &mut self.out).is_ok() {
                    self.credit(id).recv = WINDOW.into();
                }
            }
            4 => {
                let id = self.pick();
                let n = usize::from(self.byte());
                let room = 6 + usize::from(self.byte() % 64);
                let data = vec![0x61; n];
                if let Ok(s) = self.session.send_data(id, &data, &mut self.out[..room]) {
                    assert!(s.taken <= n);
                    if s.taken > 0 {
                        self.sent(id, s.len, s.taken);
                    }
                }
            }
            5 => {
                let id = self.pick();
                let b = self.byte();
                let opcode = [Opcode::Text, Opcode::Binary, Opcode::Continuation, Opcode::Ping]
                    [usize::from(b & 3)];
                let data = vec![0x62; usize::from(self.byte() % 160)];
                let last = b & 4 != 0;
                // Bits 3-7: an output buffer from 6 bytes (too small) up, or the whole one.
                let room = match usize::from(b >> 3) {
                    31 => self.out.len(),
                    r => 6 + r * 4,
                };
                let sent = self.session.send_relay(id, opcode, &data, last, &mut self.out[..room]);
                if let Some(s) = sent.ok().filter(|s| s.len > 0) {
                    self.sent(id, s.len, 1 + s.taken);
                }
            }
            6 => {
                let id = self.pick();
                let n = usize::from(self.byte());
                let _ = self.session.consume(id, n);
            }
            7 => {
                let id = self.pick();
                let b = self.byte();
                let _ = if b & 1 == 0 {
                    self.session.finish(id, &mut self.out)
                } else {
                    self.session.reset(id, ResetCause(b >> 1), &mut self.out)
                };
            }
            8 => {
                let tenths = u64::from(self.byte());
                self.now += Duration::from_millis(100 * tenths);
                let mut bound = 0;
                while let Some(e) = self.session.handle_timeout(self.now) {
                    assert!(matches!(e, Event::Reset { cause: ResetCause::OPEN_TIMEOUT, .. }));
                    bound += 1;
                    assert!(bound <= 8);
                }
                if let Some(t) = self.session.poll_timeout() {
                    assert!(t > self.now, "a passed deadline is acted on");
                }
            }
            _ => self.flush(),
        }
        self.model.retain(|id, _| self.session.is_live(*id));
        assert_eq!(self.model.len(), self.session.live_streams());
        for (&id, c) in &self.model {
            assert_eq!(self.session.send_credit(id).map(u64::from), Some(c.send), "stream {id}");
            assert_eq!(self.session.recv_credit(id).map(u64::from), Some(c.recv), "stream {id}");
        }
        if self.session.failed().is_some() {
            assert_eq!(self.session.live_streams(), 0);
            assert_eq!(self.session.poll_transmit(&mut [0; MAX_CONTROL_LEN]), None);
        }
    }

    /// A message from a few fields: type, stream, a number (window, increment, cause, opcode)
    /// and a payload length.
    fn built(&mut self) -> Vec<u8> {
        let ty = self.byte();
        let stream = u32::from(self.byte()).max(1);
        let number = u32::from(self.byte());
        let len = usize::from(self.byte() % 128);
        let payload = self.take(len);
        let opcode = Opcode::from_u4((number & 0x0f) as u8).unwrap_or(Opcode::Binary);
        let target = if number & 1 == 0 { "web" } else { "nope" };
        let m = match ty % 7 {
            0 => Message::Open {
                stream,
                window: number,
                websocket: ty & 8 != 0,
                target,
                head: &payload,
            },
            1 => Message::OpenOk { stream, window: number, head: &payload },
            2 => Message::Data { stream, data: &payload },
            3 => Message::Relay {
                stream,
                opcode,
                more: ty & 8 != 0 && !opcode.is_control(),
                data: &payload
                    [..if opcode.is_control() { payload.len().min(125) } else { payload.len() }],
            },
            4 => Message::Window { stream, increment: number.max(1) << (ty >> 4) },
            5 => Message::Fin { stream },
            _ => Message::Reset { stream, cause: ResetCause(number as u8) },
        };
        let mut out = vec![0u8; m.encoded_len()];
        let n = codec::encode(&m, &mut out).expect("sized above");
        out.truncate(n);
        out
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else { return };
    let role = if first & 1 == 0 { Role::Controller } else { Role::Agent };
    let config =
        Config { max_streams: 8, window: WINDOW, open_timeout: Some(Duration::from_secs(5)) };
    let mut h = Harness {
        input,
        session: Session::new(role, config, &["web"]),
        model: BTreeMap::new(),
        ids: Vec::new(),
        now: Duration::from_secs(1),
        out: vec![0u8; MAX_MESSAGE_LEN],
    };
    let mut steps = 0;
    while !h.input.is_empty() && steps < 4096 {
        h.step();
        steps += 1;
    }
});
