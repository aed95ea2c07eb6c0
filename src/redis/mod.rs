//! The hub's Redis broker as a sans-IO client (issue 19): bytes in, bytes out, time as an
//! argument, as in [`crate::proto`]. Nothing here opens a socket or reads a clock; the runtime
//! is not wired to it yet (docs/redis.md says what is left).
//!
//! A node speaks to Redis over two links, each its own state machine ([`link`]):
//! - [`Commands`]: publishes, history reads and presence, pipelined, each matched to its reply
//!   in order. A publish is one Lua script ([`script`]): `XADD` with `MAXLEN` to the channel's
//!   stream, the channel's offset counted and its epoch kept in a hash, then `PUBLISH`; it
//!   answers the message's [`Position`] (epoch, offset).
//! - [`Subscriber`]: `SUBSCRIBE`/`UNSUBSCRIBE` for exactly the channels with local subscribers,
//!   in batches, and their messages out, each with its position.
//!
//! Both: connect, `AUTH` and `SELECT` from a [`RedisUrl`], the link's own first commands, then
//! ready; on any failure the caller closes the socket and the link waits a back-off with jitter
//! from the caller's random number ([`Backoff`]), dials again, and (the subscriber) subscribes
//! again to every wanted channel.
//!
//! # Calling order (for each link and its socket)
//!
//! 1. `new(.., now)`: the link is due to dial at once.
//! 2. Whenever `poll_timeout()` has passed: `handle_timeout(now)`. [`Timeout::Dial`]: start a
//!    non-blocking connect; when it completes call `handle_connected(now)`, when it fails
//!    `handle_closed(now, random)`. [`Timeout::Connect`] and [`Timeout::Reply`] mean the link
//!    broke: close the socket and call `handle_closed(now, random)`.
//! 3. Bytes read from the socket go, from the start of the first unfinished reply, to
//!    `handle_bytes(input, now)` until it takes 0 bytes; keep what it did not take and append
//!    the next read after it (the caller's buffer is bounded by [`Config::limits`]'s
//!    `max_reply` plus one read). An `Err` means the link broke: close the socket, call
//!    `handle_closed`.
//! 4. After every call: write what `poll_transmit` gives.
//! 5. After `handle_closed` (and any error): every request owed a reply comes out of
//!    [`Commands::poll_lost`]; answer each one `unavailable` (Redis may or may not have run
//!    it: nothing acknowledged is lost, but a publish may have happened).
//!
//! A request made while the link is not ready, or past the queue's bounds
//! ([`Config::max_queued_bytes`], [`Config::max_pending`]) is refused at once with
//! [`Unavailable`], never buffered.
//!
//! # Example: a publish, on bytes alone
//!
//! ```
//! use core::time::Duration;
//! use weir::redis::{Commands, CommandEvent, Config, RedisUrl, Script, Timeout};
//!
//! let now = Duration::ZERO;
//! let url = RedisUrl::parse("redis://127.0.0.1:6379").unwrap();
//! let mut link = Commands::new(&url, &Config::default(), now, 42);
//! assert_eq!(link.handle_timeout(now), Some(Timeout::Dial));
//! link.handle_connected(now);
//! let mut out = vec![0u8; 4096];
//! let n = link.poll_transmit(&mut out);
//! assert!(out[..n].starts_with(b"*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n"));
//!
//! // Redis answers each SCRIPT LOAD with the script's SHA-1.
//! let mut input = Vec::new();
//! for s in Script::ALL {
//!     input.extend_from_slice(b"$40\r\n");
//!     input.extend_from_slice(&s.sha());
//!     input.extend_from_slice(b"\r\n");
//! }
//! let mut at = 0;
//! let mut ready = false;
//! while at < input.len() {
//!     let (used, event) = link.handle_bytes(&input[at..], now).unwrap();
//!     ready |= event == Some(CommandEvent::Ready);
//!     at += used;
//! }
//! assert!(ready);
//!
//! let id = link.publish(b"builds", b"{\"ok\":true}", now).unwrap();
//! let n = link.poll_transmit(&mut out);
//! assert!(out[..n].starts_with(b"*10\r\n$7\r\nEVALSHA\r\n"));
//! // The script answers [epoch, offset].
//! let reply = b"*2\r\n$16\r\n00000000000000a1\r\n:1\r\n";
//! let Ok((_, Some(CommandEvent::Published { id: got, position }))) = link.handle_bytes(reply, now)
//! else {
//!     panic!()
//! };
//! assert_eq!((got, position.offset), (id, 1));
//! ```

pub mod backoff;
pub mod commands;
pub mod link;
pub mod script;
pub mod subscriber;
pub mod url;

use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

