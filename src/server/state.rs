//! A connection's stages and every transition between them, in one place.
//!
//! Each variant of [`ConnState`] owns what only that stage needs, so a field that means nothing
//! in a stage cannot exist in it: an open WebSocket holds no request head and no body decoder,
//! a request being read holds no message. Anything else changes a connection's stage through
//! one of the methods below, which are the only places a stage is assigned.
//!
//! ```text
//!                 accept                       connect (Context::connect)
//!                   |                                   |
//!                   v           head with a body        v
//!   +-----------> Head ------------------------> Body   Connecting
//!   | kept alive  | | \  \                       |        | TCP connected
//!   +-------------+-|--\--\----- body whole -----+        v
//!   |  (serve)      |   \  \ defer          Response (101 awaited) --101--+
//!   |               |    \  +-------> Deferred --accept--+                |
//!   |  answered,    |     \                |             v                v
//!   |  closing      |      +---------------|--accept--> Ws <--------------+
//!   |               v                      | reject
//!   +---------->  Http  <------------------+
//!                   ^
//!   serve: Stream --+ finish_stream, shutdown
//!   serve: Awaiting --+ Context::respond (a deferred answer)
//! ```
//!
//! A connection leaves every stage by being removed (`Server::remove`), which returns what its
//! stage leased to the pool ([`ConnState::release`]).

use crate::proto::Role;
use crate::proto::body::{ChunkedDecoder, Framing};
use crate::proto::handshake::{After, ClientHandshake};
use crate::proto::http::{HeadReader, Limits};
use crate::server::compress::Pmd;
use crate::server::pool::Pool;

/// A pipelined request is served only while the answers queued before it hold at most this
/// many unsent bytes; past it the connection is not read until they drain. A client that sends
/// requests and never reads the answers holds one answer beyond this, not all of them.
pub(crate) const PIPELINE_OUT_MAX: usize = 64 << 10;

/// Where a connection is in its life, with what only that stage needs.
#[derive(Debug)]
pub(crate) enum ConnState {
    /// Reading a request head: the first, or the next one on a kept-alive connection.
    Head(Box<Head>),
    /// Reading a request body.
    Body(Box<Body>),
    /// A plain HTTP answer (or a refusal) is queued; the connection closes after it.
    Http {
        /// The answer's body, of a given length, is still being written by the handler
        /// ([`crate::server::Context::stream_write`], ended by `finish_stream`).
        body_owed: bool,
    },
    /// The handler deferred its decision on the upgrade; nothing is read meanwhile.
    Deferred(Box<Deferred>),
    /// The WebSocket is open (or closing).
    Ws(Ws),
    /// A streamed response (server-sent events): the handler writes, the connection stays.
    Stream,
    /// A plain answer the handler deferred ([`crate::server::Response::deferred`]) until it
    /// comes ([`crate::server::Context::respond`]). `head`: the request was `HEAD` (the answer
    /// goes without its body). `next`: the connection is kept alive: the next request's stage,
    /// holding what was pipelined behind this one; nothing more is read meanwhile, and it goes
    /// on after the answer as after one given at once. `None`: the connection closes after the
    /// answer.
    Awaiting { head: bool, next: Option<Box<Head>> },
    /// An outbound connection: the TCP connect is under way.
    Connecting(Box<Client>),
    /// An outbound connection: the upgrade request is sent, the response head is awaited.
    Response(Box<Client>),
    /// A plain byte stream the handler dialled (`Context::connect_tcp`, `tcp.rs`).
    Tcp(Tcp),
}

/// A plain outbound TCP connection's stage.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tcp {
    /// The connect finished (`on_tcp_connected` was called).
    pub(crate) connected: bool,
    /// The handler was told the peer finished sending (`on_tcp_eof`).
    pub(crate) eof_told: bool,
    /// The handler writes no more: once the queue is written, this end shuts down writing.
    pub(crate) write_done: bool,
    /// An accepted connection whose request the handler relays (`on_request_head`), until
    /// `Context::http_exchange_done`.
    pub(crate) inbound: bool,
}

