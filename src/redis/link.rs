//! One connection to Redis, whatever it carries: its life as a state machine, the commands
//! queued for it (bounded), and the requests awaiting their replies, which Redis sends in order.
//!
//! ```text
//!   Backoff --poll_timeout passed: Timeout::Dial--> Connecting --handle_connected--> Handshake
//!      ^                                              |                                 |
//!      |                                connect deadline: Timeout::Connect    last handshake reply
//!      |                                              v                                 v
//!      +------------- handle_closed(now, random) --- Broken <--- error / reply deadline --- Ready
//! ```
//!
//! `Broken` waits for the driver to close the socket and call `handle_closed`, which drops what
//! was queued and owed (each request owed a reply is then reported lost) and waits a back-off.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::proto::error::Status;
use crate::proto::resp::{self, Parser, Reply, RespError};
use crate::redis::backoff::Backoff;
use crate::redis::url::RedisUrl;
use crate::redis::{Config, RequestId, Unavailable};

/// Where a link is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting before the next dial ([`Timeout::Dial`] says when to dial).
    Backoff,
    /// The driver is connecting the socket.
    Connecting,
    /// Connected: `AUTH`, `SELECT` and the link's own first commands are being answered.
    Handshake,
    /// Requests are taken.
    Ready,
    /// Failed: close the socket and call `handle_closed`.
    Broken,
}

/// The methods both links forward to their [`Link`]: `state`, `error`, `poll_timeout` and
/// `handle_timeout`.
macro_rules! lifecycle {
    () => {
        /// Where the link is.
        pub fn state(&self) -> $crate::redis::State {
            self.link.state()
        }

        /// Why it broke, while [`State::Broken`](crate::redis::State::Broken).
        pub fn error(&self) -> Option<$crate::redis::LinkError> {
            self.link.error()
        }

        /// When `handle_timeout` is due.
        pub fn poll_timeout(&self) -> Option<core::time::Duration> {
            self.link.poll_timeout()
        }

        /// Acts on a deadline that passed.
        pub fn handle_timeout(
            &mut self,
            now: core::time::Duration,
        ) -> Option<$crate::redis::Timeout> {
            self.link.handle_timeout(now)
        }
    };
}
pub(crate) use lifecycle;

/// What `handle_timeout` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// The back-off is over: connect a socket, then call `handle_connected`.
    Dial,
    /// The connect took longer than [`Timing::connect`]: the link is broken.
    Connect,
    /// The oldest request waited longer than [`Timing::reply`] for its reply (Redis paused,
    /// slow or gone): the link is broken.
    Reply,
    /// The link was idle for [`Timing::ping`]: a `PING` is queued, so a dead connection is
    /// noticed within `ping + reply` even with nothing to send.
    Ping,
}

/// Why a link broke. The socket must be closed: what is in flight cannot be matched any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkError {
    /// A reply that breaks RESP or its limits (too large, too deep).
    Resp(RespError),
    /// The connection was closed (by either side, or the connect failed).
    Closed,
    /// The connect did not complete in time.
    ConnectTimeout,
    /// A reply did not come in time.
    ReplyTimeout,
    /// `AUTH` was answered with an error (wrong user or password, or none configured).
    AuthRefused,
    /// `SELECT` was answered with an error (no such database).
    SelectRefused,
    /// `SCRIPT LOAD` was answered with an error (scripting disabled or forbidden by an ACL).
    ScriptLoadRefused,
    /// `SCRIPT LOAD` named a script by a SHA-1 other than its source's.
    ScriptMismatch,
    /// A reply whose shape is not what its command answers.
    UnexpectedReply,
    /// A reply with no request awaiting it.
    Unsolicited,
}

impl LinkError {
    /// A stable snake_case name, for logs and counters.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Resp(e) => e.name(),
            Self::Closed => "closed",
            Self::ConnectTimeout => "connect_timeout",
            Self::ReplyTimeout => "reply_timeout",
            Self::AuthRefused => "auth_refused",
            Self::SelectRefused => "select_refused",
            Self::ScriptLoadRefused => "script_load_refused",
            Self::ScriptMismatch => "script_mismatch",
            Self::UnexpectedReply => "unexpected_reply",
            Self::Unsolicited => "unsolicited_reply",
        }
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resp(e) => write!(f, "malformed reply: {e}"),
            Self::Closed => f.write_str("connection closed"),
            Self::ConnectTimeout => f.write_str("connect timed out"),
            Self::ReplyTimeout => f.write_str("no reply in time"),
            Self::AuthRefused => f.write_str("AUTH refused"),
            Self::SelectRefused => f.write_str("SELECT refused"),
            Self::ScriptLoadRefused => f.write_str("SCRIPT LOAD refused"),
            Self::ScriptMismatch => f.write_str("SCRIPT LOAD answered another SHA-1"),
            Self::UnexpectedReply => f.write_str("a reply of the wrong shape"),
            Self::Unsolicited => f.write_str("a reply nothing asked for"),
        }
    }
}