pub use backoff::Backoff;
pub use commands::{Commands, Entries, Entry, Event as CommandEvent, History, Members};
pub use link::{LinkError, State, Timeout, Timing};
pub use script::Script;
pub use subscriber::{Event as SubscriberEvent, Subscriber};
pub use url::{RedisUrl, UrlError};

use crate::proto::resp;

/// What both links are configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The prefix of every key and pub/sub channel (default `weir`): several deployments can
    /// share one Redis under different prefixes.
    pub prefix: Vec<u8>,
    /// The messages kept per channel (`XADD ... MAXLEN`; the hub's `--history`, default 100).
    pub history_len: u32,
    /// How long a channel's stream and hash stay after its last publish (each publish sets
    /// it again, `PEXPIRE`; default 24 h; `None`: forever). Past it the channel is gone: its
    /// next publish starts a new epoch, and a client resuming is told `recovered: false`.
    pub channel_ttl: Option<Duration>,
    /// How long a presence entry the hub adds lives unless its node refreshes it (every third
    /// of this; default 30 s): a node that dies takes its members with it within this.
    pub presence_ttl: Duration,
    /// Deadlines and back-off.
    pub timing: Timing,
    /// Bounds on one reply (a history of `history_len` messages must fit in `max_reply`).
    pub limits: resp::Limits,
    /// Most bytes of requests not answered yet, what they hold to be sent again included
    /// (default 16 MiB).
    pub max_queued_bytes: usize,
    /// Most requests not answered yet (default 65,536).
    pub max_pending: usize,
    /// Most channels in one `SUBSCRIBE` or `UNSUBSCRIBE` (default 256).
    pub subscribe_batch: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            prefix: b"weir".to_vec(),
            history_len: 100,
            channel_ttl: Some(Duration::from_secs(24 * 3600)),
            presence_ttl: Duration::from_secs(30),
            timing: Timing::default(),
            limits: resp::Limits::default(),
            max_queued_bytes: 16 << 20,
            max_pending: 65_536,
            subscribe_batch: 256,
        }
    }
}

/// A request, as its answer names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A channel's epoch: a random number drawn when the channel's hash is made in Redis. A new
/// epoch means the offsets started again: what came before is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(pub u64);

impl Epoch {
    /// As Redis keeps it: 16 lowercase hex digits.
    pub fn to_hex(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = b"0123456789abcdef"[((self.0 >> (60 - 4 * i)) & 15) as usize];
        }
        out
    }

    /// From 16 hex digits (either case); `None` for anything else.
    pub fn from_hex(s: &[u8]) -> Option<Self> {
        if s.len() != 16 {
            return None;
        }
        s.iter()
            .try_fold(0u64, |n, &d| Some(n << 4 | u64::from(char::from(d).to_digit(16)?)))
            .map(Self)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Where a message is in its channel: the epoch and the offset within it (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// The channel's epoch when it was published.
    pub epoch: Epoch,
    /// Its offset.
    pub offset: u64,
}

/// Why a request was refused before it was queued: the caller answers `unavailable` (HTTP 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unavailable {
    /// The link is not connected and ready.
    NotConnected,
    /// The queue of unanswered requests is at its bound.
    QueueFull,
}

impl Unavailable {
    /// A stable snake_case name, for logs and counters.
    pub const fn name(self) -> &'static str {
        match self {
            Self::NotConnected => "not_connected",
            Self::QueueFull => "queue_full",
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotConnected => "Redis is not connected",
            Self::QueueFull => "too many requests waiting for Redis",
        })
    }
}

/// Decimal digits, 1 to 20, within `u64`.
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// A node's two Redis links as its operators see them (`/api/stats`, `/metrics`): the hub fills
/// it in, the HTTP API reports it; one type here, below both apps, that neither has to copy.
#[derive(Debug, Default, Clone, Copy)]
pub struct Figures {
    /// Whether each link is connected and ready: commands, subscriber.
    pub ready: [bool; 2],
    /// Connections made again after one was lost, per link.
    pub reconnects: [u64; 2],
    /// Requests refused before they were queued (Redis not connected, or the queue full).
    pub refused: u64,
    /// Requests whose reply was lost with the link (answered `unavailable`).
    pub lost: u64,
    /// Requests Redis answered with an error.
    pub errors: u64,
    /// Messages dropped by the subscription link (not in weir's form, or no longer followed).
    pub dropped: u64,
    /// Requests awaiting Redis's reply now.
    pub waiting: u64,
    /// The weir nodes alive on this Redis (this one included), as of this node's last
    /// refresh of its own entry; `None` until Redis first answered.
    pub nodes: Option<u64>,
}

#[cfg(test)]
mod tests;