/// A request head being read.
#[derive(Debug)]
pub(crate) struct Head {
    /// What is gathered so far (leased from the pool while it holds bytes).
    pub(crate) buf: Vec<u8>,
    /// Finds the end of the head, however the bytes are split.
    pub(crate) reader: HeadReader,
    /// Over a connection limit: the request gets this status, then the connection closes.
    pub(crate) refuse: Option<u16>,
    /// Pipelined requests wait (and reading stops) until the answers queued drain.
    pub(crate) pipeline_wait: bool,
    /// The previous answer's body, of a given length, is still being written by the handler:
    /// the next request waits for it.
    pub(crate) body_owed: bool,
}

/// A request body being read.
#[derive(Debug)]
pub(crate) struct Body {
    /// The head, then the body's bytes as they came.
    pub(crate) buf: Vec<u8>,
    /// Where the head ends in `buf`.
    pub(crate) head_len: usize,
    pub(crate) framing: Framing,
    pub(crate) decoder: ChunkedDecoder,
    /// How far into `buf` the chunked decoder has read.
    pub(crate) pos: usize,
    /// A chunked body, decoded.
    pub(crate) decoded: Vec<u8>,
}

/// An upgrade waiting for the handler's decision.
#[derive(Debug)]
pub(crate) struct Deferred {
    /// The request's `Sec-WebSocket-Key`, for the 101.
    pub(crate) key: Box<str>,
    /// What the client sent after its head (frames, read once the WebSocket opens).
    pub(crate) early: Vec<u8>,
    /// permessage-deflate as negotiated at the upgrade, with the answer for the 101.
    pub(crate) pmd: Option<Box<Pmd>>,
}

/// An open WebSocket.
#[derive(Debug, Default)]
pub(crate) struct Ws {
    /// A message gathered across reads (empty, without storage, between messages); boxed, made
    /// the first time the connection gathers one and kept (no allocation per message), so a
    /// connection whose messages each come in one read holds 8 bytes for it ([`Ws::msg`]).
    #[allow(clippy::box_collection)]
    pub(crate) msg: Option<Box<Vec<u8>>>,
    /// What only some WebSockets have, boxed: a plain one holds 8 bytes for it.
    pub(crate) ext: Option<Box<WsExt>>,
}

/// What only some WebSockets have.
#[derive(Debug, Default)]
pub(crate) struct WsExt {
    /// permessage-deflate, when the upgrade agreed it.
    pub(crate) pmd: Option<Pmd>,
    /// Message pieces go to the handler as they arrive (`on_message_piece`), never gathered.
    pub(crate) streaming: bool,
}

impl WsExt {
    /// A box's worth holding only the permessage-deflate state `pmd`.
    fn with(pmd: Pmd) -> Self {
        Self { pmd: Some(pmd), streaming: false }
    }
}

impl Ws {
    /// The message being gathered.
    pub(crate) fn msg(&mut self) -> &mut Vec<u8> {
        self.msg.get_or_insert_with(Box::default)
    }

    /// The message being gathered, with room for `declared` bytes in all (the lengths of its
    /// frames declared so far: `Connection::message_len`), made at once so that a large message
    /// is never copied to grow. Its storage comes from `pool` when that is large enough.
    pub(crate) fn msg_with_room(&mut self, declared: usize, pool: &mut Pool) -> &mut Vec<u8> {
        let msg = self.msg();
        if msg.capacity() == 0 {
            *msg = if declared <= pool.size() { pool.take() } else { Vec::with_capacity(declared) };
        }
        msg.reserve(declared.saturating_sub(msg.len()));
        msg
    }

    /// Whether no message is being gathered.
    pub(crate) fn gathers_none(&self) -> bool {
        self.msg.as_ref().is_none_or(|m| m.is_empty())
    }

    /// The message gathered, taken whole (its storage with it).
    pub(crate) fn take_msg(&mut self) -> Vec<u8> {
        self.msg.as_mut().map(|m| std::mem::take(&mut **m)).unwrap_or_default()
    }

    pub(crate) fn streaming(&self) -> bool {
        self.ext.as_ref().is_some_and(|e| e.streaming)
    }

    pub(crate) fn pmd(&mut self) -> Option<&mut Pmd> {
        self.ext.as_mut()?.pmd.as_mut()
    }
}

/// What an outbound connection needs until its handshake is done.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) handshake: ClientHandshake,
    pub(crate) protocols: Vec<String>,
    /// The response head gathered so far.
    pub(crate) buf: Vec<u8>,
    pub(crate) reader: HeadReader,
}

