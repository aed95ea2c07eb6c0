#!/usr/bin/env bash
# Makes (or reuses) the one TLS certificate every benchmark server is given: a test CA and a
# server certificate it signed for localhost and 127.0.0.1, both ECDSA P-256 (openssl CLI).
#
# Usage: benches/tls-cert.sh DIR   writes DIR/ca.pem, DIR/cert.pem (the server's), DIR/key.pem
#                                  (PKCS#8); files already there are reused. Prints nothing.
set -euo pipefail
dir=${1:?usage: tls-cert.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -s ca.pem ] && [ -s cert.pem ] && [ -s key.pem ] && exit 0
command -v openssl >/dev/null || { echo "tls-cert.sh: no openssl (apt-get install openssl)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ca.key" 2>/dev/null
openssl req -x509 -new -key "$tmp/ca.key" -subj "/CN=weir bench CA" -days 3650 -out "$tmp/ca.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/key.pem" 2>/dev/null
openssl req -new -key "$tmp/key.pem" -subj "/CN=localhost" -out "$tmp/leaf.csr"
printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'basicConstraints=critical,CA:FALSE' \
    'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >"$tmp/ext"
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 3650 -extfile "$tmp/ext" -out "$tmp/cert.pem" 2>/dev/null
mv "$tmp/ca.pem" "$tmp/cert.pem" "$tmp/key.pem" .
