#!/usr/bin/env bash
# Start each peer on a free port, run check.js against it, stop it with SIGTERM.
# The TLS peers get one test certificate (../tls-cert.sh). Run ./build.sh first.
# Exits non-zero if any peer fails.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
# The TLS peers' certificate (TLS_CERT, TLS_KEY), and the CA check.js trusts (TLS_CA).
bash ../tls-cert.sh "$tmp/tls" || exit 1
export TLS_CERT=$tmp/tls/cert.pem TLS_KEY=$tmp/tls/key.pem TLS_CA=$tmp/tls/ca.pem

# name, check mode, command...
run() {
  local name=$1 mode=$2
  shift 2
  "$@" 127.0.0.1:0 >"$tmp/out" 2>"$tmp/err" &
  local pid=$!
  local line=""
  for _ in $(seq 100); do
    line=$(head -n1 "$tmp/out")
    [ -n "$line" ] && break
    sleep 0.1
  done
  echo "== $name: $line"
  if [[ $line =~ ^listening\ on\ (127\.0\.0\.1:[0-9]+)$ ]] && node check.js "$mode" "${BASH_REMATCH[1]}"; then
    :
  else
    echo "FAIL: $name"; cat "$tmp/err"; failed=1
  fi
  kill -TERM "$pid"
  wait "$pid"
  local rc=$?
  if [ "$(wc -l <"$tmp/out")" -ne 1 ]; then echo "FAIL: $name printed more than one line:"; cat "$tmp/out"; failed=1; fi
  if [ "$rc" -eq 143 ] || [ "$rc" -eq 0 ]; then echo "ok  stopped by SIGTERM (exit $rc)"; else echo "FAIL: $name exit $rc"; failed=1; fi
}

run raw-tcp-echo raw ./target/release/raw-tcp-echo
run tokio-tungstenite-echo ws ./target/release/tokio-tungstenite-echo
run fastwebsockets-echo ws ./target/release/fastwebsockets-echo
run ws-echo.js ws node ws-echo.js
run uws-echo.js ws node uws-echo.js
run uws-pubsub.js pubsub node uws-pubsub.js
# The permessage-deflate peers against a client that does not offer it (loadgen --deflate
# checks them compressed).
run ws-deflate-echo.js ws node ws-deflate-echo.js
run uws-deflate-shared-echo.js ws node uws-deflate-shared-echo.js
run uws-deflate-dedicated-echo.js ws node uws-deflate-dedicated-echo.js
run "uws-pubsub.js (echo paths)" ws node uws-pubsub.js
run tokio-tungstenite-tls-echo wss ./target/release/tokio-tungstenite-tls-echo
run ws-tls-echo.js wss node ws-tls-echo.js
run uws-tls-echo.js wss node uws-tls-echo.js

if [ "$failed" -eq 0 ]; then echo "all peers ok"; else echo "some peers FAILED"; fi
exit "$failed"
