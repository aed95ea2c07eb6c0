//! TLS (feature `tls`): the record layer between a connection and its TCP socket, on rustls with
//! the ring provider, and the settings both sides use: the server's certificate (re-read on
//! SIGHUP) and the roots outbound `wss://` connections are verified against ([`Dialer`]).
//!
//! The loop reads and writes a `TlsStream` through the connection's transport (`transport.rs`)
//! as it would a socket. This uses rustls's buffered `Connection`, which keeps its own record
//! buffers: its read buffer stays at 4 KiB or more while the connection is open, so an idle TLS
//! connection costs about 7.8 KB against 0.6 KB for a plain one (docs/operations.md, "TLS").
//! rustls's `unbuffered` API, with buffers leased from the runtime's pool only while data is
//! held, would cut that; it is not done yet.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::server::Config;
use crate::server::transport::Transport;
use crate::{info, warn};

/// Plaintext taken from the queue per write: one TLS record's worth, so what waits encrypted
/// in the session when the socket is full stays about one record (RFC 8446 §5.1: 2^14).
const WRITE_CHUNK: usize = 16 << 10;

/// Where Debian (and Ubuntu) keep the system's trusted roots; `SSL_CERT_FILE` overrides it.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Other systems' bundles, tried after it.
const OTHER_ROOTS: [&str; 3] =
    ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem", "/etc/ssl/ca-bundle.pem"];

/// The one crypto provider (ring: it builds with a C compiler alone; docs/operations.md).
/// rustls marks ring's provider deprecated because it has no post-quantum key exchange
/// (X25519MLKEM768); the choice and its cost are in docs/operations.md.
/// Key exchange X25519 first (ring's own order starts with P-384, several times the cost, and
/// a client sends its share for the first group).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    let mut p = rustls::crypto::ring::default_provider();
    p.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    Arc::new(p)
}

/// The answer to a plain HTTP request sent to a TLS listener (as nginx does, but without its
/// non-standard 497 status).
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 46\r\nConnection: close\r\n\r\nThis port speaks TLS: use https:// or wss://.\n";

/// A TLS session over a TCP socket.
pub(crate) struct TlsStream {
    pub(crate) tcp: TcpStream,
    session: rustls::Connection,
    peer: SocketAddr,
    /// Whether the first byte from the peer was looked at (a server's plain HTTP check).
    checked: bool,
    /// Why the session failed (logged once, kept for `on_connect_failed`).
    failure: Option<Box<str>>,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream").field("peer", &self.peer).finish_non_exhaustive()
    }
}

impl TlsStream {
    fn new(tcp: TcpStream, session: rustls::Connection) -> Self {
        let peer = tcp.peer_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let checked = matches!(session, rustls::Connection::Client(_));
        Self { tcp, session, peer, checked, failure: None }
    }

    pub(crate) fn wants_write(&self) -> bool {
        self.failure.is_none() && self.session.wants_write()
    }

    pub(crate) fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn fail(&mut self, why: String) -> io::Error {
        info!("tls failed", peer = self.peer, error = why);
        let e = io::Error::new(io::ErrorKind::InvalidData, why.clone());
        self.failure = Some(why.into_boxed_str());
        e
    }

