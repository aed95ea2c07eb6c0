//! A connection's byte stream: the TCP socket itself, or a rustls client session over it.
//!
//! TLS (`wss://`, or `--tls`) is TLS 1.3 only, with one suite and one group (AES-128-GCM,
//! X25519) so that every server is measured on the same cipher, and no session resumption:
//! every connection makes a full handshake. The server's certificate is verified against
//! `--ca FILE` (benches/tls-cert.sh makes the CA and the certificate every server gets).
//!
//! The session is rustls's buffered `ClientConnection` over the nonblocking socket: `read`
//! gives plaintext, pulling records from the socket while none is decrypted; `write` hands
//! plaintext to the session and pushes records to the socket. Records the socket did not take
//! stay in the session; [`Stream::flush`] pushes them (WouldBlock while some remain), and the
//! engines call it on every writable event.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// The client side of TLS, shared by every connection of a run.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl Tls {
    /// `host`: the URL's host (a name or an IP address the certificate must carry); `ca`: the
    /// PEM file of the roots to trust.
    pub fn new(host: &str, ca: &str) -> Result<Tls, String> {
        // rustls deprecates ring's provider for lacking post-quantum key exchange; the
        // servers measured (weir's `tls` feature included) use ring.
        #[allow(deprecated)]
        let base = ring::default_provider();
        let provider = Arc::new(CryptoProvider {
            cipher_suites: vec![ring::cipher_suite::TLS13_AES_128_GCM_SHA256],
            kx_groups: vec![ring::kx_group::X25519],
            ..base
        });
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("--ca {ca}: {e}"))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("--ca {ca}: no usable certificate in it"));
        }
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| format!("TLS config: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let bare = host
            .rsplit_once(':')
            .map_or(host, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string())
            .map_err(|e| format!("TLS server name {bare:?}: {e}"))?;
        Ok(Tls { config: Arc::new(config), name })
    }
}

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// Bytes read from the socket at once over TLS (rustls itself reads 4 KiB at a time).
const TLS_READ: usize = 64 * 1024;

pub struct TlsStream {
    sock: TcpStream,
    session: ClientConnection,
    /// Records read from the socket and not yet given to the session: `inbuf[ipos..iend]`
    /// (allocated at the first read).
    inbuf: Vec<u8>,
    ipos: usize,
    iend: usize,
    /// The server's FIN has been read.
    eof: bool,
    /// The server closed TCP without a close_notify alert first.
    pub no_close_notify: bool,
}

