'use strict';
// Shared by the Node TLS peers: the certificate chain and key files named by TLS_CERT and
// TLS_KEY (PEM), as the Rust TLS peer takes them. Exits with a message when either is unset.

function tlsFiles() {
  const cert = process.env.TLS_CERT;
  const key = process.env.TLS_KEY;
  if (!cert || !key) {
    console.error('TLS_CERT and TLS_KEY must name the PEM certificate chain and private key');
    process.exit(1);
  }
  return { cert, key };
}

module.exports = { tlsFiles };
