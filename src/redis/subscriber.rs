//! The subscription link: one connection in pub/sub mode, subscribed in Redis to exactly the
//! channels this node has local subscribers for, in batches, and giving their messages out.
//!
//! The caller says which channels it wants ([`Subscriber::subscribe`],
//! [`Subscriber::unsubscribe`]); the link remembers the set, and sends only the difference
//! between it and what Redis was told, as `SUBSCRIBE`/`UNSUBSCRIBE` of up to
//! [`Config::subscribe_batch`] channels each, when [`Subscriber::poll_transmit`] is called (so a
//! turn of the event loop that adds a thousand channels sends a few commands). After a
//! reconnect every wanted channel is subscribed again.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::time::Duration;

use crate::proto::resp::{self, Reply};
use crate::redis::link::{Item, Link, LinkError, Read, Request, Setup, State};
use crate::redis::script;
use crate::redis::url::RedisUrl;
use crate::redis::{Config, Epoch, Position, RequestId};

/// What a reply gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Connected and authenticated: the wanted channels are being subscribed again. Messages
    /// published while the link was down were not received: a caller that needs them reads
    /// the history after the last offset it saw.
    Ready,
    /// Redis confirmed the subscription to a wanted channel: every message published on it
    /// from now on comes as a [`Event::Message`] (what came before is in its history).
    Subscribed {
        /// The channel (weir's name, without the key prefix).
        channel: &'a [u8],
    },
    /// A message published on a wanted channel.
    Message {
        /// The channel (weir's name, without the key prefix).
        channel: &'a [u8],
        /// Its epoch and offset.
        position: Position,
        /// What was published.
        payload: &'a [u8],
    },
}

/// `SUBSCRIBE` and `UNSUBSCRIBE` are answered once per channel.
#[derive(Debug)]
struct Confirm {
    left: usize,
}

impl Request for Confirm {
    fn id(&self) -> Option<RequestId> {
        None
    }
}

/// The subscription link's state machine. See the [module docs](crate::redis) for the calling
/// order.
pub struct Subscriber {
    link: Link<Confirm>,
    prefix: Vec<u8>,
    batch: usize,
    /// The channels the caller wants.
    wanted: BTreeSet<Vec<u8>>,
    /// The channels this connection last sent `SUBSCRIBE` for (not `UNSUBSCRIBE`).
    sent: BTreeSet<Vec<u8>>,
    /// The channels whose wish changed since the last batch.
    changed: BTreeSet<Vec<u8>>,
    dropped: u64,
}

impl Subscriber {
    /// A subscription link to `url` that dials at `now`.
    pub fn new(url: &RedisUrl, config: &Config, now: Duration) -> Self {
        // Pub/sub is not per database: no SELECT.
        let setup = Setup::new(url, config, false);
        Self {
            link: Link::new(setup, now),
            prefix: config.prefix.clone(),
            batch: config.subscribe_batch.max(1),
            wanted: BTreeSet::new(),
            sent: BTreeSet::new(),
            changed: BTreeSet::new(),
            dropped: 0,
        }
    }

    crate::redis::link::lifecycle!();

    /// The channels wanted.
    pub fn wanted(&self) -> usize {
        self.wanted.len()
    }

    /// Messages dropped since start: for a channel no longer wanted (one in flight while it was
    /// unsubscribed), or not in weir's format (someone else published on weir's names).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Wants `channel`'s messages (it has a local subscriber). True if it was not wanted.
    pub fn subscribe(&mut self, channel: &[u8]) -> bool {
        let new = self.wanted.insert(channel.to_vec());
        if new {
            self.changed.insert(channel.to_vec());
        }
        new
    }

    /// No longer wants `channel`'s messages. True if it was wanted.
    pub fn unsubscribe(&mut self, channel: &[u8]) -> bool {
        let was = self.wanted.remove(channel);
        if was {
            self.changed.insert(channel.to_vec());
        }
        was
    }

    /// The socket connected: `AUTH` is queued, or a `PING` to see Redis answer.
    pub fn handle_connected(&mut self, now: Duration) {
        if self.link.state() != State::Connecting {
            return;
        }
        self.link.handle_connected(now);
        if self.link.pending() == 0 {
            self.link.push(Item::Ping, 0, now, |out| {
                let _ = resp::write_command(out, &["PING"]);
            });
        }
        // A new connection is subscribed to nothing.
        self.sent.clear();
        self.changed = self.wanted.clone();
    }

    /// The socket closed: the next dial waits a back-off drawn with `random`.
    pub fn handle_closed(&mut self, now: Duration, random: u64) {
        self.link.handle_closed(now, random);
    }

    /// Sends what changed in the wanted set (once ready), then copies queued commands into
    /// `buf`; returns how many bytes.
    pub fn poll_transmit(&mut self, buf: &mut [u8], now: Duration) -> usize {
        if self.link.state() == State::Ready && !self.changed.is_empty() {
            self.send_changes(now);
        }
        self.link.poll_transmit(buf)
    }

