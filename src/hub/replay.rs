//! Replay as a cursor into a channel's history, written as the socket drains.
//!
//! A `history` answer, the kept messages after `since` on `subscribe`, and an event stream's
//! replay after `since`/`Last-Event-ID` are not copied into the connection's queue up front:
//! the connection gets a [`Replay`], a list of what it still owes, and the hub writes from it
//! while the runtime's queue for that connection is under [`WINDOW`], then asks to be told when
//! it has drained ([`Context::notify_drained`]). A non-reading client therefore holds a cursor
//! and at most a window of output, not a copy of the history per request.
//!
//! While a connection has a replay, it is out of its channels' live sets (`subscribers`,
//! `streams`) and in their `held` sets instead: a publish appends the event to its replay, after
//! what is owed (no per-subscriber work for live connections; a held one costs a pointer). So
//! live messages keep their order with the replay and with each other, none is broadcast into
//! the middle of a fragmented answer (the runtime would refuse it, RFC 6455 §5.4), and answers
//! to later commands wait their turn. Once the replay is written the connection joins the live
//! sets again.
//!
//! What is owed counts against `--queue-cap` with what the runtime holds, as the copies did:
//! past it the connection is closed as a slow reader. A cursor whose next message the history
//! has dropped (oldest first) ends the connection: close 1008 "replay overtaken", or the end of
//! the event stream. The client resumes from the last sequence number it got; it never gets an
//! answer with a hole in it.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::proto::{CloseCode, MessageKind};
use crate::server::{ConnId, Context};
use crate::{info, warn};

use super::{Hub, sse_event};

/// Replay output a connection may have queued in the runtime before the hub waits for it to
/// drain. The queue can pass it by one piece or one message (a message is at most
/// `--max-publish-size` and its envelope).
pub const WINDOW: usize = 128 << 10;

/// The size a `history` answer's fragments are gathered to (whole events, at least one).
/// Answers up to this size are sent whole, in one frame, as before.
pub const PIECE: usize = 16 << 10;

/// What a connection still owes, in order.
#[derive(Debug)]
pub(super) enum Item {
    /// A whole text message to a WebSocket client: an answer, or a live event held.
    Text(Rc<str>),
    /// Bytes for an event stream: a live event held.
    Bytes(Rc<[u8]>),
    /// A `history` answer, written as a fragmented text message (RFC 6455 §5.4).
    History(HistoryCursor),
    /// The kept messages of `channel` numbered `next` to `end`: one message each (one event
    /// of the stream, for an event stream).
    Since { channel: Rc<str>, next: u64, end: u64 },
}

/// Where a `history` answer is.
#[derive(Debug)]
pub(super) struct HistoryCursor {
    pub channel: Rc<str>,
    /// The answer's text before its first event; taken by the first fragment.
    pub head: Option<String>,
    pub next: u64,
    pub end: u64,
    /// The body of `GET /api/channels/{channel}/history` (a streamed response), not a
    /// WebSocket answer: the result alone, written as it is.
    pub body: bool,
}

/// A connection's replay.
#[derive(Debug)]
pub(super) struct Replay {
    items: VecDeque<Item>,
    /// Bytes still to write, counted against `--queue-cap` with the runtime's queue.
    owed: usize,
    /// An event stream or an HTTP history body (else a WebSocket client).
    stream: bool,
    /// An HTTP history body: the response ends with it.
    body: bool,
    /// The close frame the client sent while this was written: answered once it is written
    /// (the connection is in manual-close mode while a WebSocket replay lasts).
    peer_close: Option<(CloseCode, Box<str>)>,
}

/// Why a replay stopped before its end.
enum Stop {
    /// The connection is gone or closing: nothing more to write.
    Gone,
    /// The history dropped a message the cursor had not reached.
    Overtaken,
}

impl Replay {
    /// Appends `item`, which is `bytes` long; `false` if the connection is now over the cap.
    pub(super) fn push(&mut self, ctx: &Context<'_>, id: ConnId, item: Item, bytes: usize) -> bool {
        self.items.push_back(item);
        self.owed = self.owed.saturating_add(bytes);
        ctx.queued_bytes(id).saturating_add(self.owed) <= ctx.queue_cap()
    }

    /// Whether this replay is for an event stream.
    pub(super) fn is_stream(&self) -> bool {
        self.stream
    }
}

