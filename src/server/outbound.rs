//! Outbound connections in the same loop: the TCP connect finishing, the server's response head,
//! and the failures in between (RFC 6455 §4.1).

use crate::info;
use crate::proto::extension::{Agreed, Policy};
use crate::proto::handshake::ClientHandshake;
use crate::proto::http::{self, Header};
use crate::proto::{Role, Status};
use crate::server::api::{ConnId, ConnectError, Connected};
use crate::server::compress::Pmd;
use crate::server::conn::At;
use crate::server::dispatch::Then;
use crate::server::event_loop::Engine;
use crate::server::slab::Key;
use crate::server::state::WsExt;

impl<D: Default> Engine<'_, D> {
    /// A connecting socket became writable: returns whether the connect succeeded (and moves
    /// on to the handshake); on failure the connection is gone.
    pub(super) fn connected(&mut self, key: Key) -> bool {
        let Some(conn) = self.core.conns.get_mut(key) else { return false };
        let error = match conn.socket.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match conn.socket.peer_addr() {
                Ok(_) => None,
                // Not yet connected: a spurious wake-up; wait for the next one.
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => {
                    conn.writable = false;
                    return false;
                }
                Err(e) => Some(e),
            },
        };
        if let Some(e) = error {
            self.fail_connect(key, &ConnectError::Io(e.to_string()));
            return false;
        }
        let _ = conn.socket.set_nodelay(true);
        if conn.state.tcp_connecting() {
            self.tcp_connected(key);
            return true;
        }
        conn.state.connected();
        true
    }

    /// Bytes of the server's response head (and, after it, the first frames).
    pub(super) fn on_response_bytes(&mut self, key: Key, n: usize) {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_mut(key) else { return };
        let Some(c) = conn.state.client() else { return };
        if c.buf.capacity() == 0 {
            c.buf = core.pool.take();
        }
        c.buf.extend_from_slice(&self.rbuf[..n]);
        let head_len = match c.reader.feed(&c.buf) {
            Ok(Status::Partial) => return,
            Ok(Status::Complete(len)) => len,
            Err(e) => return self.fail_connect(key, &ConnectError::Handshake(e.into())),
        };
        let extra = c.buf.len() - head_len;
        let head = std::mem::take(&mut c.buf);
        let limits = core.config.http;
        let mut slots = vec![Header::default(); limits.max_headers];
        let compression = core.config.compression;
        let policy = compression.map(|c| c.policy());
        // The head stays until `on_connected` has read the 101's fields.
        let checked = match http::parse_response(&head[..head_len], &mut slots, &limits) {
            Err(e) => Err(ConnectError::Handshake(e.into())),
            Ok(resp) => check(&c.handshake, &resp, &c.protocols, policy.as_ref())
                .map(|(protocol, agreed)| (protocol, agreed, resp)),
        };
        match checked {
            Err(e) => {
                core.pool.give(head);
                self.fail_connect(key, &e);
            }
            Ok((protocol, agreed, resp)) => {
                let Some(conn) = self.core.conns.get_mut(key) else { return };
                conn.ws.open(self.core.now);
                conn.state.open_ws(&mut self.core.pool);
                if let Some(agreed) = agreed.filter(|_| compression.is_some()) {
                    let max = self.core.config.ws.max_message_size;
                    conn.ws.set_compression(true);
                    let pmd = Pmd::new(Role::Client, &agreed, max);
                    // A state that lasts nothing between messages is made per message.
                    if let (false, Some(w)) = (pmd.transient, conn.state.ws()) {
                        w.ext = Some(Box::new(WsExt { pmd: Some(pmd), streaming: false }));
                    }
                }
                conn.opened_at = At::new(self.core.now);
                self.core.stats.connections_open += 1;
                self.core.stats.connections_total += 1;
                info!("connected", id = ConnId(key), peer = conn.peer(), path = conn.path());
                // Frames that came with the 101 go to the handler only after what it did in
                // `on_connected` has taken effect (a proxy's client accepted and open), so it
                // can pass them on at once: the call is flushed before they are read (and wait aside
                // meanwhile, since the flush may use the loop's read buffer).
                let early = self.rbuf[n - extra..n].to_vec();
                let up = Connected { protocol: protocol.as_deref(), headers: resp.headers };
                self.call(self.about(key), Then::Flush, |h, ctx| {
                    h.on_connected(ctx, ConnId(key), &up);
                });
                self.core.pool.give(head);
                if !early.is_empty() {
                    self.rbuf[..early.len()].copy_from_slice(&early);
                    self.on_frames(key, 0, early.len());
                }
            }
        }
    }

    /// An outbound connection failed before it opened: tell the handler, forget it.
    pub(super) fn fail_connect(&mut self, key: Key, error: &ConnectError) {
        let Some(conn) = self.core.conns.get(key) else { return };
        info!("connect failed", id = ConnId(key), peer = conn.peer(), error = error);
        self.call(self.about(key), Then::Continue, |h, ctx| {
            h.on_connect_failed(ctx, ConnId(key), error);
        });
        self.remove(key);
    }
}

/// The subprotocol the server chose and the permessage-deflate it agreed to (when `deflate`
/// was offered), or why its response is refused.
fn check(
    handshake: &ClientHandshake,
    resp: &http::Response<'_, '_>,
    offered: &[String],
    deflate: Option<&Policy>,
) -> Result<(Option<String>, Option<Agreed>), ConnectError> {
    if resp.status != 101 {
        return Err(ConnectError::Refused { status: resp.status });
    }
    let offered: Vec<&str> = offered.iter().map(String::as_str).collect();
    handshake
        .check_response_offering(resp, &offered, deflate)
        .map(|(p, agreed)| (p.map(str::to_string), agreed))
        .map_err(|e| ConnectError::Handshake(e.into()))
}
