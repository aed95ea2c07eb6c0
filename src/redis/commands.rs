//! The command link: publishes, history reads and presence, pipelined on one connection, each
//! matched to its reply in order.
//!
//! On connect it sends `AUTH` and `SELECT` (from the URL) and `SCRIPT LOAD`s every
//! [`Script`]; it is ready once all are answered (and each `SCRIPT LOAD` named the SHA-1 of the
//! source). Requests run their script with `EVALSHA`; a `NOSCRIPT` error (the script cache was
//! flushed, or a failover reached a Redis that never loaded it) is answered by sending the same
//! request once more as `EVAL`, at the back of the pipeline.

use alloc::vec::Vec;
use core::time::Duration;

use crate::proto::resp::{self, Aggregate, Elements, Reply};
use crate::redis::link::{Item, Link, LinkError, Read, Request, Setup, State};
use crate::redis::script::{self, Script};
use crate::redis::url::RedisUrl;
use crate::redis::{Config, Epoch, Position, RequestId, Unavailable};

/// What a reply (or the handshake) gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'a> {
    /// The handshake is done: requests are taken.
    Ready,
    /// The message is in the channel's history and was published to every node.
    Published {
        /// The request.
        id: RequestId,
        /// Its epoch and offset.
        position: Position,
    },
    /// A history read.
    History {
        /// The request.
        id: RequestId,
        /// What it found.
        history: History<'a>,
    },
    /// A presence refresh: the members of the channel that have not expired.
    Presence {
        /// The request.
        id: RequestId,
        /// How many.
        count: u64,
    },
    /// A presence listing.
    Members {
        /// The request.
        id: RequestId,
        /// The members, borrowed from the input.
        members: Members<'a>,
    },
    /// A presence entry was removed.
    Removed {
        /// The request.
        id: RequestId,
    },
    /// Redis answered the request with an error (out of memory, a read-only replica, a key of
    /// the wrong type): this request failed, the link is fine.
    Refused {
        /// The request.
        id: RequestId,
        /// Redis's error line (`OOM command not allowed ...`).
        error: &'a [u8],
    },
}

/// A channel's history after an offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History<'a> {
    /// The channel's epoch; `None`: nothing was ever published to it (or Redis lost it).
    pub epoch: Option<Epoch>,
    /// The channel's last offset (0: none).
    pub top: u64,
    /// Whether the entries are all that came after the position asked for, in the same epoch:
    /// no gap, nothing from another epoch. False tells a resuming client that what it had is
    /// gone (Redis lost its data, or the entries were trimmed).
    pub recovered: bool,
    /// The entries, oldest first.
    pub entries: Entries<'a>,
}

/// A history's entries, decoded as they are iterated (all were checked when the reply came).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entries<'a> {
    list: Aggregate<'a>,
}

impl<'a> Entries<'a> {
    /// How many.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> EntryIter<'a> {
        EntryIter { inner: self.list.iter() }
    }
}

/// An iterator over [`Entries`].
#[derive(Debug, Clone)]
pub struct EntryIter<'a> {
    inner: Elements<'a>,
}

impl<'a> Iterator for EntryIter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        entry(self.inner.next()?)
    }
}

/// One message of a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Its offset in the channel.
    pub offset: u64,
    /// What was published.
    pub payload: &'a [u8],
}

/// Presence members, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Members<'a> {
    list: Aggregate<'a>,
}

impl<'a> Members<'a> {
    /// How many.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The members (checked to be strings when the reply came).
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.list.iter().filter_map(|r| match r {
            Reply::Bulk(m) => Some(m),
            _ => None,
        })
    }
}

/// What a request asked.
#[derive(Debug)]
enum Asked {
    Publish,
    History { after: u64, epoch: Option<Epoch> },
    Presence,
    Members,
}

impl Asked {
    fn script(&self) -> Script {
        match self {
            Self::Publish => Script::Publish,
            Self::History { .. } => Script::History,
            Self::Presence => Script::Presence,
            Self::Members => Script::Members,
        }
    }
}

#[derive(Debug)]
enum Kind {
    Load(Script),
    /// A script run: its arguments after the script (`numkeys`, keys, values) are kept, `args`
    /// of them, to send it again as `EVAL` after a `NOSCRIPT`.
    Run {
        id: RequestId,
        asked: Asked,
        tail: Vec<u8>,
        args: usize,
        retried: bool,
    },
    Remove(RequestId),
}

impl Request for Kind {
    fn id(&self) -> Option<RequestId> {
        match self {
            Self::Load(_) => None,
            Self::Run { id, .. } | Self::Remove(id) => Some(*id),
        }
    }
}

