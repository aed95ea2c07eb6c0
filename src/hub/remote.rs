//! The hub with `--redis`: channels live in Redis (docs/redis.md), shared by every node.
//!
//! - A publish goes to Redis (`Commands::publish`: the history stream, the offset, then
//!   `PUBLISH`); its answer waits for Redis's, so nothing acknowledged is lost. A node does
//!   not deliver its own publishes: they come back through its subscription like everyone
//!   else's, so each subscriber gets each message once, in the channel's order.
//! - A node subscribes in Redis to the channels it has local subscribers for, and fans each
//!   message out through the shared-frame path. A message's `seq` is its offset in Redis; its
//!   `epoch` says which life of the channel in Redis it belongs to.
//! - `subscribe` waits until Redis confirmed the node's subscription, then reads the channel's
//!   history after `since` (or only its top, without one): the client is held out of the live
//!   set meanwhile, with the live messages that came buffered, and joins it once it has every
//!   message up to what the live feed has delivered. A resume across an epoch change, or past
//!   what the stream keeps, is answered `recovered: false`.
//! - When the subscription link comes back after a loss, each channel followed reads its
//!   history after the last offset delivered, so subscribers miss nothing Redis kept.
//! - While Redis is unreachable, publishes, history reads and new subscriptions answer
//!   `unavailable` (HTTP 503); subscribers keep their connections.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use crate::json::{ObjectWriter, Value};
use crate::proto::MessageKind;
use crate::redis::{Epoch, Figures, Position, RequestId, Unavailable};
use crate::server::{ConnId, Context, Response};
use crate::warn;

use super::broker::{Broker, Got, Which};
use super::channel::valid_name;
use super::{
    Hub, Id, Outcome, bad, channel_entry, channel_param, followers, now_ms, reply, since_param,
};

/// The code of an answer refused because Redis is not there.
const UNAVAILABLE: &str = "unavailable";

/// The hub's Redis side.
pub(super) struct Redis {
    pub(super) broker: Broker,
    /// This process's name in presence entries (`NODE/CLIENT`): random, new at each start.
    node: String,
    /// How long a presence entry lives in Redis unless refreshed (`--redis-presence-ttl`,
    /// default 30 s): a node that dies takes its members with it within this.
    presence_ttl: Duration,
    /// How often the node refreshes its members: a third of the TTL (two refreshes may be
    /// lost).
    refresh_every: Duration,
    /// When the node's presence entries are refreshed next.
    refresh_at: Duration,
    /// The nodes alive on this Redis, as Redis last counted them.
    nodes: Option<u64>,
    /// Presence entries of clients that left, removed on the next tick.
    left: Vec<(Rc<str>, String)>,
    /// Channels forgotten whose `UNSUBSCRIBE` is not sent yet.
    forgotten: Vec<Rc<str>>,
    /// Requests awaiting Redis's reply, and who is to be told.
    waiters: HashMap<RequestId, Waiter>,
    /// What this node knows of each channel it follows.
    remote: HashMap<Rc<str>, Remote>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("waiters", &self.waiters.len()).finish_non_exhaustive()
    }
}

impl Redis {
    pub(super) fn new(broker: Broker, node: u64, presence_ttl: Duration) -> Self {
        let presence_ttl = presence_ttl.max(Duration::from_millis(3));
        Self {
            broker,
            node: format!("{node:016x}"),
            presence_ttl,
            refresh_every: presence_ttl / 3,
            refresh_at: presence_ttl / 3,
            nodes: None,
            left: Vec::new(),
            forgotten: Vec::new(),
            waiters: HashMap::new(),
            remote: HashMap::new(),
        }
    }
}

/// Who a request is answered to.
#[derive(Debug)]
enum Waiter {
    /// A WebSocket `publish`.
    Publish { conn: ConnId, cmd: Id },
    /// `POST /api/channels/C/publish`, answered late.
    HttpPublish { conn: ConnId },
    /// A WebSocket `history`.
    History { conn: ConnId, cmd: Id, channel: Rc<str> },
    /// `GET /api/channels/C/history`, answered late.
    HttpHistory { conn: ConnId, channel: Rc<str> },
    /// A WebSocket `presence`: the members of every node.
    Presence { conn: ConnId, cmd: Id },
    /// A `subscribe`: its answer, what it missed after `since`, then live.
    Resume { conn: ConnId, cmd: Id, channel: Rc<str>, since: Option<u64> },
    /// The messages the node missed while its subscription link was down.
    Gap { channel: Rc<str> },
    /// The node's own entry among the nodes on this Redis: their count.
    Nodes,
}

/// A `subscribe` waiting for the node's subscription in Redis.
#[derive(Debug)]
struct Asked {
    conn: ConnId,
    cmd: Id,
    since: Option<u64>,
    epoch: Option<Epoch>,
}

/// A channel this node follows.
#[derive(Debug, Default)]
struct Remote {
    /// Redis confirmed the subscription (on the link's current connection).
    confirmed: bool,
    /// The last message delivered to the live set.
    live: Option<Position>,
    /// A catch-up read is under way: live messages wait here, in order, with their bytes.
    gap: Option<(Held, usize)>,
    /// Clients subscribed and not yet in the live set.
    holds: BTreeMap<ConnId, Hold>,
    /// Subscribes waiting for `confirmed`.
    asked: Vec<Asked>,
}

