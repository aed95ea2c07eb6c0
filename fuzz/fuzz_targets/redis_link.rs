//! The Redis broker's links (`weir::redis`) fed arbitrary reply bytes: whole, one byte at a
//! time, and in reads of a fuzzer-chosen size must give the same events, the same error, the
//! same requests reported lost and the same state; nothing panics, and the queue stays within
//! its bound.
//!
//! Byte 0: bit 0 picks the link (0: commands, 1: subscriber); bit 1 answers the handshake
//! first (so the requests are queued and the replies are matched to them); bits 2-7 plus one
//! are the read size. Byte 1: bit 0 picks small RESP limits. The rest is what "Redis" sends.
//! Commands queues a publish, a history read with an epoch, a presence refresh, a members
//! listing and a removal; the subscriber wants channels `a` and `b`.
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use weir::proto::resp::Limits;
use weir::redis::{
    CommandEvent, Commands, Config, Epoch, LinkError, RedisUrl, Script, State, Subscriber,
    SubscriberEvent, Timeout,
};

const NOW: Duration = Duration::from_secs(1);

/// What a run gave: events as text, how it ended, the lost requests, the final state.
type Run = (Vec<String>, Option<LinkError>, Vec<u64>, State);

trait Link {
    fn step(&mut self, input: &[u8]) -> Result<(usize, Option<String>), LinkError>;
    fn lost(&mut self) -> Vec<u64>;
    fn state(&self) -> State;
    fn check(&self, config: &Config);
}

impl Link for Commands {
    fn step(&mut self, input: &[u8]) -> Result<(usize, Option<String>), LinkError> {
        self.handle_bytes(input, NOW).map(|(n, e)| (n, e.map(|e| show_command(&e))))
    }
    fn lost(&mut self) -> Vec<u64> {
        core::iter::from_fn(|| self.poll_lost()).map(|id| id.0).collect()
    }
    fn state(&self) -> State {
        Commands::state(self)
    }
    fn check(&self, config: &Config) {
        assert!(self.queued_bytes() <= config.max_queued_bytes.max(64 << 10));
        assert!(self.pending() <= config.max_pending + Script::ALL.len() + 2);
    }
}

impl Link for Subscriber {
    fn step(&mut self, input: &[u8]) -> Result<(usize, Option<String>), LinkError> {
        self.handle_bytes(input, NOW).map(|(n, e)| (n, e.map(|e| show_subscriber(&e))))
    }
    fn lost(&mut self) -> Vec<u64> {
        Vec::new()
    }
    fn state(&self) -> State {
        Subscriber::state(self)
    }
    fn check(&self, _: &Config) {}
}

fn show_command(e: &CommandEvent<'_>) -> String {
    match e {
        CommandEvent::History { id, history } => {
            // Iterating checks that every entry validated at arrival decodes.
            let entries: Vec<(u64, &[u8])> =
                history.entries.iter().map(|e| (e.offset, e.payload)).collect();
            assert_eq!(entries.len(), history.entries.len(), "every entry decodes");
            assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "offsets rise");
            format!("{id:?} {:?} {} {} {entries:?}", history.epoch, history.top, history.recovered)
        }
        CommandEvent::Members { id, members } => {
            let list: Vec<&[u8]> = members.iter().collect();
            assert_eq!(list.len(), members.len(), "every member decodes");
            format!("{id:?} {list:?}")
        }
        other => format!("{other:?}"),
    }
}

fn show_subscriber(e: &SubscriberEvent<'_>) -> String {
    format!("{e:?}")
}

fn commands(config: &Config, handshake: bool) -> Commands {
    let url =
        RedisUrl { host: "h".into(), port: 1, user: None, password: Some(b"pw".to_vec()), db: 2, tls: false };
    let mut link = Commands::new(&url, config, Duration::ZERO, 1);
    let _ = link.handle_timeout(Duration::ZERO);
    link.handle_connected(Duration::ZERO);
    let mut sink = vec![0u8; 1 << 16];
    while link.poll_transmit(&mut sink) > 0 {}
    if handshake {
        let mut replies = b"+OK\r\n+OK\r\n".to_vec();
        for s in Script::ALL {
            replies.extend_from_slice(b"$40\r\n");
            replies.extend_from_slice(&s.sha());
            replies.extend_from_slice(b"\r\n");
        }
        let mut at = 0;
        while let Ok((n, _)) = link.handle_bytes(&replies[at..], Duration::ZERO) {
            if n == 0 {
                break;
            }
            at += n;
        }
        assert_eq!(link.state(), State::Ready);
        let t = Duration::ZERO;
        let _ = link.publish(b"c", b"{\"x\":1}", t);
        let _ = link.history(b"c", 2, 10, Some(Epoch(0xa1)), t);
        let _ = link.presence(b"c", &[b"n1/c-1"], Duration::from_secs(30), t);
        let _ = link.members(b"c", 10, t);
        let _ = link.remove(b"c", b"n1/c-1", t);
        while link.poll_transmit(&mut sink) > 0 {}
    }
    link
}

