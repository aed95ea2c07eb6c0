//! The sans-IO Redis broker client (src/redis) against a real `redis-server` (7.0), driven over
//! blocking `std::net::TcpStream`s with timeouts: publish and history from two clients, resume
//! with `since`, Redis restarted empty (a new epoch: `recovered: false`) and with its
//! append-only file (history intact), Redis paused then resumed, and malformed or oversized
//! replies from a fake server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::redis::Redis;
use weir::proto::resp::{Limits, RespError};
use weir::redis::{
    Backoff, CommandEvent, Commands, Config, Epoch, LinkError, Position, RedisUrl, RequestId,
    Script, State, Subscriber, SubscriberEvent, Timeout, Timing,
};

/// What a link gave, owned.
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Ready,
    Published(RequestId, Position),
    History {
        id: RequestId,
        epoch: Option<Epoch>,
        top: u64,
        recovered: bool,
        entries: Vec<(u64, Vec<u8>)>,
    },
    Presence(RequestId, u64),
    Members(RequestId, Vec<Vec<u8>>),
    Removed(RequestId),
    Refused(RequestId, String),
    Lost(RequestId),
    Message(Vec<u8>, Position, Vec<u8>),
    Subscribed(Vec<u8>),
    Broken(LinkError),
}

fn own_command(e: CommandEvent<'_>) -> Ev {
    match e {
        CommandEvent::Ready => Ev::Ready,
        CommandEvent::Published { id, position } => Ev::Published(id, position),
        CommandEvent::History { id, history: h } => Ev::History {
            id,
            epoch: h.epoch,
            top: h.top,
            recovered: h.recovered,
            entries: h.entries.iter().map(|e| (e.offset, e.payload.to_vec())).collect(),
        },
        CommandEvent::Presence { id, count } => Ev::Presence(id, count),
        CommandEvent::Members { id, members } => {
            Ev::Members(id, members.iter().map(<[u8]>::to_vec).collect())
        }
        CommandEvent::Removed { id } => Ev::Removed(id),
        CommandEvent::Refused { id, error } => {
            Ev::Refused(id, String::from_utf8_lossy(error).into_owned())
        }
    }
}

fn own_subscriber(e: SubscriberEvent<'_>) -> Ev {
    match e {
        SubscriberEvent::Ready => Ev::Ready,
        SubscriberEvent::Subscribed { channel } => Ev::Subscribed(channel.to_vec()),
        SubscriberEvent::Message { channel, position, payload } => {
            Ev::Message(channel.to_vec(), position, payload.to_vec())
        }
    }
}

/// What the driver needs of a link.
trait Driven {
    fn poll_timeout(&self) -> Option<Duration>;
    fn handle_timeout(&mut self, now: Duration) -> Option<Timeout>;
    fn handle_connected(&mut self, now: Duration);
    fn handle_closed(&mut self, now: Duration, random: u64);
    fn poll_transmit(&mut self, buf: &mut [u8], now: Duration) -> usize;
    fn handle_bytes(
        &mut self,
        input: &[u8],
        now: Duration,
    ) -> Result<(usize, Option<Ev>), LinkError>;
    fn poll_lost(&mut self) -> Option<RequestId>;
}

impl Driven for Commands {
    fn poll_timeout(&self) -> Option<Duration> {
        Commands::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Duration) -> Option<Timeout> {
        Commands::handle_timeout(self, now)
    }
    fn handle_connected(&mut self, now: Duration) {
        Commands::handle_connected(self, now);
    }
    fn handle_closed(&mut self, now: Duration, random: u64) {
        Commands::handle_closed(self, now, random);
    }
    fn poll_transmit(&mut self, buf: &mut [u8], _: Duration) -> usize {
        Commands::poll_transmit(self, buf)
    }
    fn handle_bytes(
        &mut self,
        input: &[u8],
        now: Duration,
    ) -> Result<(usize, Option<Ev>), LinkError> {
        Commands::handle_bytes(self, input, now).map(|(n, e)| (n, e.map(own_command)))
    }
    fn poll_lost(&mut self) -> Option<RequestId> {
        Commands::poll_lost(self)
    }
}

