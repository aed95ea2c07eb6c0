//! What a connection reads from and writes to: a TCP socket, or (with the `tls` feature) a TLS
//! session over one (`tls.rs`). The loop calls the same methods on either, so the call sites
//! (`read`, the queue's `write_vectored`, `shutdown`) do not know which it has.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

/// A connection's byte stream.
#[derive(Debug)]
pub(crate) enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: a plain connection does not carry its size).
    #[cfg(feature = "tls")]
    Tls(Box<crate::server::tls::TlsStream>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            #[cfg(feature = "tls")]
            Self::Tls(t) => &t.tcp,
        }
    }

    /// The TCP socket of a plain connection (read directly, `payload.rs`).
    pub(crate) fn plain(&self) -> Option<&TcpStream> {
        match self {
            Self::Plain(s) => Some(s),
            #[cfg(feature = "tls")]
            Self::Tls(_) => None,
        }
    }

    /// Whether this is a TLS connection.
    pub(crate) fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }

    /// Whether bytes already taken from the queue wait to be written (TLS records encrypted and
    /// not yet accepted by the socket). The queue is empty only when this is false too.
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            #[cfg(feature = "tls")]
            Self::Tls(t) => t.wants_write(),
        }
    }

    /// Writes what [`Transport::wants_write`] holds; returns whether all of it is written (a
    /// failure counts as written: the next read or write reports it).
    pub(crate) fn flushed(&mut self) -> bool {
        match self {
            Self::Plain(_) => true,
            #[cfg(feature = "tls")]
            Self::Tls(t) => t.flushed(),
        }
    }

    /// Why the TLS session failed, if it did (for the log and `on_connect_failed`).
    pub(crate) fn failure(&self) -> Option<&str> {
        match self {
            Self::Plain(_) => None,
            #[cfg(feature = "tls")]
            Self::Tls(t) => t.failure(),
        }
    }

    /// Shuts down a side of the connection; TLS sends its close_notify first (RFC 8446 §6.1).
    pub(crate) fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.shutdown(how),
            #[cfg(feature = "tls")]
            Self::Tls(t) => t.shutdown(how),
        }
    }

    /// The connection closes once the `queued` bytes it still has to write are written: TLS
    /// sends its close_notify with the last of them (`TlsStream::last_write`).
    pub(crate) fn last_write(&mut self, queued: usize) {
        match self {
            Self::Plain(_) => {
                let _ = queued;
            }
            #[cfg(feature = "tls")]
            Self::Tls(t) => t.last_write(queued),
        }
    }

    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nodelay(on)
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.tcp().take_error()
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().local_addr()
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Self::Tls(t) => t.write_vectored(&[IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write_vectored(bufs),
            #[cfg(feature = "tls")]
            Self::Tls(t) => t.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Transport {
    fn register(&mut self, r: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.register(r, token, interests),
            #[cfg(feature = "tls")]
            Self::Tls(t) => t.tcp.register(r, token, interests),
        }
    }

    fn reregister(&mut self, r: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.reregister(r, token, interests),
            #[cfg(feature = "tls")]
            Self::Tls(t) => t.tcp.reregister(r, token, interests),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.deregister(r),
            #[cfg(feature = "tls")]
            Self::Tls(t) => t.tcp.deregister(r),
        }
    }
}

#[cfg(feature = "tls")]
pub(crate) use crate::server::tls::TlsContext;

impl Transport {
    /// A connection accepted on a listener (`tls`: one of `--listen-tls`) from `peer`.
    ///
    /// # Errors
    /// rustls refused a server session.
    pub(crate) fn accepted(
        ctx: &TlsContext,
        tcp: TcpStream,
        peer: SocketAddr,
        tls: bool,
    ) -> io::Result<Self> {
        #[cfg(feature = "tls")]
        return Ok(match ctx.accept(tcp, peer, tls)? {
            Ok(stream) => Self::Tls(Box::new(stream)),
            Err(tcp) => Self::Plain(tcp),
        });
        #[cfg(not(feature = "tls"))]
        {
            let _ = (ctx, peer, tls);
            Ok(Self::Plain(tcp))
        }
    }

    /// An outbound connection to `name` over TLS.
    ///
    /// # Errors
    /// No TLS in this build, or no client configuration could be made (roots, `--tls-ca`).
    pub(crate) fn dialled(ctx: &mut TlsContext, tcp: TcpStream, name: &str) -> io::Result<Self> {
        #[cfg(feature = "tls")]
        return ctx.dial(tcp, name).map(|stream| Self::Tls(Box::new(stream)));
        #[cfg(not(feature = "tls"))]
        {
            let _ = (ctx, tcp, name);
            Err(io::Error::new(io::ErrorKind::Unsupported, NO_TLS))
        }
    }
}

/// Without the `tls` feature: TLS settings are refused at start-up, and every connection is
/// plain.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Default)]
pub(crate) struct TlsContext;

#[cfg(not(feature = "tls"))]
impl TlsContext {
    pub(crate) fn new(config: &crate::server::Config) -> io::Result<Self> {
        if config.listen_tls.is_empty()
            && config.tls_cert.is_none()
            && config.tls_key.is_none()
            && config.tls_more.is_empty()
        {
            Ok(Self)
        } else {
            Err(io::Error::new(io::ErrorKind::Unsupported, NO_TLS))
        }
    }

    pub(crate) fn reload(&mut self) {
        crate::info!("SIGHUP: no TLS certificate to reload");
    }
}

#[cfg(not(feature = "tls"))]
const NO_TLS: &str = "this weir was built without TLS (cargo build --features tls)";
