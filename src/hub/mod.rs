//! The hub: channels, a JSON command protocol over WebSocket, history, authentication and
//! rate limits. `docs/protocol.md` is the protocol's reference.
//!
//! Commands are text frames holding one JSON object, `{"id", "method", "params"}`; answers are
//! `{"id", "ok": true, "result"}` or `{"id", "ok": false, "error": {"code", "message"}}`; events
//! are `{"event": ...}`. A published message is encoded once and its frame shared by every
//! subscriber's queue; a subscriber whose queue passes the cap is closed by the runtime as a slow
//! reader, and nobody else notices.

pub use crate::access as auth;
mod broker;
pub mod channel;
pub mod history;
pub mod rate;
mod remote;
mod replay;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::json::{self, ObjectWriter, Value};
use crate::proto::{CloseCode, MessageKind};
use crate::server::{ConnId, Context};
use crate::{info, warn};

use auth::Auth;
use channel::{Channel, valid_name};
use history::Ledger;
use rate::{AddrBuckets, Bucket, Verdict};
use replay::{HistoryCursor, Item, Replay};

/// The most channels one `channels` answer lists.
const CHANNELS_PAGE: usize = 1000;
const CHANNELS_PAGE_U64: u64 = CHANNELS_PAGE as u64;

/// The hub's settings.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Messages each channel keeps for `history` and `subscribe` with `since`.
    pub history: usize,
    /// Most channels in all.
    pub max_channels: usize,
    /// Most channels one connection may subscribe to.
    pub max_channels_per_connection: usize,
    /// Largest `data` a `publish` may carry, in bytes of JSON text.
    pub max_publish_size: usize,
    /// Tokens, Basic credentials, allowed origins.
    pub auth: Auth,
    /// How long a client may take to `authenticate` when tokens are required.
    pub auth_timeout: Duration,
    /// Messages per second per connection, and HTTP publishes per client address (0: no limit).
    pub rate: u32,
    /// Messages a connection may send at once above the rate.
    pub rate_burst: u32,
    /// Bytes of history all channels may keep together; the oldest messages go first.
    pub history_memory: usize,
    /// Channels one client address may create per second (0: no limit).
    pub channel_rate: u32,
    /// Channels one client address may create at once above the rate.
    pub channel_rate_burst: u32,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            history: 100,
            max_channels: 10_000,
            max_channels_per_connection: 100,
            max_publish_size: 64 << 10,
            auth: Auth::default(),
            auth_timeout: Duration::from_secs(10),
            rate: 1000,
            rate_burst: 2000,
            history_memory: 64 << 20,
            channel_rate: 10,
            channel_rate_burst: 100,
        }
    }
}

/// A hub client.
#[derive(Debug)]
struct Client {
    name: Rc<str>,
    authed: bool,
    channels: Vec<Rc<str>>,
    bucket: Bucket,
    /// Its address: channels it creates count against it.
    addr: IpAddr,
}

/// The `id` of a command, echoed in its answer.
#[derive(Debug, Clone)]
enum Id {
    /// No `id`: a notification, nothing is answered.
    Absent,
    /// Answered with `"id": null` (the command could not be read).
    Null,
    /// A string or integer, as written in the command.
    Raw(String),
    /// No `id`, but another protocol's `request_id` (a Go agent-control client's
    /// `{"type":"command","request_id":R}`), a string or integer as written: answered with
    /// `"id": null` and `"request_id": R`, so that such a client can match the error.
    Foreign(String),
}

/// Counters the hub keeps.
#[derive(Debug, Default, Clone, Copy)]
pub struct HubStats {
    /// Messages published.
    pub published: u64,
    /// Events delivered (one per subscriber).
    pub delivered: u64,
    /// Commands refused for the rate limit.
    pub rate_limited: u64,
    /// Connections closed for the rate limit.
    pub rate_closed: u64,
    /// Connections closed for not authenticating in time.
    pub auth_timeouts: u64,
    /// Commands refused, answered or not (notifications), by code in the order of
    /// [`ERROR_CODES`].
    pub errors: [u64; ERROR_CODES.len()],
}

/// The error codes of hub answers (`docs/protocol.md`, "Errors").
pub const ERROR_CODES: [&str; 10] = [
    "parse_error",
    "invalid_request",
    "unknown_method",
    "invalid_params",
    "unauthorized",
    "forbidden",
    "rate_limited",
    "too_large",
    "not_found",
    "unavailable",
];

impl HubStats {
    /// Error codes with the number of commands refused with each (zeros included).
    pub fn errors(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ERROR_CODES.iter().copied().zip(self.errors.iter().copied())
    }
}

/// What bounds the creation of channels: their number, and how fast each address may create
/// them. New channels start numbering after `after`.
#[derive(Debug)]
struct Admission {
    max: usize,
    /// The highest sequence number a forgotten channel reached.
    after: u64,
    rates: AddrBuckets,
    /// Creations refused for the rate.
    refused: u64,
}

