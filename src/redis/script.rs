//! The data model in Redis: the keys of a channel and the Lua scripts that change them
//! atomically. docs/redis.md explains the model; each script's header says what it takes.
//!
//! Keys of channel `C`, under a prefix `P` (default `weir`); `{C}` is a cluster hash tag, so
//! one channel's keys share a slot:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{C}:s` | stream | the last `MAXLEN` messages, entry id `OFFSET-0`, one field `d` (the payload) |
//! | `P:{C}:m` | hash | `e`: the channel's epoch (16 hex digits), `o`: the last offset given |
//!
//! Both expire the channel's TTL after its last publish (`Config::channel_ttl`).
//! | `P:{C}:p` | sorted set | presence: member -> the Unix time (ms) it expires |
//! | `P:{C}` | pub/sub channel | each publish as `OFFSET:EPOCH:PAYLOAD` |

use alloc::vec::Vec;

/// The scripts, loaded on every command link with `SCRIPT LOAD` and run with `EVALSHA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Append to the history, count the offset, then `PUBLISH`.
    Publish,
    /// The epoch, the last offset and the newest entries after an offset, oldest first.
    History,
    /// Drop expired presence entries, add or refresh some, count the rest.
    Presence,
    /// The presence entries that have not expired.
    Members,
}

impl Script {
    /// Every script, in the order a link loads them.
    pub const ALL: [Script; 4] = [Self::Publish, Self::History, Self::Presence, Self::Members];

    /// The Lua source (Lua 5.1, as Redis 7 runs it).
    pub const fn source(self) -> &'static str {
        match self {
            Self::Publish => PUBLISH,
            Self::History => HISTORY,
            Self::Presence => PRESENCE,
            Self::Members => MEMBERS,
        }
    }

    /// The SHA-1 of the source in lowercase hex: the name `EVALSHA` takes.
    pub fn sha(self) -> [u8; 40] {
        let digest = sha1_smol::Sha1::from(self.source()).digest().bytes();
        let mut hex = [0u8; 40];
        for (i, b) in digest.iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        hex
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

// A new epoch wipes what a stream may still hold: the hash was lost (an eviction, a FLUSHDB,
// its TTL), so the offsets start again and the old entries would clash with them. Both keys
// expire together, ARGV[5] ms after the last publish.
const PUBLISH: &str = "\
-- KEYS[1] stream, KEYS[2] hash; ARGV[1] payload, ARGV[2] MAXLEN, ARGV[3] the epoch a channel \
without one takes, ARGV[4] the pub/sub channel, ARGV[5] the keys' time to live (ms, 0: none). \
Returns {epoch, offset}.
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
end
local offset = redis.call('HINCRBY', KEYS[2], 'o', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], string.format('%d-0', offset), 'd', ARGV[1])
if tonumber(ARGV[5]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('PUBLISH', ARGV[4], string.format('%d:', offset) .. epoch .. ':' .. ARGV[1])
return {epoch, offset}
";

// Read only: a channel never published has no epoch (nil), and reading it creates nothing.
const HISTORY: &str = "\
-- KEYS[1] stream, KEYS[2] hash; ARGV[1] the first id wanted (OFFSET-0), ARGV[2] most entries. \
Returns {epoch or nil, last offset, {{id, {'d', payload}}, ...} oldest first}.
local epoch = redis.call('HGET', KEYS[2], 'e')
local top = tonumber(redis.call('HGET', KEYS[2], 'o') or '0')
local newest = redis.call('XREVRANGE', KEYS[1], '+', ARGV[1], 'COUNT', ARGV[2])
local entries = {}
for i = #newest, 1, -1 do entries[#entries + 1] = newest[i] end
return {epoch, top, entries}
";

// Scores are Redis's own clock (TIME), so nodes with skewed clocks agree on what expired.
const PRESENCE: &str = "\
-- KEYS[1] presence set; ARGV[1] time to live (ms), ARGV[2..] members to add or refresh. \
Returns how many have not expired.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) end
if #ARGV > 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return redis.call('ZCARD', KEYS[1])
";

const MEMBERS: &str = "\
-- KEYS[1] presence set; ARGV[1] most members. Returns the members that have not expired.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'LIMIT', 0, ARGV[1])
";

/// The key of channel `channel`'s `kind` (`s`, `m` or `p`), or its pub/sub channel (`None`).
pub fn key(prefix: &[u8], channel: &[u8], kind: Option<u8>) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + channel.len() + 5);
    k.extend_from_slice(prefix);
    k.extend_from_slice(b":{");
    k.extend_from_slice(channel);
    k.push(b'}');
    if let Some(kind) = kind {
        k.push(b':');
        k.push(kind);
    }
    k
}

/// The weir channel of a pub/sub channel name made by [`key`], if it is one.
pub fn channel_of<'a>(prefix: &[u8], name: &'a [u8]) -> Option<&'a [u8]> {
    name.strip_prefix(prefix)?.strip_prefix(b":{")?.strip_suffix(b"}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_their_channel() {
        assert_eq!(key(b"weir", b"builds", Some(b's')), b"weir:{builds}:s");
        assert_eq!(key(b"weir", b"a/b", Some(b'm')), b"weir:{a/b}:m");
        assert_eq!(key(b"w", b"x", None), b"w:{x}");
        assert_eq!(channel_of(b"weir", b"weir:{builds}"), Some(&b"builds"[..]));
        assert_eq!(channel_of(b"weir", b"weir:{}"), Some(&b""[..]));
        assert_eq!(channel_of(b"weir", b"other:{builds}"), None);
        assert_eq!(channel_of(b"weir", b"weir:{builds"), None);
        assert_eq!(channel_of(b"weir", b"weir:builds}"), None);
    }

    #[test]
    fn sha_is_redis_script_name() {
        // SHA-1 of "return 1" as `redis-cli SCRIPT LOAD "return 1"` answers it.
        let digest = sha1_smol::Sha1::from("return 1").digest().to_string();
        assert_eq!(digest, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        for s in Script::ALL {
            let sha = s.sha();
            assert!(sha.iter().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }
}