impl Stream {
    /// Starts a nonblocking connect; over TLS the ClientHello goes out once connected.
    pub fn connect(addr: SocketAddr, tls: Option<&Tls>) -> io::Result<Stream> {
        let sock = TcpStream::connect(addr)?;
        Ok(match tls {
            None => Stream::Plain(sock),
            Some(t) => {
                let session = ClientConnection::new(t.config.clone(), t.name.clone())
                    .map_err(io::Error::other)?;
                Stream::Tls(Box::new(TlsStream {
                    sock,
                    session,
                    inbuf: Vec::new(),
                    ipos: 0,
                    iend: 0,
                    eof: false,
                    no_close_notify: false,
                }))
            }
        })
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &mut t.sock,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Whether a read shorter than asked proves the socket drained (edge-triggered epoll then
    /// raises a new event for what comes next). Not over TLS: one record's plaintext says
    /// nothing of what else is in the socket.
    pub fn short_read_drains(&self) -> bool {
        !self.is_tls()
    }

    /// The server ended TLS with TCP alone (no close_notify alert).
    pub fn no_close_notify(&self) -> bool {
        matches!(self, Stream::Tls(t) if t.no_close_notify)
    }

    /// "TLSv1_3 TLS13_AES_128_GCM_SHA256 X25519" once the handshake is done.
    pub fn describe(&self) -> Option<String> {
        let Stream::Tls(t) = self else { return None };
        let s = &t.session;
        let suite = s.negotiated_cipher_suite()?;
        let group = s
            .negotiated_key_exchange_group()
            .map_or("?".to_string(), |g| format!("{:?}", g.name()));
        Some(format!("{:?} {:?} {group}", s.protocol_version()?, suite.suite()))
    }
}

impl TlsStream {
    /// Pushes the session's records to the socket; WouldBlock while some remain.
    fn push(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            if self.session.write_tls(&mut self.sock)? == 0 {
                return Err(ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// After a write to the session: push what the socket takes now, the rest on `flush`.
    fn push_some(&mut self) -> io::Result<()> {
        match self.push() {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => Ok(()),
            r => r,
        }
    }

    /// The rest of the TCP stream after the server's close_notify, up to its FIN.
    fn read_to_fin(&mut self) -> io::Result<usize> {
        if self.ipos < self.iend {
            return Err(io::Error::new(ErrorKind::InvalidData, "bytes after the TLS close_notify"));
        }
        let mut scratch = [0u8; 256];
        loop {
            match self.sock.read(&mut scratch) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(_) => {
                    return Err(io::Error::new(
                        ErrorKind::InvalidData,
                        "bytes after the TLS close_notify",
                    ));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for Stream {
    /// Plaintext; `Ok(0)` once the server's FIN is read (after its close_notify, or without
    /// one: `no_close_notify` says which).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = match self {
            Stream::Plain(s) => return s.read(buf),
            Stream::Tls(t) => t,
        };
        if t.eof {
            return Ok(0);
        }
        loop {
            match t.session.reader().read(buf) {
                Ok(0) => return t.read_to_fin(),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    t.no_close_notify = true;
                    t.eof = true;
                    return Ok(0);
                }
                Err(e) => return Err(e),
            }
            // No plaintext decrypted: records from the socket (its WouldBlock ends the read).
            if t.ipos == t.iend {
                if t.inbuf.is_empty() {
                    t.inbuf = vec![0; TLS_READ];
                }
                match t.sock.read(&mut t.inbuf) {
                    Ok(n) => (t.ipos, t.iend) = (0, n),
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            // An empty slice (the socket's EOF) tells the session the peer closed TCP.
            let mut records = &t.inbuf[t.ipos..t.iend];
            t.ipos += t.session.read_tls(&mut records)?;
            let processed = t.session.process_new_packets();
            // Handshake messages, or the alert about the error.
            t.push_some()?;
            processed.map_err(|e| io::Error::new(ErrorKind::InvalidData, format!("TLS: {e}")))?;
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let t = match self {
            Stream::Plain(s) => return s.write_vectored(bufs),
            Stream::Tls(t) => t,
        };
        let mut n = t.session.writer().write_vectored(bufs)?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            // The session's buffer is full: make room, then try once more.
            t.push()?;
            n = t.session.writer().write_vectored(bufs)?;
            if n == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
        }
        t.push_some()?;
        Ok(n)
    }

    /// Pushes the records the socket has not taken yet; WouldBlock while some remain.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(t) => t.push(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    use mio::{Events, Interest, Poll, Token};
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use rustls::pki_types::PrivateKeyDer;

    /// A CA (PEM file in a temporary directory) and a server config for 127.0.0.1 it signed.
    fn certs(tag: &str) -> (std::path::PathBuf, Arc<rustls::ServerConfig>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let path =
            std::env::temp_dir().join(format!("loadgen-test-ca-{tag}-{}.pem", std::process::id()));
        std::fs::write(&path, ca.pem()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        (path, Arc::new(config))
    }

    /// A blocking TLS server for one connection: echoes what it reads until it has `n` bytes,
    /// then ends TLS with a close_notify (or not) and closes TCP.
    fn serve_one(
        config: Arc<rustls::ServerConfig>,
        n: usize,
        close_notify: bool,
    ) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut tls =
                rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp);
            let mut got = 0;
            let mut buf = [0u8; 4096];
            while got < n {
                let Ok(k) = tls.read(&mut buf) else { return };
                if k == 0 {
                    return;
                }
                tls.write_all(&buf[..k]).unwrap();
                got += k;
            }
            if close_notify {
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        (addr, handle)
    }

    /// Sends `data` over a [`Stream`] and reads until EOF, driven by a mio poll; `Err` on a
    /// stream error or after 10 s.
    fn exchange(addr: SocketAddr, tls: &Tls, data: &[u8]) -> Result<(Vec<u8>, Stream), String> {
        let mut s = Stream::connect(addr, Some(tls)).map_err(|e| e.to_string())?;
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(s.tcp_mut(), Token(0), Interest::READABLE | Interest::WRITABLE)
            .unwrap();
        let mut events = Events::with_capacity(8);
        let (mut sent, mut got) = (0, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 1000];
        while Instant::now() < deadline {
            poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
            if sent < data.len() {
                match s.write(&data[sent..]) {
                    Ok(k) => sent += k,
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            match s.flush() {
                Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => {
                    return Err(e.to_string());
                }
                _ => {}
            }
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return Ok((got, s)),
                    Ok(k) => got.extend_from_slice(&buf[..k]),
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) =>
                    {
                        break;
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        Err(format!("timed out with {} of {} bytes sent, {} back", sent, data.len(), got.len()))
    }

    #[test]
    fn tls_echo_then_eof_with_and_without_close_notify() {
        let (ca, config) = certs("echo");
        let tls = Tls::new("127.0.0.1:1", ca.to_str().unwrap()).unwrap();
        // More than one 16 KiB record, and more than one 64 KiB socket read.
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        for close_notify in [true, false] {
            let (addr, server) = serve_one(config.clone(), data.len(), close_notify);
            let (got, s) = exchange(addr, &tls, &data).unwrap();
            server.join().unwrap();
            assert!(got == data, "echo differs ({} of {} bytes)", got.len(), data.len());
            assert_eq!(s.no_close_notify(), !close_notify);
            assert_eq!(s.describe().as_deref(), Some("TLSv1_3 TLS13_AES_128_GCM_SHA256 X25519"));
        }
        let _ = std::fs::remove_file(ca);
    }

    #[test]
    fn tls_refuses_a_server_the_ca_did_not_sign() {
        let (ca, _) = certs("ours");
        let (other_ca, config) = certs("theirs");
        let (addr, server) = serve_one(config, 1, true);
        let tls = Tls::new("127.0.0.1:1", ca.to_str().unwrap()).unwrap();
        let Err(err) = exchange(addr, &tls, b"x") else {
            panic!("a certificate from another CA was accepted")
        };
        // (Both CAs have rcgen's default name: the signature is what fails.)
        assert!(err.contains("invalid peer certificate"), "{err}");
        let _ = server.join();
        let _ = (std::fs::remove_file(ca), std::fs::remove_file(other_ca));
    }
}