/// Live messages held back, in order: their position and event.
type Held = Vec<(Position, Rc<str>)>;

/// A client subscribed to a channel and held out of its live set.
#[derive(Debug)]
enum Hold {
    /// Its history read is under way: the live messages meanwhile, and their bytes.
    Reading(Held, usize),
    /// It has every message up to `top` of `epoch`: it joins the live set with the first live
    /// message after that.
    Floor { epoch: Option<Epoch>, top: u64 },
}

/// Whether `pos` is one the holder of (`epoch`, `top`) has already.
fn covered(pos: Position, epoch: Option<Epoch>, top: u64) -> bool {
    epoch == Some(pos.epoch) && pos.offset <= top
}

/// What is stored in Redis for a message: `TS\nFROM\nDATA` (the hub's own fields, then the
/// publisher's JSON as sent).
fn stored(data: &str, from: &str, ts: u64) -> Vec<u8> {
    format!("{ts}\n{from}\n{data}").into_bytes()
}

/// The `message` event of a stored payload at `offset`, or `None` if it is not in weir's form.
fn event_of(channel: &str, offset: u64, epoch: Option<Epoch>, payload: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(3, '\n');
    let ts: u64 = parts.next()?.parse().ok()?;
    let from = parts.next()?;
    let data = parts.next().filter(|d| !d.is_empty())?;
    Some(super::message_event(channel, offset, epoch, data, from, ts))
}

/// The epoch as clients see it: 16 hex digits, or `null` for a channel Redis holds nothing of.
fn epoch_json(w: &mut ObjectWriter<'_>, epoch: Option<Epoch>) {
    match epoch {
        Some(e) => w.str("epoch", &e.to_string()),
        None => w.null("epoch"),
    };
}

/// The `epoch` parameter: 16 hex digits.
fn epoch_param(params: &Value) -> Result<Option<Epoch>, (&'static str, String)> {
    match params.get("epoch") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|s| Epoch::from_hex(s.as_bytes()))
            .map(Some)
            .ok_or_else(|| bad("epoch must be 16 hex digits, as the server gave it")),
    }
}