/// The deadlines and the back-off of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Most time a connect may take.
    pub connect: Duration,
    /// Most time the oldest request may wait for its reply.
    pub reply: Duration,
    /// Idle time after which a `PING` is sent.
    pub ping: Duration,
    /// The wait between attempts.
    pub backoff: Backoff,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            reply: Duration::from_secs(2),
            ping: Duration::from_secs(5),
            backoff: Backoff::default(),
        }
    }
}

/// A command awaiting its reply: the link's own, or one of the link owner's (`K`).
#[derive(Debug)]
pub(crate) enum Item<K> {
    Auth,
    Select,
    Ping,
    Owner(K),
}

#[derive(Debug)]
pub(crate) struct Pending<K> {
    pub item: Item<K>,
    /// When it was queued: its reply is due `Timing::reply` later.
    pub at: Duration,
    /// What it holds of the queue's bytes.
    pub cost: usize,
}

/// What one complete reply was.
pub(crate) enum Read<'a, K> {
    /// Not a whole reply yet.
    Partial,
    /// An answer to one of the link's own commands: handled.
    Own(usize),
    /// Out-of-band data (what the owner's `is_push` picked), with its length.
    Push(Reply<'a>, usize),
    /// The answer to the owner's command `kind`, queued at `at`, with its length.
    Reply { reply: Reply<'a>, len: usize, kind: K, at: Duration, cost: usize },
}

/// The owner's requests know their id, if the caller gave one out.
pub(crate) trait Request {
    fn id(&self) -> Option<RequestId>;
}

/// What does not change between connections: credentials and bounds.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub user: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
    /// `SELECT`ed after `AUTH` (0: not sent).
    pub db: u32,
    pub timing: Timing,
    pub limits: resp::Limits,
    pub max_queued_bytes: usize,
    pub max_pending: usize,
}