/// The hub's state.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    channels: HashMap<Rc<str>, Channel>,
    /// The kept messages of all channels, against `--history-memory`.
    ledger: Ledger,
    admission: Admission,
    /// `--rate` for HTTP publishes, per client address.
    http_publishes: AddrBuckets,
    clients: HashMap<ConnId, Client>,
    /// Unauthenticated clients by deadline (all share one timeout, so this stays in order).
    auth_queue: VecDeque<(Duration, ConnId)>,
    /// Server-sent-event streams and their channel.
    streams: HashMap<ConnId, Rc<str>>,
    /// Connections with a replay being written (`replay.rs`).
    replays: HashMap<ConnId, Replay>,
    last_heartbeat: Duration,
    started: SystemTime,
    stats: HubStats,
    /// With `--redis`: the links and what waits for Redis (`remote.rs`).
    redis: Option<Box<remote::Redis>>,
}

impl Hub {
    /// A hub with no channels yet.
    pub fn new(config: HubConfig) -> Self {
        Self {
            channels: HashMap::new(),
            ledger: Ledger::new(config.history_memory),
            admission: Admission {
                max: config.max_channels,
                after: 0,
                rates: AddrBuckets::new(config.channel_rate, config.channel_rate_burst),
                refused: 0,
            },
            http_publishes: AddrBuckets::new(config.rate, config.rate_burst),
            config,
            clients: HashMap::new(),
            auth_queue: VecDeque::new(),
            streams: HashMap::new(),
            replays: HashMap::new(),
            last_heartbeat: Duration::ZERO,
            started: SystemTime::now(),
            stats: HubStats::default(),
            redis: None,
        }
    }

    /// Keeps the channels in Redis at `url` (resolved to `addr`): publishes, history and
    /// fan-out across every node on the same Redis (docs/redis.md). `random` seeds the epochs.
    pub fn with_redis(
        mut self,
        url: &crate::redis::RedisUrl,
        addr: SocketAddr,
        mut config: crate::redis::Config,
        random: u64,
    ) -> Self {
        config.history_len = u32::try_from(self.config.history.max(1)).unwrap_or(u32::MAX);
        let broker = broker::Broker::new(url, addr, &config, Duration::ZERO, random);
        let node = random.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15;
        self.redis = Some(Box::new(remote::Redis::new(broker, node, config.presence_ttl)));
        self
    }

    /// The hub's counters.
    pub fn stats(&self) -> HubStats {
        HubStats { rate_limited: self.stats.rate_limited + self.admission.refused, ..self.stats }
    }

    /// History held by all channels: bytes (as `--history-memory` counts them), messages, and
    /// messages evicted for the budget since start.
    pub fn history_held(&self) -> (usize, usize, u64) {
        (self.ledger.bytes(), self.ledger.messages(), self.ledger.evictions())
    }

    /// Takes an HTTP publish from `addr` against `--rate`; whether it may go on.
    pub fn allow_http_publish(&mut self, addr: IpAddr, now: Duration) -> bool {
        match self.http_publishes.take(addr, now) {
            0 => return true,
            1 => info!("hub: http publishes over the rate", peer = addr),
            _ => {}
        }
        self.stats.rate_limited += 1;
        false
    }

    /// Channels that exist.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Subscriptions in all.
    pub fn subscription_count(&self) -> usize {
        self.clients.values().map(|c| c.channels.len()).sum()
    }