/// A refusal: an error code and its message.
type Refusal = (&'static str, String);

fn unavailable(why: Unavailable) -> Refusal {
    (UNAVAILABLE, format!("{why}; try again"))
}

fn http_json(status: u16, body: String) -> Response {
    Response::with_type(status, "application/json", body.into_bytes())
}

fn http_error(status: u16, code: &str, message: &str) -> Response {
    let mut r = http_json(status, crate::json::error_object(code, message));
    if status == 503 {
        r.headers.push(("Retry-After".into(), b"1".to_vec()));
    }
    r
}

impl Hub {
    /// Whether the hub keeps its channels in Redis.
    pub fn uses_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// Socket `id` is one of the Redis links'.
    pub fn is_redis_socket(&self, id: ConnId) -> bool {
        self.redis.as_ref().is_some_and(|r| r.broker.which(id).is_some())
    }

    /// The links' deadlines (dial, connect, reply, ping): called on every tick.
    pub(super) fn redis_tick(&mut self, ctx: &mut Context<'_>) {
        let Some(r) = self.redis.as_mut() else { return };
        let mut got = Vec::new();
        r.broker.on_time(ctx, &mut got);
        self.redis_got(ctx, got);
        self.refresh_presence(ctx);
    }

    /// Every third of the presence TTL, each channel's local members are refreshed in Redis
    /// (one request per channel); their entries expire one TTL after the last refresh.
    fn refresh_presence(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        if let Some(r) = self.redis.as_mut() {
            for (channel, member) in std::mem::take(&mut r.left) {
                // Not awaited; refused while Redis is not there, and the entry expires instead.
                let _ = r.broker.commands.remove(channel.as_bytes(), member.as_bytes(), now);
            }
            let mut got = Vec::new();
            r.broker.flush(ctx, &mut got);
            self.redis_got(ctx, got);
        }
        let Some(r) = self.redis.as_mut().filter(|r| now >= r.refresh_at) else { return };
        r.refresh_at = now + r.refresh_every;
        self.register_node(ctx);
        let Some(r) = self.redis.as_mut() else { return };
        let channels: Vec<Rc<str>> = r.remote.keys().cloned().collect();
        for channel in channels {
            let members = self.members(&channel);
            if !members.is_empty() {
                self.present(ctx, &channel, &members);
            }
        }
        self.redis_got(ctx, Vec::new());
    }

    /// Adds or refreshes this node's entry in the presence of the nodes on this Redis (under
    /// the empty channel name, which no client channel can have), with the same TTL as its
    /// members': the answer is how many nodes are alive, for `/api/stats`.
    fn register_node(&mut self, ctx: &mut Context<'_>) {
        let Some(r) = self.redis.as_mut() else { return };
        let (node, ttl) = (r.node.clone(), r.presence_ttl);
        let sent = r.broker.commands.presence(b"", &[node.as_bytes()], ttl, ctx.now());
        // Refused while Redis is not there: counted again at the next refresh.
        let _ = self.file(ctx, sent, Waiter::Nodes);
    }

    /// This node's presence entries of `channel`: its WebSocket followers, live or held.
    fn members(&self, channel: &str) -> Vec<String> {
        let (Some(ch), Some(r)) = (self.channels.get(channel), self.redis.as_ref()) else {
            return Vec::new();
        };
        ch.subscribers
            .iter()
            .chain(ch.held.iter())
            .filter_map(|id| self.clients.get(id))
            .map(|c| format!("{}/{}", r.node, c.name))
            .collect()
    }

    /// Adds or refreshes `members` of `channel` (the reply is not awaited: a refresh lost is
    /// made good by the next).
    fn present(&mut self, ctx: &mut Context<'_>, channel: &str, members: &[String]) {
        let Some(r) = self.redis.as_mut() else { return };
        let list: Vec<&[u8]> = members.iter().map(|m| m.as_bytes()).collect();
        let ttl = r.presence_ttl;
        if r.broker.commands.presence(channel.as_bytes(), &list, ttl, ctx.now()).is_err() {
            r.broker.stats.refused += 1;
        }
    }

    /// A Redis socket connected.
    pub fn on_redis_connected(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        let Some(r) = self.redis.as_mut() else { return };
        let mut got = Vec::new();
        r.broker.on_connected(ctx, id, &mut got);
        self.redis_got(ctx, got);
    }

    /// Bytes from a Redis socket.
    pub fn on_redis_data(&mut self, ctx: &mut Context<'_>, id: ConnId, bytes: &[u8]) {
        let Some(r) = self.redis.as_mut() else { return };
        let mut got = Vec::new();
        r.broker.on_data(ctx, id, bytes, &mut got);
        self.redis_got(ctx, got);
    }

    /// A Redis socket closed (or its connect failed).
    pub fn on_redis_closed(&mut self, ctx: &mut Context<'_>, id: ConnId, why: &str) {
        let Some(r) = self.redis.as_mut() else { return };
        let mut got = Vec::new();
        r.broker.on_closed(ctx, id, why, &mut got);
        self.redis_got(ctx, got);
    }

    /// The links' state and counters (`None` without `--redis`).
    pub fn redis_links(&self) -> Option<Figures> {
        let r = self.redis.as_ref()?;
        let s = r.broker.stats;
        Some(Figures {
            ready: r.broker.ready(),
            reconnects: s.reconnects,
            refused: s.refused,
            lost: s.lost,
            errors: s.errors,
            dropped: r.broker.subscriber.dropped(),
            waiting: r.waiters.len() as u64,
            nodes: r.nodes,
        })
    }

    fn redis_got(&mut self, ctx: &mut Context<'_>, got: Vec<Got>) {
        self.purge();
        for g in got {
            self.on_got(ctx, g);
        }
        if let Some(r) = self.redis.as_mut() {
            let mut more = Vec::new();
            r.broker.flush(ctx, &mut more);
            for g in more {
                self.on_got(ctx, g);
            }
        }
        self.purge();
    }

    fn on_got(&mut self, ctx: &mut Context<'_>, got: Got) {
        let Some(r) = self.redis.as_mut() else { return };
        match got {
            Got::Ready(Which::Subscriber) => {
                // A new connection is subscribed to nothing yet: each channel is confirmed
                // again (and reads what it missed) as Redis answers.
                for remote in r.remote.values_mut() {
                    remote.confirmed = false;
                }
            }
            Got::Ready(Which::Commands) => self.register_node(ctx),
            Got::Down(Which::Commands) => {}
            Got::Down(Which::Subscriber) => {
                // Subscribes waiting for a confirmation that will not come on this connection.
                let mut failed = Vec::new();
                for (channel, remote) in &mut r.remote {
                    remote.confirmed = false;
                    for a in remote.asked.drain(..) {
                        failed.push((Rc::clone(channel), a));
                    }
                }
                for (channel, a) in failed {
                    self.refuse(ctx, a.conn, &a.cmd, unavailable(Unavailable::NotConnected));
                    self.fail_subscribe(ctx, a.conn, &channel);
                }
            }
            Got::Subscribed(channel) => self.on_subscribed(ctx, &channel),
            Got::Message { channel, position, payload } => {
                let Some((key, _)) = self.channels.get_key_value(channel.as_str()) else { return };
                let key = Rc::clone(key);
                let Some(event) = event_of(&key, position.offset, Some(position.epoch), &payload)
                else {
                    warn!("redis: a message not in weir's form dropped", channel = channel);
                    return;
                };
                let event: Rc<str> = Rc::from(event);
                let Some(remote) = r.remote.get_mut(&key) else { return };
                match remote.gap.as_mut() {
                    Some((buf, bytes)) => {
                        *bytes += event.len();
                        buf.push((position, event));
                        if *bytes > ctx.queue_cap() {
                            // Bounded like a queue: the live feed goes on without the missed
                            // messages (the read's, when it comes, are older: dropped).
                            warn!("redis: catch-up read overtaken, messages missed", channel = key);
                            self.end_gap(ctx, &key);
                        }
                    }
                    None => self.deliver(ctx, &key, position, &event),
                }
            }
            Got::Published { id, position } => {
                let Some(w) = r.waiters.remove(&id) else { return };
                self.stats.published += 1;
                let mut out = String::new();
                let mut o = ObjectWriter::new(&mut out);
                o.u64("seq", position.offset);
                epoch_json(&mut o, Some(position.epoch));
                o.finish();
                match w {
                    Waiter::Publish { conn, cmd } => self.answer(ctx, conn, reply(&cmd, &out)),
                    Waiter::HttpPublish { conn } => {
                        ctx.respond(conn, &http_json(200, out));
                    }
                    _ => {}
                }
            }
            Got::History { id, epoch, top, recovered, entries } => {
                let Some(w) = r.waiters.remove(&id) else { return };
                self.on_history(ctx, w, epoch, top, recovered, &entries);
            }
            Got::Present { id, count } => match r.waiters.remove(&id) {
                Some(Waiter::Presence { conn, cmd }) => {
                    let out = format!("{{\"subscribers\":{count}}}");
                    self.answer(ctx, conn, reply(&cmd, &out));
                }
                Some(Waiter::Nodes) => r.nodes = Some(count),
                _ => {}
            },
            Got::Refused { id, error } => {
                let Some(w) = r.waiters.remove(&id) else { return };
                warn!("redis: request refused", error = error);
                self.fail(ctx, w, "Redis refused the request");
            }
            Got::Lost(id) => {
                let Some(w) = r.waiters.remove(&id) else { return };
                self.fail(ctx, w, "the connection to Redis was lost; the outcome is unknown");
            }
        }
    }

    /// A request to Redis failed: its asker is answered `unavailable`.
    fn fail(&mut self, ctx: &mut Context<'_>, w: Waiter, message: &str) {
        match w {
            Waiter::Publish { conn, cmd }
            | Waiter::History { conn, cmd, .. }
            | Waiter::Presence { conn, cmd } => {
                self.refuse(ctx, conn, &cmd, (UNAVAILABLE, message.into()));
            }
            Waiter::HttpPublish { conn } | Waiter::HttpHistory { conn, .. } => {
                ctx.respond(conn, &http_error(503, UNAVAILABLE, message));
            }
            Waiter::Resume { conn, cmd, channel, .. } => {
                self.refuse(ctx, conn, &cmd, (UNAVAILABLE, message.into()));
                self.fail_subscribe(ctx, conn, &channel);
            }
            Waiter::Gap { channel } => {
                warn!("redis: cannot read what the node missed", channel = channel);
                self.end_gap(ctx, &channel);
            }
            // Counted again at the next refresh.
            Waiter::Nodes => {}
        }
    }

    /// Redis confirmed the node's subscription to `channel`: the subscribes waiting read their
    /// history, and a channel that was followed before the link went down reads what it missed.
    fn on_subscribed(&mut self, ctx: &mut Context<'_>, channel: &str) {
        let Some(r) = self.redis.as_mut() else { return };
        let Some(key) = r.remote.get_key_value(channel).map(|(k, _)| Rc::clone(k)) else { return };
        let Some(remote) = r.remote.get_mut(&key) else { return };
        remote.confirmed = true;
        let asked = std::mem::take(&mut remote.asked);
        if let (Some(live), None) = (remote.live, remote.gap.as_ref()) {
            let history = self.config.history;
            let w = Waiter::Gap { channel: Rc::clone(&key) };
            match self.redis_read(ctx, &key, live.offset, history, Some(live.epoch), w) {
                Ok(()) => {
                    if let Some(remote) = self.redis.as_mut().and_then(|r| r.remote.get_mut(&key)) {
                        remote.gap = Some((Vec::new(), 0));
                    }
                }
                Err((_, why)) => {
                    warn!("redis: cannot read what the node missed", channel = key, why = why)
                }
            }
        }
        for a in asked {
            self.read_for(ctx, a, &key);
        }
    }

    /// Reads `channel`'s history for a `subscribe`.
    fn read_for(&mut self, ctx: &mut Context<'_>, a: Asked, channel: &Rc<str>) {
        // Without `since`, only the top: nothing comes after the last possible offset.
        let after = a.since.unwrap_or(u64::MAX - 1);
        let (conn, cmd) = (a.conn, a.cmd.clone());
        let w = Waiter::Resume { conn, cmd: a.cmd, channel: Rc::clone(channel), since: a.since };
        if let Err(e) = self.redis_read(ctx, channel, after, self.config.history, a.epoch, w) {
            self.refuse(ctx, conn, &cmd, e);
            self.fail_subscribe(ctx, conn, channel);
        }
    }

    fn on_history(
        &mut self,
        ctx: &mut Context<'_>,
        w: Waiter,
        epoch: Option<Epoch>,
        top: u64,
        recovered: bool,
        entries: &[(u64, Vec<u8>)],
    ) {
        let events = |channel: &str| -> Vec<(u64, Rc<str>)> {
            entries
                .iter()
                .filter_map(|(offset, payload)| {
                    Some((*offset, Rc::from(event_of(channel, *offset, epoch, payload)?)))
                })
                .collect()
        };
        let body = |channel: &str| {
            let mut out = String::new();
            let mut o = ObjectWriter::new(&mut out);
            o.u64("seq", top);
            epoch_json(&mut o, epoch);
            o.bool("recovered", recovered);
            let mut list = o.array("messages");
            for (_, e) in events(channel) {
                list.raw(&e);
            }
            list.finish();
            o.finish();
            out
        };
        let missing = epoch.is_none() && top == 0;
        match w {
            Waiter::History { conn, cmd, channel } => {
                if missing {
                    let e = ("not_found", format!("no channel {channel:?}"));
                    return self.refuse(ctx, conn, &cmd, e);
                }
                self.answer(ctx, conn, reply(&cmd, &body(&channel)));
            }
            Waiter::HttpHistory { conn, channel } => {
                let r = if missing {
                    http_error(404, "not_found", &format!("no channel {channel:?}"))
                } else {
                    http_json(200, body(&channel))
                };
                ctx.respond(conn, &r);
            }
            Waiter::Resume { conn, cmd, channel, since } => {
                self.resumed(ctx, conn, &cmd, &channel, since, (epoch, top, recovered), events);
            }
            Waiter::Gap { channel } => {
                if !recovered {
                    warn!(
                        "redis: messages missed while the link was down are gone",
                        channel = channel
                    );
                }
                for (offset, event) in events(&channel) {
                    if let Some(epoch) = epoch {
                        self.deliver(ctx, &channel, Position { epoch, offset }, &event);
                    }
                }
                self.end_gap(ctx, &channel);
            }
            Waiter::Publish { .. }
            | Waiter::HttpPublish { .. }
            | Waiter::Presence { .. }
            | Waiter::Nodes => {}
        }
    }

    /// A catch-up read is over: the live messages it held back go out.
    fn end_gap(&mut self, ctx: &mut Context<'_>, channel: &Rc<str>) {
        let Some(r) = self.redis.as_mut() else { return };
        let Some((buf, _)) = r.remote.get_mut(channel).and_then(|c| c.gap.take()) else {
            return;
        };
        for (pos, event) in buf {
            self.deliver(ctx, channel, pos, &event);
        }
    }

    /// A subscribe's history came: the answer, what it missed, what came live meanwhile; then
    /// it joins the live set, or waits at a floor for the live feed to reach what it has.
    #[allow(clippy::too_many_arguments)]
    fn resumed(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnId,
        cmd: &Id,
        channel: &Rc<str>,
        since: Option<u64>,
        (epoch, top, recovered): (Option<Epoch>, u64, bool),
        events: impl FnOnce(&str) -> Vec<(u64, Rc<str>)>,
    ) {
        let Some(r) = self.redis.as_mut() else { return };
        let Some(remote) = r.remote.get_mut(channel) else { return };
        // None: it left meanwhile, or a subscribe before this one already caught it up. It is
        // answered all the same, and its place is not changed.
        let buffered = match remote.holds.remove(&conn) {
            Some(Hold::Reading(buffered, _)) => Some(buffered),
            Some(other) => {
                remote.holds.insert(conn, other);
                None
            }
            None => None,
        };
        let Some(ch) = self.channels.get(channel) else { return };
        if remote.live.is_none() && ch.subscribers.is_empty() && ch.streams.is_empty() {
            // Nobody here follows it live yet: what this read saw is where the live feed
            // starts (older messages still on their way are dropped as delivered), so a
            // subscription link lost later reads what it missed from here.
            remote.live = epoch.map(|epoch| Position { epoch, offset: top });
        }
        let live = remote.live;
        let mut out = String::new();
        let mut o = ObjectWriter::new(&mut out);
        o.str("channel", channel)
            .u64("seq", top)
            .u64("subscribers", followers(ch, &self.clients) as u64);
        epoch_json(&mut o, epoch);
        if since.is_some() {
            o.bool("recovered", recovered);
        }
        o.finish();
        self.answer(ctx, conn, reply(cmd, &out));
        let Some(buffered) = buffered else { return };
        if let Some(member) = self.member(conn) {
            self.present(ctx, channel, &[member]);
        }
        let mut sent = 0u64;
        if since.is_some() {
            for (offset, e) in events(channel) {
                self.send_event(ctx, conn, offset, &e);
                sent += 1;
            }
        }
        let (mut epoch, mut top) = (epoch, top);
        for (pos, event) in buffered {
            if covered(pos, epoch, top) {
                continue;
            }
            self.send_event(ctx, conn, pos.offset, &event);
            sent += 1;
            (epoch, top) = (Some(pos.epoch), pos.offset);
        }
        self.stats.delivered += sent;
        if live.is_some_and(|l| covered(l, epoch, top)) {
            self.join(conn, channel);
        } else if let Some(remote) = self.redis.as_mut().and_then(|r| r.remote.get_mut(channel)) {
            remote.holds.insert(conn, Hold::Floor { epoch, top });
        }
    }

    /// One live message of `channel` to its live set, its event streams and its held clients,
    /// unless it was delivered already.
    fn deliver(
        &mut self,
        ctx: &mut Context<'_>,
        channel: &Rc<str>,
        pos: Position,
        event: &Rc<str>,
    ) {
        let Some(remote) = self.redis.as_mut().and_then(|r| r.remote.get_mut(channel)) else {
            return;
        };
        if remote.live.is_some_and(|l| covered(pos, Some(l.epoch), l.offset)) {
            return;
        }
        remote.live = Some(pos);
        let Some(ch) = self.channels.get_mut(channel) else { return };
        ch.seq = pos.offset;
        // One frame, shared by every subscriber's queue.
        let mut n = ctx.broadcast_set(&ch.subscribers, MessageKind::Text, event.as_bytes());
        if !ch.streams.is_empty() {
            let sse: Rc<[u8]> = Rc::from(super::sse_event(pos.offset, event).into_bytes());
            n += ctx.stream_broadcast(ch.streams.iter().copied(), &sse);
        }
        let cap = ctx.queue_cap();
        let mut joined = Vec::new();
        let mut over = Vec::new();
        for (&conn, hold) in &mut remote.holds {
            match hold {
                Hold::Reading(buf, bytes) => {
                    buf.push((pos, Rc::clone(event)));
                    *bytes += event.len();
                    if ctx.queued_bytes(conn).saturating_add(*bytes) > cap {
                        over.push(conn);
                    }
                }
                Hold::Floor { epoch, top } => {
                    if !covered(pos, *epoch, *top) {
                        n += 1;
                        joined.push(conn);
                    }
                }
            }
        }
        for &conn in &joined {
            remote.holds.remove(&conn);
        }
        for conn in joined {
            self.send_event(ctx, conn, pos.offset, event);
            self.join(conn, channel);
        }
        self.stats.delivered += n as u64;
        for conn in over {
            // What it is owed passed --queue-cap, as if it had been queued.
            warn!("hub: slow reader (subscribe)", id = conn, cap = cap);
            ctx.close_slow_reader(conn);
            self.drop_hold(conn, channel);
        }
    }

    /// Takes `conn` out of `channel`'s holds (it left, failed, or is closed).
    fn drop_hold(&mut self, conn: ConnId, channel: &Rc<str>) {
        if let Some(remote) = self.redis.as_mut().and_then(|r| r.remote.get_mut(channel)) {
            remote.holds.remove(&conn);
            remote.asked.retain(|a| a.conn != conn);
        }
        if let Some(ch) = self.channels.get_mut(channel) {
            ch.held.remove(&conn);
        }
    }

    /// A subscribe failed: `conn` is not subscribed to `channel` (a subscribe again, after
    /// one that succeeded, leaves it unsubscribed too: it was answered with an error).
    fn fail_subscribe(&mut self, ctx: &mut Context<'_>, conn: ConnId, channel: &Rc<str>) {
        self.drop_hold(conn, channel);
        if self.streams.contains_key(&conn) {
            // An event stream cannot be told: it ends (`on_stream_closed` cleans up).
            ctx.end_stream(conn);
            return;
        }
        if let Some(ch) = self.channels.get_mut(channel) {
            if ch.subscribers.contains(&conn) {
                Rc::make_mut(&mut ch.subscribers).remove(&conn);
            }
        }
        if let Some(c) = self.clients.get_mut(&conn) {
            c.channels.retain(|c| c != channel);
        }
        self.forget_if_unused(channel);
    }

    /// A WebSocket client (`client`, its name) or an event stream (`None`) left `channel`.
    pub(super) fn redis_left(&mut self, conn: ConnId, client: Option<&str>, channel: &Rc<str>) {
        if self.redis.is_none() {
            return;
        }
        self.drop_hold(conn, channel);
        if let (Some(r), Some(client)) = (self.redis.as_mut(), client) {
            // Removed on the next tick (or expires, while Redis is not there).
            r.left.push((Rc::clone(channel), format!("{}/{client}", r.node)));
        }
    }

    /// `GET /api/channels/C/events` with `--redis`: live at once, or with `since` (or
    /// `Last-Event-ID`) held until the messages after it are read from Redis and written, as a
    /// `subscribe` is.
    ///
    /// # Errors
    /// `unavailable` while Redis is not reachable; the channel limits.
    pub(super) fn redis_stream(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        channel: &str,
        since: Option<u64>,
        addr: std::net::IpAddr,
    ) -> Result<(), Refusal> {
        if self.redis.as_ref().is_some_and(|r| r.broker.ready() != [true, true]) {
            if let Some(r) = self.redis.as_mut() {
                r.broker.stats.refused += 1;
            }
            return Err(unavailable(Unavailable::NotConnected));
        }
        let (key, ch) =
            channel_entry(&mut self.channels, channel, &mut self.admission, addr, ctx.now())?;
        if since.is_some() {
            ch.held.insert(id);
        } else {
            ch.streams.insert(id);
        }
        self.streams.insert(id, Rc::clone(&key));
        self.redis_follow(&key);
        let _ = ctx.stream_write(id, b"retry: 2000\n\n");
        let Some(since) = since else { return Ok(()) };
        let Some(remote) = self.redis.as_mut().and_then(|r| r.remote.get_mut(&key)) else {
            return Ok(());
        };
        remote.holds.insert(id, Hold::Reading(Vec::new(), 0));
        let asked = Asked { conn: id, cmd: Id::Absent, since: Some(since), epoch: None };
        if remote.confirmed {
            self.read_for(ctx, asked, &key);
        } else {
            remote.asked.push(asked);
        }
        self.redis_got(ctx, Vec::new());
        Ok(())
    }

    /// Writes `event` (at `offset`) to `conn`: a `message` frame, or an event of its stream.
    fn send_event(&self, ctx: &mut Context<'_>, conn: ConnId, offset: u64, event: &str) {
        if self.streams.contains_key(&conn) {
            let _ = ctx.stream_write(conn, super::sse_event(offset, event).as_bytes());
        } else {
            let _ = ctx.send(conn, MessageKind::Text, event.as_bytes());
        }
    }

    /// `conn` joins `channel`'s live set (its streams, for an event stream).
    fn join(&mut self, conn: ConnId, channel: &str) {
        let stream = self.streams.contains_key(&conn);
        let Some(ch) = self.channels.get_mut(channel) else { return };
        ch.held.remove(&conn);
        if stream {
            ch.streams.insert(conn);
        } else {
            Rc::make_mut(&mut ch.subscribers).insert(conn);
        }
    }

    /// Client `conn`'s presence entry: `NODE/CLIENT`.
    fn member(&self, conn: ConnId) -> Option<String> {
        let r = self.redis.as_ref()?;
        self.clients.get(&conn).map(|c| format!("{}/{}", r.node, c.name))
    }

    /// `presence` with `--redis`: the members of every node that have not expired, counted by
    /// Redis; `None` when the answer comes later.
    pub(super) fn redis_presence(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        cmd: &Id,
        params: &Value,
    ) -> Option<Outcome> {
        let name = match channel_param(params) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        let r = self.redis.as_mut()?;
        let sent = r.broker.commands.presence(name.as_bytes(), &[], r.presence_ttl, ctx.now());
        self.file(ctx, sent, Waiter::Presence { conn: id, cmd: cmd.clone() }).err().map(Err)
    }

    /// An event stream follows `channel`: the node follows it in Redis (live messages only:
    /// a replay after `since` is not read from Redis yet).
    pub(super) fn redis_follow(&mut self, channel: &Rc<str>) {
        if let Some(r) = self.redis.as_mut() {
            r.broker.subscriber.subscribe(channel.as_bytes());
            r.remote.entry(Rc::clone(channel)).or_default();
        }
    }

    /// `channel` is forgotten: the node no longer follows it in Redis.
    ///
    /// What the node knows of it stays until the `UNSUBSCRIBE` is sent ([`Hub::purge`]): a
    /// channel left and followed again before that was never unsubscribed in Redis (the link
    /// sends only what changed), so it is still confirmed, and no confirmation will come.
    pub(super) fn redis_forget(&mut self, channel: &str) {
        if let Some(r) = self.redis.as_mut() {
            if r.broker.subscriber.unsubscribe(channel.as_bytes()) {
                r.forgotten.push(Rc::from(channel));
            }
        }
    }

    /// Drops what the node knew of the channels it forgot, once their `UNSUBSCRIBE` is sent.
    fn purge(&mut self) {
        let Some(r) = self.redis.as_mut() else { return };
        if r.forgotten.is_empty() || r.broker.subscriber.wants_transmit() {
            return;
        }
        for channel in std::mem::take(&mut r.forgotten) {
            if !self.channels.contains_key(&channel) {
                r.remote.remove(&channel);
            }
        }
    }

    /// `subscribe` with `--redis`: `None` when the answer comes later (always, unless refused).
    pub(super) fn redis_subscribe(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        cmd: &Id,
        params: &Value,
    ) -> Option<Outcome> {
        let checked = (|| {
            let name = channel_param(params)?;
            let since = since_param(params)?;
            Ok((name, since, epoch_param(params)?))
        })();
        let (name, since, epoch) = match checked {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let Some(client) = self.clients.get_mut(&id) else { return Some(Err(bad("no client"))) };
        let already = client.channels.iter().any(|c| **c == *name);
        let most = self.config.max_channels_per_connection;
        if !already && client.channels.len() >= most {
            return Some(Err(("forbidden", format!("at most {most} channels per connection"))));
        }
        if self.redis.as_ref().is_some_and(|r| r.broker.ready() != [true, true]) {
            self.redis.as_mut()?.broker.stats.refused += 1;
            return Some(Err(unavailable(Unavailable::NotConnected)));
        }
        let Some(client) = self.clients.get_mut(&id) else { return Some(Err(bad("no client"))) };
        let addr = client.addr;
        let (key, ch) =
            match channel_entry(&mut self.channels, name, &mut self.admission, addr, ctx.now()) {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
        if !already {
            client.channels.push(Rc::clone(&key));
        }
        // Held out of the live set until its history is read (a subscribe again resumes too).
        if ch.subscribers.contains(&id) {
            Rc::make_mut(&mut ch.subscribers).remove(&id);
        }
        ch.held.insert(id);
        self.purge();
        let r = self.redis.as_mut()?;
        r.broker.subscriber.subscribe(key.as_bytes());
        let remote = r.remote.entry(Rc::clone(&key)).or_default();
        if !matches!(remote.holds.get(&id), Some(Hold::Reading(..))) {
            remote.holds.insert(id, Hold::Reading(Vec::new(), 0));
        }
        let asked = Asked { conn: id, cmd: cmd.clone(), since, epoch };
        if remote.confirmed {
            self.read_for(ctx, asked, &key);
        } else {
            remote.asked.push(asked);
        }
        self.redis_got(ctx, Vec::new());
        None
    }

    /// `publish` with `--redis`: `None` when the answer comes later.
    pub(super) fn redis_publish(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        cmd: &Id,
        params: &Value,
        raw: Option<&str>,
    ) -> Option<Outcome> {
        let checked = (|| {
            let name = channel_param(params)?;
            let data = raw.ok_or_else(|| bad("data is required"))?;
            let from = self
                .clients
                .get(&id)
                .map(|c| Rc::clone(&c.name))
                .ok_or_else(|| bad("no client"))?;
            Ok((name, data, from))
        })();
        let (name, data, from) = match checked {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let w = Waiter::Publish { conn: id, cmd: cmd.clone() };
        self.redis_send(ctx, name, data, &from, w).err().map(Err)
    }

    /// `POST /api/channels/C/publish` with `--redis`: answered with [`Context::respond`].
    ///
    /// # Errors
    /// `too_large`, `invalid_params`, `unavailable`.
    pub fn http_publish_later(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnId,
        channel: &str,
        data: &str,
    ) -> Result<(), Refusal> {
        if !valid_name(channel) {
            return Err(bad("channel names are 1-128 bytes of A-Z a-z 0-9 _ . : / @ -"));
        }
        self.redis_send(ctx, channel, data, "http", Waiter::HttpPublish { conn })
    }

    /// Publishes `data` from `from` on channel `name`, for `w` to be told.
    fn redis_send(
        &mut self,
        ctx: &mut Context<'_>,
        name: &str,
        data: &str,
        from: &str,
        w: Waiter,
    ) -> Result<(), Refusal> {
        if data.len() > self.config.max_publish_size {
            let max = self.config.max_publish_size;
            return Err(("too_large", format!("data is over {max} bytes")));
        }
        let Some(r) = self.redis.as_mut() else { return Err(bad("no broker")) };
        let payload = stored(data, from, now_ms());
        let sent = r.broker.commands.publish(name.as_bytes(), &payload, ctx.now());
        self.file(ctx, sent, w)
    }

    /// `history` with `--redis`: `None` when the answer comes later.
    pub(super) fn redis_history(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        cmd: &Id,
        params: &Value,
    ) -> Option<Outcome> {
        let checked = (|| {
            let name = channel_param(params)?;
            let (since, limit) = self.history_params(params)?;
            Ok((name, since, limit, epoch_param(params)?))
        })();
        let (name, since, limit, epoch) = match checked {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let channel: Rc<str> = Rc::from(name);
        let w = Waiter::History { conn: id, cmd: cmd.clone(), channel: Rc::clone(&channel) };
        self.redis_read(ctx, &channel, since, limit, epoch, w).err().map(Err)
    }

    /// `GET /api/channels/C/history` with `--redis`: answered with [`Context::respond`].
    ///
    /// # Errors
    /// `invalid_params`, `unavailable`.
    pub fn http_history_later(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnId,
        channel: &str,
        since: Option<u64>,
        limit: Option<u64>,
    ) -> Result<(), Refusal> {
        if !valid_name(channel) {
            return Err(bad("channel names are 1-128 bytes of A-Z a-z 0-9 _ . : / @ -"));
        }
        let limit = limit.map_or(self.config.history, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let channel: Rc<str> = Rc::from(channel);
        let w = Waiter::HttpHistory { conn, channel: Rc::clone(&channel) };
        self.redis_read(ctx, &channel, since.unwrap_or(0), limit, None, w)
    }

    /// Reads `channel`'s newest `limit` messages after `since` (at most what a channel keeps),
    /// for `w` to be told.
    fn redis_read(
        &mut self,
        ctx: &mut Context<'_>,
        channel: &str,
        since: u64,
        limit: usize,
        epoch: Option<Epoch>,
        w: Waiter,
    ) -> Result<(), Refusal> {
        let limit = limit.clamp(1, self.config.history.max(1));
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let Some(r) = self.redis.as_mut() else { return Err(bad("no broker")) };
        let sent = r.broker.commands.history(channel.as_bytes(), since, limit, epoch, ctx.now());
        self.file(ctx, sent, w)
    }

    /// A request queued is filed for `w` (and written); one refused is counted.
    fn file(
        &mut self,
        ctx: &mut Context<'_>,
        sent: Result<RequestId, Unavailable>,
        w: Waiter,
    ) -> Result<(), Refusal> {
        let Some(r) = self.redis.as_mut() else { return Err(bad("no broker")) };
        match sent {
            Ok(id) => {
                r.waiters.insert(id, w);
                // Written now: the links' queue is flushed after every call.
                self.redis_got(ctx, Vec::new());
                Ok(())
            }
            Err(e) => {
                r.broker.stats.refused += 1;
                Err(unavailable(e))
            }
        }
    }
}