impl Setup {
    /// `select`: send `SELECT` for the URL's database (a pub/sub link does not need it).
    pub fn new(url: &RedisUrl, config: &Config, select: bool) -> Self {
        Self {
            user: url.user.clone(),
            password: url.password.clone(),
            db: if select { url.db } else { 0 },
            timing: config.timing,
            limits: config.limits,
            max_queued_bytes: config.max_queued_bytes,
            max_pending: config.max_pending,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Backoff { until: Duration },
    Connecting { deadline: Duration },
    Handshake,
    Ready,
    Broken(LinkError),
}

pub(crate) struct Link<K> {
    setup: Setup,
    phase: Phase,
    parser: Parser,
    /// Encoded commands; `out[sent..]` is not handed out yet.
    out: Vec<u8>,
    sent: usize,
    pending: VecDeque<Pending<K>>,
    /// The sum of `pending`'s costs.
    queued: usize,
    /// Failed attempts in a row.
    failures: u32,
    /// The last reply, or the last command queued when nothing was pending.
    active: Duration,
    lost: VecDeque<RequestId>,
}

impl<K: Request> Link<K> {
    /// A link that dials at `now`.
    pub fn new(setup: Setup, now: Duration) -> Self {
        let parser = Parser::new(setup.limits);
        Self {
            setup,
            phase: Phase::Backoff { until: now },
            parser,
            out: Vec::new(),
            sent: 0,
            pending: VecDeque::new(),
            queued: 0,
            failures: 0,
            active: now,
            lost: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::Backoff { .. } => State::Backoff,
            Phase::Connecting { .. } => State::Connecting,
            Phase::Handshake => State::Handshake,
            Phase::Ready => State::Ready,
            Phase::Broken(_) => State::Broken,
        }
    }

    /// Why the link broke, while it is broken.
    pub fn error(&self) -> Option<LinkError> {
        match self.phase {
            Phase::Broken(e) => Some(e),
            _ => None,
        }
    }

    /// Bytes held by requests not answered yet.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Requests not answered yet (the link's own included).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether a caller's request of `cost` bytes may be queued now.
    pub fn admit(&self, cost: usize) -> Result<(), Unavailable> {
        if !matches!(self.phase, Phase::Ready) {
            return Err(Unavailable::NotConnected);
        }
        if self.pending.len() >= self.setup.max_pending
            || self.queued.saturating_add(cost) > self.setup.max_queued_bytes
        {
            return Err(Unavailable::QueueFull);
        }
        Ok(())
    }

    /// Queues a command that `encode` appends, with `extra` bytes held beside it.
    pub fn push(
        &mut self,
        item: Item<K>,
        extra: usize,
        now: Duration,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        let before = self.out.len();
        encode(&mut self.out);
        self.enqueue(item, before, extra, now);
    }

    /// Queues one of the owner's commands, which `encode` appends and then turns into the
    /// request it is (so that it may keep what it encoded), with `extra` bytes held beside it.
    pub fn push_owned(
        &mut self,
        now: Duration,
        extra: usize,
        encode: impl FnOnce(&mut Vec<u8>) -> K,
    ) {
        let before = self.out.len();
        let kind = encode(&mut self.out);
        self.enqueue(Item::Owner(kind), before, extra, now);
    }

    fn enqueue(&mut self, item: Item<K>, before: usize, extra: usize, now: Duration) {
        let cost = self.out.len() - before + extra;
        if self.pending.is_empty() {
            self.active = now;
        }
        self.queued += cost;
        self.pending.push_back(Pending { item, at: now, cost });
    }

    /// Puts a request that awaits more replies back at the front.
    pub fn push_front(&mut self, kind: K, at: Duration, cost: usize) {
        self.queued += cost;
        self.pending.push_front(Pending { item: Item::Owner(kind), at, cost });
    }

    pub fn ready(&mut self) {
        if matches!(self.phase, Phase::Handshake) {
            self.phase = Phase::Ready;
        }
    }

    pub fn is_handshake(&self) -> bool {
        matches!(self.phase, Phase::Handshake)
    }

    /// Copies queued bytes into `buf`; returns how many.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> usize {
        if !matches!(self.phase, Phase::Handshake | Phase::Ready) {
            return 0;
        }
        let n = buf.len().min(self.out.len() - self.sent);
        buf[..n].copy_from_slice(&self.out[self.sent..self.sent + n]);
        self.sent += n;
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        } else if self.sent >= 64 << 10 && self.sent * 2 >= self.out.len() {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        n
    }

    /// Bytes waiting for `poll_transmit`.
    pub fn transmit_len(&self) -> usize {
        match self.phase {
            Phase::Handshake | Phase::Ready => self.out.len() - self.sent,
            _ => 0,
        }
    }

    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Backoff { until } => Some(until),
            Phase::Connecting { deadline } => Some(deadline),
            Phase::Handshake | Phase::Ready => match self.pending.front() {
                Some(p) => Some(p.at.saturating_add(self.setup.timing.reply)),
                None if matches!(self.phase, Phase::Ready) => {
                    Some(self.active.saturating_add(self.setup.timing.ping))
                }
                None => None,
            },
            Phase::Broken(_) => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Duration) -> Option<Timeout> {
        let timing = self.setup.timing;
        match self.phase {
            Phase::Backoff { until } if now >= until => {
                self.phase = Phase::Connecting { deadline: now.saturating_add(timing.connect) };
                Some(Timeout::Dial)
            }
            Phase::Connecting { deadline } if now >= deadline => {
                self.fail(LinkError::ConnectTimeout);
                Some(Timeout::Connect)
            }
            Phase::Handshake | Phase::Ready => {
                if let Some(p) = self.pending.front() {
                    if now >= p.at.saturating_add(timing.reply) {
                        self.fail(LinkError::ReplyTimeout);
                        return Some(Timeout::Reply);
                    }
                    return None;
                }
                if matches!(self.phase, Phase::Ready)
                    && now >= self.active.saturating_add(timing.ping)
                {
                    self.push(Item::Ping, 0, now, |out| {
                        let _ = resp::write_command(out, &["PING"]);
                    });
                    return Some(Timeout::Ping);
                }
                None
            }
            _ => None,
        }
    }

