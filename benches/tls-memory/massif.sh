#!/usr/bin/env bash
# Exact heap of weir's idle TLS connections, by owner: weir (a release build with --features
# tls) under valgrind's massif, a detailed snapshot before and after loadgen opens N upgraded,
# idle wss connections, and the difference per connection by allocating site (massif-diff.py).
# Requested sizes (--heap-admin=0); glibc's chunk is a request plus 8 bytes, rounded up to 16.
#
# Usage: benches/tls-memory/massif.sh [N] [WEIR_BIN]     (default 1000, target/release/weir)
# Needs valgrind (apt-get install valgrind), python3, benches/loadgen built, openssl.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-1000}
weir=${2:-$root/target/release/weir}
loadgen=$root/benches/loadgen/target/release/loadgen
tls=$root/benches/results/tls
for c in valgrind vgdb python3; do
    command -v $c >/dev/null || { echo "massif.sh: no $c (apt-get install valgrind python3)" >&2; exit 1; }
done
[ -x "$loadgen" ] || { echo "massif.sh: build benches/loadgen first (cargo build --release)" >&2; exit 1; }
bash "$root/benches/tls-cert.sh" "$tls"
tmp=$(mktemp -d)
vpid="" lpid=""
cleanup() {
    [ -z "$lpid" ] || kill "$lpid" 2>/dev/null || true
    [ -z "$vpid" ] || kill "$vpid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
valgrind --tool=massif --vgdb=yes --vgdb-error=1000000 --threshold=0 --depth=40 \
    --heap-admin=0 --massif-out-file="$tmp/massif.out" \
    "$weir" --listen-tls 127.0.0.1:0 --tls-cert "$tls/cert.pem" --tls-key "$tls/key.pem" \
    --max-connections 20000 --max-connections-per-ip 0 --rate 0 >"$tmp/weir.log" 2>&1 &
vpid=$!
port=""
for _ in $(seq 120); do
    port=$(grep -oE 'listening addr=127\.0\.0\.1:[0-9]+' "$tmp/weir.log" | grep -oE '[0-9]+$' || true)
    [ -z "$port" ] || break
    sleep 0.5
done
[ -n "$port" ] || { echo "massif.sh: weir did not start:" >&2; cat "$tmp/weir.log" >&2; exit 1; }
snapshot() { # vgdb says "sending command ..." on stderr
    vgdb --pid="$vpid" detailed_snapshot "$1" >/dev/null 2>&1 || true
    [ -s "$1" ] || { echo "massif.sh: no snapshot from vgdb" >&2; exit 1; }
}
snapshot "$tmp/before"
"$loadgen" idle --conns "$n" --pid "$vpid" --hold 600 --open-concurrency 8 \
    --url "wss://127.0.0.1:$port/echo" --ca "$tls/ca.pem" >"$tmp/loadgen.log" 2>&1 &
lpid=$!
# Every connection upgraded (weir logs `open` for each), at most 10 minutes under valgrind.
for _ in $(seq 600); do
    [ "$(grep -c ' open id=' "$tmp/weir.log" || true)" -ge "$n" ] && break
    kill -0 "$lpid" 2>/dev/null || { echo "massif.sh: loadgen failed:" >&2; cat "$tmp/loadgen.log" >&2; exit 1; }
    sleep 1
done
[ "$(grep -c ' open id=' "$tmp/weir.log" || true)" -ge "$n" ] || { echo "massif.sh: not all $n opened" >&2; exit 1; }
sleep 2 # the last handshakes' session tickets written
snapshot "$tmp/after"
python3 "$root/benches/tls-memory/massif-diff.py" "$tmp/before" "$tmp/after" "$n"