    /// Writes encrypted records until none wait: `Err(WouldBlock)` if the socket is full.
    fn flush_tls(&mut self) -> io::Result<()> {
        while self.wants_write() {
            if self.session.write_tls(&mut self.tcp)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    pub(crate) fn flushed(&mut self) -> bool {
        match self.flush_tls() {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                self.failure = Some(e.to_string().into_boxed_str());
                true
            }
        }
    }

    /// Reads plaintext: fills `buf` unless the socket has no more now (so a short read means
    /// the socket is drained, as the loop's edge-triggered reads expect). `Ok(0)` at the end:
    /// the peer's close_notify, or TCP EOF without one (a truncation the WebSocket framing
    /// above detects: a frame cut short is never delivered).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(why) = &self.failure {
            return Err(io::Error::new(io::ErrorKind::InvalidData, why.to_string()));
        }
        if !self.checked && !self.plain_http_checked()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut filled = 0;
        while filled < buf.len() {
            match self.session.reader().read(&mut buf[filled..]) {
                // The peer's close_notify: nothing follows.
                Ok(0) => return Ok(filled),
                Ok(n) => {
                    filled += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // EOF without close_notify, reported below by read_tls returning 0.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(filled),
                Err(e) => return Err(e),
            }
            match self.session.read_tls(&mut self.tcp) {
                Ok(0) => return Ok(filled),
                Ok(_) => {
                    if let Err(e) = self.session.process_new_packets() {
                        // The alert rustls queued for the peer goes out, if the socket takes it.
                        let _ = self.session.write_tls(&mut self.tcp);
                        return Err(self.fail(e.to_string()));
                    }
                    // Handshake messages and key updates rustls owes the peer.
                    match self.flush_tls() {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }

    /// The first byte a client sends on a TLS listener is a handshake record's (22); a capital
    /// letter is a plain HTTP request, answered with a short 400 and closed. Returns whether
    /// the check is done (`false`: nothing has arrived yet).
    fn plain_http_checked(&mut self) -> io::Result<bool> {
        let mut first = [0u8; 1];
        match self.tcp.peek(&mut first) {
            Ok(0) => {}
            Ok(_) if first[0].is_ascii_uppercase() => {
                // The request is read (so closing does not reset the answer away), then
                // answered in plain text.
                let mut sink = [0u8; 4096];
                for _ in 0..4 {
                    if !matches!(self.tcp.read(&mut sink), Ok(n) if n > 0) {
                        break;
                    }
                }
                let _ = self.tcp.write(PLAIN_HTTP_ANSWER);
                let _ = self.tcp.shutdown(Shutdown::Write);
                return Err(
                    self.fail("a plain HTTP request on a TLS listener (answered 400)".into())
                );
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
        self.checked = true;
        Ok(true)
    }

    /// Encrypts up to [`WRITE_CHUNK`] of `bufs` once what was encrypted before is written.
    pub(crate) fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if let Some(why) = &self.failure {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, why.to_string()));
        }
        self.flush_tls()?;
        let mut taken = 0;
        let mut n = 0;
        for b in bufs {
            if taken >= WRITE_CHUNK {
                break;
            }
            let piece = &b[..b.len().min(WRITE_CHUNK - taken)];
            let k = self.session.writer().write(piece)?;
            taken += piece.len();
            n += k;
            if k < piece.len() {
                break;
            }
        }
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            // The session takes no more until its handshake is done.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.flush_tls() {
            Ok(()) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(n),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read && self.failure.is_none() {
            // RFC 8446 §6.1: close_notify before closing the write side.
            self.session.send_close_notify();
            let _ = self.flush_tls();
        }
        self.tcp.shutdown(how)
    }
}

impl Drop for TlsStream {
    /// A connection the loop lets go of ends with a close_notify (RFC 8446 §6.1), written if
    /// the socket takes it now (a shutdown may have sent it already: rustls sends one only).
    fn drop(&mut self) {
        if self.failure.is_none() && !self.session.is_handshaking() {
            self.session.send_close_notify();
            let _ = self.session.write_tls(&mut self.tcp);
        }
    }
}

/// Reads a PEM certificate chain and its private key into a server configuration (ALPN
/// `http/1.1`: RFC 7301 §3.1, the one protocol weir speaks over TLS).
///
/// # Errors
/// A file that cannot be read, holds no certificate or no key, or a key that does not match.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("{} and {}: {e}", cert.display(), key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How outbound `wss://` connections are made: the roots the server's certificate must chain
/// to, and the name it must carry (sent as SNI, RFC 6066 §3). Made once, used for every
/// connection (routes, `weir client`, and whatever dials next).
#[derive(Debug, Clone)]
pub struct Dialer {
    config: Arc<ClientConfig>,
}

impl Dialer {
    /// Roots from `ca` (PEM), else from the system bundle (`SSL_CERT_FILE`, else
    /// [`SYSTEM_ROOTS`], else other systems' usual places). `insecure` verifies nothing but
    /// the handshake's own signatures: for tests only, and it says so in the log.
    ///
    /// # Errors
    /// No bundle found, or a bundle with no usable certificate in it.
    pub fn new(ca: Option<&Path>, insecure: bool) -> Result<Self, String> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let mut config = if insecure {
            warn!("--insecure: the TLS peers' certificates are NOT verified; for testing only");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerifier(
                    provider().signature_verification_algorithms,
                )))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(roots(ca)?).with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { config: Arc::new(config) })
    }

