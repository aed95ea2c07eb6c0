//! `tokio-tungstenite-echo` over TLS: the same echo loop on a tokio-rustls stream (rustls
//! 0.23 on the ring provider, as weir's `tls` feature). Current-thread tokio runtime, one task
//! per connection; the TLS handshake runs in that task.
//!
//! The server config is built as weir's (`src/server/tls.rs`, `server_config`): rustls's
//! defaults (TLS 1.3 and 1.2, the provider's suites and groups, two TLS 1.3 session tickets
//! per handshake on a stateful cache of 256) and ALPN `http/1.1`. The load generator offers
//! only TLS 1.3, AES-128-GCM and X25519, and never resumes.
//!
//! Usage: `TLS_CERT=cert.pem TLS_KEY=key.pem tokio-tungstenite-tls-echo [ADDR]` (default
//! `127.0.0.1:9001`; port 0 picks a free port). `TLS_CERT` is the PEM chain, leaf first;
//! `TLS_KEY` the PEM private key (PKCS#8, SEC1 or PKCS#1).

#[path = "../shared/tungstenite_echo.rs"]
mod tungstenite_echo;

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

// rustls deprecates ring's provider for lacking post-quantum key exchange; weir uses it too.
#[allow(deprecated)]
fn config() -> Result<rustls::ServerConfig, String> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} must name a PEM file"));
    let (cert_path, key_path) = (env("TLS_CERT")?, env("TLS_KEY")?);
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{cert_path}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| format!("{key_path}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{cert_path} / {key_path}: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let config =
        config().map_err(|e| std::io::Error::other(format!("tokio-tungstenite-tls-echo: {e}")))?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    tungstenite_echo::announce(listener.local_addr()?)?;
    loop {
        let (stream, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Ok(tls) = acceptor.accept(stream).await {
                let _ = tungstenite_echo::serve(tls).await;
            }
        });
    }
}