    /// How often the hub needs a tick (authentication deadlines, stream heartbeats, and the
    /// Redis links' deadlines and back-off, which want a finer one).
    pub fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(if self.redis.is_some() { 25 } else { 250 }))
    }

    /// A client the access policy let in (`App` checked its origin, Basic
    /// credentials and token); `authed` is false when tokens are required and none came with
    /// the upgrade: it must `authenticate` within the timeout.
    pub fn on_upgrade(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        peer: SocketAddr,
        authed: bool,
    ) {
        // The id the logs use for this connection, so the two can be related.
        let name: Rc<str> = Rc::from(id.to_string());
        let bucket = Bucket::new(self.config.rate_burst, ctx.now());
        let addr = peer.ip();
        self.clients.insert(id, Client { name, authed, channels: Vec::new(), bucket, addr });
    }

    /// The connection is open: greet it.
    pub fn on_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        let Some(client) = self.clients.get(&id) else { return };
        let mut out = String::with_capacity(96);
        let mut w = ObjectWriter::new(&mut out);
        w.str("event", "connected")
            .str("client", &client.name)
            .str("server", concat!("weir ", env!("CARGO_PKG_VERSION")))
            .bool("auth_required", !client.authed);
        w.finish();
        let _ = ctx.send(id, MessageKind::Text, out.as_bytes());
        if !client.authed {
            self.auth_queue.push_back((ctx.now() + self.config.auth_timeout, id));
        }
    }

    /// Closes clients that did not authenticate in time (1008), and keeps event streams alive
    /// with a comment every 15 s.
    pub fn on_tick(&mut self, ctx: &mut Context<'_>) {
        self.redis_tick(ctx);
        let now = ctx.now();
        if now.saturating_sub(self.last_heartbeat) >= Duration::from_secs(15) {
            self.last_heartbeat = now;
            self.stream_heartbeat(ctx);
        }
        while let Some(&(deadline, id)) = self.auth_queue.front() {
            if deadline > now {
                break;
            }
            self.auth_queue.pop_front();
            if self.clients.get(&id).is_some_and(|c| !c.authed) {
                self.stats.auth_timeouts += 1;
                info!("hub: authentication timeout", id = id);
                ctx.close(id, CloseCode::POLICY_VIOLATION, "authentication timeout");
            }
        }
    }

    /// The connection is gone: its subscriptions go with it.
    pub fn on_close(&mut self, id: ConnId) {
        self.forget_replay(id);
        if let Some(client) = self.clients.remove(&id) {
            for name in &client.channels {
                if let Some(ch) = self.channels.get_mut(name) {
                    Rc::make_mut(&mut ch.subscribers).remove(&id);
                }
                self.redis_left(id, Some(&client.name), name);
                self.forget_if_unused(name);
            }
        }
    }

    /// Forgets channel `name` if nobody follows it and it holds no message (none was
    /// published, or all were evicted for `--history-memory`): keeping it would let one client
    /// use up `--max-channels` for everyone by subscribing to names and leaving them, or by
    /// publishing once to many names. A channel made again under the name later numbers its
    /// messages above every number a forgotten one reached, so numbers never repeat.
    fn forget_if_unused(&mut self, name: &str) {
        if self.channels.get(name).is_some_and(Channel::unused) {
            if let Some(ch) = self.channels.remove(name) {
                self.admission.after = self.admission.after.max(ch.seq);
            }
            self.redis_forget(name);
        }
    }

    /// One command.
    pub fn on_message(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        kind: MessageKind,
        data: &[u8],
    ) {
        let Some(client) = self.clients.get_mut(&id) else { return };
        // Once this end has sent its close frame (a slow reader, a rate or authentication
        // failure, shutdown), what the client still sends is not run: RFC 6455 §5.5.1 lets
        // it arrive, and a connection being closed must not go on publishing.
        if !ctx.is_open(id) {
            return;
        }
        // Every frame takes a token, malformed ones too: a flood of garbage must not get
        // around the limit (nor its close far beyond it).
        let limited = match client.bucket.take(self.config.rate, self.config.rate_burst, ctx.now())
        {
            Verdict::Allow => false,
            Verdict::Limit => {
                self.stats.rate_limited += 1;
                true
            }
            Verdict::Close => {
                self.stats.rate_closed += 1;
                warn!("hub: rate limit exceeded, closing", id = id);
                return ctx.close(id, CloseCode::POLICY_VIOLATION, "rate limit exceeded");
            }
        };
        let authed = client.authed;
        let (cmd_id, value, raw_data) = match read_command(kind, data) {
            Ok(command) => command,
            // Over the rate, a frame is refused as such, whatever else is wrong with it.
            Err((cmd, _, _)) if limited => return self.refuse(ctx, id, &cmd, rate_limited()),
            // Not a command: answered even without an id (with `null`), so that a client of
            // another protocol is told and not left waiting.
            Err((cmd, code, message)) => return self.refuse(ctx, id, &cmd, (code, message)),
        };
        if limited {
            return self.refuse(ctx, id, &cmd_id, rate_limited());
        }
        let method = value.get("method").and_then(Value::as_str).unwrap_or_default();
        let empty = Value::Object(Vec::new());
        let params = match value.get("params") {
            Some(p @ Value::Object(_)) => p,
            _ => &empty,
        };
        if !authed && !matches!(method, "authenticate" | "ping") {
            return self.refuse(ctx, id, &cmd_id, ("unauthorized", "authenticate first".into()));
        }
        let redis = self.redis.is_some();
        let later = match method {
            "subscribe" if redis => self.redis_subscribe(ctx, id, &cmd_id, params),
            "publish" if redis => self.redis_publish(ctx, id, &cmd_id, params, raw_data),
            "history" if redis => self.redis_history(ctx, id, &cmd_id, params),
            "presence" if redis => self.redis_presence(ctx, id, &cmd_id, params),
            _ => Some(Ok(String::new())),
        };
        let result = match (method, later) {
            // Answered when Redis has answered (`remote.rs`).
            (_, None) => return,
            ("subscribe" | "publish" | "history" | "presence", Some(outcome)) if redis => outcome,
            (method, _) => match self.local(ctx, id, &cmd_id, method, params, raw_data) {
                Some(outcome) => outcome,
                // A `history` written as a cursor (`replay.rs`).
                None => return,
            },
        };
        match result {
            Ok(result) => self.answer(ctx, id, reply(&cmd_id, &result)),
            Err(refusal) => self.refuse(ctx, id, &cmd_id, refusal),
        }
        if method == "subscribe" && !redis {
            self.replay_since(ctx, id, params);
        }
    }

    /// The methods the hub answers on its own (all of them without `--redis`); `None` for a
    /// `history` answer written as a cursor.
    fn local(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        cmd_id: &Id,
        method: &str,
        params: &Value,
        raw_data: Option<&str>,
    ) -> Option<Outcome> {
        let result = match method {
            "authenticate" => self.authenticate(id, params),
            "subscribe" => self.subscribe(ctx, id, cmd_id, params),
            "unsubscribe" => self.unsubscribe(id, params),
            "publish" => self.publish(ctx, id, params, raw_data),
            "history" => return self.history_cursor(ctx, id, cmd_id, params),
            "channels" => self.channels(params),
            "presence" => self.presence(ctx, params),
            "stats" => Ok(self.stats_json(ctx)),
            "ping" => Ok(format!("{{\"ts\":{}}}", now_ms())),
            _ => Err(("unknown_method", format!("no method {method:?}"))),
        };
        Some(result)
    }

    /// Sends an answer (`None`: a notification, not answered), after the connection's replay
    /// if one is being written.
    fn answer(&mut self, ctx: &mut Context<'_>, id: ConnId, text: Option<String>) {
        if let Some(text) = text {
            self.send_text(ctx, id, text);
        }
    }

    /// Answers a refused command (not when it is a notification), counted by its code.
    fn refuse(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        cmd: &Id,
        (code, message): (&'static str, String),
    ) {
        if let Some(i) = ERROR_CODES.iter().position(|c| *c == code) {
            self.stats.errors[i] += 1;
        }
        self.answer(ctx, id, error(cmd, code, &message));
    }

    fn authenticate(&mut self, id: ConnId, params: &Value) -> Outcome {
        let token = params
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("token must be a string"))?;
        let client = self.clients.get_mut(&id).ok_or_else(|| bad("no client"))?;
        if !self.config.auth.tokens_required() || self.config.auth.token_ok(token.as_bytes()) {
            client.authed = true;
            let mut out = String::new();
            let mut w = ObjectWriter::new(&mut out);
            w.str("client", &client.name);
            w.finish();
            Ok(out)
        } else {
            Err(("unauthorized", "invalid token".into()))
        }
    }

    fn subscribe(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        _cmd: &Id,
        params: &Value,
    ) -> Outcome {
        let name = channel_param(params)?;
        since_param(params)?;
        let client = self.clients.get_mut(&id).ok_or_else(|| bad("no client"))?;
        let already = client.channels.iter().any(|c| **c == *name);
        if !already && client.channels.len() >= self.config.max_channels_per_connection {
            return Err((
                "forbidden",
                format!(
                    "at most {} channels per connection",
                    self.config.max_channels_per_connection
                ),
            ));
        }
        let (key, ch) =
            channel_entry(&mut self.channels, name, &mut self.admission, client.addr, ctx.now())?;
        if self.replays.contains_key(&id) {
            // A replay is being written to it: live messages go after it (`replay.rs`).
            ch.held.insert(id);
        } else if !ch.subscribers.contains(&id) {
            // Copies the set only if a gathered broadcast holds it.
            Rc::make_mut(&mut ch.subscribers).insert(id);
        }
        if !already {
            client.channels.push(key);
        }
        let followers = followers(ch, &self.clients);
        let mut out = String::new();
        let mut w = ObjectWriter::new(&mut out);
        w.str("channel", name).u64("seq", ch.seq).u64("subscribers", followers as u64);
        w.finish();
        Ok(out)
    }

    /// After a successful `subscribe` with `since`: the kept messages after it, before any
    /// live one. They are a cursor (`replay.rs`): the connection leaves the live set until it
    /// has them all, and what is published meanwhile follows them, so there is no gap and no
    /// duplicate.
    fn replay_since(&mut self, ctx: &mut Context<'_>, id: ConnId, params: &Value) {
        let Some(since) = params.get("since").and_then(Value::as_u64) else { return };
        let Some(name) = params.get("channel").and_then(Value::as_str) else { return };
        let Some((channel, ch)) = self.channels.get_key_value(name) else { return };
        if !ch.subscribers.contains(&id) && !ch.held.contains(&id) {
            return;
        }
        let (next, end, bytes) = ch.span(since, usize::MAX);
        if next <= end {
            let item = Item::Since { channel: Rc::clone(channel), next, end };
            self.replay(ctx, id, item, bytes);
        }
    }

    /// A `history` answer too large to send whole is a cursor written as the socket drains
    /// (`replay.rs`), as one fragmented text message: returns `None` then. Otherwise the
    /// method's outcome, sent as any answer.
    fn history_cursor(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        cmd: &Id,
        params: &Value,
    ) -> Option<Outcome> {
        let raw_id = match cmd {
            // A notification is not answered: nothing to build.
            Id::Absent => return Some(Ok(String::new())),
            Id::Null | Id::Foreign(_) => return Some(self.history(params)),
            Id::Raw(raw) => raw,
        };
        let Ok((since, limit)) = self.history_params(params) else {
            return Some(self.history(params));
        };
        let name = params.get("channel").and_then(Value::as_str)?;
        let Some((channel, ch)) = self.channels.get_key_value(name) else {
            return Some(self.history(params));
        };
        let (next, end, bytes) = ch.span(since, limit);
        let commas = end.saturating_sub(next) as usize;
        if next > end || bytes.saturating_add(commas) <= replay::PIECE {
            return Some(self.history(params));
        }
        let head =
            format!("{{\"id\":{raw_id},\"ok\":true,\"result\":{{\"seq\":{},\"messages\":[", ch.seq);
        let total = head.len() + bytes + commas + "]}}".len();
        let item = Item::History(HistoryCursor {
            channel: Rc::clone(channel),
            head: Some(head),
            next,
            end,
            body: false,
        });
        self.replay(ctx, id, item, total);
        None
    }

    /// `GET /api/channels/{channel}/history` with a body too large to send whole: a cursor
    /// written to the streamed response `id` as the socket drains (`replay.rs`), as the
    /// `history` answer over WebSocket is, not a copy queued up front. Returns the body's
    /// length (its `Content-Length`), or `None`: answer with [`Hub::history_json`].
    pub fn history_body(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        channel: &str,
        since: Option<u64>,
        limit: Option<u64>,
    ) -> Option<usize> {
        if !valid_name(channel) {
            return None;
        }
        let limit = limit.map_or(self.config.history, |l| l as usize);
        let (key, ch) = self.channels.get_key_value(channel)?;
        let (next, end, bytes) = ch.span(since.unwrap_or(0), limit);
        let commas = end.saturating_sub(next) as usize;
        if next > end || bytes.saturating_add(commas) <= replay::PIECE {
            return None;
        }
        let head = format!("{{\"seq\":{},\"messages\":[", ch.seq);
        let total = head.len() + bytes + commas + "]}".len();
        let item = Item::History(HistoryCursor {
            channel: Rc::clone(key),
            head: Some(head),
            next,
            end,
            body: true,
        });
        self.replay(ctx, id, item, total);
        Some(total)
    }

    fn unsubscribe(&mut self, id: ConnId, params: &Value) -> Outcome {
        let name = channel_param(params)?;
        let client = self.clients.get_mut(&id).ok_or_else(|| bad("no client"))?;
        let Some(pos) = client.channels.iter().position(|c| **c == *name) else {
            return Err(("not_found", format!("not subscribed to {name:?}")));
        };
        let key = client.channels.swap_remove(pos);
        let client_name = Rc::clone(&client.name);
        if let Some(ch) = self.channels.get_mut(name) {
            Rc::make_mut(&mut ch.subscribers).remove(&id);
            ch.held.remove(&id);
        }
        self.redis_left(id, Some(&client_name), &key);
        self.forget_if_unused(name);
        Ok("{}".into())
    }

    fn publish(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        params: &Value,
        raw: Option<&str>,
    ) -> Outcome {
        let name = channel_param(params)?;
        let data = raw.ok_or_else(|| bad("data is required"))?;
        let (from, addr) = self
            .clients
            .get(&id)
            .map(|c| (Rc::clone(&c.name), c.addr))
            .ok_or_else(|| bad("no client"))?;
        let seq = self.publish_raw(ctx, name, data, &from, addr)?;
        Ok(format!("{{\"seq\":{seq}}}"))
    }

    /// Sequences `data` (valid JSON text) on channel `name` and queues it to every subscriber,
    /// WebSocket and server-sent-event alike, the event encoded once for each kind; returns its
    /// sequence number. A new channel counts against `addr`'s `--channel-rate`.
    ///
    /// # Errors
    /// `too_large` past `--max-publish-size`; `forbidden` if the channel would pass
    /// `--max-channels`; `rate_limited` if it would pass `--channel-rate`.
    pub fn publish_raw(
        &mut self,
        ctx: &mut Context<'_>,
        name: &str,
        data: &str,
        from: &str,
        addr: IpAddr,
    ) -> Result<u64, (&'static str, String)> {
        if data.len() > self.config.max_publish_size {
            return Err((
                "too_large",
                format!("data is over {} bytes", self.config.max_publish_size),
            ));
        }
        let history = self.config.history;
        let (key, ch) =
            channel_entry(&mut self.channels, name, &mut self.admission, addr, ctx.now())?;
        let (seq, event, dropped) = ch
            .publish(history, |seq| Rc::from(message_event(name, seq, None, data, from, now_ms())));
        // One frame, shared by every subscriber's queue.
        // One frame for every subscriber; consecutive publishes to this channel in one batch
        // of work reach each subscriber as one piece.
        let n = ctx.broadcast_set(&ch.subscribers, MessageKind::Text, event.as_bytes());
        let mut sse = None;
        let mut sse_bytes = || -> Rc<[u8]> {
            Rc::clone(sse.get_or_insert_with(|| Rc::from(sse_event(seq, &event).into_bytes())))
        };
        let m = if ch.streams.is_empty() {
            0
        } else {
            ctx.stream_broadcast(ch.streams.iter().copied(), &sse_bytes())
        };
        // Connections with a replay being written get the event after it: a pointer each,
        // and nothing at all for a channel with none (`replay.rs`).
        let (mut held, mut over) = (0, Vec::new());
        for &h in &ch.held {
            let Some(r) = self.replays.get_mut(&h) else { continue };
            held += 1;
            let fits = if r.is_stream() {
                let b = sse_bytes();
                let n = b.len();
                r.push(ctx, h, Item::Bytes(b), n)
            } else {
                r.push(ctx, h, Item::Text(Rc::clone(&event)), event.len())
            };
            if !fits {
                over.push(h);
            }
        }
        self.stats.published += 1;
        self.stats.delivered += (n + m + held - over.len()) as u64;
        self.ledger.published(&key, seq, (history > 0).then_some(&*event), dropped.as_deref());
        for name in self.ledger.evict(&mut self.channels) {
            self.forget_if_unused(&name);
        }
        for h in over {
            self.slow_reader(ctx, h);
        }
        Ok(seq)
    }

    /// The access rules (the HTTP API follows them as the upgrade does).
    pub fn auth(&self) -> &Auth {
        &self.config.auth
    }

    /// The `history` result for the HTTP API (`GET /api/channels/{channel}/history`).
    ///
    /// # Errors
    /// As the `history` method: `invalid_params`, `not_found`.
    pub fn history_json(&self, channel: &str, since: Option<u64>, limit: Option<u64>) -> Outcome {
        let mut params = vec![("channel".to_string(), Value::String(channel.to_string()))];
        if let Some(s) = since {
            params.push(("since".into(), Value::Number(s.into())));
        }
        if let Some(l) = limit {
            params.push(("limit".into(), Value::Number(l.into())));
        }
        self.history(&Value::Object(params))
    }

    /// Subscribes a server-sent-event stream to `channel`, replaying the kept messages after
    /// `since` (from `Last-Event-ID`) first: no gap, no duplicate. A new channel counts
    /// against `addr`'s `--channel-rate`.
    ///
    /// # Errors
    /// A bad channel name, or the channel limits.
    pub fn stream_subscribe(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        channel: &str,
        since: Option<u64>,
        addr: IpAddr,
    ) -> Result<(), (&'static str, String)> {
        if !valid_name(channel) {
            return Err(bad("channel names are 1-128 bytes of A-Z a-z 0-9 _ . : / @ -"));
        }
        if self.redis.is_some() {
            return self.redis_stream(ctx, id, channel, since, addr);
        }
        let (key, ch) =
            channel_entry(&mut self.channels, channel, &mut self.admission, addr, ctx.now())?;
        ch.streams.insert(id);
        let span = since.map(|s| ch.span(s, usize::MAX));
        self.streams.insert(id, Rc::clone(&key));
        let _ = ctx.stream_write(id, b"retry: 2000\n\n");
        // The replay is a cursor written as the stream drains (`replay.rs`).
        if let Some((next, end, bytes)) = span.filter(|(next, end, _)| next <= end) {
            self.replay(ctx, id, Item::Since { channel: key, next, end }, bytes);
        }
        Ok(())
    }

    /// A stream ended.
    pub fn on_stream_closed(&mut self, id: ConnId) {
        self.forget_replay(id);
        if let Some(name) = self.streams.remove(&id) {
            if let Some(ch) = self.channels.get_mut(&*name) {
                ch.streams.remove(&id);
            }
            self.redis_left(id, None, &name);
            self.forget_if_unused(&name);
        }
    }

    /// Sends a comment line to every stream, so proxies and browsers keep them open. It is no
    /// publish: its delivery is not timed (`weir_publish_delivery_seconds`).
    pub fn stream_heartbeat(&mut self, ctx: &mut Context<'_>) {
        if !self.streams.is_empty() {
            let bytes: Rc<[u8]> = Rc::from(&b": ping\n\n"[..]);
            ctx.stream_broadcast_untimed(self.streams.keys().copied(), &bytes);
        }
    }

    /// A `history` command's `since` and `limit`.
    fn history_params(&self, params: &Value) -> Result<(u64, usize), (&'static str, String)> {
        channel_param(params)?;
        let since = since_param(params)?.unwrap_or(0);
        let limit = match params.get("limit") {
            None => self.config.history,
            Some(v) => v.as_u64().ok_or_else(|| bad("limit must be a count"))? as usize,
        };
        Ok((since, limit))
    }

    fn history(&self, params: &Value) -> Outcome {
        let name = channel_param(params)?;
        let (since, limit) = self.history_params(params)?;
        let ch =
            self.channels.get(name).ok_or_else(|| ("not_found", format!("no channel {name:?}")))?;
        let mut out = String::new();
        let mut w = ObjectWriter::new(&mut out);
        w.u64("seq", ch.seq);
        let mut list = w.array("messages");
        for e in ch.since(since, limit) {
            list.raw(e);
        }
        list.finish();
        w.finish();
        Ok(out)
    }

    /// At most `limit` (1 to 1,000, default 1,000) channels with names after `after`, so that
    /// a 40-byte command cannot ask for an answer of every channel at once (issue 15); `more`
    /// says there are others, to ask for with `after` set to the last name.
    fn channels(&self, params: &Value) -> Outcome {
        let prefix = match params.get("prefix") {
            None => "",
            Some(p) => p.as_str().ok_or_else(|| bad("prefix must be a string"))?,
        };
        let after = match params.get("after") {
            None => None,
            Some(a) => Some(a.as_str().ok_or_else(|| bad("after must be a string"))?),
        };
        let limit = match params.get("limit") {
            None => CHANNELS_PAGE,
            Some(l) => match l.as_u64() {
                Some(n @ 1..=CHANNELS_PAGE_U64) => n as usize,
                _ => return Err(bad("limit must be a whole number from 1 to 1000")),
            },
        };
        let mut names: Vec<&Rc<str>> = self
            .channels
            .keys()
            .filter(|n| n.starts_with(prefix) && after.is_none_or(|a| &***n > a))
            .collect();
        names.sort();
        let more = names.len() > limit;
        names.truncate(limit);
        let mut out = String::new();
        let mut w = ObjectWriter::new(&mut out);
        let mut list = w.array("channels");
        for name in names {
            if let Some(ch) = self.channels.get(name) {
                let mut o = list.object();
                o.str("name", name)
                    .u64("subscribers", followers(ch, &self.clients) as u64)
                    .u64("seq", ch.seq);
                o.finish();
            }
        }
        list.finish();
        if more {
            w.bool("more", true);
        }
        w.finish();
        Ok(out)
    }

    fn presence(&self, ctx: &Context<'_>, params: &Value) -> Outcome {
        let name = channel_param(params)?;
        let ch =
            self.channels.get(name).ok_or_else(|| ("not_found", format!("no channel {name:?}")))?;
        // Those being closed (a slow reader, say) get nothing more: they are not present.
        // Those with a replay being written are held out of the live set (`replay.rs`).
        let held = ch.held.iter().filter(|id| self.clients.contains_key(id));
        let open = ch.subscribers.iter().chain(held).filter(|&&id| ctx.is_open(id)).count();
        Ok(format!("{{\"subscribers\":{open}}}"))
    }

    fn stats_json(&self, ctx: &Context<'_>) -> String {
        let s = ctx.stats();
        let uptime = SystemTime::now().duration_since(self.started).unwrap_or_default();
        let mut out = String::new();
        let mut w = ObjectWriter::new(&mut out);
        w.u64("connections", s.connections_open)
            .u64("connections_total", s.connections_total)
            .u64("channels", self.channels.len() as u64)
            .u64("subscriptions", self.subscription_count() as u64)
            .u64("messages_in", s.messages_in)
            .u64("messages_out", s.messages_out)
            .u64("bytes_in", s.bytes_in)
            .u64("bytes_out", s.bytes_out)
            .u64("published", self.stats.published)
            .u64("delivered", self.stats.delivered)
            .u64("slow_reader_disconnects", s.slow_reader_disconnects)
            .u64("rate_limited", self.stats().rate_limited)
            .u64("uptime_ms", uptime.as_millis() as u64)
            .u64("rss_bytes", crate::server::stats::resident_memory_bytes().unwrap_or(0));
        w.finish();
        out
    }
}