impl Driven for Subscriber {
    fn poll_timeout(&self) -> Option<Duration> {
        Subscriber::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Duration) -> Option<Timeout> {
        Subscriber::handle_timeout(self, now)
    }
    fn handle_connected(&mut self, now: Duration) {
        Subscriber::handle_connected(self, now);
    }
    fn handle_closed(&mut self, now: Duration, random: u64) {
        Subscriber::handle_closed(self, now, random);
    }
    fn poll_transmit(&mut self, buf: &mut [u8], now: Duration) -> usize {
        Subscriber::poll_transmit(self, buf, now)
    }
    fn handle_bytes(
        &mut self,
        input: &[u8],
        now: Duration,
    ) -> Result<(usize, Option<Ev>), LinkError> {
        Subscriber::handle_bytes(self, input, now).map(|(n, e)| (n, e.map(own_subscriber)))
    }
    fn poll_lost(&mut self) -> Option<RequestId> {
        None
    }
}

/// A link over a blocking socket: every read and write has a timeout, every wait a limit.
struct Driver<L> {
    link: L,
    addr: SocketAddr,
    sock: Option<TcpStream>,
    buf: Vec<u8>,
    start: Instant,
    random: u64,
    events: Vec<Ev>,
    connects: usize,
}

/// Short back-off and pings; replies have the default 2 s, so a loaded machine's slow fsync
/// is not taken for a fault.
fn config() -> Config {
    Config {
        timing: Timing {
            connect: Duration::from_secs(1),
            reply: Duration::from_secs(2),
            ping: Duration::from_millis(300),
            backoff: Backoff { first: Duration::from_millis(40), max: Duration::from_millis(400) },
        },
        ..Config::default()
    }
}

fn commands(redis_url: &str, config: &Config) -> Driver<Commands> {
    let url = RedisUrl::parse(redis_url).unwrap();
    let start = Instant::now();
    let link =
        Commands::new(&url, config, Duration::ZERO, 0x5eed ^ start.elapsed().as_nanos() as u64);
    Driver::new(link, &url, start)
}

fn subscriber(redis_url: &str, config: &Config) -> Driver<Subscriber> {
    let url = RedisUrl::parse(redis_url).unwrap();
    Driver::new(Subscriber::new(&url, config, Duration::ZERO), &url, Instant::now())
}