impl ConnState {
    /// The stage of an accepted connection: its request head is awaited.
    pub(crate) fn head(limits: &Limits, refuse: Option<u16>) -> Self {
        Self::Head(Box::new(Head {
            buf: Vec::new(),
            reader: HeadReader::new(limits),
            refuse,
            pipeline_wait: false,
            body_owed: false,
        }))
    }

    /// The stage of an outbound connection: connecting.
    pub(crate) fn connecting(
        handshake: ClientHandshake,
        protocols: Vec<String>,
        l: &Limits,
    ) -> Self {
        Self::Connecting(Box::new(Client {
            handshake,
            protocols,
            buf: Vec::new(),
            reader: HeadReader::new(l),
        }))
    }

    /// Where bytes read in this stage are gathered (`None`: the stage reads none, or frames).
    pub(crate) fn input(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Self::Head(h) => Some(&mut h.buf),
            Self::Body(b) => Some(&mut b.buf),
            Self::Deferred(d) => Some(&mut d.early),
            Self::Response(c) => Some(&mut c.buf),
            Self::Awaiting { next: Some(h), .. } => Some(&mut h.buf),
            Self::Http { .. }
            | Self::Ws(_)
            | Self::Stream
            | Self::Awaiting { next: None, .. }
            | Self::Connecting(_)
            | Self::Tcp(_) => None,
        }
    }

    /// Gives what the stage leased back to the pool (it is left without storage).
    pub(crate) fn release(&mut self, pool: &mut Pool) {
        match self {
            Self::Head(h) => pool.give(std::mem::take(&mut h.buf)),
            Self::Body(b) => {
                pool.give(std::mem::take(&mut b.buf));
                pool.give(std::mem::take(&mut b.decoded));
            }
            Self::Deferred(d) => pool.give(std::mem::take(&mut d.early)),
            Self::Ws(w) => pool.give(w.take_msg()),
            Self::Response(c) | Self::Connecting(c) => pool.give(std::mem::take(&mut c.buf)),
            Self::Awaiting { next: Some(h), .. } => pool.give(std::mem::take(&mut h.buf)),
            Self::Http { .. } | Self::Stream | Self::Awaiting { next: None, .. } | Self::Tcp(_) => {
            }
        }
    }

    pub(crate) fn is_ws(&self) -> bool {
        matches!(self, Self::Ws(_))
    }

    pub(crate) fn is_stream(&self) -> bool {
        matches!(self, Self::Stream)
    }

    /// A deferred plain answer is still owed.
    pub(crate) fn is_awaiting(&self) -> bool {
        matches!(self, Self::Awaiting { .. })
    }

    /// Nothing is read: the handler decides on an upgrade, or a kept-alive connection awaits a
    /// deferred answer (requests pipelined behind it wait in the socket, bounded by its buffer).
    pub(crate) fn holds_reading(&self) -> bool {
        matches!(self, Self::Deferred(_) | Self::Awaiting { next: Some(_), .. })
    }

    /// An answer's body of a given length is still being written by the handler.
    pub(crate) fn body_owed(&self) -> bool {
        match self {
            Self::Head(h) => h.body_owed,
            Self::Http { body_owed } => *body_owed,
            _ => false,
        }
    }

    /// Pipelined requests wait for the answers queued before them to drain.
    pub(crate) fn pipeline_wait(&self) -> bool {
        matches!(self, Self::Head(h) if h.pipeline_wait)
    }

    /// Sets (or clears) the wait of pipelined requests; only a head being read has one.
    pub(crate) fn set_pipeline_wait(&mut self, on: bool) {
        if let Self::Head(h) = self {
            h.pipeline_wait = on;
        }
    }

    /// A plain TCP connection's stage, if the connection is one.
    pub(crate) fn tcp(&mut self) -> Option<&mut Tcp> {
        match self {
            Self::Tcp(t) => Some(t),
            _ => None,
        }
    }

    /// A plain TCP connection whose connect is under way.
    pub(crate) fn tcp_connecting(&self) -> bool {
        matches!(self, Self::Tcp(t) if !t.connected)
    }

    /// The open WebSocket's state, if the connection is one.
    pub(crate) fn ws(&mut self) -> Option<&mut Ws> {
        match self {
            Self::Ws(w) => Some(w),
            _ => None,
        }
    }
}

