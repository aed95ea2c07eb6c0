//! The hub's two Redis links (`crate::redis`) driven over the runtime's plain TCP
//! connections: dialled when a link's back-off ends, fed the bytes read, flushed after every
//! call, closed on a deadline or a broken reply, and told when the socket closed. Each reply is
//! turned into an owned [`Got`] for the hub (`remote.rs`) to act on, so that the hub may make
//! new requests while it acts.
//!
//! Nothing here blocks: the links queue and parse, the runtime reads and writes.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::redis::{
    CommandEvent, Commands, Config, Epoch, LinkError, Position, RedisUrl, RequestId, State,
    Subscriber, SubscriberEvent, Timeout,
};
use crate::server::{ConnId, Context};
use crate::{info, warn};

/// What the broker needs of the runtime: its clock, random numbers, and plain TCP sockets.
pub(super) trait Net {
    fn now(&self) -> Duration;
    fn random(&mut self) -> u64;
    /// Starts a non-blocking connect; `tls`: over TLS, verified for this name.
    fn dial(&mut self, addr: SocketAddr, tls: Option<&str>) -> io::Result<ConnId>;
    /// Queues bytes; false if the socket refused them (gone, or its queue is full).
    fn write(&mut self, id: ConnId, bytes: &[u8]) -> bool;
    /// Closes the socket now (nothing more is reported about it).
    fn close(&mut self, id: ConnId);
}

impl Net for Context<'_> {
    fn now(&self) -> Duration {
        Context::now(self)
    }

    fn random(&mut self) -> u64 {
        self.random_u64()
    }

    fn dial(&mut self, addr: SocketAddr, tls: Option<&str>) -> io::Result<ConnId> {
        match tls {
            Some(name) => self.connect_tcp_tls(addr, name),
            None => self.connect_tcp(addr),
        }
    }

    fn write(&mut self, id: ConnId, bytes: &[u8]) -> bool {
        self.tcp_write(id, bytes).is_ok()
    }

    fn close(&mut self, id: ConnId) {
        self.tcp_close(id);
    }
}

/// Which link a socket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    Commands,
    Subscriber,
}

impl Which {
    pub(super) const fn name(self) -> &'static str {
        match self {
            Self::Commands => "commands",
            Self::Subscriber => "subscriber",
        }
    }
}

/// What a link gave, owned.
#[derive(Debug)]
pub(super) enum Got {
    /// The link is ready (again).
    Ready(Which),
    /// The link was ready and is lost: it reconnects after a back-off.
    Down(Which),
    /// A publish is in the channel's history and was published to every node.
    Published { id: RequestId, position: Position },
    /// A history read.
    History {
        id: RequestId,
        epoch: Option<Epoch>,
        top: u64,
        recovered: bool,
        /// Offset and payload, oldest first.
        entries: Vec<(u64, Vec<u8>)>,
    },
    /// A presence refresh or count: the members that have not expired.
    Present { id: RequestId, count: u64 },
    /// Redis refused the request (its error line).
    Refused { id: RequestId, error: String },
    /// The link broke with the request owed: whether Redis ran it is unknown.
    Lost(RequestId),
    /// Redis confirmed the subscription to a channel.
    Subscribed(String),
    /// A message on a channel with local subscribers.
    Message { channel: String, position: Position, payload: Vec<u8> },
}

/// One link's socket and what was read and not yet taken.
#[derive(Debug, Default)]
struct Socket {
    id: Option<ConnId>,
    input: Vec<u8>,
}

/// The counters `/metrics` and `/api/stats` report.
#[derive(Debug, Default, Clone, Copy)]
pub struct BrokerStats {
    /// Connections made again after one was lost, per link (commands, subscriber).
    pub reconnects: [u64; 2],
    /// Requests refused before they were queued (not connected, or the queue full).
    pub refused: u64,
    /// Requests whose reply was lost with the link.
    pub lost: u64,
    /// Requests Redis answered with an error.
    pub errors: u64,
}

/// The two links of a node.
pub(super) struct Broker {
    addr: SocketAddr,
    /// `rediss://`: the name Redis's certificate must carry (the URL's host).
    tls: Option<String>,
    pub(super) commands: Commands,
    pub(super) subscriber: Subscriber,
    cmd: Socket,
    sub: Socket,
    /// Whether each link was ready before it broke (a reconnect, not a first connect).
    was_ready: [bool; 2],
    /// Whether each link was ever ready (the next ready is a reconnect).
    ever_ready: [bool; 2],
    pub(super) stats: BrokerStats,
    out: Vec<u8>,
}