    /// Bytes waiting for [`poll_transmit`](Self::poll_transmit), changes not yet batched aside.
    pub fn transmit_len(&self) -> usize {
        self.link.transmit_len()
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) has something to send.
    pub fn wants_transmit(&self) -> bool {
        self.transmit_len() > 0 || (self.link.state() == State::Ready && !self.changed.is_empty())
    }

    /// Reads one reply at the start of `input`: returns the bytes it took (0: not whole yet;
    /// keep `input` and call again with more after it) and what it gave.
    ///
    /// # Errors
    /// [`LinkError`]: the link is broken; close the socket and call
    /// [`handle_closed`](Self::handle_closed).
    pub fn handle_bytes<'a>(
        &mut self,
        input: &'a [u8],
        now: Duration,
    ) -> Result<(usize, Option<Event<'a>>), LinkError> {
        match self.link.read(input, now, is_message)? {
            Read::Partial => Ok((0, None)),
            Read::Own(len) => {
                if self.link.is_handshake() && self.link.pending() == 0 {
                    self.link.ready();
                    return Ok((len, Some(Event::Ready)));
                }
                Ok((len, None))
            }
            Read::Push(reply, len) => Ok((len, self.message(reply))),
            Read::Reply { reply, len, kind, at, cost } => {
                // ["subscribe" | "unsubscribe", channel, count]
                let confirmed = match reply {
                    Reply::Array(a) if a.len() == 3 => {
                        let mut it = a.iter();
                        match (it.next(), it.next(), it.next()) {
                            (
                                Some(Reply::Bulk(verb @ (b"subscribe" | b"unsubscribe"))),
                                Some(Reply::Bulk(name)),
                                Some(Reply::Integer(_)),
                            ) => Some((verb == b"subscribe", name)),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let Some((subscribed, name)) = confirmed else {
                    return Err(self.link.fail(LinkError::UnexpectedReply));
                };
                if kind.left > 1 {
                    self.link.push_front(Confirm { left: kind.left - 1 }, at, cost);
                }
                // Told only for a channel still wanted (one left meanwhile is not followed).
                let event = script::channel_of(&self.prefix, name)
                    .filter(|c| subscribed && self.wanted.contains(*c))
                    .map(|channel| Event::Subscribed { channel });
                Ok((len, event))
            }
        }
    }

    fn message<'a>(&mut self, reply: Reply<'a>) -> Option<Event<'a>> {
        let event = (|| {
            let (Reply::Array(a) | Reply::Push(a)) = reply else { return None };
            let mut it = a.iter();
            let (Some(Reply::Bulk(b"message")), Some(Reply::Bulk(name)), Some(Reply::Bulk(data))) =
                (it.next(), it.next(), it.next())
            else {
                return None;
            };
            let channel = script::channel_of(&self.prefix, name)?;
            if !self.wanted.contains(channel) {
                return None;
            }
            let (position, payload) = parse_message(data)?;
            Some(Event::Message { channel, position, payload })
        })();
        if event.is_none() {
            self.dropped += 1;
        }
        event
    }

    fn send_changes(&mut self, now: Duration) {
        let mut subscribe = Vec::new();
        let mut unsubscribe = Vec::new();
        for channel in core::mem::take(&mut self.changed) {
            let want = self.wanted.contains(&channel);
            if want && !self.sent.contains(&channel) {
                subscribe.push(channel);
            } else if !want && self.sent.remove(&channel) {
                unsubscribe.push(channel);
            }
        }
        for (verb, list) in [(&b"UNSUBSCRIBE"[..], unsubscribe), (b"SUBSCRIBE", subscribe)] {
            for chunk in list.chunks(self.batch) {
                let prefix = &self.prefix;
                self.link.push(Item::Owner(Confirm { left: chunk.len() }), 0, now, |out| {
                    resp::write_array_header(out, 1 + chunk.len());
                    resp::write_bulk(out, verb);
                    for channel in chunk {
                        resp::write_bulk(out, &script::key(prefix, channel, None));
                    }
                });
            }
            if verb == b"SUBSCRIBE" {
                self.sent.extend(list);
            }
        }
    }
}

/// A pub/sub message (RESP2 array or RESP3 push) rather than a reply.
fn is_message(reply: &Reply<'_>) -> bool {
    match reply {
        Reply::Array(a) | Reply::Push(a) => {
            a.len() == 3 && a.iter().next() == Some(Reply::Bulk(b"message"))
        }
        _ => false,
    }
}

/// `OFFSET:EPOCH:PAYLOAD`, as the publish script writes it.
fn parse_message(data: &[u8]) -> Option<(Position, &[u8])> {
    let colon = data.iter().position(|&b| b == b':')?;
    let offset = crate::redis::parse_u64(&data[..colon]).filter(|&n| n > 0)?;
    let rest = &data[colon + 1..];
    let epoch = Epoch::from_hex(rest.get(..16)?)?;
    let payload = rest.get(16..)?.strip_prefix(b":")?;
    Some((Position { epoch, offset }, payload))
}
