#!/usr/bin/env bash
# The Autobahn|Testsuite server suite over TLS: weir (built with --features tls) on a TLS listener
# with a throwaway self-signed certificate (openssl), the fuzzing client on wss://, compared with
# autobahn/expected-server.json (the same 301 cases, 1.* to 10.*, as over plain TCP; 12.*/13.*
# excluded as there). Usage: autobahn/tls.sh [--update]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
command -v openssl >/dev/null || { echo "tls.sh: openssl is needed (apt-get install openssl)" >&2; exit 2; }
TARGET="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/tls"
(cd "$REPO" && cargo build --release --features tls --bin weir --target-dir "$TARGET")
WEIR="$TARGET/release/weir"
CERTS="$(mktemp -d "${TMPDIR:-/tmp}/weir-autobahn-tls.XXXXXX")"
trap 'rm -rf "$CERTS"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$CERTS/key.pem" -out "$CERTS/cert.pem" 2>/dev/null
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export AUTOBAHN_REPORTS="${AUTOBAHN_REPORTS:-$HERE/reports/tls}"
export AUTOBAHN_CASES="${AUTOBAHN_CASES:-[\"1.*\",\"2.*\",\"3.*\",\"4.*\",\"5.*\",\"6.*\",\"7.*\",\"9.*\",\"10.*\"]}"
export WEIR_AUTOBAHN_URL="wss://127.0.0.1:$PORT/echo"
# Not exec: the trap removes the certificate after the run.
"$HERE/server.sh" "$@" -- "$WEIR" --listen-tls "127.0.0.1:$PORT" --log-level warn \
    --tls-cert "$CERTS/cert.pem" --tls-key "$CERTS/key.pem"