impl Broker {
    /// The links to `url` (resolved to `addr`), dialling at `now`.
    pub(super) fn new(
        url: &RedisUrl,
        addr: SocketAddr,
        config: &Config,
        now: Duration,
        random: u64,
    ) -> Self {
        Self {
            addr,
            tls: url.tls.then(|| url.host.clone()),
            commands: Commands::new(url, config, now, random),
            subscriber: Subscriber::new(url, config, now),
            cmd: Socket::default(),
            sub: Socket::default(),
            was_ready: [false; 2],
            ever_ready: [false; 2],
            stats: BrokerStats::default(),
            out: vec![0; 64 << 10],
        }
    }

    /// The link `id` carries, if it is one of the broker's sockets.
    pub(super) fn which(&self, id: ConnId) -> Option<Which> {
        if self.cmd.id == Some(id) {
            Some(Which::Commands)
        } else if self.sub.id == Some(id) {
            Some(Which::Subscriber)
        } else {
            None
        }
    }

    /// Whether each link is ready (commands, subscriber).
    pub(super) fn ready(&self) -> [bool; 2] {
        [self.commands.state() == State::Ready, self.subscriber.state() == State::Ready]
    }

    /// Acts on the deadlines that passed (dials, connect and reply deadlines, pings), then
    /// writes what is queued.
    pub(super) fn on_time(&mut self, net: &mut impl Net, got: &mut Vec<Got>) {
        let now = net.now();
        // Bounded: each step moves a link to another state or queues a ping.
        for _ in 0..4 {
            let due = |t: Option<Duration>| t.is_some_and(|t| t <= now);
            let mut acted = false;
            if due(self.commands.poll_timeout()) {
                let t = self.commands.handle_timeout(now);
                self.timeout(net, Which::Commands, t, got);
                acted |= t.is_some();
            }
            if due(self.subscriber.poll_timeout()) {
                let t = self.subscriber.handle_timeout(now);
                self.timeout(net, Which::Subscriber, t, got);
                acted |= t.is_some();
            }
            if !acted {
                break;
            }
        }
        self.flush(net, got);
    }

    fn timeout(
        &mut self,
        net: &mut impl Net,
        which: Which,
        t: Option<Timeout>,
        got: &mut Vec<Got>,
    ) {
        match t {
            Some(Timeout::Dial) => match net.dial(self.addr, self.tls.as_deref()) {
                Ok(id) => self.socket(which).id = Some(id),
                Err(e) => {
                    warn!("redis: cannot connect", link = which.name(), error = e);
                    self.closed(net, which, got);
                }
            },
            Some(Timeout::Connect | Timeout::Reply) => {
                let error = self.error(which).map_or("timeout", LinkError::name);
                warn!("redis: link broken", link = which.name(), error = error);
                self.drop_socket(net, which);
                self.closed(net, which, got);
            }
            Some(Timeout::Ping) | None => {}
        }
    }

    fn error(&self, which: Which) -> Option<LinkError> {
        match which {
            Which::Commands => self.commands.error(),
            Which::Subscriber => self.subscriber.error(),
        }
    }

    fn socket(&mut self, which: Which) -> &mut Socket {
        match which {
            Which::Commands => &mut self.cmd,
            Which::Subscriber => &mut self.sub,
        }
    }

    /// Closes a link's socket, if it has one.
    fn drop_socket(&mut self, net: &mut impl Net, which: Which) {
        let s = self.socket(which);
        s.input.clear();
        if let Some(id) = s.id.take() {
            net.close(id);
        }
    }

    /// The link's socket is closed (or never connected): its requests owed are lost, and it
    /// waits a back-off.
    fn closed(&mut self, net: &mut impl Net, which: Which, got: &mut Vec<Got>) {
        let (now, random) = (net.now(), net.random());
        let i = which as usize;
        if std::mem::take(&mut self.was_ready[i]) {
            warn!("redis: link lost", link = which.name());
            got.push(Got::Down(which));
        }
        match which {
            Which::Commands => {
                self.commands.handle_closed(now, random);
                while let Some(id) = self.commands.poll_lost() {
                    self.stats.lost += 1;
                    got.push(Got::Lost(id));
                }
            }
            Which::Subscriber => self.subscriber.handle_closed(now, random),
        }
        let s = self.socket(which);
        s.id = None;
        s.input.clear();
    }

    /// The TCP connect of socket `id` finished.
    pub(super) fn on_connected(&mut self, net: &mut impl Net, id: ConnId, got: &mut Vec<Got>) {
        let now = net.now();
        match self.which(id) {
            Some(Which::Commands) => self.commands.handle_connected(now),
            Some(Which::Subscriber) => self.subscriber.handle_connected(now),
            None => return,
        }
        self.flush(net, got);
    }

