//! A channel: its sequence numbers, its subscribers, and the last messages it keeps.

use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;

use crate::server::ConnId;

/// The longest channel name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Whether `name` is a valid channel name: 1-128 bytes of `[A-Za-z0-9_.:/@-]`.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:/@-".contains(&b))
}

/// One channel.
#[derive(Debug, Default)]
pub struct Channel {
    /// The sequence number of the last message published (0: none yet, unless the hub
    /// started it higher). Never repeats while the server runs: a channel is forgotten only
    /// when it holds no message and nobody follows it, and one made again after that starts
    /// above every number a forgotten channel reached.
    pub seq: u64,
    /// Connections subscribed, in id order: a publish then visits their state in memory order
    /// (hash order walked the slab at random; in order: +21% fan-out, docs/performance.md).
    /// Shared with the runtime while it gathers this channel's publishes
    /// ([`Context::broadcast_set`](crate::server::Context::broadcast_set)): change it with
    /// [`Rc::make_mut`].
    pub subscribers: Rc<BTreeSet<ConnId>>,
    /// Server-sent-event streams subscribed, in id order.
    pub streams: BTreeSet<ConnId>,
    /// Connections (WebSocket or event stream) following the channel while a replay is
    /// written to them: out of `subscribers` and `streams`, a publish goes after their replay
    /// (`replay.rs`).
    pub held: BTreeSet<ConnId>,
    /// The last messages, oldest first: sequence number and the event as sent.
    history: VecDeque<(u64, Rc<str>)>,
}

impl Channel {
    /// A channel whose first message will be number `after + 1`.
    pub fn after(after: u64) -> Self {
        Self { seq: after, ..Self::default() }
    }

    /// Sequences a message: returns its number, keeps `event` (built with that number by
    /// `make`) in the history, and returns the oldest kept one if that passed `keep` and was
    /// dropped.
    pub fn publish(
        &mut self,
        keep: usize,
        make: impl FnOnce(u64) -> Rc<str>,
    ) -> (u64, Rc<str>, Option<Rc<str>>) {
        self.seq += 1;
        let event = make(self.seq);
        let mut dropped = None;
        if keep > 0 {
            if self.history.len() >= keep {
                dropped = self.history.pop_front().map(|(_, e)| e);
            }
            self.history.push_back((self.seq, Rc::clone(&event)));
        }
        (self.seq, event, dropped)
    }

    /// Drops the oldest kept message if its number is `seq`, and returns it.
    pub fn drop_oldest(&mut self, seq: u64) -> Option<Rc<str>> {
        if self.history.front().is_some_and(|(s, _)| *s == seq) {
            self.history.pop_front().map(|(_, e)| e)
        } else {
            None
        }
    }

    /// Whether message `seq` is still kept (the kept ones are the channel's last, in a row).
    pub fn holds(&self, seq: u64) -> bool {
        self.history.front().is_some_and(|(s, _)| *s <= seq) && seq <= self.seq
    }

    /// Whether it holds no message and nobody follows it: then it can be forgotten.
    pub fn unused(&self) -> bool {
        self.history.is_empty()
            && self.subscribers.is_empty()
            && self.streams.is_empty()
            && self.held.is_empty()
    }

    /// The kept message numbered `seq`, if the history still holds it.
    pub fn get(&self, seq: u64) -> Option<&Rc<str>> {
        let front = self.history.front()?.0;
        let (s, event) = self.history.get(usize::try_from(seq.checked_sub(front)?).ok()?)?;
        (*s == seq).then_some(event)
    }

    /// Where the messages [`Channel::since`] gives lie: the first and last sequence numbers
    /// (first above last: none) and their bytes in all.
    pub fn span(&self, since: u64, limit: usize) -> (u64, u64, usize) {
        let after = self.history.iter().filter(|(s, _)| *s > since).count();
        let skip = self.history.len() - after + after.saturating_sub(limit);
        let bytes = self.history.iter().skip(skip).map(|(_, e)| e.len()).sum();
        match (self.history.get(skip), self.history.back()) {
            (Some((first, _)), Some((last, _))) => (*first, *last, bytes),
            _ => (1, 0, 0),
        }
    }

    /// The kept messages with a sequence number above `since`, oldest first, at most `limit`
    /// (the newest ones when there are more).
    pub fn since(&self, since: u64, limit: usize) -> impl Iterator<Item = &Rc<str>> {
        let after = self.history.iter().filter(move |(s, _)| *s > since).count();
        let skip = self.history.len() - after + after.saturating_sub(limit);
        self.history.iter().skip(skip).map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("builds"));
        assert!(valid_name("a.b:c/d@e-f_9"));
        assert!(valid_name(&"x".repeat(128)));
        for bad in ["", "with space", "ü", "a,b", "{}", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn history_keeps_the_last_n_and_replays_after_a_seq() {
        let mut c = Channel::default();
        for _ in 0..5 {
            c.publish(3, |s| Rc::from(s.to_string()));
        }
        assert!(!c.unused());
        assert_eq!(c.seq, 5);
        let all: Vec<&str> = c.since(0, 100).map(|e| &**e).collect();
        assert_eq!(all, ["3", "4", "5"]);
        let after4: Vec<&str> = c.since(4, 100).map(|e| &**e).collect();
        assert_eq!(after4, ["5"]);
        let newest2: Vec<&str> = c.since(0, 2).map(|e| &**e).collect();
        assert_eq!(newest2, ["4", "5"]);
        assert_eq!(c.since(5, 10).count(), 0);
        assert_eq!(c.span(0, 100), (3, 5, 3));
        assert_eq!(c.span(4, 100), (5, 5, 1));
        assert_eq!(c.span(0, 2), (4, 5, 2));
        assert!(c.span(5, 10).0 > c.span(5, 10).1);
        assert_eq!(c.get(2), None);
        assert_eq!(c.get(4).map(|e| &**e), Some("4"));
        assert_eq!(c.get(6), None);
    }
}
