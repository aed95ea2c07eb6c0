//! An owned record of what a [`Connection`] did with some input: whole messages, control
//! frames, the error if any, and every byte it queued for the peer.
//!
//! Two transcripts of the same input compare equal however the input was split into reads:
//! message pieces are joined, and pieces of a message cut short by an error are dropped. Tests
//! and fuzz targets use it to hold the core to that promise.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use crate::proto::connection::{Connection, Event, MAX_CONTROL_FRAME_LEN, MessageKind, State};
use crate::proto::error::ProtocolError;

/// One thing a connection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A whole data message.
    Message(MessageKind, Vec<u8>),
    /// A ping, with its payload.
    Ping(Vec<u8>),
    /// A pong, with its payload.
    Pong(Vec<u8>),
    /// The peer's close frame: code (if any) and reason.
    Close(Option<u16>, String),
    /// The protocol error that failed the connection.
    Error(ProtocolError),
    /// Bytes queued for the peer (pong, ping, close).
    Output(Vec<u8>),
}

/// Feeds `input` to `conn` in reads of the sizes `reads` gives (cycled; a size of 0 counts as
/// 1), and returns what happened. After every event, everything the connection owes the peer
/// is taken with `poll_transmit` (masked with `mask` in the client role).
pub fn feed(conn: &mut Connection, input: &[u8], reads: &[usize], now: Duration) -> Vec<Record> {
    let mut out = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut buf = input.to_vec();
    let mut start = 0;
    let mut sizes = reads.iter().copied().cycle();
    while start < buf.len() {
        let size = sizes.next().unwrap_or(buf.len()).max(1);
        let end = buf.len().min(start + size);
        let mut pos = start;
        while pos < end {
            match conn.handle_bytes(&mut buf[pos..end], now) {
                Ok((n, ev)) => {
                    let got = ev.is_some();
                    match ev {
                        Some(Event::Message { kind, data, fin }) => {
                            partial.extend_from_slice(data);
                            if fin {
                                out.push(Record::Message(kind, core::mem::take(&mut partial)));
                            }
                        }
                        Some(Event::Ping(p)) => out.push(Record::Ping(p.as_bytes().to_vec())),
                        Some(Event::Pong(p)) => out.push(Record::Pong(p.as_bytes().to_vec())),
                        Some(Event::Close(c)) => {
                            out.push(Record::Close(c.code.map(|c| c.0), c.reason().into()));
                        }
                        None => {}
                    }
                    pos += n;
                    if got {
                        drain(conn, &mut out);
                    }
                    if n == 0 && !got {
                        // Cannot happen: a call without an event consumes its whole input.
                        out.push(Record::Error(ProtocolError::ReservedOpcode));
                        return out;
                    }
                }
                Err(e) => {
                    out.push(Record::Error(e));
                    drain(conn, &mut out);
                    return out;
                }
            }
            if conn.state() == State::Closed {
                break;
            }
        }
        start = end;
    }
    out
}

/// Takes every frame the connection owes the peer into one `Output` record.
pub fn drain(conn: &mut Connection, out: &mut Vec<Record>) {
    let mut bytes = Vec::new();
    let mut frame = [0u8; MAX_CONTROL_FRAME_LEN];
    let mut key = 0u32;
    while let Some(n) = conn.poll_transmit(&mut frame, key.to_be_bytes()) {
        bytes.extend_from_slice(&frame[..n]);
        key = key.wrapping_add(0x9E37_79B9);
    }
    if !bytes.is_empty() {
        out.push(Record::Output(bytes));
    }
}