/// The WebSocket subscribers of `ch`: in its live set, or held while a replay is written.
fn followers(ch: &Channel, clients: &HashMap<ConnId, Client>) -> usize {
    ch.subscribers.len() + ch.held.iter().filter(|id| clients.contains_key(id)).count()
}

/// A method's result (JSON text) or its error (code and message).
type Outcome = Result<String, (&'static str, String)>;

fn bad(message: &str) -> (&'static str, String) {
    ("invalid_params", message.to_string())
}

/// A command's `since`, if it has one: a sequence number.
fn since_param(params: &Value) -> Result<Option<u64>, (&'static str, String)> {
    params
        .get("since")
        .map(|s| s.as_u64().ok_or_else(|| bad("since must be a sequence number")))
        .transpose()
}

fn channel_param(params: &Value) -> Result<&str, (&'static str, String)> {
    let name = params
        .get("channel")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("channel must be a string"))?;
    if valid_name(name) {
        Ok(name)
    } else {
        Err(bad("channel names are 1-128 bytes of A-Z a-z 0-9 _ . : / @ -"))
    }
}

/// The channel, created if it does not exist and the total and `addr`'s creation rate allow.
fn channel_entry<'a>(
    channels: &'a mut HashMap<Rc<str>, Channel>,
    name: &str,
    admission: &mut Admission,
    addr: IpAddr,
    now: Duration,
) -> Result<(Rc<str>, &'a mut Channel), (&'static str, String)> {
    if !channels.contains_key(name) {
        let max = admission.max;
        if channels.len() >= max {
            return Err(("forbidden", format!("the server holds its maximum of {max} channels")));
        }
        match admission.rates.take(addr, now) {
            0 => {}
            strikes => {
                if strikes == 1 {
                    info!("hub: channel creations over the rate", peer = addr);
                }
                admission.refused += 1;
                return Err(("rate_limited", "too many new channels; slow down".into()));
            }
        }
        channels.insert(Rc::from(name), Channel::after(admission.after));
    }
    // One hash lookup for the shared name (never a scan of all channels: this runs on every
    // publish), one for the channel.
    let key =
        channels.get_key_value(name).map(|(k, _)| Rc::clone(k)).ok_or_else(|| bad("no channel"))?;
    let ch = channels.get_mut(name).ok_or_else(|| bad("no channel"))?;
    Ok((key, ch))
}