impl<L: Driven> Driver<L> {
    fn new(link: L, url: &RedisUrl, start: Instant) -> Self {
        let addr = format!("{}:{}", url.host, url.port).parse().unwrap();
        Self {
            link,
            addr,
            sock: None,
            buf: Vec::new(),
            start,
            random: 0x9e37_79b9,
            events: Vec::new(),
            connects: 0,
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// One pass: deadlines, dial, write, one read of at most 20 ms.
    fn turn(&mut self) {
        let now = self.now();
        if self.link.poll_timeout().is_some_and(|t| t <= now) {
            match self.link.handle_timeout(now) {
                Some(Timeout::Dial) => {
                    match TcpStream::connect_timeout(&self.addr, Duration::from_millis(500)) {
                        Ok(s) => {
                            s.set_nodelay(true).unwrap();
                            s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
                            self.sock = Some(s);
                            self.connects += 1;
                            self.link.handle_connected(self.now());
                        }
                        Err(_) => self.closed(),
                    }
                }
                Some(Timeout::Connect) => {
                    self.events.push(Ev::Broken(LinkError::ConnectTimeout));
                    self.closed();
                }
                Some(Timeout::Reply) => {
                    self.events.push(Ev::Broken(LinkError::ReplyTimeout));
                    self.closed();
                }
                Some(Timeout::Ping) | None => {}
            }
        }
        let mut out = vec![0u8; 64 << 10];
        let mut failed = false;
        if let Some(s) = self.sock.as_mut() {
            loop {
                let n = self.link.poll_transmit(&mut out, now);
                if n == 0 {
                    break;
                }
                if s.write_all(&out[..n]).is_err() {
                    failed = true;
                    break;
                }
            }
        }
        let wait = self
            .link
            .poll_timeout()
            .map_or(Duration::from_millis(20), |t| t.saturating_sub(self.now()))
            .clamp(Duration::from_millis(1), Duration::from_millis(20));
        let mut read = None;
        match self.sock.as_mut() {
            Some(s) if !failed => {
                s.set_read_timeout(Some(wait)).unwrap();
                let mut tmp = vec![0u8; 64 << 10];
                match s.read(&mut tmp) {
                    Ok(0) => failed = true,
                    Ok(n) => read = Some(tmp[..n].to_vec()),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => failed = true,
                }
            }
            Some(_) => {}
            // Waiting out a back-off: nothing to read.
            None => std::thread::sleep(wait),
        }
        if failed {
            self.closed();
        }
        if let Some(bytes) = read {
            self.buf.extend_from_slice(&bytes);
            self.feed();
        }
        while let Some(id) = self.link.poll_lost() {
            self.events.push(Ev::Lost(id));
        }
    }

    fn feed(&mut self) {
        let mut at = 0;
        loop {
            match self.link.handle_bytes(&self.buf[at..], self.now()) {
                Ok((0, _)) => break,
                Ok((n, e)) => {
                    self.events.extend(e);
                    at += n;
                }
                Err(e) => {
                    self.events.push(Ev::Broken(e));
                    self.closed();
                    return;
                }
            }
        }
        self.buf.drain(..at);
    }

    fn closed(&mut self) {
        self.sock = None;
        self.buf.clear();
        // xorshift64: the caller's random source.
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        let now = self.now();
        self.link.handle_closed(now, self.random);
        while let Some(id) = self.link.poll_lost() {
            self.events.push(Ev::Lost(id));
        }
    }

    /// Turns until `done` holds for the events so far (at most `limit`), then takes them.
    fn until(
        &mut self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&[Ev]) -> bool,
    ) -> Vec<Ev> {
        let deadline = Instant::now() + limit;
        while !done(&self.events) {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?}; events: {:?}",
                self.events
            );
            self.turn();
        }
        std::mem::take(&mut self.events)
    }

    fn ready(&mut self) {
        let _ = self.until("ready", Duration::from_secs(10), |e| e.contains(&Ev::Ready));
    }
}

impl Driver<Commands> {
    /// Waits for the answers to `ids`, in the order they come.
    fn answers(&mut self, ids: &[RequestId]) -> BTreeMap<RequestId, Ev> {
        let want: BTreeSet<RequestId> = ids.iter().copied().collect();
        let events = self.until("answers", Duration::from_secs(10), |events| {
            let got: BTreeSet<RequestId> = events.iter().filter_map(id_of).collect();
            want.is_subset(&got)
        });
        events.into_iter().filter_map(|e| Some((id_of(&e)?, e))).collect()
    }

    fn history(&mut self, channel: &str, after: u64, epoch: Option<Epoch>) -> Ev {
        let now = self.now();
        let id = self.link.history(channel.as_bytes(), after, 1000, epoch, now).unwrap();
        self.answers(&[id]).remove(&id).unwrap()
    }

    fn publish(&mut self, channel: &str, payload: &str) -> Position {
        let now = self.now();
        let id = self.link.publish(channel.as_bytes(), payload.as_bytes(), now).unwrap();
        match self.answers(&[id]).remove(&id) {
            Some(Ev::Published(_, p)) => p,
            other => panic!("publish {payload}: {other:?}"),
        }
    }
}

fn id_of(e: &Ev) -> Option<RequestId> {
    match e {
        Ev::Published(id, _)
        | Ev::History { id, .. }
        | Ev::Presence(id, _)
        | Ev::Members(id, _)
        | Ev::Removed(id)
        | Ev::Refused(id, _)
        | Ev::Lost(id) => Some(*id),
        _ => None,
    }
}