impl Hub {
    /// Sends an answer to a WebSocket client: after its replay, if one is being written.
    pub(super) fn send_text(&mut self, ctx: &mut Context<'_>, id: ConnId, text: String) {
        match self.replays.get_mut(&id) {
            None => {
                let _ = ctx.send(id, MessageKind::Text, text.as_bytes());
            }
            Some(r) => {
                let n = text.len();
                if !r.push(ctx, id, Item::Text(Rc::from(text)), n) {
                    self.slow_reader(ctx, id);
                }
            }
        }
    }

    /// Queues a cursor (`History` or `Since`) `bytes` long to connection `id`, starting its
    /// replay if it has none (it then leaves the live sets), and writes what the window takes.
    pub(super) fn replay(&mut self, ctx: &mut Context<'_>, id: ConnId, item: Item, bytes: usize) {
        if !self.replays.contains_key(&id) {
            let body = matches!(&item, Item::History(c) if c.body);
            let stream = body || self.streams.contains_key(&id);
            self.hold(id, stream);
            let r = Replay { items: VecDeque::new(), owed: 0, stream, body, peer_close: None };
            self.replays.insert(id, r);
            if !stream {
                // RFC 6455 §5.5.1: the close echo waits until the replay is written, so that a
                // client's close does not cut an answer in two (`on_peer_close`).
                ctx.set_manual_close(id, true);
            }
        }
        let Some(r) = self.replays.get_mut(&id) else { return };
        if r.push(ctx, id, item, bytes) {
            self.pump(ctx, id);
        } else {
            self.slow_reader(ctx, id);
        }
    }

    /// The runtime's queue for `id` drained to the mark: write more of its replay.
    pub fn on_drained(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        if self.replays.contains_key(&id) {
            self.pump(ctx, id);
        }
    }

    /// Client `id` sent its close frame. While a replay is written to it, the echo waits for
    /// the replay's end (RFC 6455 §5.5.1: "as soon as practical"; until then this end may still
    /// send), bounded by the close timeout; otherwise the runtime answered it already and this
    /// does nothing.
    pub fn on_peer_close(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        code: CloseCode,
        reason: &str,
    ) {
        let (code, reason) =
            if code.is_valid_on_wire() { (code, reason) } else { (CloseCode::NORMAL, "") };
        match self.replays.get_mut(&id) {
            Some(r) if !r.stream => r.peer_close = Some((code, Box::from(reason))),
            _ => ctx.close(id, code, reason),
        }
    }

    /// Moves connection `id` from its channels' live sets to their held sets.
    fn hold(&mut self, id: ConnId, stream: bool) {
        for name in self.channels_of(id, stream) {
            if let Some(ch) = self.channels.get_mut(&*name) {
                if stream {
                    ch.streams.remove(&id);
                } else if ch.subscribers.contains(&id) {
                    // Copies the set only if a gathered broadcast holds it.
                    Rc::make_mut(&mut ch.subscribers).remove(&id);
                }
                ch.held.insert(id);
            }
        }
    }

    /// The replay is written: connection `id` joins its channels' live sets again.
    fn rejoin(&mut self, id: ConnId) {
        let Some(r) = self.replays.remove(&id) else { return };
        for name in self.channels_of(id, r.stream) {
            if let Some(ch) = self.channels.get_mut(&*name) {
                ch.held.remove(&id);
                if r.stream {
                    ch.streams.insert(id);
                } else {
                    Rc::make_mut(&mut ch.subscribers).insert(id);
                }
            }
        }
    }

    /// Drops connection `id`'s replay, if any, and takes it out of the held sets (it is gone or
    /// being closed: it joins no live set).
    pub(super) fn forget_replay(&mut self, id: ConnId) {
        let Some(r) = self.replays.remove(&id) else { return };
        for name in self.channels_of(id, r.stream) {
            if let Some(ch) = self.channels.get_mut(&*name) {
                ch.held.remove(&id);
            }
        }
    }

    /// The channels connection `id` follows.
    fn channels_of(&self, id: ConnId, stream: bool) -> Vec<Rc<str>> {
        if stream {
            self.streams.get(&id).into_iter().cloned().collect()
        } else {
            self.clients.get(&id).map(|c| c.channels.clone()).unwrap_or_default()
        }
    }

