#!/usr/bin/env bash
# The Autobahn|Testsuite server suite through weir's reverse proxy: a weir echo upstream, a weir
# proxy in front of it (--route /echo=ws://upstream/echo), and the suite against the proxy,
# compared with autobahn/expected-proxy.json. Usage: autobahn/proxy.sh [--update]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
(cd "$REPO" && cargo build --release --bin weir)
WEIR="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/weir"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP="$(free_port)"
PX="$(free_port)"
export AUTOBAHN_EXPECTED="${AUTOBAHN_EXPECTED:-$HERE/expected-proxy.json}"
# Whether a valid message just before a violation is echoed through the upstream before the
# connection fails is a race (OK or NON-STRICT, both passing): only other differences count.
export AUTOBAHN_ACCEPT_NONSTRICT=1
export AUTOBAHN_REPORTS="${AUTOBAHN_REPORTS:-$HERE/reports/proxy}"
export WEIR_AUTOBAHN_URL="ws://127.0.0.1:$PX/echo"
# WEIR_SERVER_ARGS (plain flags, e.g. --compression) go to both the upstream and the proxy.
ARGS="${WEIR_SERVER_ARGS:-}"
exec "$HERE/server.sh" "$@" -- bash -c "\"$WEIR\" --listen 127.0.0.1:$UP --log-level warn $ARGS & \
exec \"$WEIR\" --listen 127.0.0.1:$PX --log-level warn $ARGS --route /echo=ws://127.0.0.1:$UP/echo"