fn entries(ev: &Ev) -> Vec<(u64, String)> {
    let Ev::History { entries, .. } = ev else { panic!("not a history: {ev:?}") };
    entries.iter().map(|(o, p)| (*o, String::from_utf8(p.clone()).unwrap())).collect()
}

#[test]
fn publishes_from_two_clients_are_in_one_order_in_history_and_on_the_subscriber() {
    let Some(redis) = Redis::start(false) else { return };
    let config = config();
    let (mut a, mut b) = (commands(&redis.url(), &config), commands(&redis.url(), &config));
    let mut sub = subscriber(&redis.url(), &config);
    a.ready();
    b.ready();
    sub.link.subscribe(b"chat");
    sub.ready();
    subscribed(&redis, &mut sub, "chat", 1);

    // Both pipeline 50 publishes before reading any answer.
    let (mut ids_a, mut ids_b) = (Vec::new(), Vec::new());
    for i in 0..50 {
        let now = a.now();
        ids_a.push((
            a.link.publish(b"chat", format!("a{i}").as_bytes(), now).unwrap(),
            format!("a{i}"),
        ));
        ids_b.push((
            b.link.publish(b"chat", format!("b{i}").as_bytes(), now).unwrap(),
            format!("b{i}"),
        ));
    }
    let got_a = a.answers(&ids_a.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    let got_b = b.answers(&ids_b.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    let mut by_offset = BTreeMap::new();
    let mut epochs = BTreeSet::new();
    for (ids, got) in [(&ids_a, &got_a), (&ids_b, &got_b)] {
        let mut last = 0;
        for (id, payload) in ids {
            let Some(Ev::Published(_, p)) = got.get(id) else {
                panic!("{id:?}: {:?}", got.get(id))
            };
            assert!(p.offset > last, "one client's publishes keep their order");
            last = p.offset;
            epochs.insert(p.epoch);
            assert!(
                by_offset.insert(p.offset, payload.clone()).is_none(),
                "offset {} given twice",
                p.offset
            );
        }
    }
    assert_eq!(epochs.len(), 1, "one epoch");
    let epoch = *epochs.first().unwrap();
    assert_eq!(by_offset.keys().copied().collect::<Vec<_>>(), (1..=100).collect::<Vec<_>>());

    // History: all 100 in offset order, each with what was published at it.
    let h = a.history("chat", 0, None);
    let want: Vec<(u64, String)> = by_offset.clone().into_iter().collect();
    assert_eq!(entries(&h), want);
    assert!(
        matches!(h, Ev::History { top: 100, recovered: true, epoch: Some(e), .. } if e == epoch)
    );

    // The subscriber got each once, in offset order.
    let msgs = sub.until("100 messages", Duration::from_secs(10), |e| {
        e.iter().filter(|e| matches!(e, Ev::Message(..))).count() >= 100
    });
    let got: Vec<(u64, String)> = msgs
        .iter()
        .filter_map(|e| match e {
            Ev::Message(c, p, d) if c == b"chat" => {
                Some((p.offset, String::from_utf8(d.clone()).unwrap()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(got, want);

    // Resume after 60 in the same epoch: 61..=100, recovered; after 100: nothing, recovered.
    let h = b.history("chat", 60, Some(epoch));
    assert_eq!(entries(&h), want[60..].to_vec());
    assert!(matches!(h, Ev::History { recovered: true, .. }), "{h:?}");
    let h = b.history("chat", 100, Some(epoch));
    assert!(
        matches!(h, Ev::History { recovered: true, top: 100, ref entries, .. } if entries.is_empty()),
        "{h:?}"
    );

    // MAXLEN keeps the last 100: after one more, offset 1 is gone and a resume from 0 has a gap.
    let p = a.publish("chat", "c");
    assert_eq!(p.offset, 101);
    let h = a.history("chat", 0, Some(epoch));
    assert!(matches!(h, Ev::History { recovered: false, top: 101, .. }), "{h:?}");
    assert_eq!(entries(&h).first().map(|e| e.0), Some(2));
}

/// Replies due within 800 ms, for the tests that pause Redis.
fn impatient() -> Config {
    let mut c = config();
    c.timing.reply = Duration::from_millis(800);
    c
}

/// Turns `sub` until Redis itself says `channel` has `n` subscribers (`PUBSUB NUMSUB`).
fn subscribed(redis: &Redis, sub: &mut Driver<Subscriber>, channel: &str, n: usize) {
    let name = format!("weir:{{{channel}}}");
    let want = format!(":{n}\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis.command(&["PUBSUB", "NUMSUB", &name]).ends_with(want.as_bytes()) {
        assert!(Instant::now() < deadline, "{channel} never had {n} subscribers");
        sub.turn();
    }
}

#[test]
fn redis_restarted_empty_gives_a_new_epoch_and_a_resume_across_it_is_not_recovered() {
    let Some(mut redis) = Redis::start(false) else { return };
    let config = config();
    let mut a = commands(&redis.url(), &config);
    let mut sub = subscriber(&redis.url(), &config);
    a.ready();
    sub.link.subscribe(b"news");
    sub.ready();
    subscribed(&redis, &mut sub, "news", 1);
    let first: Vec<Position> = (0..3).map(|i| a.publish("news", &format!("old{i}"))).collect();
    let epoch = first[0].epoch;
    assert_eq!(first.iter().map(|p| p.offset).collect::<Vec<_>>(), [1, 2, 3]);

    redis.restart(false);
    // Both links notice (the connection closes), wait their back-off, dial and are ready again.
    a.ready();
    sub.ready();
    subscribed(&redis, &mut sub, "news", 1);
    // Nothing published since: no epoch, and the client that had offset 3 did not recover.
    let h = a.history("news", 3, Some(epoch));
    assert!(matches!(h, Ev::History { epoch: None, top: 0, recovered: false, .. }), "{h:?}");
    let p = a.publish("news", "new0");
    assert_eq!(p.offset, 1, "offsets start again");
    assert_ne!(p.epoch, epoch, "in a new epoch");
    let h = a.history("news", 3, Some(epoch));
    assert!(matches!(h, Ev::History { recovered: false, top: 1, .. }), "{h:?}");
    // Once the new epoch's offsets pass the old position, only the epoch tells: offsets 4 and
    // 5 follow 3 without a gap, but they are not what came after the client's 3.
    for i in 1..5 {
        assert_eq!(a.publish("news", &format!("new{i}")).offset, i + 1);
    }
    let h = a.history("news", 3, Some(epoch));
    assert!(matches!(h, Ev::History { recovered: false, top: 5, .. }), "{h:?}");
    assert_eq!(entries(&h), [(4, "new3".to_string()), (5, "new4".to_string())]);
    // A client of the new epoch resumes fine.
    let h = a.history("news", 0, Some(p.epoch));
    assert!(matches!(h, Ev::History { recovered: true, .. }), "{h:?}");
    assert_eq!(entries(&h)[0], (1, "new0".to_string()));
    // The subscriber was subscribed again and got the new message with its new position.
    let msgs = sub.until("message after restart", Duration::from_secs(10), |e| {
        e.iter().any(|e| matches!(e, Ev::Message(..)))
    });
    assert!(msgs.contains(&Ev::Message(b"news".to_vec(), p, b"new0".to_vec())), "{msgs:?}");
    assert!(a.connects >= 2 && sub.connects >= 2);
}

#[test]
fn redis_restarted_with_its_append_only_file_keeps_history_and_epoch() {
    let Some(mut redis) = Redis::start(true) else { return };
    let config = config();
    let mut a = commands(&redis.url(), &config);
    a.ready();
    let kept: Vec<Position> = (0..5).map(|i| a.publish("log", &format!("m{i}"))).collect();
    let epoch = kept[0].epoch;

    redis.restart(true);
    a.ready();
    let h = a.history("log", 0, Some(epoch));
    assert!(
        matches!(h, Ev::History { recovered: true, top: 5, epoch: Some(e), .. } if e == epoch),
        "{h:?}"
    );
    let want: Vec<(u64, String)> = (1..=5).map(|i| (i, format!("m{}", i - 1))).collect();
    assert_eq!(entries(&h), want);
    // A weir process restarted too (a new link) resumes in the same epoch.
    let mut b = commands(&redis.url(), &config);
    b.ready();
    let p = b.publish("log", "m5");
    assert_eq!((p.epoch, p.offset), (epoch, 6));
    let h = b.history("log", 2, Some(epoch));
    assert_eq!(entries(&h).len(), 4);
    assert!(matches!(h, Ev::History { recovered: true, .. }), "{h:?}");
}

#[test]
fn redis_paused_then_resumed_loses_nothing_acknowledged() {
    let Some(redis) = Redis::start(false) else { return };
    let config = impatient();
    let mut a = commands(&redis.url(), &config);
    a.ready();
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    for i in 0..5 {
        let p = a.publish("jobs", &format!("before{i}"));
        acked.insert(p.offset, format!("before{i}"));
    }

    redis.pause();
    let now = a.now();
    let stuck: Vec<RequestId> = (0..3)
        .map(|i| a.link.publish(b"jobs", format!("stuck{i}").as_bytes(), now).unwrap())
        .collect();
    // No reply: the oldest request's deadline breaks the link, and every request owed is lost.
    let events = a.until("requests lost", Duration::from_secs(5), |e| {
        stuck.iter().all(|id| e.contains(&Ev::Lost(*id)))
    });
    assert!(events.contains(&Ev::Broken(LinkError::ReplyTimeout)), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Ev::Published(..))), "{events:?}");
    // While Redis is paused the link does not become ready (its handshake times out too), and
    // publishes are refused at once rather than queued.
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        a.turn();
        let now = a.now();
        assert!(a.link.state() != State::Ready, "ready while Redis is paused");
        assert_eq!(
            a.link.publish(b"jobs", b"refused", now),
            Err(weir::redis::Unavailable::NotConnected)
        );
    }
    assert!(a.connects >= 2, "it dialled again while paused ({})", a.connects);

    redis.resume();
    a.ready();
    for i in 0..5 {
        let p = a.publish("jobs", &format!("after{i}"));
        acked.insert(p.offset, format!("after{i}"));
    }
    let h = a.history("jobs", 0, None);
    let kept: BTreeMap<u64, String> = entries(&h).into_iter().collect();
    for (offset, payload) in &acked {
        assert_eq!(kept.get(offset), Some(payload), "acknowledged offset {offset} kept");
    }
    // The lost ones may or may not have run (Redis read them before it stopped): if they did,
    // they sit between the two runs, in order.
    let middle: Vec<&String> = kept.values().filter(|v| v.starts_with("stuck")).collect();
    assert!(middle.len() <= 3);
}

#[test]
fn a_flushed_script_cache_is_answered_by_eval() {
    let Some(redis) = Redis::start(false) else { return };
    let mut a = commands(&redis.url(), &config());
    a.ready();
    assert_eq!(a.publish("c", "one").offset, 1);
    assert_eq!(redis.command(&["SCRIPT", "FLUSH"]), b"+OK\r\n");
    assert_eq!(a.publish("c", "two").offset, 2, "NOSCRIPT, then EVAL");
    assert_eq!(a.publish("c", "three").offset, 3, "EVAL loaded it again");
    assert_eq!(entries(&a.history("c", 0, None)).len(), 3);
}

#[test]
fn auth_and_select_from_the_url() {
    let Some(redis) = Redis::start(false) else { return };
    assert_eq!(redis.command(&["CONFIG", "SET", "requirepass", "s3cret"]), b"+OK\r\n");
    let mut a =
        commands(&format!("redis://:s3cret@127.0.0.1:{}/3", redis.addr().port()), &config());
    a.ready();
    let _ = a.publish("c", "x");
    // The keys are in database 3, not 0.
    let mut check = TcpStream::connect(redis.addr()).unwrap();
    check.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    check
        .write_all(
            b"*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n*2\r\n$6\r\nEXISTS\r\n$10\r\nweir:{c}:s\r\n",
        )
        .unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 64];
    while !got.ends_with(b":0\r\n") && !got.ends_with(b":1\r\n") {
        let n = check.read(&mut b).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(got, b"+OK\r\n:0\r\n", "not in db 0");

    let mut wrong =
        commands(&format!("redis://:nope@127.0.0.1:{}", redis.addr().port()), &config());
    let events = wrong.until("auth refused", Duration::from_secs(5), |e| {
        e.contains(&Ev::Broken(LinkError::AuthRefused))
    });
    assert!(!events.contains(&Ev::Ready));
    assert_eq!(wrong.link.state(), State::Backoff);
}

#[test]
fn presence_entries_expire_by_redis_clock() {
    let Some(redis) = Redis::start(false) else { return };
    let mut a = commands(&redis.url(), &config());
    a.ready();
    let now = a.now();
    let id =
        a.link.presence(b"room", &[b"n1/c-1", b"n1/c-2"], Duration::from_millis(300), now).unwrap();
    let id2 = a.link.presence(b"room", &[b"n2/c-9"], Duration::from_secs(60), now).unwrap();
    let id3 = a.link.members(b"room", 10, now).unwrap();
    let got = a.answers(&[id, id2, id3]);
    assert_eq!(got[&id], Ev::Presence(id, 2));
    assert_eq!(got[&id2], Ev::Presence(id2, 3));
    assert_eq!(
        got[&id3],
        Ev::Members(id3, vec![b"n1/c-1".to_vec(), b"n1/c-2".to_vec(), b"n2/c-9".to_vec()])
    );
    // Polled until the short-lived entries expire (at most 5 s), by counting without adding.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = a.now();
        let id = a.link.presence(b"room", &[], Duration::from_secs(1), now).unwrap();
        if a.answers(&[id])[&id] == Ev::Presence(id, 1) {
            break;
        }
        assert!(Instant::now() < deadline, "presence never expired");
    }
    let now = a.now();
    let id = a.link.remove(b"room", b"n2/c-9", now).unwrap();
    let id2 = a.link.members(b"room", 10, now).unwrap();
    let got = a.answers(&[id, id2]);
    assert_eq!((got[&id].clone(), got[&id2].clone()), (Ev::Removed(id), Ev::Members(id2, vec![])));
}

/// A fake Redis: answers the handshake (the script loads), then sends `reply` to the first
/// request, and keeps the socket open.
fn fake_redis(reply: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut seen = Vec::new();
        let mut b = [0u8; 64 << 10];
        let count =
            |seen: &[u8], what: &[u8]| seen.windows(what.len()).filter(|w| *w == what).count();
        while count(&seen, b"SCRIPT\r\n") < Script::ALL.len() {
            let n = s.read(&mut b).unwrap_or(0);
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&b[..n]);
        }
        for script in Script::ALL {
            let _ = s.write_all(
                format!("$40\r\n{}\r\n", String::from_utf8_lossy(&script.sha())).as_bytes(),
            );
        }
        while count(&seen, b"EVALSHA\r\n") < 1 {
            let n = s.read(&mut b).unwrap_or(0);
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&b[..n]);
        }
        let _ = s.write_all(&reply);
        // Held open until the client closes it.
        let _ = s.read(&mut b);
    });
    addr
}