    /// What is owed passed `--queue-cap`: the connection is closed as a slow reader.
    pub(super) fn slow_reader(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        warn!("hub: slow reader (replay)", id = id, cap = ctx.queue_cap());
        ctx.close_slow_reader(id);
        self.forget_replay(id);
    }

    /// Closes connection `id` (1008 `reason`, or the end of its event stream) and drops its
    /// replay.
    fn end(&mut self, ctx: &mut Context<'_>, id: ConnId, reason: &str) {
        if self.replays.get(&id).is_some_and(Replay::is_stream) {
            ctx.end_stream(id);
        } else {
            ctx.close(id, CloseCode::POLICY_VIOLATION, reason);
        }
        self.forget_replay(id);
    }

    /// Writes connection `id`'s replay while its queue is under the window; then asks to be
    /// told when it drains, or, once all is written, puts the connection back in the live sets.
    fn pump(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        loop {
            if ctx.queued_bytes(id) >= WINDOW {
                ctx.notify_drained(id, WINDOW / 2);
                return;
            }
            let Some(r) = self.replays.get_mut(&id) else { return };
            if r.items.is_empty() {
                let (stream, body, peer_close) = (r.stream, r.body, r.peer_close.take());
                self.rejoin(id);
                if body {
                    ctx.finish_stream(id);
                }
                if !stream {
                    ctx.set_manual_close(id, false);
                }
                if let Some((code, reason)) = peer_close {
                    ctx.close(id, code, &reason);
                }
                return;
            }
            match self.step(ctx, id) {
                Ok(()) => {}
                Err(Stop::Gone) => return self.forget_replay(id),
                Err(Stop::Overtaken) => {
                    info!("hub: replay overtaken by the history", id = id);
                    return self.end(ctx, id, "replay overtaken");
                }
            }
        }
    }

    /// Writes the next piece of connection `id`'s replay: a whole message or event, or one
    /// fragment of a `history` answer.
    fn step(&mut self, ctx: &mut Context<'_>, id: ConnId) -> Result<(), Stop> {
        let Some(r) = self.replays.get_mut(&id) else { return Err(Stop::Gone) };
        let stream = r.stream;
        let write = |ctx: &mut Context<'_>, bytes: &[u8]| {
            let sent = if stream {
                ctx.stream_write(id, bytes)
            } else {
                ctx.send(id, MessageKind::Text, bytes)
            };
            sent.map_err(|_| Stop::Gone)
        };
        let (written, done) = match r.items.front_mut() {
            None => return Ok(()),
            Some(Item::Text(t)) => {
                write(ctx, t.as_bytes())?;
                (t.len(), true)
            }
            Some(Item::Bytes(b)) => {
                write(ctx, b)?;
                (b.len(), true)
            }
            Some(Item::Since { channel, next, end }) => {
                let ch = self.channels.get(&**channel).ok_or(Stop::Overtaken)?;
                let event = ch.get(*next).ok_or(Stop::Overtaken)?;
                if stream {
                    write(ctx, sse_event(*next, event).as_bytes())?;
                } else {
                    write(ctx, event.as_bytes())?;
                    self.stats.delivered += 1;
                }
                *next += 1;
                (event.len(), *next > *end)
            }
            Some(Item::History(c)) => {
                let ch = self.channels.get(&*c.channel).ok_or(Stop::Overtaken)?;
                let mut piece = c.head.take().unwrap_or_default();
                let mut first = !piece.is_empty();
                while c.next <= c.end && piece.len() < PIECE {
                    let event = ch.get(c.next).ok_or(Stop::Overtaken)?;
                    if !first {
                        piece.push(',');
                    }
                    first = false;
                    piece.push_str(event);
                    c.next += 1;
                }
                let fin = c.next > c.end;
                if fin {
                    piece.push_str(if c.body { "]}" } else { "]}}" });
                }
                if c.body {
                    write(ctx, piece.as_bytes())?;
                } else {
                    // One frame of the answer: the first a text frame, the others continuation
                    // frames, the last with FIN (RFC 6455 §5.4).
                    ctx.send_piece(id, MessageKind::Text, piece.as_bytes(), fin)
                        .map_err(|_| Stop::Gone)?;
                }
                (piece.len(), fin)
            }
        };
        r.owed = r.owed.saturating_sub(written);
        if done {
            r.items.pop_front();
        }
        Ok(())
    }
}
