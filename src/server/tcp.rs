//! Plain outbound TCP connections in the same loop (a proxy's HTTP upstream, a Redis link, a
//! tunnel agent's service): a byte stream both ways, no WebSocket framing.
//!
//! The life of one, as the handler sees it:
//! - [`Context::connect_tcp`](crate::server::Context::connect_tcp) starts a non-blocking
//!   connect, bounded by the handshake timeout (`--handshake-timeout`); bytes written
//!   meanwhile wait in the queue.
//! - `on_tcp_connected`, or `on_connect_failed` (refused, unreachable, timed out); nothing else
//!   follows a failed connect.
//! - `on_tcp_data` with each read as it comes (the loop's read buffer, lent for the call: the
//!   connection itself holds no read buffer). `pause_reading`/`resume_reading` apply.
//! - `on_tcp_eof` when the peer finished sending (its FIN); it may still read what this end
//!   writes. The default shuts down this end's writing too.
//! - `tcp_write` queues bytes in the connection's queue, refused past `--queue-cap` (nothing is
//!   queued then); `notify_drained`/`on_drained` tell when it empties.
//!   `tcp_shutdown_write` sends FIN once the queue is written; `tcp_close` drops it at once.
//! - `on_tcp_closed` once, when the connection is gone after it connected: `None` after both
//!   sides finished (or `tcp_close`), the socket's error otherwise (a reset, a send timeout).

use std::io;
use std::net::{Shutdown, SocketAddr};

use mio::net::TcpStream;

use crate::info;
use crate::proto::Role;
use crate::server::api::ConnId;
use crate::server::conn::Conn;
use crate::server::core::Core;
use crate::server::dispatch::Then;
use crate::server::event_loop::Engine;
use crate::server::process::InputError;
use crate::server::slab::Key;
use crate::server::state::{ConnState, Tcp};
use crate::server::transport::Transport;

impl Core {
    /// Opens a plain TCP connection to `addr` (non-blocking); `tls`: over TLS, the server's
    /// certificate verified for this name (`Transport::dialled`, as `wss://`).
    pub(crate) fn connect_tcp(&mut self, addr: SocketAddr, tls: Option<&str>) -> io::Result<Key> {
        let tcp = TcpStream::connect(addr)?;
        let socket = match tls {
            Some(name) => Transport::dialled(&mut self.tls, tcp, name)?,
            None => Transport::Plain(tcp),
        };
        let state = ConnState::Tcp(Tcp::default());
        // Only the handshake deadline is kept, as the connect's; `tcp_connected` drops it.
        let mut ws = self.config.ws;
        (ws.ping_interval, ws.idle_timeout) = (None, None);
        let mut conn = Conn::new(socket, addr, Role::Client, ws, state, self.now);
        conn.tag = self.inherited_tag();
        let key = self.add_outbound(conn)?;
        crate::debug!("connecting", id = ConnId(key), addr = addr, tcp = true);
        Ok(key)
    }

    pub(crate) fn tcp_write(&mut self, key: Key, bytes: &[u8]) -> Result<(), InputError> {
        let cap = self.config.queue_cap;
        let conn = match self.conns.get_mut(key) {
            Some(c) if matches!(c.state, ConnState::Tcp(t) if !t.write_done) && !c.failed() => c,
            _ => return Err(InputError::Closed),
        };
        if conn.out.len() + bytes.len() > cap {
            return Err(InputError::Full);
        }
        if !bytes.is_empty() {
            conn.out.push_copy(&[bytes], &mut self.pool);
            self.mark_dirty(key);
        }
        Ok(())
    }

    /// Writes no more: FIN follows what is queued.
    pub(crate) fn tcp_shutdown_write(&mut self, key: Key) {
        if let Some(t) = self.conns.get_mut(key).and_then(|c| c.state.tcp()) {
            t.write_done = true;
            self.mark_dirty(key);
        }
    }

