//! One connection as the runtime holds it: the socket, the protocol state, the outbound queue,
//! and what the loop tracks about readiness and closing.

use std::net::SocketAddr;
use std::time::Duration;

use crate::proto::handshake::ClientHandshake;
use crate::proto::http::{HeadReader, Limits};
use crate::proto::{Config as WsConfig, Connection, Role};
use crate::server::outq::OutQueue;
use crate::server::timer::TimerId;
use crate::server::transport::Transport;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading the request head.
    Head,
    /// A plain HTTP response (or a refusal) is queued; the connection closes after it.
    Http,
    /// The WebSocket is open (or closing).
    Ws,
    /// An outbound connection: the TCP connect is under way.
    Connecting,
    /// An outbound connection: the upgrade request is sent, the response head is awaited.
    Response,
    /// The handler deferred its decision on the upgrade; nothing is read meanwhile.
    Deferred,
    /// Reading a request body.
    Body,
    /// A streamed response (server-sent events): the handler writes, the connection stays.
    Stream,
}

/// A request body being read.
#[derive(Debug)]
pub(crate) struct BodyState {
    /// Where the head ends in `Conn::head` (the body follows it there).
    pub(crate) head_len: usize,
    pub(crate) framing: crate::proto::body::Framing,
    pub(crate) decoder: crate::proto::body::ChunkedDecoder,
    /// How far into `Conn::head` the chunked decoder has read.
    pub(crate) pos: usize,
}

/// What an outbound connection needs until its handshake is done.
#[derive(Debug)]
pub(crate) struct ClientState {
    pub(crate) handshake: ClientHandshake,
    pub(crate) protocols: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) socket: Transport,
    pub(crate) peer: SocketAddr,
    pub(crate) ws: Connection,
    pub(crate) phase: Phase,
    /// The request head gathered so far (leased from the pool while in `Head`).
    pub(crate) head: Vec<u8>,
    /// Finds the end of the request (or response) head; boxed and present only while a head
    /// is being read, so an open connection does not carry it.
    pub(crate) head_reader: Option<Box<HeadReader>>,
    /// A message gathered across reads (empty, without storage, between messages).
    pub(crate) msg: Vec<u8>,
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
    /// Over a connection limit: the request gets this status, then the connection closes.
    pub(crate) refuse: Option<u16>,
    /// The close code to report: received, or sent when this end failed the connection.
    pub(crate) close_code: Option<u16>,
    pub(crate) opened_at: Duration,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) path: Box<str>,
    /// The reason of the close frame received, for the handler.
    pub(crate) close_reason: Box<str>,
    /// Set while an outbound connection is connecting.
    pub(crate) client: Option<Box<ClientState>>,
    /// The `Sec-WebSocket-Key` of an upgrade whose decision the handler deferred.
    pub(crate) deferred_key: Option<Box<str>>,
    /// Message pieces go to the handler as they arrive (`on_message_piece`), never gathered.
    pub(crate) streaming: bool,
    /// The handler paused reading (flow control).
    pub(crate) paused: bool,
    /// Pipelined requests wait (and reading stops) until the answers queued drain.
    pub(crate) pipeline_wait: bool,
    /// Tell the handler (`on_drained`) once the queue is at or below this many bytes.
    pub(crate) drain_mark: Option<u32>,
    /// A request body being read.
    pub(crate) body: Option<Box<BodyState>>,
    /// permessage-deflate, when the upgrade agreed it.
    pub(crate) pmd: Option<Box<crate::server::compress::Pmd>>,
    /// Where the last pong queued ends, counted in bytes written (`bytes_out`): while it is
    /// unwritten, the control frames the core owes stay there (RFC 6455 §5.5.3: a newer ping's
    /// pong replaces the one owed), so a peer that pings and never reads holds one pong here.
    pub(crate) pong_end: u64,
    /// The code of a close frame queued and not yet written (0: none); counted when written.
    pub(crate) close_queued: u16,
    /// A kept-alive response's body is still being written by the handler
    /// ([`crate::server::Context::stream_write`], ended by `finish_stream`): the next request
    /// waits for it (`pipeline_wait`).
    pub(crate) body_owed: bool,
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
        socket: Transport,
        peer: SocketAddr,
        role: Role,
        ws: WsConfig,
        http: &Limits,
        now: Duration,
    ) -> Self {
        Self {
            socket,
            peer,
            ws: Connection::new(role, ws, now),
            phase: Phase::Head,
            head: Vec::new(),
            head_reader: Some(Box::new(HeadReader::new(http))),
            msg: Vec::new(),
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
            refuse: None,
            close_code: None,
            opened_at: now,
            bytes_in: 0,
            bytes_out: 0,
            path: Box::from(""),
            close_reason: Box::from(""),
            client: None,
            deferred_key: None,
            streaming: false,
            paused: false,
            pipeline_wait: false,
            drain_mark: None,
            body: None,
            pmd: None,
            pong_end: 0,
            close_queued: 0,
            body_owed: false,
            send_deadline: None,
        }
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
