//! One connection as the runtime holds it: the socket, the protocol state, the stage it is in
//! (`state.rs`), the outbound queue, and what the loop tracks about readiness and closing.

use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;

use crate::proto::{Config as WsConfig, Connection, Role};
use crate::server::api::Tag;
use crate::server::outq::OutQueue;
use crate::server::state::ConnState;
use crate::server::timer::TimerId;

/// Below this, a read through the shared buffer costs no more (`Conn::direct_read_len`).
const MIN_DIRECT: usize = 64 << 10;

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) socket: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) ws: Connection,
    /// Which application owns the connection, as the handler named it (`Context::set_tag`).
    pub(crate) tag: Tag,
    /// Where the connection is in its life, with what only that stage needs (`state.rs`).
    pub(crate) state: ConnState,
    pub(crate) out: OutQueue,
    /// The armed timer and the deadline it was armed for.
    pub(crate) timer: Option<(TimerId, Duration)>,
    /// Readiness as last reported and not yet used up (edge-triggered).
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The peer closed its side (or the socket failed).
    pub(crate) eof: bool,
    /// A slow reader, cut off: not read until an event says the peer closed its side (what is
    /// left to read then is bounded by the socket buffers).
    pub(crate) cut: bool,
    /// An event said the peer's side is closed: read on until EOF.
    pub(crate) hup: bool,
    /// This side shut down writing; the connection lingers until EOF or `linger_until`.
    pub(crate) shut_wr: bool,
    pub(crate) linger_until: Option<Duration>,
    /// Queued for a flush by the current batch of work.
    pub(crate) dirty: bool,
    /// Listed to be served again in the next pass of the loop (`Server::read_again`).
    pub(crate) scheduled: bool,
    /// The close code to report: received, or sent when this end failed the connection.
    pub(crate) close_code: Option<u16>,
    pub(crate) opened_at: Duration,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) path: Box<str>,
    /// The reason of the close frame received, for the handler.
    pub(crate) close_reason: Box<str>,
    /// The handler paused reading (flow control).
    pub(crate) paused: bool,
    /// Tell the handler (`on_drained`) once the queue is at or below this many bytes.
    pub(crate) drain_mark: Option<u32>,
    /// Where the last pong queued ends, counted in bytes written (`bytes_out`): while it is
    /// unwritten, the control frames the core owes stay there (RFC 6455 §5.5.3: a newer ping's
    /// pong replaces the one owed), so a peer that pings and never reads holds one pong here.
    pub(crate) pong_end: u64,
    /// The code of a close frame queued and not yet written (0: none); counted when written.
    pub(crate) close_queued: u16,
    /// When output queued is dropped if none of it has been written by then (`--send-timeout`).
    pub(crate) send_deadline: Option<Duration>,
}

impl Conn {
    /// Records why the connection ends (the first reason wins), for the close log line and
    /// `on_close`.
    pub(crate) fn set_close(&mut self, code: u16, reason: &str) {
        if self.close_code.is_none() {
            self.close_code = Some(code);
            self.close_reason = Box::from(reason);
        }
    }

    pub(crate) fn new(
        socket: TcpStream,
        peer: SocketAddr,
        role: Role,
        ws: WsConfig,
        state: ConnState,
        now: Duration,
    ) -> Self {
        Self {
            socket,
            peer,
            ws: Connection::new(role, ws, now),
            tag: Tag::NONE,
            state,
            out: OutQueue::default(),
            timer: None,
            readable: false,
            writable: false,
            eof: false,
            cut: false,
            hup: false,
            shut_wr: false,
            linger_until: None,
            dirty: false,
            scheduled: false,
            close_code: None,
            opened_at: now,
            bytes_in: 0,
            bytes_out: 0,
            path: Box::from(""),
            close_reason: Box::from(""),
            paused: false,
            drain_mark: None,
            pong_end: 0,
            close_queued: 0,
            send_deadline: None,
        }
    }

    /// Whether the handler may write a streamed response to it: a body of a given length is
    /// written even to a client that half-closed.
    pub(crate) fn takes_stream_writes(&self) -> bool {
        self.state.body_owed() || (self.state.is_stream() && !self.eof)
    }

    /// How many bytes to read straight into the message being gathered, or 0 to read as usual
    /// (`payload.rs`).
    pub(crate) fn direct_read_len(&self) -> usize {
        // A compressed message is inflated piece by piece (`on_frames`), never read in place.
        let ConnState::Ws(w) = &self.state else { return 0 };
        if w.streaming || self.ws.is_compressed() {
            return 0;
        }
        let owed = usize::try_from(self.ws.payload_remaining()).unwrap_or(usize::MAX);
        let n = owed.min(w.msg.capacity() - w.msg.len());
        if n >= MIN_DIRECT { n } else { 0 }
    }

    /// The earliest instant the loop must look at this connection again.
    pub(crate) fn deadline(&self) -> Option<Duration> {
        [self.linger_until, self.send_deadline].into_iter().fold(self.ws.poll_timeout(), |a, b| {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        })
    }
}