    /// The handler relayed an accepted connection's exchange to its end (`on_request_head`):
    /// the next request head is read (`keep_alive`), or the connection closes once what is
    /// queued is written.
    pub(crate) fn http_exchange_done(&mut self, key: Key, keep_alive: bool) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        let Some(t) = conn.state.tcp().filter(|t| t.inbound) else { return };
        let keep_alive =
            keep_alive && !t.write_done && !conn.eof && !conn.failed() && !self.draining;
        if keep_alive {
            conn.state = ConnState::head(&self.config.http, None);
            // The next head has the handshake timeout to come, as after any answer.
            conn.ws = crate::proto::Connection::new(Role::Server, self.config.ws, self.now);
            // What came meanwhile is read now.
            conn.paused = false;
            self.resumed.push(key);
        } else {
            conn.state = ConnState::Http { body_owed: false };
        }
        self.mark_dirty(key);
    }

    /// Drops the connection now, queue and all (`on_tcp_closed(None)` follows if it had
    /// connected; a connect under way ends without a callback).
    pub(crate) fn tcp_close(&mut self, key: Key) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        let Some(t) = conn.state.tcp() else { return };
        t.write_done = true;
        // Told already: nothing more comes of it.
        t.eof_told = true;
        conn.eof = true;
        conn.out.clear(&mut self.pool);
        self.mark_dirty(key);
    }
}

impl<D: Default> Engine<'_, D> {
    /// The connect finished: the connection reads and writes from now on.
    pub(super) fn tcp_connected(&mut self, key: Key) {
        let Some(conn) = self.core.conns.get_mut(key) else { return };
        let Some(t) = conn.state.tcp() else { return };
        t.connected = true;
        // No deadline of the WebSocket's applies from now on: the handler times the stream.
        let mut config = self.core.config.ws.without_handshake_timeout();
        (config.ping_interval, config.idle_timeout) = (None, None);
        conn.ws = crate::proto::Connection::new(Role::Client, config, self.core.now);
        info!("connected", id = ConnId(key), peer = conn.peer(), tcp = true);
        self.call(self.about(key), Then::Continue, |h, ctx| h.on_tcp_connected(ctx, ConnId(key)));
    }

    /// `rbuf[..n]` was read from a plain TCP connection.
    pub(super) fn on_tcp_bytes(&mut self, key: Key, n: usize) {
        // Lent to the handler for the call (no call here flushes, so nothing reads into it).
        let rbuf = std::mem::take(&mut self.rbuf);
        self.call(self.about(key), Then::Continue, |h, ctx| {
            h.on_tcp_data(ctx, ConnId(key), &rbuf[..n]);
        });
        self.rbuf = rbuf;
    }

    /// Brings a plain TCP connection up to date after its queue was written: FIN once the
    /// handler writes no more, the peer's FIN told, the connection removed once both sides
    /// are done or the socket failed. Returns whether `settle` is done with it.
    pub(super) fn settle_tcp(&mut self, key: Key) -> bool {
        let Some(conn) = self.core.conns.get_mut(key) else { return true };
        let (out_empty, eof, failed) = (conn.out.is_empty(), conn.eof, conn.failed());
        let Some(t) = conn.state.tcp() else { return false };
        if eof && !failed && !t.eof_told {
            t.eof_told = true;
            self.call(self.about(key), Then::Continue, |h, ctx| h.on_tcp_eof(ctx, ConnId(key)));
            self.settle(key);
            return true;
        }
        if failed || (eof && t.write_done && out_empty) {
            self.remove(key);
            return true;
        }
        if t.write_done && out_empty && !conn.shut_wr {
            // RFC 9293 §3.6: FIN says this end sends no more; it may still receive.
            if let Err(e) = conn.socket.shutdown(Shutdown::Write) {
                conn.set_error(e);
                self.remove(key);
                return true;
            }
            conn.shut_wr = true;
        }
        false
    }
}