    /// Socket `id` closed, or its connect failed.
    pub(super) fn on_closed(
        &mut self,
        net: &mut impl Net,
        id: ConnId,
        why: &str,
        got: &mut Vec<Got>,
    ) {
        let Some(which) = self.which(id) else { return };
        info!("redis: connection closed", link = which.name(), why = why);
        self.closed(net, which, got);
    }

    /// Bytes read from socket `id`.
    pub(super) fn on_data(
        &mut self,
        net: &mut impl Net,
        id: ConnId,
        bytes: &[u8],
        got: &mut Vec<Got>,
    ) {
        let Some(which) = self.which(id) else { return };
        let now = net.now();
        let s = self.socket(which);
        s.input.extend_from_slice(bytes);
        let input = std::mem::take(&mut s.input);
        let mut at = 0;
        let mut broken = None;
        // Bounded by the input: each step takes a whole reply, or stops.
        while at < input.len() {
            let step = match which {
                Which::Commands => self
                    .commands
                    .handle_bytes(&input[at..], now)
                    .map(|(n, e)| (n, e.and_then(|e| self.own_command(e)))),
                Which::Subscriber => self
                    .subscriber
                    .handle_bytes(&input[at..], now)
                    .map(|(n, e)| (n, e.map(own_sub))),
            };
            match step {
                Ok((0, _)) => break,
                Ok((n, e)) => {
                    at += n;
                    if let Some(e) = e {
                        if matches!(e, Got::Ready(_)) {
                            self.ready_again(which);
                        }
                        got.push(e);
                    }
                }
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = broken {
            warn!("redis: link broken", link = which.name(), error = e.name());
            self.drop_socket(net, which);
            self.closed(net, which, got);
        } else {
            let s = self.socket(which);
            let mut input = input;
            input.drain(..at);
            s.input = input;
        }
        self.flush(net, got);
    }

    fn ready_again(&mut self, which: Which) {
        let i = which as usize;
        if std::mem::replace(&mut self.ever_ready[i], true) {
            self.stats.reconnects[i] += 1;
            info!("redis: link ready again", link = which.name());
        } else {
            info!("redis: link ready", link = which.name());
        }
        self.was_ready[i] = true;
    }

    fn own_command(&mut self, e: CommandEvent<'_>) -> Option<Got> {
        Some(match e {
            CommandEvent::Ready => Got::Ready(Which::Commands),
            CommandEvent::Published { id, position } => Got::Published { id, position },
            CommandEvent::History { id, history: h } => Got::History {
                id,
                epoch: h.epoch,
                top: h.top,
                recovered: h.recovered,
                entries: h.entries.iter().map(|e| (e.offset, e.payload.to_vec())).collect(),
            },
            CommandEvent::Refused { id, error } => {
                self.stats.errors += 1;
                Got::Refused { id, error: String::from_utf8_lossy(error).into_owned() }
            }
            CommandEvent::Presence { id, count } => Got::Present { id, count },
            CommandEvent::Members { .. } | CommandEvent::Removed { .. } => return None,
        })
    }

    /// Writes what both links have queued. A socket that refuses bytes (its queue is full:
    /// Redis does not read) breaks its link.
    pub(super) fn flush(&mut self, net: &mut impl Net, got: &mut Vec<Got>) {
        let now = net.now();
        for which in [Which::Commands, Which::Subscriber] {
            let Some(id) = self.socket(which).id else { continue };
            loop {
                let n = match which {
                    Which::Commands => self.commands.poll_transmit(&mut self.out),
                    Which::Subscriber => self.subscriber.poll_transmit(&mut self.out, now),
                };
                if n == 0 {
                    break;
                }
                if !net.write(id, &self.out[..n]) {
                    warn!("redis: cannot write", link = which.name());
                    self.drop_socket(net, which);
                    self.closed(net, which, got);
                    break;
                }
            }
        }
    }
}

fn own_sub(e: SubscriberEvent<'_>) -> Got {
    match e {
        SubscriberEvent::Ready => Got::Ready(Which::Subscriber),
        SubscriberEvent::Subscribed { channel } => {
            Got::Subscribed(String::from_utf8_lossy(channel).into_owned())
        }
        SubscriberEvent::Message { channel, position, payload } => Got::Message {
            channel: String::from_utf8_lossy(channel).into_owned(),
            position,
            payload: payload.to_vec(),
        },
    }
}