/// A command refused for `--rate`.
fn rate_limited() -> (&'static str, String) {
    ("rate_limited", "too many messages; slow down".into())
}

/// A frame that is not a command: the id to answer with, the error code and message.
type Refusal = (Id, &'static str, String);

/// Reads a frame as a command: its id, the parsed frame (an object with a string `method`, and
/// `params` an object or `null` if present), and the raw text of `params.data`.
///
/// # Errors
/// The frame is not a command: the id as far as it was read (`null` when there is none), the
/// code and the message.
fn read_command(kind: MessageKind, data: &[u8]) -> Result<(Id, Value, Option<&str>), Refusal> {
    let refused = |id: Id, code, message: &str| Err((id, code, message.to_string()));
    if kind == MessageKind::Binary {
        return refused(Id::Null, "invalid_request", "commands are JSON text frames");
    }
    let limits = json::Limits { max_len: data.len().max(1), ..json::Limits::default() };
    let (value, raw_data) = match json::parse_and_find_raw(data, &["params", "data"], &limits) {
        Ok(v) => v,
        Err(e) => return refused(Id::Null, "parse_error", &e.to_string()),
    };
    let Value::Object(_) = &value else {
        return refused(Id::Null, "invalid_request", "a command is a JSON object");
    };
    let given =
        json::command_id(&value).map_err(|m| (Id::Null, "invalid_request", m.to_string()))?;
    let notification = given.is_none();
    let foreign =
        || json::id_field(&value, "request_id").ok().flatten().map_or(Id::Null, Id::Foreign);
    let cmd_id = given.map_or_else(foreign, Id::Raw);
    if value.get("method").and_then(Value::as_str).is_none() {
        return refused(cmd_id, "invalid_request", "method must be a string");
    }
    if !matches!(value.get("params"), None | Some(Value::Null | Value::Object(_))) {
        return refused(cmd_id, "invalid_params", "params must be an object");
    }
    // A command without an id is a notification: carried out, not answered.
    let cmd_id = if notification { Id::Absent } else { cmd_id };
    Ok((cmd_id, value, raw_data))
}

fn reply(id: &Id, result: &str) -> Option<String> {
    let id = match id {
        Id::Absent => return None,
        Id::Null | Id::Foreign(_) => "null",
        Id::Raw(s) => s,
    };
    let mut out = String::with_capacity(result.len() + id.len() + 32);
    let mut w = ObjectWriter::new(&mut out);
    w.raw("id", id).bool("ok", true).raw("result", result);
    w.finish();
    Some(out)
}

/// An error answer's text (`None` for a notification).
fn error(cmd: &Id, code: &str, message: &str) -> Option<String> {
    let id = match cmd {
        Id::Absent => return None,
        Id::Null | Id::Foreign(_) => "null",
        Id::Raw(s) => s,
    };
    let mut out = String::with_capacity(message.len() + 64);
    let mut w = ObjectWriter::new(&mut out);
    w.raw("id", id).bool("ok", false);
    if let Id::Foreign(request_id) = cmd {
        w.raw("request_id", request_id);
    }
    let mut e = w.object("error");
    e.str("code", code).str("message", message);
    e.finish();
    w.finish();
    Some(out)
}

/// A server-sent event (`id`, `event: message`, `data`), each line of the JSON its own `data:`
/// line. The WHATWG event-stream format ends a line at CR LF, LF or a lone CR, and published
/// JSON may hold any of them as whitespace: a lone CR left inside a `data:` line would end the
/// event's data there for the browser.
fn sse_event(seq: u64, event: &str) -> String {
    let mut out = String::with_capacity(event.len() + 48);
    out.push_str("id: ");
    out.push_str(&seq.to_string());
    out.push_str("\nevent: message\n");
    let mut rest = event;
    loop {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        out.push_str("data: ");
        out.push_str(&rest[..end]);
        out.push('\n');
        let Some(after) = rest.get(end..).filter(|r| !r.is_empty()) else { break };
        rest = after.strip_prefix("\r\n").unwrap_or(&after[1..]);
    }
    out.push('\n');
    out
}

/// The `message` event of `data` (JSON text) at `seq` on channel `name`; with `--redis`, with
/// the channel's `epoch` after `seq`.
fn message_event(
    name: &str,
    seq: u64,
    epoch: Option<crate::redis::Epoch>,
    data: &str,
    from: &str,
    ts: u64,
) -> String {
    let mut out = String::with_capacity(data.len() + name.len() + 120);
    let mut w = ObjectWriter::new(&mut out);
    w.str("event", "message").str("channel", name).u64("seq", seq);
    if let Some(e) = epoch {
        w.str("epoch", &e.to_string());
    }
    w.raw("data", data).str("from", from).u64("ts", ts);
    w.finish();
    out
}

/// Milliseconds since the Unix epoch (the event timestamps).
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::{ERROR_CODES, sse_event};

    #[test]
    fn error_codes_are_the_documented_ones() {
        let doc = include_str!("../../docs/protocol.md");
        // The first block after the heading, up to the blank line after it.
        let table = doc.split("## Errors\n\n").nth(1).unwrap_or_default();
        let table = table.split("\n\n").next().unwrap_or_default();
        let documented: Vec<&str> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .fold(Vec::new(), |mut v, c| {
                if !v.contains(&c) {
                    v.push(c);
                }
                v
            });
        assert_eq!(documented, ERROR_CODES);
    }

    #[test]
    fn sse_data_lines_end_at_every_line_break() {
        assert_eq!(sse_event(3, "{}"), "id: 3\nevent: message\ndata: {}\n\n");
        assert_eq!(
            sse_event(7, "{\"a\":\r\r1,\r\n\"b\":\n2}"),
            "id: 7\nevent: message\ndata: {\"a\":\ndata: \ndata: 1,\ndata: \"b\":\ndata: 2}\n\n"
        );
        assert_eq!(sse_event(1, "x\r"), "id: 1\nevent: message\ndata: x\ndata: \n\n");
    }
}