impl ConnState {
    /// Head -> Body: a request head announced a body.
    pub(crate) fn begin_body(&mut self, body: Body) {
        *self = ConnState::Body(Box::new(body));
    }

    /// Body -> Head: the body is whole; the next request's head is awaited. Returns the body.
    pub(crate) fn end_body(&mut self, limits: &Limits) -> Option<Box<Body>> {
        match std::mem::replace(self, ConnState::head(limits, None)) {
            ConnState::Body(b) => Some(b),
            other => {
                *self = other;
                None
            }
        }
    }

    /// Head -> Deferred: the handler will decide on the upgrade later.
    pub(crate) fn defer(&mut self, key: &[u8], pool: &mut Pool) {
        self.release(pool);
        let key = String::from_utf8_lossy(key).into();
        *self = ConnState::Deferred(Box::new(Deferred { key, early: Vec::new(), pmd: None }));
    }

    /// Head, Deferred or Response -> Ws: the WebSocket opens. Returns what the client sent
    /// after a deferred upgrade's head (frames to read now).
    pub(crate) fn open_ws(&mut self, pool: &mut Pool) -> Vec<u8> {
        let early = match self {
            ConnState::Deferred(d) => std::mem::take(&mut d.early),
            _ => Vec::new(),
        };
        self.release(pool);
        *self = ConnState::Ws(Ws::default());
        early
    }

    /// Any stage -> Http: an answer (or a refusal) is queued, and the connection closes after
    /// it. What the stage held is given back.
    pub(crate) fn answered(&mut self, pool: &mut Pool) {
        self.release(pool);
        *self = ConnState::Http { body_owed: false };
    }

    /// Connecting -> Response: the TCP connect finished; the 101 is awaited.
    pub(crate) fn connected(&mut self) {
        if let ConnState::Connecting(c) = std::mem::replace(self, ConnState::Stream) {
            *self = ConnState::Response(c);
        }
    }

    /// Response -> the client's handshake state, for checking the response (the connection
    /// is opened with [`ConnState::open_ws`] or removed next).
    pub(crate) fn client(&mut self) -> Option<&mut Client> {
        match self {
            ConnState::Response(c) | ConnState::Connecting(c) => Some(c),
            _ => None,
        }
    }

    /// Head -> Stream while the handler answers a request: what it writes meanwhile (the
    /// first events of a streamed response) is taken. Returns the stage to give to
    /// [`ConnState::end_serve`].
    pub(crate) fn begin_serve(&mut self) -> ConnState {
        std::mem::replace(self, ConnState::Stream)
    }

    /// Whether the handler finished the streamed response while it answered
    /// (`Context::finish_stream`).
    pub(crate) fn served_whole(&self) -> bool {
        matches!(self, ConnState::Http { .. })
    }

    /// The handler answered: Stream -> Head (kept alive, `After::KeepAlive`/`Sized`), Stream
    /// (a streamed response), or Http (closing after the answer). `finished`: the handler
    /// wrote the streamed body whole already ([`ConnState::served_whole`]); `ended`: it ended it
    /// short; `sized`: the response gave the body's length.
    pub(crate) fn end_serve(
        &mut self,
        stashed: ConnState,
        after: After,
        sized: bool,
        finished: bool,
        ended: bool,
    ) {
        let owed = !finished && !ended;
        *self = match (after, stashed) {
            (After::Stream, _) if finished || sized => ConnState::Http { body_owed: sized && owed },
            (After::Stream, _) => ConnState::Stream,
            (After::KeepAlive | After::Sized, ConnState::Head(mut h)) => {
                h.reader.reset();
                h.body_owed = after == After::Sized && owed;
                ConnState::Head(h)
            }
            (After::Close | After::KeepAlive | After::Sized, _) => {
                ConnState::Http { body_owed: false }
            }
        };
    }

    /// Stream (while the handler ran) -> Awaiting: the handler deferred its answer. Kept
    /// alive, the head stage waits in it for the next request; else what it held is given back.
    pub(crate) fn await_answer(
        &mut self,
        stashed: ConnState,
        head: bool,
        keep_alive: bool,
        pool: &mut Pool,
    ) {
        let next = match stashed {
            ConnState::Head(h) if keep_alive => Some(h),
            mut other => {
                other.release(pool);
                None
            }
        };
        *self = ConnState::Awaiting { head, next };
    }