    /// The socket is connected: `AUTH` and `SELECT` are queued.
    pub fn handle_connected(&mut self, now: Duration) {
        if !matches!(self.phase, Phase::Connecting { .. }) {
            return;
        }
        self.phase = Phase::Handshake;
        self.parser = Parser::new(self.setup.limits);
        self.active = now;
        if let Some(password) = self.setup.password.clone() {
            // AUTH [user] password (Redis 6 ACLs take the user; without one it is `default`).
            let user = self.setup.user.clone();
            self.push(Item::Auth, 0, now, |out| {
                resp::write_array_header(out, 2 + usize::from(user.is_some()));
                resp::write_bulk(out, b"AUTH");
                if let Some(user) = &user {
                    resp::write_bulk(out, user);
                }
                resp::write_bulk(out, &password);
            });
        }
        if self.setup.db != 0 {
            let db = i64::from(self.setup.db);
            self.push(Item::Select, 0, now, |out| {
                resp::write_array_header(out, 2);
                resp::write_bulk(out, b"SELECT");
                resp::write_bulk_int(out, db);
            });
        }
    }

    /// The socket is closed (or the connect failed): every request owed a reply is lost, and
    /// the next dial waits a back-off drawn with `random`.
    pub fn handle_closed(&mut self, now: Duration, random: u64) {
        if matches!(self.phase, Phase::Ready) {
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
        }
        if !matches!(self.phase, Phase::Broken(_)) {
            self.fail(LinkError::Closed);
        }
        let wait = self.setup.timing.backoff.delay(self.failures, random);
        self.phase = Phase::Backoff { until: now.saturating_add(wait) };
    }

    /// A request owed a reply when the link broke: its outcome is unknown.
    pub fn poll_lost(&mut self) -> Option<RequestId> {
        self.lost.pop_front()
    }

    /// Breaks the link: drops what is queued, and reports each caller's request as lost.
    pub fn fail(&mut self, error: LinkError) -> LinkError {
        if matches!(self.phase, Phase::Ready | Phase::Handshake | Phase::Connecting { .. }) {
            self.phase = Phase::Broken(error);
        }
        self.out.clear();
        self.sent = 0;
        self.queued = 0;
        for p in self.pending.drain(..) {
            if let Item::Owner(k) = p.item {
                self.lost.extend(k.id());
            }
        }
        error
    }

    /// Breaks the link over the reply to `owed`, which is lost first (it was the oldest).
    pub fn fail_owing(&mut self, error: LinkError, owed: Option<RequestId>) -> LinkError {
        self.lost.extend(owed);
        self.fail(error)
    }

    /// Parses one reply at the start of `input` and matches it to the request it answers.
    pub fn read<'a>(
        &mut self,
        input: &'a [u8],
        now: Duration,
        is_push: impl Fn(&Reply<'_>) -> bool,
    ) -> Result<Read<'a, K>, LinkError> {
        if !matches!(self.phase, Phase::Handshake | Phase::Ready) {
            // Bytes after the link broke (or before it connected) are not read.
            return Ok(Read::Own(input.len()));
        }
        let (reply, len) = match self.parser.parse(input) {
            Ok(Status::Partial) => return Ok(Read::Partial),
            Ok(Status::Complete(done)) => done,
            Err(e) => return Err(self.fail(LinkError::Resp(e))),
        };
        self.active = now;
        if is_push(&reply) {
            return Ok(Read::Push(reply, len));
        }
        let Some(p) = self.pending.pop_front() else {
            return Err(self.fail(LinkError::Unsolicited));
        };
        self.queued -= p.cost;
        let refused = matches!(reply, Reply::Error(_) | Reply::BulkError(_));
        match p.item {
            Item::Auth if refused => Err(self.fail(LinkError::AuthRefused)),
            Item::Select if refused => Err(self.fail(LinkError::SelectRefused)),
            Item::Auth | Item::Select => match reply {
                Reply::Simple(b"OK") => Ok(Read::Own(len)),
                _ => Err(self.fail(LinkError::UnexpectedReply)),
            },
            Item::Ping => {
                // `+PONG`, or `["pong", ""]` on a connection in pub/sub mode (RESP2).
                let pong = match reply {
                    Reply::Simple(b"PONG") => true,
                    Reply::Array(a) => {
                        a.len() == 2 && a.iter().next().is_some_and(|r| r == Reply::Bulk(b"pong"))
                    }
                    _ => false,
                };
                if pong { Ok(Read::Own(len)) } else { Err(self.fail(LinkError::UnexpectedReply)) }
            }
            Item::Owner(kind) => Ok(Read::Reply { reply, len, kind, at: p.at, cost: p.cost }),
        }
    }
}