#[test]
fn a_malformed_or_oversized_reply_is_an_error_and_the_request_is_lost() {
    let small = Config {
        limits: Limits { max_bulk: 1024, max_elements: 16, max_depth: 4, max_reply: 4096 },
        ..config()
    };
    let cases: Vec<(Vec<u8>, LinkError)> = vec![
        (b"$-5\r\n".to_vec(), LinkError::Resp(RespError::NegativeLength)),
        (
            b"*2\r\n$16\r\n00000000000000a1\r\n:x\r\n".to_vec(),
            LinkError::Resp(RespError::BadInteger),
        ),
        (b"@\r\n".to_vec(), LinkError::Resp(RespError::UnknownType)),
        (b"$999999999\r\n".to_vec(), LinkError::Resp(RespError::StringTooLarge)),
        (b"*100000\r\n".to_vec(), LinkError::Resp(RespError::TooManyElements)),
        (b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n".to_vec(), LinkError::Resp(RespError::TooDeep)),
        // Five 1000-byte strings pass 4096 bytes.
        (
            [&b"*8\r\n"[..], &format!("$1000\r\n{}\r\n", "x".repeat(1000)).repeat(5).into_bytes()]
                .concat(),
            LinkError::Resp(RespError::ReplyTooLarge),
        ),
        (b"+OK\r\n".to_vec(), LinkError::UnexpectedReply),
    ];
    for (reply, want) in cases {
        let addr = fake_redis(reply.clone());
        let mut a = commands(&format!("redis://{addr}"), &small);
        a.ready();
        let now = a.now();
        let id = a.link.publish(b"c", b"x", now).unwrap();
        let events = a.until("the error", Duration::from_secs(10), |e| e.contains(&Ev::Lost(id)));
        assert!(events.contains(&Ev::Broken(want)), "{}: {events:?}", reply.escape_ascii());
        assert_eq!(a.link.state(), State::Backoff, "it waits to dial again");
    }
}

#[test]
fn a_subscriber_notices_a_paused_redis_by_its_ping_and_subscribes_again() {
    let Some(redis) = Redis::start(false) else { return };
    let config = impatient();
    let mut a = commands(&redis.url(), &config);
    let mut sub = subscriber(&redis.url(), &config);
    a.ready();
    for c in [b"x".as_slice(), b"y", b"gone"] {
        sub.link.subscribe(c);
    }
    sub.ready();
    subscribed(&redis, &mut sub, "x", 1);
    subscribed(&redis, &mut sub, "gone", 1);
    // Left: UNSUBSCRIBE, and Redis counts no subscriber.
    assert!(sub.link.unsubscribe(b"gone"));
    subscribed(&redis, &mut sub, "gone", 0);

    redis.pause();
    // Nothing is sent to it, but the idle link's PING goes unanswered.
    let events = sub.until("ping timeout", Duration::from_secs(5), |e| {
        e.contains(&Ev::Broken(LinkError::ReplyTimeout))
    });
    assert!(!events.contains(&Ev::Ready), "{events:?}");
    redis.resume();
    sub.ready();
    subscribed(&redis, &mut sub, "y", 1);
    subscribed(&redis, &mut sub, "gone", 0);
    // Published first, so that its message, were it sent, would come before the other.
    let _ = a.publish("gone", "not for us");
    let p = a.publish("y", "after");
    let msgs = sub.until("message after resume", Duration::from_secs(10), |e| {
        e.iter().any(|e| matches!(e, Ev::Message(..)))
    });
    // The confirmations of the subscriptions come as events of their own.
    let msgs: Vec<Ev> = msgs.into_iter().filter(|e| !matches!(e, Ev::Subscribed(_))).collect();
    assert_eq!(msgs, [Ev::Message(b"y".to_vec(), p, b"after".to_vec())]);
    assert!(sub.connects >= 2);
}

#[test]
fn a_channel_whose_hash_was_lost_starts_a_new_epoch_without_its_old_entries() {
    let Some(redis) = Redis::start(false) else { return };
    let mut a = commands(&redis.url(), &config());
    a.ready();
    let old = a.publish("e", "old1");
    let _ = a.publish("e", "old2");
    // What an eviction (maxmemory) or a careless DEL does: the stream stays, the hash goes.
    assert_eq!(redis.command(&["DEL", "weir:{e}:m"]), b":1\r\n");
    let h = a.history("e", 2, Some(old.epoch));
    assert!(matches!(h, Ev::History { epoch: None, top: 0, recovered: false, .. }), "{h:?}");
    let p = a.publish("e", "new1");
    assert_ne!(p.epoch, old.epoch);
    assert_eq!(p.offset, 1, "its offsets start again (XADD 1-0 would fail on the old stream)");
    let h = a.history("e", 0, Some(p.epoch));
    assert_eq!(entries(&h), [(1, "new1".to_string())], "the old entries are gone");
}