    /// A client session for `name` (a DNS name, or an IP address that must be in the
    /// certificate's subject alternative names).
    ///
    /// # Errors
    /// `name` is neither.
    pub fn session(&self, name: &str) -> Result<rustls::ClientConnection, String> {
        let name = ServerName::try_from(name.to_string())
            .map_err(|_| format!("{name}: not a DNS name or an IP address"))?;
        rustls::ClientConnection::new(Arc::clone(&self.config), name).map_err(|e| e.to_string())
    }
}

fn roots(ca: Option<&Path>) -> Result<RootCertStore, String> {
    let path: PathBuf = match ca {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("SSL_CERT_FILE") {
            Some(p) => PathBuf::from(p),
            None => std::iter::once(SYSTEM_ROOTS)
                .chain(OTHER_ROOTS)
                .map(PathBuf::from)
                .find(|p| p.exists())
                .ok_or_else(|| {
                    format!("no system roots at {SYSTEM_ROOTS} (install ca-certificates, or give --tls-ca FILE)")
                })?,
        },
    };
    let certs = CertificateDer::pem_file_iter(&path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("{}: no usable certificate in it", path.display()));
    }
    Ok(store)
}

/// `--insecure`: any certificate for any name, but the handshake's signatures are still checked
/// (so the session keys are the peer's, whoever it is).
#[derive(Debug)]
struct NoVerifier(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The runtime's TLS settings: the server's (for the TLS listeners) and the dialer (made when
/// the first outbound `wss://` connection needs it, or at start-up with `--tls-ca` or
/// `--insecure`).
#[derive(Debug, Default)]
pub(crate) struct TlsContext {
    server: Option<Arc<ServerConfig>>,
    files: Option<(PathBuf, PathBuf)>,
    dialer: Option<Dialer>,
    ca: Option<PathBuf>,
    insecure: bool,
}

impl TlsContext {
    pub(crate) fn new(config: &Config) -> io::Result<Self> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let files = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) if config.listen_tls.is_empty() => None,
            _ => return Err(invalid("TLS listeners need both --tls-cert and --tls-key".into())),
        };
        let server = match &files {
            Some((c, k)) => Some(server_config(c, k).map_err(invalid)?),
            None => None,
        };
        let mut tls = Self {
            server,
            files,
            dialer: None,
            ca: config.tls_ca.clone(),
            insecure: config.tls_insecure,
        };
        if tls.ca.is_some() || tls.insecure {
            tls.dialer = Some(Dialer::new(tls.ca.as_deref(), tls.insecure).map_err(invalid)?);
        }
        Ok(tls)
    }

    /// SIGHUP: the certificate and key are read again; connections open keep the session they
    /// have, new ones get the new pair. A pair that does not load keeps the old one.
    pub(crate) fn reload(&mut self) {
        let Some((cert, key)) = &self.files else {
            info!("SIGHUP: no TLS certificate to reload");
            return;
        };
        match server_config(cert, key) {
            Ok(config) => {
                self.server = Some(config);
                info!("tls certificate reloaded", cert = cert.display(), key = key.display());
            }
            Err(e) => warn!("tls reload failed: keeping the certificate loaded before", error = e),
        }
    }

    /// A connection accepted on a listener (`tls`: one of `--listen-tls`).
    ///
    /// # Errors
    /// rustls refused a server session (only for a configuration `server_config` would not
    /// have returned).
    pub(crate) fn accept(&self, tcp: TcpStream, tls: bool) -> io::Result<Transport> {
        match (&self.server, tls) {
            (Some(config), true) => {
                let session = rustls::ServerConnection::new(Arc::clone(config))
                    .map_err(|e| io::Error::other(e.to_string()))?;
                Ok(Transport::Tls(Box::new(TlsStream::new(tcp, session.into()))))
            }
            _ => Ok(Transport::Plain(tcp)),
        }
    }

    /// An outbound connection to `name` over TLS.
    pub(crate) fn dial(&mut self, tcp: TcpStream, name: &str) -> io::Result<Transport> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        if self.dialer.is_none() {
            self.dialer = Some(Dialer::new(self.ca.as_deref(), self.insecure).map_err(invalid)?);
        }
        let Some(dialer) = &self.dialer else { return Err(io::ErrorKind::Other.into()) };
        let session = dialer.session(name).map_err(invalid)?;
        Ok(Transport::Tls(Box::new(TlsStream::new(tcp, session.into()))))
    }
}
