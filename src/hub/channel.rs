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
        self.history.is_empty() && self.subscribers.is_empty() && self.streams.is_empty()
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
    }
}
