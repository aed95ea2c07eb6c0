//! The byte budget of all channels' history (`--history-memory`): what every kept message
//! costs, and the order they were kept in, so that the oldest of all are evicted first.
//!
//! Each channel keeps its last `--history` messages; this bounds them all together. A publish
//! adds one entry to a queue of (channel, seq, cost) in publish order; while the total is over
//! the budget the front entry's message is dropped from its channel. An entry whose message the
//! channel already dropped (past `--history`) is skipped when it reaches the front, and the
//! queue is compacted when such entries outnumber the kept ones, so a publish costs O(1)
//! amortised and the queue never holds more than about twice the kept messages.

use std::collections::{HashMap, VecDeque};
use std::mem::size_of;
use std::rc::Rc;

use super::channel::Channel;

/// One kept message, in publish order.
#[derive(Debug)]
struct Entry {
    channel: Rc<str>,
    seq: u64,
}

/// What a kept message costs beyond its event's bytes: its slot in the channel's history, its
/// entry here, and the reference counts of its shared text.
const PER_MESSAGE: usize =
    size_of::<(u64, Rc<str>)>() + size_of::<Entry>() + 2 * size_of::<usize>();

/// The bytes a kept event is counted for.
pub fn cost(event: &str) -> usize {
    event.len() + PER_MESSAGE
}

/// The history of all channels: its total and its order.
#[derive(Debug)]
pub struct Ledger {
    budget: usize,
    bytes: usize,
    messages: usize,
    evictions: u64,
    order: VecDeque<Entry>,
}

impl Ledger {
    /// An empty history that may hold `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Self { budget, bytes: 0, messages: 0, evictions: 0, order: VecDeque::new() }
    }

    /// Bytes held now ([`cost`] of every kept message).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Messages held now.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Messages dropped for the budget since start.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Accounts for a publish on `channel`: message `seq`, `kept` if the channel kept it, and
    /// the one the channel `dropped` past `--history`, if any.
    pub fn published(
        &mut self,
        channel: &Rc<str>,
        seq: u64,
        kept: Option<&str>,
        dropped: Option<&str>,
    ) {
        if let Some(event) = dropped {
            self.forget(event);
        }
        if let Some(event) = kept {
            self.bytes += cost(event);
            self.messages += 1;
            self.order.push_back(Entry { channel: Rc::clone(channel), seq });
        }
    }

    /// Evicts the oldest messages of all channels until the total is within the budget.
    /// Returns the channels left with no message and nobody following them (to be forgotten).
    pub fn evict(&mut self, channels: &mut HashMap<Rc<str>, Channel>) -> Vec<Rc<str>> {
        self.shrink(self.budget, channels)
    }

    fn shrink(&mut self, budget: usize, channels: &mut HashMap<Rc<str>, Channel>) -> Vec<Rc<str>> {
        let mut unused = Vec::new();
        while self.bytes > budget {
            let Some(entry) = self.order.pop_front() else { break };
            // Not there any more: dropped past --history (and counted then), or its channel
            // was forgotten.
            let Some(ch) = channels.get_mut(&entry.channel) else { continue };
            let Some(event) = ch.drop_oldest(entry.seq) else { continue };
            self.forget(&event);
            self.evictions += 1;
            if ch.unused() {
                unused.push(entry.channel);
            }
        }
        if self.order.len() > 2 * self.messages + 1024 {
            self.order.retain(|e| channels.get(&e.channel).is_some_and(|ch| ch.holds(e.seq)));
        }
        unused
    }

    fn forget(&mut self, event: &str) {
        self.bytes -= cost(event);
        self.messages -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Publishes `text` on `name` as the hub does, keeping `keep` per channel.
    fn publish(
        l: &mut Ledger,
        channels: &mut HashMap<Rc<str>, Channel>,
        name: &str,
        keep: usize,
        text: &str,
    ) -> u64 {
        let key: Rc<str> = Rc::from(name);
        let ch = channels.entry(Rc::clone(&key)).or_default();
        let (seq, event, dropped) = ch.publish(keep, |_| Rc::from(text));
        l.published(&key, seq, (keep > 0).then_some(&*event), dropped.as_deref());
        for name in l.evict(channels) {
            channels.remove(&name);
        }
        seq
    }

    fn kept(channels: &HashMap<Rc<str>, Channel>, name: &str) -> Vec<String> {
        channels.get(name).map_or(Vec::new(), |c| c.since(0, 100).map(|e| e.to_string()).collect())
    }

    #[test]
    fn the_oldest_of_all_channels_go_first_and_the_count_is_exact() {
        // docs/operations.md gives this figure.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(cost(""), 64);
        let one = cost("a1");
        let mut l = Ledger::new(3 * one);
        let mut channels = HashMap::new();
        publish(&mut l, &mut channels, "a", 10, "a1");
        publish(&mut l, &mut channels, "b", 10, "b1");
        publish(&mut l, &mut channels, "a", 10, "a2");
        assert_eq!((l.bytes(), l.messages(), l.evictions()), (3 * one, 3, 0));
        // A fourth: the oldest of all (a1) goes.
        publish(&mut l, &mut channels, "b", 10, "b2");
        assert_eq!((l.bytes(), l.messages(), l.evictions()), (3 * one, 3, 1));
        assert_eq!(kept(&channels, "a"), ["a2"]);
        assert_eq!(kept(&channels, "b"), ["b1", "b2"]);
        // A longer one takes two places: b1 and a2 go; a, emptied and unfollowed, is forgotten.
        publish(&mut l, &mut channels, "c", 10, "c1..");
        assert_eq!(kept(&channels, "b"), ["b2"]);
        assert!(!channels.contains_key("a"));
        assert_eq!((l.bytes(), l.messages(), l.evictions()), (one + cost("c1.."), 2, 3));
        // Nothing kept: nothing counted.
        publish(&mut l, &mut channels, "e", 0, "e1");
        assert_eq!(l.messages(), 2);
        // A message over the whole budget takes everything older with it, then goes itself:
        // the count is back to exactly 0.
        publish(&mut l, &mut channels, "f", 10, &"x".repeat(4 * one));
        assert_eq!((l.bytes(), l.messages(), l.evictions()), (0, 0, 6));
        for name in ["b", "c", "f"] {
            assert!(!channels.contains_key(name), "{name}");
        }
    }

    #[test]
    fn entries_for_messages_dropped_past_history_are_compacted() {
        let mut l = Ledger::new(usize::MAX);
        let mut channels = HashMap::new();
        // One old message in front, then many that its channel drops past --history 1.
        publish(&mut l, &mut channels, "old", 10, "o");
        for i in 0..10_000 {
            publish(&mut l, &mut channels, "busy", 1, &i.to_string());
        }
        assert_eq!(kept(&channels, "busy"), ["9999"]);
        assert_eq!((l.bytes(), l.messages()), (cost("o") + cost("9999"), 2));
        assert!(l.order.len() <= 2 * 2 + 1024 + 1, "{} entries", l.order.len());
        assert_eq!(kept(&channels, "old"), ["o"]);
        let unused = l.shrink(0, &mut channels);
        assert_eq!((l.bytes(), l.messages(), l.evictions()), (0, 0, 2));
        assert_eq!(unused.len(), 2);
    }
}
