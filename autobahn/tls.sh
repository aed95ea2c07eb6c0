#!/usr/bin/env bash
# The Autobahn|Testsuite over TLS, both roles, with a throwaway self-signed certificate for
# 127.0.0.1 (openssl): the server suite against weir (built with --features tls) on a TLS
# listener, compared with autobahn/expected-server.json (the same 301 cases, 1.* to 10.*, as over
# plain TCP; 12.*/13.* excluded as there), then the client suite with weir's client role dialling
# the fuzzingserver on wss:// (verifying that certificate), compared with
# autobahn/expected-client.json. Usage: autobahn/tls.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
command -v openssl >/dev/null || { echo "tls.sh: openssl is needed (apt-get install openssl)" >&2; exit 2; }
TARGET="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/tls"
(cd "$REPO" && cargo build --release --features tls --bin weir --example autobahn_client \
    --target-dir "$TARGET")
WEIR="$TARGET/release/weir"
CERTS="$(mktemp -d "${TMPDIR:-/tmp}/weir-autobahn-tls.XXXXXX")"
trap 'rm -rf "$CERTS"' EXIT
# A CA, and a certificate for 127.0.0.1 it signed (webpki takes no CA certificate as a server's).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=weir autobahn CA" -keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$CERTS/key.pem" -out "$CERTS/req.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$CERTS/ext"
openssl x509 -req -in "$CERTS/req.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" \
    -CAcreateserial -days 2 -extfile "$CERTS/ext" -out "$CERTS/cert.pem" 2>/dev/null
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export AUTOBAHN_REPORTS="${AUTOBAHN_REPORTS:-$HERE/reports/tls}"
export AUTOBAHN_CASES="${AUTOBAHN_CASES:-[\"1.*\",\"2.*\",\"3.*\",\"4.*\",\"5.*\",\"6.*\",\"7.*\",\"9.*\",\"10.*\"]}"
export WEIR_AUTOBAHN_URL="wss://127.0.0.1:$PORT/echo"
# Not exec: the trap removes the certificate after the runs.
"$HERE/server.sh" -- "$WEIR" --listen-tls "127.0.0.1:$PORT" --log-level warn \
    --tls-cert "$CERTS/cert.pem" --tls-key "$CERTS/key.pem"
unset WEIR_AUTOBAHN_URL AUTOBAHN_CASES
AUTOBAHN_PORT="${AUTOBAHN_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}" \
AUTOBAHN_TLS_KEY="$CERTS/key.pem" AUTOBAHN_TLS_CERT="$CERTS/cert.pem" WEIR_TLS_CA="$CERTS/ca.pem" \
    "$HERE/client.sh" -- bash -c \
    "exec \"$TARGET/release/examples/autobahn_client\" \"\$AUTOBAHN_SERVER_URL\""
