//! Unit tests of the links: every transition, the replies fed whole and one byte at a time
//! (each run must give the same events), with replies as Redis 7.0 writes them.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use super::*;
use crate::proto::resp::{Limits, RespError};

const T0: Duration = Duration::ZERO;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn url(s: &str) -> RedisUrl {
    RedisUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn show_cmd(e: &CommandEvent<'_>) -> String {
    match e {
        CommandEvent::Ready => "ready".into(),
        CommandEvent::Published { id, position } => {
            format!("published {} {}:{}", id.0, position.epoch, position.offset)
        }
        CommandEvent::History { id, history: h } => {
            let entries: Vec<String> = h
                .entries
                .iter()
                .map(|e| format!("{}:{}", e.offset, e.payload.escape_ascii()))
                .collect();
            let epoch = h.epoch.map_or("none".into(), |e| format!("{e}"));
            format!(
                "history {} epoch={epoch} top={} recovered={} [{}]",
                id.0,
                h.top,
                h.recovered,
                entries.join(", ")
            )
        }
        CommandEvent::Presence { id, count } => format!("presence {} {count}", id.0),
        CommandEvent::Members { id, members } => {
            let m: Vec<String> = members.iter().map(|m| format!("{}", m.escape_ascii())).collect();
            format!("members {} [{}]", id.0, m.join(", "))
        }
        CommandEvent::Removed { id } => format!("removed {}", id.0),
        CommandEvent::Refused { id, error } => format!("refused {} {}", id.0, error.escape_ascii()),
    }
}

fn show_sub(e: &SubscriberEvent<'_>) -> String {
    match e {
        SubscriberEvent::Ready => "ready".into(),
        SubscriberEvent::Subscribed { channel } => format!("subscribed {}", channel.escape_ascii()),
        SubscriberEvent::Message { channel, position, payload } => format!(
            "message {} {}:{} {}",
            channel.escape_ascii(),
            position.epoch,
            position.offset,
            payload.escape_ascii()
        ),
    }
}

type Run = (Vec<String>, Option<LinkError>);

/// Feeds `input` to a link made by `make`: whole, then (to a second one) one byte at a time,
/// keeping the bytes it did not take, as a driver's read buffer does. Both must agree.
fn feed<L>(
    make: impl Fn() -> L,
    input: &[u8],
    step: impl Fn(&mut L, &[u8]) -> Result<(usize, Option<String>), LinkError>,
) -> (L, Run) {
    let run = |link: &mut L, reads: &mut dyn Iterator<Item = &[u8]>| -> Run {
        let mut events = Vec::new();
        let mut buf = Vec::new();
        for read in reads {
            buf.extend_from_slice(read);
            loop {
                match step(link, &buf) {
                    Ok((0, _)) => break,
                    Ok((n, e)) => {
                        events.extend(e);
                        buf.drain(..n);
                    }
                    Err(e) => return (events, Some(e)),
                }
            }
        }
        (events, None)
    };
    let mut whole = make();
    let want = run(&mut whole, &mut core::iter::once(input));
    let mut split = make();
    let got = run(&mut split, &mut input.chunks(1));
    assert_eq!(got, want, "byte by byte against whole");
    (whole, want)
}

fn step_cmd(link: &mut Commands, buf: &[u8]) -> Result<(usize, Option<String>), LinkError> {
    link.handle_bytes(buf, T0).map(|(n, e)| (n, e.as_ref().map(show_cmd)))
}

fn step_sub(link: &mut Subscriber, buf: &[u8]) -> Result<(usize, Option<String>), LinkError> {
    link.handle_bytes(buf, T0).map(|(n, e)| (n, e.as_ref().map(show_sub)))
}

fn sent_cmd(link: &mut Commands) -> Vec<u8> {
    let mut out = vec![0u8; 1 << 20];
    let n = link.poll_transmit(&mut out);
    out.truncate(n);
    out
}

fn sent_sub(link: &mut Subscriber) -> Vec<u8> {
    let mut out = vec![0u8; 1 << 20];
    let n = link.poll_transmit(&mut out, T0);
    out.truncate(n);
    out
}

/// Bulk string replies.
fn bulk(s: &[u8]) -> Vec<u8> {
    let mut v = format!("${}\r\n", s.len()).into_bytes();
    v.extend_from_slice(s);
    v.extend_from_slice(b"\r\n");
    v
}

fn script_loads() -> Vec<u8> {
    Script::ALL.iter().flat_map(|s| bulk(&s.sha())).collect()
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = resp::write_command(&mut v, args);
    v
}

/// A command link connected to `url` whose handshake is queued (not answered).
fn connected(u: &str, config: &Config) -> Commands {
    let mut link = Commands::new(&url(u), config, T0, 7);
    assert_eq!(link.state(), State::Backoff);
    assert_eq!(link.poll_timeout(), Some(T0), "dials at once");
    assert_eq!(link.handle_timeout(T0), Some(Timeout::Dial));
    assert_eq!(link.state(), State::Connecting);
    link.handle_connected(T0);
    assert_eq!(link.state(), State::Handshake);
    link
}

/// A ready command link.
fn ready(config: &Config) -> Commands {
    let make = || {
        let mut l = connected("redis://h", config);
        let _ = sent_cmd(&mut l);
        l
    };
    let (link, run) = feed(make, &script_loads(), step_cmd);
    assert_eq!(run, (vec!["ready".into()], None));
    assert_eq!(link.state(), State::Ready);
    link
}

const EPOCH: &[u8] = b"00000000000000a1";

#[test]
fn handshake_sends_auth_select_and_script_loads_then_is_ready() {
    let make = || connected("redis://alice:pw@h/3", &Config::default());
    let mut want = command(&[b"AUTH", b"alice", b"pw"]);
    want.extend(command(&[b"SELECT", b"3"]));
    for s in Script::ALL {
        want.extend(command(&[b"SCRIPT", b"LOAD", s.source().as_bytes()]));
    }
    assert_eq!(sent_cmd(&mut make()), want);

    let mut replies = b"+OK\r\n+OK\r\n".to_vec();
    replies.extend(script_loads());
    let (link, run) = feed(make, &replies, step_cmd);
    assert_eq!(run, (vec!["ready".into()], None));
    assert_eq!(link.state(), State::Ready);

    // A password alone is `AUTH password`; db 0 sends no SELECT.
    let mut link = connected("redis://:pw@h/0", &Config::default());
    assert!(sent_cmd(&mut link).starts_with(&command(&[b"AUTH", b"pw"])));
}

#[test]
fn handshake_refusals_break_the_link() {
    let cases: [(&str, Vec<u8>, LinkError); 6] = [
        (
            "redis://:x@h",
            b"-WRONGPASS invalid username-password pair\r\n".to_vec(),
            LinkError::AuthRefused,
        ),
        ("redis://h/99", b"-ERR DB index is out of range\r\n".to_vec(), LinkError::SelectRefused),
        (
            "redis://h",
            b"-NOPERM this user has no permissions\r\n".to_vec(),
            LinkError::ScriptLoadRefused,
        ),
        ("redis://h", bulk(&[b'0'; 40]), LinkError::ScriptMismatch),
        ("redis://h", b":1\r\n".to_vec(), LinkError::UnexpectedReply),
        ("redis://:x@h", b"+QUEUED\r\n".to_vec(), LinkError::UnexpectedReply),
    ];
    for (u, reply, want) in cases {
        let (mut link, run) = feed(|| connected(u, &Config::default()), &reply, step_cmd);
        assert_eq!(run, (vec![], Some(want)), "{u}");
        assert_eq!(link.state(), State::Broken);
        assert_eq!(link.error(), Some(want));
        assert_eq!(link.poll_timeout(), None, "waits for the driver to close");
        assert_eq!(link.publish(b"c", b"x", T0), Err(Unavailable::NotConnected));
        link.handle_closed(ms(10), 0);
        assert_eq!(link.state(), State::Backoff);
        // The second failure in a row: first * 2 = 200 ms, half of it waited at least.
        assert_eq!(link.poll_timeout(), Some(ms(10) + ms(100)));
    }
}

#[test]
fn backoff_grows_while_attempts_fail_and_restarts_after_ready() {
    let mut link = Commands::new(&url("redis://h"), &Config::default(), T0, 1);
    let mut now = T0;
    let mut waits = Vec::new();
    for _ in 0..8 {
        assert_eq!(link.handle_timeout(now), Some(Timeout::Dial));
        link.handle_closed(now, 0);
        let next = link.poll_timeout().unwrap_or_default();
        waits.push((next - now).as_millis());
        now = next;
    }
    assert_eq!(waits, [100, 200, 400, 800, 1600, 2500, 2500, 2500]);
    // The connect itself has a deadline.
    assert_eq!(link.handle_timeout(now), Some(Timeout::Dial));
    assert_eq!(link.poll_timeout(), Some(now + Timing::default().connect));
    assert_eq!(link.handle_timeout(now + ms(1)), None);
    assert_eq!(link.handle_timeout(now + Timing::default().connect), Some(Timeout::Connect));
    assert_eq!(link.error(), Some(LinkError::ConnectTimeout));

    // A link that was ready starts again from the first wait, with the jitter given.
    let mut link = ready(&Config::default());
    link.handle_closed(ms(5), 49_000_000);
    assert_eq!(link.poll_timeout(), Some(ms(5) + ms(50) + ms(49)));
}

#[test]
fn publishes_are_pipelined_and_answered_in_order() {
    let make = || {
        let mut link = ready(&Config::default());
        assert_eq!(link.publish(b"builds", b"one", T0), Ok(RequestId(1)));
        assert_eq!(link.publish(b"builds", b"two", T0), Ok(RequestId(2)));
        link
    };
    let sent = sent_cmd(&mut make());
    let sha = Script::Publish.sha();
    let epoch = {
        // The epoch proposed is the link's; its exact value does not matter here.
        let at = sent.windows(4).position(|w| w == b"$16\r").unwrap_or(0);
        sent[at + 5..at + 21].to_vec()
    };
    let want = command(&[
        b"EVALSHA",
        &sha,
        b"2",
        b"weir:{builds}:s",
        b"weir:{builds}:m",
        b"one",
        b"100",
        &epoch,
        b"weir:{builds}",
        // The channel's keys expire a day after its last publish (`Config::channel_ttl`).
        b"86400000",
    ]);
    assert!(sent.starts_with(&want), "{}", sent.escape_ascii());
    let mut replies = Vec::new();
    for n in 1..=2 {
        replies.extend(format!("*2\r\n$16\r\n00000000000000a1\r\n:{n}\r\n").into_bytes());
    }
    let (link, run) = feed(make, &replies, step_cmd);
    assert_eq!(
        run,
        (
            vec!["published 1 00000000000000a1:1".into(), "published 2 00000000000000a1:2".into()],
            None
        )
    );
    assert_eq!((link.pending(), link.queued_bytes()), (0, 0));
}

#[test]
fn noscript_is_sent_again_as_eval_once() {
    let make = || {
        let mut link = ready(&Config::default());
        let _ = link.publish(b"c", b"x", T0);
        let _ = sent_cmd(&mut link);
        link
    };
    let noscript = b"-NOSCRIPT No matching script. Please use EVAL.\r\n";
    let (mut link, run) = feed(make, noscript, step_cmd);
    assert_eq!(run, (vec![], None));
    let again = sent_cmd(&mut link);
    assert!(again.starts_with(b"*10\r\n$4\r\nEVAL\r\n"), "{}", again.escape_ascii());
    assert!(
        again
            .windows(Script::Publish.source().len())
            .any(|w| w == Script::Publish.source().as_bytes())
    );
    assert!(again.ends_with(b"$8\r\nweir:{c}\r\n$8\r\n86400000\r\n"), "the same arguments follow");
    let (_, run) = feed(
        || {
            let mut l = make();
            let _ = l.handle_bytes(noscript, T0);
            l
        },
        b"*2\r\n$16\r\n00000000000000a1\r\n:9\r\n",
        step_cmd,
    );
    assert_eq!(run, (vec!["published 1 00000000000000a1:9".into()], None));
    // A second NOSCRIPT is the request's answer.
    let (_, run) = feed(
        || {
            let mut l = make();
            let _ = l.handle_bytes(noscript, T0);
            l
        },
        noscript,
        step_cmd,
    );
    assert_eq!(run, (vec!["refused 1 NOSCRIPT No matching script. Please use EVAL.".into()], None));
}

#[test]
fn an_error_reply_fails_its_request_only() {
    let make = || {
        let mut link = ready(&Config::default());
        let _ = link.publish(b"c", b"x", T0);
        let _ = link.publish(b"c", b"y", T0);
        link
    };
    let input = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n*2\r\n$16\r\n00000000000000a1\r\n:1\r\n";
    let (link, run) = feed(make, input, step_cmd);
    assert_eq!(
        run,
        (
            vec![
                "refused 1 OOM command not allowed when used memory > \\'maxmemory\\'.".into(),
                "published 2 00000000000000a1:1".into()
            ],
            None
        )
    );
    assert_eq!(link.state(), State::Ready);
}

fn entries(list: &[(u64, &[u8])]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", list.len()).into_bytes();
    for (offset, payload) in list {
        v.extend(b"*2\r\n");
        v.extend(bulk(format!("{offset}-0").as_bytes()));
        v.extend(b"*2\r\n");
        v.extend(bulk(b"d"));
        v.extend(bulk(payload));
    }
    v
}

fn history_reply(epoch: Option<&[u8]>, top: u64, list: &[(u64, &[u8])]) -> Vec<u8> {
    let mut v = b"*3\r\n".to_vec();
    v.extend(epoch.map_or(b"$-1\r\n".to_vec(), bulk));
    v.extend(format!(":{top}\r\n").into_bytes());
    v.extend(entries(list));
    v
}

#[test]
fn history_says_whether_a_resume_recovered() {
    let a1 = Some(Epoch(0xa1));
    let cases: Vec<(u64, Option<Epoch>, Vec<u8>, &str)> = vec![
        (
            2,
            a1,
            history_reply(Some(EPOCH), 4, &[(3, b"c"), (4, b"d")]),
            "epoch=00000000000000a1 top=4 recovered=true [3:c, 4:d]",
        ),
        (
            4,
            a1,
            history_reply(Some(EPOCH), 4, &[]),
            "epoch=00000000000000a1 top=4 recovered=true []",
        ),
        // Trimmed: offset 3 is gone.
        (
            2,
            a1,
            history_reply(Some(EPOCH), 5, &[(4, b"d"), (5, b"e")]),
            "epoch=00000000000000a1 top=5 recovered=false [4:d, 5:e]",
        ),
        // Redis lost the channel, and a publish since made a new epoch.
        (
            2,
            a1,
            history_reply(Some(b"00000000000000b2"), 3, &[(3, b"x")]),
            "epoch=00000000000000b2 top=3 recovered=false [3:x]",
        ),
        // Redis lost the channel and nothing came since.
        (2, a1, history_reply(None, 0, &[]), "epoch=none top=0 recovered=false []"),
        // No epoch to compare: only the gap counts.
        (
            2,
            None,
            history_reply(Some(b"00000000000000b2"), 3, &[(3, b"x")]),
            "epoch=00000000000000b2 top=3 recovered=true [3:x]",
        ),
        (0, None, history_reply(None, 0, &[]), "epoch=none top=0 recovered=true []"),
    ];
    for (after, epoch, reply, want) in cases {
        let make = || {
            let mut link = ready(&Config::default());
            assert_eq!(link.history(b"c", after, 100, epoch, T0), Ok(RequestId(1)));
            link
        };
        let sent = sent_cmd(&mut make());
        let first = format!("{}-0", after + 1);
        assert!(
            sent.ends_with(&command(&[first.as_bytes(), b"100"])[4..]),
            "{}",
            sent.escape_ascii()
        );
        let (_, run) = feed(make, &reply, step_cmd);
        assert_eq!(run, (vec![format!("history 1 {want}")], None));
    }
}

#[test]
fn a_reply_of_the_wrong_shape_breaks_the_link() {
    let bad: Vec<Vec<u8>> = vec![
        b"+OK\r\n".to_vec(),
        b"*2\r\n$3\r\nabc\r\n:1\r\n".to_vec(),
        b"*2\r\n$16\r\n00000000000000a1\r\n:0\r\n".to_vec(),
        b"*2\r\n$16\r\n00000000000000a1\r\n:-4\r\n".to_vec(),
        b"*3\r\n$16\r\n00000000000000a1\r\n:1\r\n:1\r\n".to_vec(),
    ];
    for reply in bad {
        let make = || {
            let mut link = ready(&Config::default());
            let _ = link.publish(b"c", b"x", T0);
            link
        };
        let (mut link, run) = feed(make, &reply, step_cmd);
        assert_eq!(run, (vec![], Some(LinkError::UnexpectedReply)), "{}", reply.escape_ascii());
        assert_eq!(link.poll_lost(), Some(RequestId(1)));
        assert_eq!(link.poll_lost(), None);
    }
    let histories: Vec<Vec<u8>> = vec![
        history_reply(Some(EPOCH), 4, &[(4, b"d"), (3, b"c")]),
        history_reply(Some(EPOCH), 4, &[(2, b"b")]),
        history_reply(Some(EPOCH), 3, &[(4, b"d")]),
        history_reply(Some(b"xyz"), 3, &[]),
        b"*3\r\n$-1\r\n:0\r\n*1\r\n*2\r\n$3\r\n3-1\r\n*2\r\n$1\r\nd\r\n$1\r\nx\r\n".to_vec(),
        b"*3\r\n$-1\r\n:0\r\n*1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\ne\r\n$1\r\nx\r\n".to_vec(),
    ];
    for reply in histories {
        let make = || {
            let mut link = ready(&Config::default());
            let _ = link.history(b"c", 2, 10, None, T0);
            link
        };
        let (_, run) = feed(make, &reply, step_cmd);
        assert_eq!(run, (vec![], Some(LinkError::UnexpectedReply)), "{}", reply.escape_ascii());
    }
}

#[test]
fn malformed_oversized_and_unsolicited_replies_break_the_link() {
    let small = Config {
        limits: Limits { max_bulk: 40, max_elements: 4, max_depth: 4, max_reply: 64 },
        ..Config::default()
    };
    let cases: Vec<(Config, Vec<u8>, LinkError)> = vec![
        (Config::default(), b"?what\r\n".to_vec(), LinkError::Resp(RespError::UnknownType)),
        (Config::default(), b"+OK\n".to_vec(), LinkError::Resp(RespError::LineEnd)),
        (Config::default(), b"$3\r\nabcd\r\n".to_vec(), LinkError::Resp(RespError::BulkEnd)),
        (small.clone(), b"$41\r\n".to_vec(), LinkError::Resp(RespError::StringTooLarge)),
        (small.clone(), b"*5\r\n".to_vec(), LinkError::Resp(RespError::TooManyElements)),
        (
            small.clone(),
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n".to_vec(),
            LinkError::Resp(RespError::TooDeep),
        ),
        (
            small,
            b"*4\r\n$16\r\n0123456789abcdef\r\n$16\r\n0123456789abcdef\r\n$16\r\n".to_vec(),
            LinkError::Resp(RespError::ReplyTooLarge),
        ),
    ];
    for (config, reply, want) in cases {
        let make = || {
            let mut l = connected("redis://h", &config);
            let _ = sent_cmd(&mut l);
            // The script loads fit the small limits.
            assert_eq!(feed_all(&mut l, &script_loads()), ["ready"]);
            let _ = l.publish(b"c", b"x", T0);
            l
        };
        let (mut link, run) = feed(make, &reply, step_cmd);
        assert_eq!(run, (vec![], Some(want)), "{}", reply.escape_ascii());
        assert_eq!(link.poll_lost(), Some(RequestId(1)), "the publish is reported lost");
        assert_eq!(sent_cmd(&mut link), b"", "nothing more is sent");
        // Bytes given after the failure are not read.
        assert_eq!(link.handle_bytes(b"+OK\r\n", T0), Ok((5, None)));
    }
    // A reply with nothing asked.
    let (_, run) = feed(|| ready(&Config::default()), b"+OK\r\n", step_cmd);
    assert_eq!(run, (vec![], Some(LinkError::Unsolicited)));
}

fn feed_all(link: &mut Commands, input: &[u8]) -> Vec<String> {
    let mut at = 0;
    let mut events = Vec::new();
    while let Ok((n, e)) = link.handle_bytes(&input[at..], T0) {
        if n == 0 {
            break;
        }
        events.extend(e.as_ref().map(show_cmd));
        at += n;
    }
    events
}

#[test]
fn a_reply_late_past_its_deadline_breaks_the_link_and_loses_what_was_owed() {
    let mut link = ready(&Config::default());
    let reply = Timing::default().reply;
    assert_eq!(link.publish(b"c", b"x", ms(10)), Ok(RequestId(1)));
    assert_eq!(link.publish(b"c", b"y", ms(20)), Ok(RequestId(2)));
    assert_eq!(link.poll_timeout(), Some(ms(10) + reply), "the oldest request's deadline");
    assert_eq!(link.handle_timeout(ms(10) + reply - ms(1)), None);
    assert_eq!(link.handle_timeout(ms(10) + reply), Some(Timeout::Reply));
    assert_eq!(link.state(), State::Broken);
    assert_eq!(link.error(), Some(LinkError::ReplyTimeout));
    assert_eq!(
        (link.poll_lost(), link.poll_lost(), link.poll_lost()),
        (Some(RequestId(1)), Some(RequestId(2)), None)
    );
    link.handle_closed(ms(10) + reply, 0);
    assert_eq!(link.state(), State::Backoff);
}

#[test]
fn an_idle_link_pings() {
    let mut link = ready(&Config::default());
    let ping = Timing::default().ping;
    assert_eq!(link.poll_timeout(), Some(ping));
    assert_eq!(link.handle_timeout(ping), Some(Timeout::Ping));
    assert_eq!(sent_cmd(&mut link), command(&[b"PING"]));
    assert_eq!(link.poll_timeout(), Some(ping + Timing::default().reply));
    assert_eq!(feed_all(&mut link, b"+PONG\r\n"), Vec::<String>::new());
    assert_eq!(link.state(), State::Ready);
    assert_eq!(link.pending(), 0);
    // A wrong answer to PING is not a pong.
    let _ = link.handle_timeout(ping * 3);
    assert_eq!(link.handle_bytes(b"+PANG\r\n", T0), Err(LinkError::UnexpectedReply));
}

#[test]
fn requests_are_refused_when_not_ready_or_past_the_bounds() {
    let mut link = connected("redis://h", &Config::default());
    assert_eq!(link.publish(b"c", b"x", T0), Err(Unavailable::NotConnected));
    assert_eq!(link.history(b"c", 0, 1, None, T0), Err(Unavailable::NotConnected));

    let mut link = ready(&Config { max_pending: 2, ..Config::default() });
    assert!(link.publish(b"c", b"x", T0).is_ok());
    assert!(link.publish(b"c", b"x", T0).is_ok());
    assert_eq!(link.publish(b"c", b"x", T0), Err(Unavailable::QueueFull));
    assert_eq!(link.members(b"c", 10, T0), Err(Unavailable::QueueFull));

    let mut link = ready(&Config { max_queued_bytes: 4096, ..Config::default() });
    let big = vec![b'x'; 1000];
    let mut taken = 0;
    while link.publish(b"c", &big, T0).is_ok() {
        taken += 1;
        assert!(link.queued_bytes() <= 4096);
    }
    assert!((1..=2).contains(&taken), "{taken}");
    assert_eq!(link.publish(b"c", &big, T0), Err(Unavailable::QueueFull));
    // Answers free the room.
    let before = link.queued_bytes();
    let _ = sent_cmd(&mut link);
    assert_eq!(feed_all(&mut link, b"*2\r\n$16\r\n00000000000000a1\r\n:1\r\n").len(), 1);
    assert!(link.queued_bytes() < before);
    assert!(link.publish(b"c", &big, T0).is_ok());
}

#[test]
fn presence_members_and_removal() {
    let make = || {
        let mut link = ready(&Config::default());
        assert_eq!(link.presence(b"c", &[b"n1/c-1", b"n1/c-2"], ms(30_000), T0), Ok(RequestId(1)));
        assert_eq!(link.members(b"c", 100, T0), Ok(RequestId(2)));
        assert_eq!(link.remove(b"c", b"n1/c-1", T0), Ok(RequestId(3)));
        link
    };
    let sent = sent_cmd(&mut make());
    let mut want = command(&[
        b"EVALSHA",
        &Script::Presence.sha(),
        b"1",
        b"weir:{c}:p",
        b"30000",
        b"n1/c-1",
        b"n1/c-2",
    ]);
    want.extend(command(&[b"EVALSHA", &Script::Members.sha(), b"1", b"weir:{c}:p", b"100"]));
    want.extend(command(&[b"ZREM", b"weir:{c}:p", b"n1/c-1"]));
    assert_eq!(sent, want);
    let replies = b":2\r\n*2\r\n$6\r\nn1/c-1\r\n$6\r\nn1/c-2\r\n:1\r\n";
    let (_, run) = feed(make, replies, step_cmd);
    assert_eq!(
        run,
        (
            vec!["presence 1 2".into(), "members 2 [n1/c-1, n1/c-2]".into(), "removed 3".into()],
            None
        )
    );
    let (_, run) = feed(make, b":2\r\n*1\r\n:5\r\n", step_cmd);
    assert_eq!(run, (vec!["presence 1 2".into()], Some(LinkError::UnexpectedReply)));
}

// The subscription link.

fn sub_connected(u: &str, config: &Config) -> Subscriber {
    let mut link = Subscriber::new(&url(u), config, T0);
    assert_eq!(link.handle_timeout(T0), Some(Timeout::Dial));
    link.handle_connected(T0);
    link
}

fn sub_ready(config: &Config, channels: &[&[u8]]) -> Subscriber {
    let mut link = sub_connected("redis://h/5", config);
    assert_eq!(sent_sub(&mut link), command(&[b"PING"]), "no SELECT: pub/sub is not per database");
    for c in channels {
        link.subscribe(c);
    }
    assert_eq!(link.handle_bytes(b"+PONG\r\n", T0), Ok((7, Some(SubscriberEvent::Ready))));
    link
}

fn confirm(kind: &str, channel: &str, count: usize) -> Vec<u8> {
    let mut v = b"*3\r\n".to_vec();
    v.extend(bulk(kind.as_bytes()));
    v.extend(bulk(channel.as_bytes()));
    v.extend(format!(":{count}\r\n").into_bytes());
    v
}

fn message(channel: &str, data: &[u8]) -> Vec<u8> {
    let mut v = b"*3\r\n".to_vec();
    v.extend(bulk(b"message"));
    v.extend(bulk(channel.as_bytes()));
    v.extend(bulk(data));
    v
}

#[test]
fn subscriber_subscribes_in_batches_and_gives_messages_out() {
    let config = Config { subscribe_batch: 2, ..Config::default() };
    let make = || {
        let mut link = sub_ready(&config, &[b"a", b"b", b"c"]);
        let mut want = command(&[b"SUBSCRIBE", b"weir:{a}", b"weir:{b}"]);
        want.extend(command(&[b"SUBSCRIBE", b"weir:{c}"]));
        assert_eq!(sent_sub(&mut link), want);
        assert!(!link.wants_transmit());
        link
    };
    let mut input = confirm("subscribe", "weir:{a}", 1);
    input.extend(message("weir:{a}", b"1:00000000000000a1:{\"x\":1}"));
    input.extend(confirm("subscribe", "weir:{b}", 2));
    input.extend(confirm("subscribe", "weir:{c}", 3));
    input.extend(message("weir:{c}", b"7:00000000000000a1:"));
    // Not wanted, or not in weir's format: dropped.
    input.extend(message("weir:{zzz}", b"1:00000000000000a1:x"));
    input.extend(message("other", b"1:00000000000000a1:x"));
    input.extend(message("weir:{a}", b"hello"));
    input.extend(message("weir:{a}", b"0:00000000000000a1:x"));
    input.extend(message("weir:{a}", b"1:00000000000000a:x"));
    let (link, run) = feed(make, &input, step_sub);
    assert_eq!(
        run,
        (
            vec![
                "subscribed a".into(),
                r#"message a 00000000000000a1:1 {\"x\":1}"#.into(),
                "subscribed b".into(),
                "subscribed c".into(),
                "message c 00000000000000a1:7 ".into()
            ],
            None
        )
    );
    assert_eq!(link.dropped(), 5);
}

#[test]
fn subscriber_sends_only_what_changed() {
    let mut link = sub_ready(&Config::default(), &[b"a", b"b"]);
    let _ = sent_sub(&mut link);
    let mut input = confirm("subscribe", "weir:{a}", 1);
    input.extend(confirm("subscribe", "weir:{b}", 2));
    let _ = link.handle_bytes(&input, T0);
    // Subscribed and left within one turn, and a channel wanted twice: nothing or once.
    assert!(link.subscribe(b"x"));
    assert!(link.unsubscribe(b"x"));
    assert!(!link.subscribe(b"a"));
    assert!(link.unsubscribe(b"b"));
    assert!(!link.unsubscribe(b"b"));
    assert!(link.subscribe(b"d"));
    let mut want = command(&[b"UNSUBSCRIBE", b"weir:{b}"]);
    want.extend(command(&[b"SUBSCRIBE", b"weir:{d}"]));
    assert_eq!(sent_sub(&mut link), want);
    assert_eq!(sent_sub(&mut link), b"");
    assert_eq!(link.wanted(), 2);
}

#[test]
fn subscriber_subscribes_again_after_a_reconnect() {
    let mut link = sub_ready(&Config::default(), &[b"a", b"b"]);
    let _ = sent_sub(&mut link);
    link.handle_closed(ms(1), 0);
    assert_eq!(link.state(), State::Backoff);
    link.unsubscribe(b"a");
    link.subscribe(b"c");
    // Not sent while down.
    assert_eq!(sent_sub(&mut link), b"");
    let due = link.poll_timeout().unwrap_or_default();
    assert_eq!(link.handle_timeout(due), Some(Timeout::Dial));
    link.handle_connected(due);
    assert_eq!(sent_sub(&mut link), command(&[b"PING"]));
    // A PING on a pub/sub connection is answered ["pong", ""].
    let pong = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n";
    assert_eq!(link.handle_bytes(pong, due), Ok((pong.len(), Some(SubscriberEvent::Ready))));
    assert_eq!(sent_sub(&mut link), command(&[b"SUBSCRIBE", b"weir:{b}", b"weir:{c}"]));
}

#[test]
fn subscriber_with_a_password_authenticates_first_and_fails_on_a_wrong_confirmation() {
    let make = || {
        let mut link = sub_connected("redis://u:p@h", &Config::default());
        assert_eq!(sent_sub(&mut link), command(&[b"AUTH", b"u", b"p"]));
        link.subscribe(b"a");
        link
    };
    let (_, run) =
        feed(make, b"-WRONGPASS invalid username-password pair or user is disabled.\r\n", step_sub);
    assert_eq!(run, (vec![], Some(LinkError::AuthRefused)));
    let (mut link, run) = feed(make, b"+OK\r\n", step_sub);
    assert_eq!(run, (vec!["ready".into()], None));
    let _ = sent_sub(&mut link);
    let (_, run) = feed(
        || {
            let mut l = make();
            let _ = l.handle_bytes(b"+OK\r\n", T0);
            let _ = sent_sub(&mut l);
            l
        },
        b"*3\r\n$10\r\npsubscribe\r\n$1\r\na\r\n:1\r\n",
        step_sub,
    );
    assert_eq!(run, (vec![], Some(LinkError::UnexpectedReply)));
}

#[test]
fn epochs_round_trip_as_hex() {
    for n in [0, 1, 0xa1, u64::MAX, 0x0123_4567_89ab_cdef] {
        assert_eq!(Epoch::from_hex(&Epoch(n).to_hex()), Some(Epoch(n)));
        assert_eq!(format!("{}", Epoch(n)).as_bytes(), Epoch(n).to_hex());
    }
    assert_eq!(Epoch::from_hex(b"00000000000000A1"), Some(Epoch(0xa1)));
    for bad in [
        &b""[..],
        b"0",
        b"00000000000000a",
        b"00000000000000a1f",
        b"0000000000000+a1",
        b"00000000000000g1",
    ] {
        assert_eq!(Epoch::from_hex(bad), None, "{}", bad.escape_ascii());
    }
}

#[test]
fn each_connection_proposes_new_epochs() {
    let mut link = ready(&Config::default());
    let mut epochs = Vec::new();
    for _ in 0..3 {
        let _ = link.publish(b"c", b"x", T0);
        let sent = sent_cmd(&mut link);
        let at = sent.windows(4).position(|w| w == b"$16\r").unwrap_or(0);
        epochs.push(sent[at + 5..at + 21].to_vec());
    }
    epochs.sort();
    epochs.dedup();
    assert_eq!(epochs.len(), 3);
}