/// The command link's state machine. See the [module docs](crate::redis) for the calling order.
pub struct Commands {
    link: Link<Kind>,
    prefix: Vec<u8>,
    history_len: u32,
    /// `PEXPIRE` of a channel's keys at each publish, in ms (0: none).
    channel_ttl_ms: u64,
    shas: [[u8; 40]; 4],
    next_id: u64,
    /// Where new epochs come from: reseeded with the caller's random number at each close.
    seed: u64,
    counter: u64,
}

impl Commands {
    /// A command link to `url` that dials at `now`. `random` seeds the epochs it proposes for
    /// channels that have none.
    pub fn new(url: &RedisUrl, config: &Config, now: Duration, random: u64) -> Self {
        let setup = Setup::new(url, config, true);
        Self {
            link: Link::new(setup, now),
            prefix: config.prefix.clone(),
            history_len: config.history_len.max(1),
            channel_ttl_ms: config
                .channel_ttl
                .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)),
            shas: Script::ALL.map(Script::sha),
            next_id: 0,
            seed: random,
            counter: 0,
        }
    }

    crate::redis::link::lifecycle!();

    /// Bytes held by requests not answered yet (bounded by [`Config::max_queued_bytes`]).
    pub fn queued_bytes(&self) -> usize {
        self.link.queued_bytes()
    }

    /// Requests not answered yet.
    pub fn pending(&self) -> usize {
        self.link.pending()
    }

    /// The socket connected: the handshake is queued.
    pub fn handle_connected(&mut self, now: Duration) {
        if self.link.state() != State::Connecting {
            return;
        }
        self.link.handle_connected(now);
        for s in Script::ALL {
            self.link.push(Item::Owner(Kind::Load(s)), 0, now, |out| {
                let _ = resp::write_command(out, &[&b"SCRIPT"[..], b"LOAD", s.source().as_bytes()]);
            });
        }
    }

    /// The socket closed: requests owed a reply come out of [`poll_lost`](Self::poll_lost),
    /// and the next dial waits a back-off drawn with `random`.
    pub fn handle_closed(&mut self, now: Duration, random: u64) {
        self.link.handle_closed(now, random);
        self.seed = random ^ self.seed.rotate_left(17);
    }

    /// A request whose reply will not come (the link broke): answer it `unavailable`. Whether
    /// Redis ran it is unknown.
    pub fn poll_lost(&mut self) -> Option<RequestId> {
        self.link.poll_lost()
    }

    /// Copies queued commands into `buf`; returns how many bytes.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> usize {
        self.link.poll_transmit(buf)
    }

    /// Bytes waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn transmit_len(&self) -> usize {
        self.link.transmit_len()
    }

    /// Appends `payload` to `channel`'s history and publishes it, as one script.
    ///
    /// # Errors
    /// [`Unavailable`]: the link is not ready, or the queue is full. Nothing was queued.
    pub fn publish(
        &mut self,
        channel: &[u8],
        payload: &[u8],
        now: Duration,
    ) -> Result<RequestId, Unavailable> {
        self.link.admit(payload.len())?;
        let epoch = self.new_epoch().to_hex();
        let stream = script::key(&self.prefix, channel, Some(b's'));
        let meta = script::key(&self.prefix, channel, Some(b'm'));
        let pubsub = script::key(&self.prefix, channel, None);
        let mut tail = Vec::with_capacity(payload.len() + stream.len() * 3 + 64);
        resp::write_bulk(&mut tail, b"2");
        resp::write_bulk(&mut tail, &stream);
        resp::write_bulk(&mut tail, &meta);
        resp::write_bulk(&mut tail, payload);
        resp::write_bulk_int(&mut tail, i64::from(self.history_len));
        resp::write_bulk(&mut tail, &epoch);
        resp::write_bulk(&mut tail, &pubsub);
        resp::write_bulk_int(&mut tail, i64::try_from(self.channel_ttl_ms).unwrap_or(i64::MAX));
        self.run(Asked::Publish, tail, 8, now)
    }

    /// The newest `limit` messages of `channel` after offset `after`, oldest first. `epoch`
    /// is the one the asker's `after` belongs to, if it has one: the answer says
    /// `recovered: false` when the channel's epoch is another.
    ///
    /// # Errors
    /// [`Unavailable`], as for [`publish`](Self::publish).
    pub fn history(
        &mut self,
        channel: &[u8],
        after: u64,
        limit: u32,
        epoch: Option<Epoch>,
        now: Duration,
    ) -> Result<RequestId, Unavailable> {
        self.link.admit(0)?;
        let stream = script::key(&self.prefix, channel, Some(b's'));
        let meta = script::key(&self.prefix, channel, Some(b'm'));
        let first = alloc::format!("{}-0", after.saturating_add(1));
        let mut tail = Vec::with_capacity(stream.len() * 2 + 64);
        resp::write_bulk(&mut tail, b"2");
        resp::write_bulk(&mut tail, &stream);
        resp::write_bulk(&mut tail, &meta);
        resp::write_bulk(&mut tail, first.as_bytes());
        resp::write_bulk_int(&mut tail, i64::from(limit.max(1)));
        self.run(Asked::History { after, epoch }, tail, 5, now)
    }

    /// Adds or refreshes `members` in `channel`'s presence for `ttl` (by Redis's clock), drops
    /// the expired, and counts the rest. With no member it only counts.
    ///
    /// # Errors
    /// [`Unavailable`], as for [`publish`](Self::publish).
    pub fn presence(
        &mut self,
        channel: &[u8],
        members: &[&[u8]],
        ttl: Duration,
        now: Duration,
    ) -> Result<RequestId, Unavailable> {
        let size: usize = members.iter().map(|m| m.len() + 16).sum();
        self.link.admit(size)?;
        let key = script::key(&self.prefix, channel, Some(b'p'));
        let mut tail = Vec::with_capacity(key.len() + size + 32);
        resp::write_bulk(&mut tail, b"1");
        resp::write_bulk(&mut tail, &key);
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        resp::write_bulk_int(&mut tail, ms);
        for m in members {
            resp::write_bulk(&mut tail, m);
        }
        self.run(Asked::Presence, tail, 3 + members.len(), now)
    }

    /// The members of `channel`'s presence that have not expired, at most `limit`.
    ///
    /// # Errors
    /// [`Unavailable`], as for [`publish`](Self::publish).
    pub fn members(
        &mut self,
        channel: &[u8],
        limit: u32,
        now: Duration,
    ) -> Result<RequestId, Unavailable> {
        self.link.admit(0)?;
        let key = script::key(&self.prefix, channel, Some(b'p'));
        let mut tail = Vec::with_capacity(key.len() + 32);
        resp::write_bulk(&mut tail, b"1");
        resp::write_bulk(&mut tail, &key);
        resp::write_bulk_int(&mut tail, i64::from(limit));
        self.run(Asked::Members, tail, 3, now)
    }

    /// Removes `member` from `channel`'s presence (`ZREM`).
    ///
    /// # Errors
    /// [`Unavailable`], as for [`publish`](Self::publish).
    pub fn remove(
        &mut self,
        channel: &[u8],
        member: &[u8],
        now: Duration,
    ) -> Result<RequestId, Unavailable> {
        self.link.admit(member.len())?;
        let id = self.next_id();
        let key = script::key(&self.prefix, channel, Some(b'p'));
        self.link.push(Item::Owner(Kind::Remove(id)), 0, now, |out| {
            let _ = resp::write_command(out, &[&b"ZREM"[..], &key, member]);
        });
        Ok(id)
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
        let (reply, len, kind) = match self.link.read(input, now, |_| false)? {
            Read::Partial => return Ok((0, None)),
            Read::Own(len) => return Ok((len, self.ready_now())),
            // Nothing is pushed on this link: `is_push` picks nothing.
            Read::Push(_, len) => return Ok((len, None)),
            Read::Reply { reply, len, kind, .. } => (reply, len, kind),
        };
        let refused = match reply {
            Reply::Error(e) | Reply::BulkError(e) => Some(e),
            _ => None,
        };
        match kind {
            Kind::Load(s) => match reply {
                Reply::Bulk(sha) if *sha == self.shas[s as usize] => Ok((len, self.ready_now())),
                Reply::Bulk(_) => Err(self.link.fail(LinkError::ScriptMismatch)),
                _ if refused.is_some() => Err(self.link.fail(LinkError::ScriptLoadRefused)),
                _ => Err(self.link.fail(LinkError::UnexpectedReply)),
            },
            Kind::Remove(id) => match (refused, reply) {
                (Some(error), _) => Ok((len, Some(Event::Refused { id, error }))),
                (None, Reply::Integer(_)) => Ok((len, Some(Event::Removed { id }))),
                _ => Err(self.link.fail_owing(LinkError::UnexpectedReply, Some(id))),
            },
            Kind::Run { id, asked, tail, args, retried } => {
                if let Some(error) = refused {
                    if error.starts_with(b"NOSCRIPT") && !retried {
                        // Sent again as EVAL, which also loads it; the reply comes in turn.
                        let source = asked.script().source().as_bytes();
                        let kept = tail.len();
                        self.link.push_owned(now, kept, |out| {
                            resp::write_array_header(out, 2 + args);
                            resp::write_bulk(out, b"EVAL");
                            resp::write_bulk(out, source);
                            out.extend_from_slice(&tail);
                            Kind::Run { id, asked, tail, args, retried: true }
                        });
                        return Ok((len, None));
                    }
                    return Ok((len, Some(Event::Refused { id, error })));
                }
                match answer(id, &asked, reply) {
                    Some(event) => Ok((len, Some(event))),
                    None => Err(self.link.fail_owing(LinkError::UnexpectedReply, Some(id))),
                }
            }
        }
    }

    fn ready_now(&mut self) -> Option<Event<'static>> {
        if self.link.is_handshake() && self.link.pending() == 0 {
            self.link.ready();
            return Some(Event::Ready);
        }
        None
    }

    fn next_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    fn new_epoch(&mut self) -> Epoch {
        self.counter += 1;
        Epoch(splitmix64(self.seed.wrapping_add(self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15))))
    }

    fn run(
        &mut self,
        asked: Asked,
        tail: Vec<u8>,
        args: usize,
        now: Duration,
    ) -> Result<RequestId, Unavailable> {
        self.link.admit(tail.len().saturating_mul(2))?;
        let id = self.next_id();
        let sha = self.shas[asked.script() as usize];
        let kept = tail.len();
        self.link.push_owned(now, kept, |out| {
            resp::write_array_header(out, 2 + args);
            resp::write_bulk(out, b"EVALSHA");
            resp::write_bulk(out, &sha);
            out.extend_from_slice(&tail);
            Kind::Run { id, asked, tail, args, retried: false }
        });
        Ok(id)
    }
}