fn subscriber(config: &Config, handshake: bool) -> Subscriber {
    let url = RedisUrl { host: "h".into(), port: 1, user: None, password: None, db: 0, tls: false };
    let mut link = Subscriber::new(&url, config, Duration::ZERO);
    let _ = link.handle_timeout(Duration::ZERO);
    link.handle_connected(Duration::ZERO);
    link.subscribe(b"a");
    link.subscribe(b"b");
    let mut sink = vec![0u8; 1 << 16];
    while link.poll_transmit(&mut sink, Duration::ZERO) > 0 {}
    if handshake {
        assert!(link.handle_bytes(b"+PONG\r\n", Duration::ZERO).is_ok());
        assert_eq!(link.state(), State::Ready);
        while link.poll_transmit(&mut sink, Duration::ZERO) > 0 {}
    }
    link
}

/// Feeds `stream` in reads of `chunk` bytes, keeping what the link did not take.
fn feed<L: Link>(mut link: L, config: &Config, stream: &[u8], chunk: usize) -> Run {
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let mut error = None;
    'reads: for read in stream.chunks(chunk) {
        buf.extend_from_slice(read);
        loop {
            match link.step(&buf) {
                Ok((0, _)) => break,
                Ok((n, e)) => {
                    assert!(n <= buf.len());
                    events.extend(e);
                    buf.drain(..n);
                    link.check(config);
                }
                Err(e) => {
                    assert_eq!(link.state(), State::Broken);
                    error = Some(e);
                    break 'reads;
                }
            }
        }
        assert!(buf.len() <= config.limits.max_reply + chunk, "the unread tail is bounded");
    }
    let lost = link.lost();
    let state = link.state();
    (events, error, lost, state)
}

fn run<L: Link>(make: impl Fn() -> L, config: &Config, stream: &[u8], chunk: usize) {
    let whole = feed(make(), config, stream, stream.len().max(1));
    assert_eq!(feed(make(), config, stream, chunk), whole, "reads of {chunk}");
    if stream.len() <= 4096 {
        assert_eq!(feed(make(), config, stream, 1), whole, "byte by byte");
    }
}

fuzz_target!(|data: &[u8]| {
    let [pick, limits, stream @ ..] = data else { return };
    let config = Config {
        limits: if limits & 1 == 1 {
            Limits { max_bulk: 64, max_elements: 8, max_depth: 4, max_reply: 512 }
        } else {
            Limits::default()
        },
        ..Config::default()
    };
    let handshake = pick & 2 != 0;
    let chunk = usize::from(pick >> 2) + 1;
    if pick & 1 == 0 {
        run(|| commands(&config, handshake), &config, stream, chunk);
        // Whatever the bytes did, a late deadline and a close end in a back-off.
        let mut link = commands(&config, handshake);
        let _ = feed_once(&mut link, stream);
        let far = Duration::from_secs(3600);
        while let Some(t) = link.poll_timeout() {
            if t > far || link.handle_timeout(far) != Some(Timeout::Ping) {
                break;
            }
        }
        link.handle_closed(far, 7);
        assert_eq!(link.state(), State::Backoff);
        assert!(link.poll_timeout().is_some_and(|t| t > far));
    } else {
        run(|| subscriber(&config, handshake), &config, stream, chunk);
    }
});

fn feed_once(link: &mut Commands, stream: &[u8]) -> Option<LinkError> {
    let mut at = 0;
    loop {
        match link.handle_bytes(&stream[at..], NOW) {
            Ok((0, _)) => return None,
            Ok((n, _)) => at += n,
            Err(e) => return Some(e),
        }
    }
}