    /// Awaiting -> Head (kept alive: the requests pipelined behind it are served once the
    /// answer drains, as after an answer given at once) or Http (closing after the answer;
    /// `close`: the server is draining). Returns `None` if no answer was owed, else whether the
    /// request was `HEAD` and what follows the answer.
    pub(crate) fn answer_deferred(
        &mut self,
        close: bool,
        pool: &mut Pool,
    ) -> Option<(bool, After)> {
        let ConnState::Awaiting { head, .. } = *self else { return None };
        let after = match std::mem::replace(self, ConnState::Http { body_owed: false }) {
            ConnState::Awaiting { next: Some(mut h), .. } if !close => {
                h.reader.reset();
                h.body_owed = false;
                h.pipeline_wait = true;
                *self = ConnState::Head(h);
                After::KeepAlive
            }
            mut other => {
                other.release(pool);
                After::Close
            }
        };
        Some((head, after))
    }

    /// Ends a body owed, or a streamed response: Stream -> Http (closing once written), or the
    /// body owed is no longer. Returns whether there was one.
    pub(crate) fn finish_stream(&mut self) -> bool {
        match self {
            ConnState::Head(h) if h.body_owed => h.body_owed = false,
            ConnState::Http { body_owed } if *body_owed => *body_owed = false,
            ConnState::Stream => *self = ConnState::Http { body_owed: false },
            _ => return false,
        }
        true
    }

    /// A kept-alive body cut short: no request after it is answered.
    pub(crate) fn drop_body_owed(&mut self) {
        match self {
            ConnState::Head(h) => {
                h.body_owed = false;
                h.pipeline_wait = false;
            }
            ConnState::Http { body_owed } => *body_owed = false,
            _ => {}
        }
    }
}

/// The state that inflates the compressed message `conn` is receiving: its own, or, when it
/// keeps none between messages, one leased for the message: the runtime's `spare` (a box holding
/// a state whose window and tables are made once, lent box and all, so a message costs no
/// allocation), or a new one while the spare is lent to another connection's message (`None`
/// without --compression).
pub(crate) fn receiving<'c>(
    ext: &'c mut Option<Box<WsExt>>,
    spare: &mut Option<Box<WsExt>>,
    role: Role,
    config: &crate::server::config::Config,
) -> Option<&'c mut Pmd> {
    if ext.as_ref().and_then(|e| e.pmd.as_ref()).is_none() {
        config.compression?;
        let made = || Pmd::transient(role, config.ws.max_message_size);
        match ext {
            None => {
                let mut b = spare.take().unwrap_or_default();
                b.pmd = Some(b.pmd.take().unwrap_or_else(made));
                *ext = Some(b);
            }
            // A streaming connection has a box of its own: the state moves into it, and the
            // spare's box waits for it to come back.
            Some(e) => e.pmd = Some(spare.as_mut().and_then(|b| b.pmd.take()).unwrap_or_else(made)),
        }
    }
    ext.as_mut()?.pmd.as_mut()
}

/// A compressed message has been received whole: a state leased for it goes back to the
/// runtime's `spare` (so an idle connection in the shared mode holds no compression memory;
/// the runtime holds one, whatever the number of connections), with the box when it holds
/// nothing else.
pub(crate) fn received(ext: &mut Option<Box<WsExt>>, spare: &mut Option<Box<WsExt>>) {
    let Some(e) = ext else { return };
    if !e.pmd.as_ref().is_some_and(|p| p.transient && p.answer.is_none()) {
        return;
    }
    // The inflater was reset at the message's end (`MessageInflater::piece`).
    match spare {
        // The box goes too when it holds nothing else.
        None if !e.streaming => *spare = ext.take(),
        None => *spare = e.pmd.take().map(|p| Box::new(WsExt::with(p))),
        // The spare's box lent its state to a streaming connection: it takes this one.
        Some(b) if b.pmd.is_none() => b.pmd = e.pmd.take(),
        Some(_) => e.pmd = None,
    }
    if ext.as_ref().is_some_and(|e| e.pmd.is_none() && !e.streaming) {
        *ext = None;
    }
}