/// The event a script's reply makes, or `None` when its shape is wrong.
fn answer<'a>(id: RequestId, asked: &Asked, reply: Reply<'a>) -> Option<Event<'a>> {
    match (asked, reply) {
        (Asked::Publish, Reply::Array(a)) if a.len() == 2 => {
            let mut it = a.iter();
            let epoch = match it.next()? {
                Reply::Bulk(e) => Epoch::from_hex(e)?,
                _ => return None,
            };
            let offset = match it.next()? {
                Reply::Integer(n) => u64::try_from(n).ok().filter(|&n| n > 0)?,
                _ => return None,
            };
            Some(Event::Published { id, position: Position { epoch, offset } })
        }
        (Asked::History { after, epoch: asked_epoch }, Reply::Array(a)) if a.len() == 3 => {
            let mut it = a.iter();
            let epoch = match it.next()? {
                Reply::Null => None,
                Reply::Bulk(e) => Some(Epoch::from_hex(e)?),
                _ => return None,
            };
            let top = match it.next()? {
                Reply::Integer(n) => u64::try_from(n).ok()?,
                _ => return None,
            };
            let Reply::Array(list) = it.next()? else { return None };
            // Every entry is checked now, so that iterating cannot fail: offsets rise, past
            // `after`, up to `top`.
            let (mut first, mut last) = (None, *after);
            for r in list.iter() {
                let e = entry(r)?;
                if e.offset <= last || e.offset > top {
                    return None;
                }
                first.get_or_insert(e.offset);
                last = e.offset;
            }
            if list.iter().count() != list.len() {
                return None;
            }
            let complete = match first {
                Some(first) => first == after + 1 && last == top,
                None => top == *after,
            };
            // A caller without an epoch has nothing to compare; one with an epoch resumes only
            // within it.
            let recovered = complete && asked_epoch.is_none_or(|e| epoch == Some(e));
            Some(Event::History {
                id,
                history: History { epoch, top, recovered, entries: Entries { list } },
            })
        }
        (Asked::Presence, Reply::Integer(n)) => {
            Some(Event::Presence { id, count: u64::try_from(n).ok()? })
        }
        (Asked::Members, Reply::Array(list)) => {
            if list.iter().any(|r| !matches!(r, Reply::Bulk(_)))
                || list.iter().count() != list.len()
            {
                return None;
            }
            Some(Event::Members { id, members: Members { list } })
        }
        _ => None,
    }
}

/// A stream entry as the history script returns it: `[OFFSET-0, ["d", payload]]`.
fn entry(r: Reply<'_>) -> Option<Entry<'_>> {
    let Reply::Array(pair) = r else { return None };
    if pair.len() != 2 {
        return None;
    }
    let mut it = pair.iter();
    let Reply::Bulk(id) = it.next()? else { return None };
    let Reply::Array(fields) = it.next()? else { return None };
    if fields.len() != 2 {
        return None;
    }
    let mut f = fields.iter();
    let (Reply::Bulk(b"d"), Reply::Bulk(payload)) = (f.next()?, f.next()?) else { return None };
    let digits = id.strip_suffix(b"-0")?;
    Some(Entry { offset: crate::redis::parse_u64(digits)?, payload })
}

/// SplitMix64's output function: distinct inputs give distinct, well-spread outputs.
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
