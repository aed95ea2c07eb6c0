//! TLS for the tests (feature `tls`): a test CA and a server certificate for `localhost` and
//! 127.0.0.1 made at test time (rcgen), weir started on a TLS listener, and a blocking rustls
//! client with timeouts for raw bytes or a WebSocket (tungstenite) over it.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{Binary, eventually};

/// A directory of its own under the system's temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("weir-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test CA and a server certificate it signed, as PEM files: `ca.pem`, `cert.pem` (the
/// server's, for `localhost` and 127.0.0.1, ECDSA P-256), `key.pem`.
pub struct Certs {
    pub dir: TempDir,
}

impl Certs {
    pub fn new() -> Self {
        Self::for_names(&["localhost", "127.0.0.1"])
    }

    /// As [`Certs::new`], the server certificate for `names` (DNS names or IP addresses).
    pub fn for_names(names: &[&str]) -> Self {
        let certs = Self { dir: TempDir::new("tls") };
        certs.issue_for(names, "ca.pem", "cert.pem", "key.pem");
        certs
    }

    /// A new CA and a certificate it signed, written to the three files named (for reloads).
    pub fn issue(&self, ca: &str, cert: &str, key: &str) {
        self.issue_for(&["localhost", "127.0.0.1"], ca, cert, key);
    }

    fn issue_for(&self, names: &[&str], ca: &str, cert: &str, key: &str) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.distinguished_name.push(DnType::CommonName, "weir test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let leaf = params.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
        std::fs::write(self.dir.path(ca), ca_cert.pem()).unwrap();
        std::fs::write(self.dir.path(cert), leaf.pem()).unwrap();
        std::fs::write(self.dir.path(key), leaf_key.serialize_pem()).unwrap();
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path("ca.pem")
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path("cert.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path("key.pem")
    }

    pub fn ca_str(&self) -> String {
        self.ca().to_str().unwrap().to_string()
    }
}

/// weir with a plain listener (`addr`) and a TLS one (`tls`), serving `args` too.
pub struct TlsBinary {
    pub bin: Binary,
    pub tls: SocketAddr,
}

impl TlsBinary {
    pub fn start(certs: &Certs, args: &[&str]) -> Self {
        let (cert, key) = (certs.cert(), certs.key());
        let mut all = vec![
            "--listen-tls",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let bin = Binary::start(&all);
        let tls = eventually(Duration::from_secs(10), || {
            bin.log().lines().find_map(|l| {
                let rest = l.split(" listening addr=").nth(1)?;
                rest.contains("tls=true").then(|| rest.split_whitespace().next()?.parse().ok())?
            })
        })
        .unwrap_or_else(|| panic!("no TLS listener; log:\n{}", bin.log()));
        Self { bin, tls }
    }
}

/// A client configuration that trusts the CA in `ca` only (ALPN http/1.1).
pub fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)] // ring's provider, as weir's (src/server/tls.rs)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `addr` for `localhost`, verified against `ca`, handshake done; reads
/// time out after 10 s.
pub fn connect(addr: SocketAddr, ca: &Path) -> TlsStream {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let session = rustls::ClientConnection::new(client_config(ca), name).unwrap();
    let mut s = rustls::StreamOwned::new(session, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).unwrap();
    }
    s
}

pub type Ws = tungstenite::WebSocket<TlsStream>;

/// A WebSocket over TLS to `wss://localhost:PORT{path}`.
pub fn ws(addr: SocketAddr, ca: &Path, path: &str) -> Ws {
    let url = format!("wss://localhost:{}{path}", addr.port());
    let (ws, resp) = tungstenite::client::client(url, connect(addr, ca)).unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

/// Echoes one text message over a new `wss://` connection to `/echo` and closes: the canary
/// that says the server still serves others.
pub fn canary(addr: SocketAddr, ca: &Path) {
    let mut ws = ws(addr, ca, "/echo");
    ws.send(tungstenite::Message::text("canary")).unwrap();
    assert_eq!(ws.read().unwrap(), tungstenite::Message::text("canary"));
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
}

/// Reads (ignoring what comes, an alert say) until the server closes, at most `within`;
/// returns how long that took.
pub fn closed_within(s: &mut TcpStream, within: Duration) -> Duration {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(start.elapsed() < within, "still open after {within:?}");
    }
}

/// A real ClientHello for `localhost`, as a client sends it first.
pub fn client_hello(ca: &Path) -> Vec<u8> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut session = rustls::ClientConnection::new(client_config(ca), name).unwrap();
    let mut out = Vec::new();
    while session.wants_write() {
        session.write_tls(&mut out).unwrap();
    }
    out
}
