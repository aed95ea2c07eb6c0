#!/usr/bin/env bash
# Benchmarks weir against peer echo servers with benches/loadgen.
#
# Usage: benches/run.sh [--quick] [--tls] [--only SCENARIO[,SCENARIO...]] [--peers LIST]
#                       [--pairs N] [--duration SECS] [--out FILE] [--no-build]
#
#   --quick           duration 3 s, 1 round, idle hold 1 s: a smoke test of the script, not a
#                     measurement (writes benches/results/quick.md unless --out is given)
#   --tls             the TLS scenarios instead of the plain ones (below); --only names
#                     without the tls- prefix then mean the TLS ones (--tls --only echo64)
#   --only LIST       scenarios, comma-separated (default: all plain ones, or all TLS ones):
#                     echo64 echo16k echo1m latency64 connrate idle10k idle19500 fanout10k
#                     tls-echo64 tls-echo16k tls-connrate tls-idle10k
#                     echo1k-deflate idle10k-deflate fanout10k-redis fanout10k-redis-paced
#                     tunnel-echo64 tunnel-echo1m tunnel-latency64 tunnel-connrate
#                     tunnel-idle1k tunnel-idle10k tunnel-echo10k (these only when named: see
#                     below)
#   --peers LIST      servers, comma-separated; weir is always run (it is the A side);
#                     `--peers weir` runs weir alone. Default: every peer that is built:
#                     raw-tcp-echo tokio-tungstenite-echo fastwebsockets-echo ws-echo uws-echo
#                     (the echo scenarios), uws-pubsub (fanout10k only),
#                     tokio-tungstenite-tls-echo ws-tls-echo uws-tls-echo (the tls-
#                     scenarios), weir-dedicated weir-off uws-deflate-shared-echo
#                     uws-deflate-dedicated-echo ws-deflate-echo (the -deflate scenarios),
#                     weir-redis socketio-redis socketio (the -redis scenarios),
#                     ssh-r weir-tunnel weir-tunnel-tls (the paths of the tunnel- scenarios,
#                     beside direct, which they always run), and weir-base when
#                     WEIR_BASE_BIN is set
#   --pairs N         rounds (default 3): each round runs weir then each peer, so every
#                     comparison is A B A B ... alternated N times
#   --duration SECS   measured seconds per run (default 10; plus 1 s warm-up)
#   --out FILE        markdown report (default benches/results/latest.md)
#   --no-build        use the binaries already built
#
# fanout10k: 1 publisher and 10,000 subscribers on one channel (weir's hub at /ws, started with
# --rate 0; uws-pubsub.js, publisher on /pub), closed loop: 32 publishes in flight until every
# subscriber has them; deliveries/s, publishes/s, p50/p99 delivery latency. Only weir and
# uws-pubsub (and weir-base) run it. FANOUT_SUBS=N (environment) changes the subscriber count, e.g. 1000 for a
# smoke test. weir-base runs it too. It is in the default list: per round it adds 2 runs of about 3 s (opening 10,000
# connections) + 1 s warm-up + duration, i.e. about 1.5 min to the default run (3 x 10 s).
#
# fanout10k-redis, fanout10k-redis-paced: fan-out across processes through Redis (issue 19).
# 10,000 subscribers (FANOUT_SUBS) on one channel and 1 publisher, as fanout10k, on:
#   weir            one weir process without Redis (on CPU 0, loadgen on CPU 1, as fanout10k);
#   weir-redis      two weir processes, one per CPU (taskset -c 0 and -c 1), on one port
#                   (--reuse-port, so the kernel spreads the subscribers over them) with
#                   --redis to a redis-server of the run's own; run only when this weir has
#                   --redis (weir --help), else skipped with a note;
#   socketio-redis  two Node processes of benches/peers/socketio-pubsub.js (Socket.IO 4.8 with
#                   @socket.io/redis-adapter 8.3 on ioredis), one per CPU, on two ports, the
#                   same kind of redis-server; subscribers alternate between the two ports;
#   socketio        one such Node process without Redis (on CPU 0).
# weir's runs are driven by loadgen (--mode weir), Socket.IO's by
# benches/peers/socketio-fanout.js (socket.io-client; the same checks, flow control and RESULT
# line). redis-server runs unpinned, and so does the generator beside two servers. Every run
# reports the servers' CPU over the measured window (summed, shares of one CPU), Redis's apart,
# and deliveries per server CPU-second: with the servers, Redis and the generator sharing the
# machine's CPUs, that, not deliveries/s, compares the servers. fanout10k-redis is closed loop
# (32 publishes in flight: the most deliveries/s; its latency is mostly queueing);
# fanout10k-redis-paced publishes FANOUT_RATE/s (default 10) within the same window, so its
# p50/p99 is the time one publish takes to reach everyone: what Redis adds to a delivery.
# Not in the default list: benches/run.sh --only fanout10k-redis,fanout10k-redis-paced
# Needs redis-server (apt-get install redis-server) and the Node peers (benches/peers/build.sh).
#
# weir-base: an A/B comparison of two builds of weir. WEIR_BASE_BIN=/path/to/weir (e.g. a release
# build of the commit before a change) is run as a peer under the name weir-base, in every
# scenario weir runs (fanout10k included) with exactly the flags weir gets, so the ratios
# weir / weir-base are the change's effect, measured in the same run, alternated A B A B:
#   WEIR_BASE_BIN=/tmp/weir-base/weir benches/run.sh --only echo64,echo1m,fanout10k --peers weir-base
#
# tls-*: the echo64, echo16k, connrate and idle10k scenarios over TLS (wss://): weir built with
# --features tls and started with --listen-tls 127.0.0.1:0 --tls-cert --tls-key (no plain
# listener), the TLS peers (benches/peers/README.md) with the same certificate: one test CA and
# one ECDSA P-256 server certificate, made by benches/tls-cert.sh in benches/results/tls/ (kept
# and reused). loadgen verifies it against that CA and offers TLS 1.3, AES-128-GCM, X25519
# only, never resuming a session: tls-connrate is full handshakes (TLS + upgrade + close).
# With --tls weir is built with the feature; the plain scenarios are run by the same binary
# either way (compare them with a default build through WEIR_BASE_BIN).
#
# echo1k-deflate, idle10k-deflate: permessage-deflate (RFC 7692). echo1k-deflate: 100
# connections x 16 in flight, 1 KiB JSON text messages sent compressed and every echo inflated
# and checked (loadgen --deflate); idle10k-deflate: 10,000 idle connections whose upgrade offered
# the extension as browsers do (loadgen --offer-deflate). weir (and weir-base) run with
# --compression shared, weir-dedicated is the same binary with --compression dedicated,
# weir-off the same binary without compression; the peers are uWS.js with SHARED_COMPRESSOR |
# SHARED_DECOMPRESSOR (uws-deflate-shared-echo) and DEDICATED_COMPRESSOR | DEDICATED_DECOMPRESSOR
# (uws-deflate-dedicated-echo), and Node ws with perMessageDeflate: true (ws-deflate-echo).
# Not in the default list: benches/run.sh --only echo1k-deflate,idle10k-deflate
#
# tunnel-*: issue 18's reverse tunnels. One WebSocket echo service (TUNNEL_SERVICE, default
# tokio-tungstenite-echo from benches/peers; `weir` for weir's own /echo) reached by loadgen
# along each path: `direct` (the service's own port), `ssh-r` (OpenSSH's `ssh -N -R`: the
# script's own sshd on a free loopback port, started with `sshd -D -f` and a config, a host key
# and a user key made in a temp dir; aes128-gcm@openssh.com, no compression; the system's ssh
# configuration is never read: `ssh -F /dev/null`, `sshd -f`), `weir-tunnel` (a weir controller
# with --route /t=tunnel://bench/web, and a `weir tunnel` agent dialing it over ws:// with
# --expose web=ws://SERVICE; loadgen asks for /t/echo, the service gets /echo) and
# `weir-tunnel-tls` (the same, the agent dialing wss:// to the controller's --listen-tls and
# trusting benches/tls-cert.sh's CA). The service and both tunnel ends run on CPU 0, loadgen on
# CPU 1. Each run starts every process afresh. loadgen's
# --pid lists the tunnel's processes and the service's, so the report gives each path's CPU
# (the tunnel's two ends apart from the service: msg per tunnel CPU-second) and, for idle, the
# RSS per idle stream on each end; and latency added by each tunnel (its p50/p99 minus the
# direct path's, medians of the same run). The ssh-r path needs /usr/sbin/sshd (Debian:
# apt-get install -y openssh-server; the script makes /run/sshd, sshd's privilege-separation
# directory, if missing); weir-tunnel needs a weir with `weir tunnel`.
# Scenarios: tunnel-echo64, tunnel-echo1m, tunnel-latency64, tunnel-connrate as echo64,
# echo1m, latency64, connrate; tunnel-idle1k and tunnel-idle10k: 1,000 and 10,000 idle streams;
# tunnel-echo10k: 10,000 streams each echoing 64 B text, 1 in flight (opened 64 at a time, as
# tunnel-idle10k: ssh -R resets some of 256 at once). Every process of a path stays under the
# 20,000-descriptor limit (ulimit -n): loadgen and the public end hold 10,000 connections each,
# the agent end 10,000 to the service plus its tunnel, the service 10,000.
# Not in the default list: benches/run.sh --only tunnel-echo64,tunnel-echo1m,tunnel-latency64,\
#   tunnel-connrate,tunnel-idle1k,tunnel-idle10k --peers ssh-r,weir-tunnel,weir-tunnel-tls
#
# Each run starts the server fresh on port 0 pinned to CPU 0 (taskset -c 0), reads the port from
# its output, runs loadgen pinned to CPU 1, then stops the server (SIGTERM, then SIGKILL after
# 5 s). Medians per scenario and ratios weir / peer go to stdout and to the report. The exit
# status is 1 if any run failed (it is in the report too), 2 for a usage error.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PLAIN_SCENARIOS="echo64 echo16k echo1m latency64 connrate idle10k idle19500 fanout10k"
TLS_SCENARIOS="tls-echo64 tls-echo16k tls-connrate tls-idle10k"
DEFLATE_SCENARIOS="echo1k-deflate idle10k-deflate"
REDIS_SCENARIOS="fanout10k-redis fanout10k-redis-paced"
TUNNEL_SCENARIOS="tunnel-echo64 tunnel-echo1m tunnel-latency64 tunnel-connrate tunnel-idle1k tunnel-idle10k tunnel-echo10k"
ALL_SCENARIOS="$PLAIN_SCENARIOS $TLS_SCENARIOS $DEFLATE_SCENARIOS $REDIS_SCENARIOS $TUNNEL_SCENARIOS"
ECHO_PEERS="raw-tcp-echo tokio-tungstenite-echo fastwebsockets-echo ws-echo uws-echo"
FANOUT_PEERS="uws-pubsub"
TLS_PEERS="tokio-tungstenite-tls-echo ws-tls-echo uws-tls-echo"
DEFLATE_PEERS="weir-dedicated weir-off uws-deflate-shared-echo uws-deflate-dedicated-echo ws-deflate-echo"
REDIS_PEERS="weir-redis socketio-redis socketio"
TUNNEL_PATHS="ssh-r weir-tunnel weir-tunnel-tls"
ALL_PEERS="$ECHO_PEERS $FANOUT_PEERS $TLS_PEERS $DEFLATE_PEERS $REDIS_PEERS $TUNNEL_PATHS weir-base"
TUNNEL_SERVICE=${TUNNEL_SERVICE:-tokio-tungstenite-echo}
WEIR_BASE_BIN=${WEIR_BASE_BIN:-}
FANOUT_SUBS=${FANOUT_SUBS:-10000}
FANOUT_RATE=${FANOUT_RATE:-10}
QUICK=0
TLS=0
ONLY=""
PEERS_ARG=""
PAIRS=3
DURATION=10
HOLD=5
OUT=""
BUILD=1

die() { echo "run.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --tls) TLS=1 ;;
        --only) [ $# -ge 2 ] || die "--only needs a value"; ONLY=$2; shift ;;
        --peers) [ $# -ge 2 ] || die "--peers needs a value"; PEERS_ARG=$2; shift ;;
        --pairs) [ $# -ge 2 ] || die "--pairs needs a value"; PAIRS=$2; shift ;;
        --duration) [ $# -ge 2 ] || die "--duration needs a value"; DURATION=$2; shift ;;
        --out) [ $# -ge 2 ] || die "--out needs a value"; OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    DURATION=3; PAIRS=1; HOLD=1
    [ -n "$OUT" ] || OUT="$ROOT/benches/results/quick.md"
fi
[ -n "$OUT" ] || OUT="$ROOT/benches/results/latest.md"
[[ "$PAIRS" =~ ^[1-9][0-9]?$ ]] || die "--pairs must be 1..99"
[[ "$DURATION" =~ ^[1-9][0-9]{0,3}$ ]] || die "--duration must be 1..9999 whole seconds"
[[ "$FANOUT_SUBS" =~ ^[1-9][0-9]{0,4}$ ]] && [ "$FANOUT_SUBS" -le 19500 ] || die "FANOUT_SUBS must be 1..19500"
[[ "$FANOUT_RATE" =~ ^[1-9][0-9]{0,4}$ ]] || die "FANOUT_RATE must be 1..99999 publishes/s"

SCENARIOS=${ONLY//,/ }
if [ "$TLS" = 1 ]; then
    [ -n "$SCENARIOS" ] || SCENARIOS=$TLS_SCENARIOS
    SCENARIOS=$(for s in $SCENARIOS; do echo "tls-${s#tls-}"; done | tr '\n' ' ' | sed 's/ $//')
fi
[ -n "$SCENARIOS" ] || SCENARIOS=$PLAIN_SCENARIOS
for s in $SCENARIOS; do
    [[ " $ALL_SCENARIOS " == *" $s "* ]] || die "unknown scenario $s (known: $ALL_SCENARIOS)"
done
WANT_PEERS=""
if [ -n "$PEERS_ARG" ]; then
    for p in ${PEERS_ARG//,/ }; do
        [ "$p" = weir ] && continue
        [[ " $ALL_PEERS " == *" $p "* ]] || die "unknown peer $p (known: weir $ALL_PEERS)"
        WANT_PEERS="$WANT_PEERS $p"
    done
else
    WANT_PEERS="$ECHO_PEERS $FANOUT_PEERS $TLS_PEERS $DEFLATE_PEERS $REDIS_PEERS $TUNNEL_PATHS"
    [ -z "$WEIR_BASE_BIN" ] || WANT_PEERS="$WANT_PEERS weir-base"
fi
# Built with TLS when a tls- scenario runs.
WITH_TLS=0
[[ " $SCENARIOS " != *" tls-"* ]] || WITH_TLS=1
# The tunnel- scenarios: built with TLS too when weir's tunnel over TLS is wanted.
WITH_TUNNEL=0
[[ " $SCENARIOS " != *" tunnel-"* ]] || WITH_TUNNEL=1
[ "$WITH_TUNNEL" = 0 ] || [[ " $WANT_PEERS " != *" weir-tunnel-tls "* ]] || WITH_TLS=1
case "$TUNNEL_SERVICE" in
    weir|tokio-tungstenite-echo|fastwebsockets-echo) ;;
    *) die "TUNNEL_SERVICE must be tokio-tungstenite-echo, fastwebsockets-echo or weir" ;;
esac
if [ "$WITH_TUNNEL" = 1 ] && [[ " $WANT_PEERS " == *" ssh-r "* ]]; then
    for p in /usr/sbin/sshd ssh ssh-keygen; do
        command -v "$p" >/dev/null || die "the ssh-r path needs OpenSSH ($p is missing): apt-get install -y openssh-server openssh-client"
    done
fi
TLS_DIR="$ROOT/benches/results/tls"
if [[ " $WANT_PEERS " == *" weir-base "* ]]; then
    [ -n "$WEIR_BASE_BIN" ] || die "weir-base needs WEIR_BASE_BIN=/path/to/another/weir"
    [ -x "$WEIR_BASE_BIN" ] || die "WEIR_BASE_BIN=$WEIR_BASE_BIN is not an executable file"
fi

LG="$ROOT/benches/loadgen/target/release/loadgen"
WEIR="$ROOT/target/release/weir"
PEER_BIN="$ROOT/benches/peers/target/release"

# --- build -------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    echo "== building weir$([ "$WITH_TLS" = 0 ] || echo ' (--features tls)')" >&2
    if [ "$WITH_TLS" = 1 ]; then
        (cd "$ROOT" && cargo build --release --features tls) >&2
    else
        (cd "$ROOT" && cargo build --release) >&2
    fi
    if [ -n "$(tr ' ' '\n' <<<"$WANT_PEERS" | grep -vx -e weir-base -e weir-dedicated -e weir-off -e weir-redis -e ssh-r -e 'weir-tunnel.*' -e '')" ] ||
        { [ "$WITH_TUNNEL" = 1 ] && [ "$TUNNEL_SERVICE" != weir ]; }; then
        echo "== building peers" >&2
        if [ -x "$ROOT/benches/peers/build.sh" ] || [ -f "$ROOT/benches/peers/build.sh" ]; then
            bash "$ROOT/benches/peers/build.sh" >&2 || echo "run.sh: warning: benches/peers/build.sh failed; peers not built are skipped" >&2
        else
            echo "run.sh: warning: no benches/peers/build.sh; peers not built are skipped" >&2
        fi
    fi
    echo "== building loadgen" >&2
    (cd "$ROOT/benches/loadgen" && cargo build --release) >&2
fi
[ -x "$WEIR" ] || die "no $WEIR"
[ -x "$LG" ] || die "no $LG"
if [ "$WITH_TLS" = 1 ] || [[ " $WANT_PEERS " == *" weir-tunnel-tls "* ]]; then
    bash "$ROOT/benches/tls-cert.sh" "$TLS_DIR" || die "cannot make the TLS certificate in $TLS_DIR"
fi

# Why a -redis peer cannot run here (empty: it can).
redis_peer_missing() {
    command -v redis-server >/dev/null || { echo "no redis-server (apt-get install redis-server)"; return; }
    case "$1" in
        weir-redis) "$WEIR" --help 2>/dev/null | grep -q -- '--redis ' || echo "this weir has no --redis" ;;
        socketio*) { command -v node >/dev/null && [ -d "$ROOT/benches/peers/node_modules/socket.io" ]; } ||
                       echo "no node or no benches/peers/node_modules (benches/peers/build.sh)" ;;
    esac
}
weir_has_tunnel() {
    local usage
    usage=$("$WEIR" --help 2>&1 || true)
    grep -q 'weir tunnel' <<<"$usage" && grep -q -- --tunnel-token-file <<<"$usage"
}
peer_available() {
    case "$1" in
        weir-base) [ -x "$WEIR_BASE_BIN" ] ;;
        weir-dedicated|weir-off) [ -x "$WEIR" ] ;;
        weir-redis|socketio-redis) [ -z "$(redis_peer_missing "$1")" ] ;;
        socketio) [ -z "$(redis_peer_missing socketio)" ] ;;
        ssh-r) [ -x /usr/sbin/sshd ] ;;
        # weir's own tunnel: a weir whose usage has the `weir tunnel` command and the controller's
        # --tunnel-token-file (issue 18); over TLS, built with the tls feature too (run.sh builds
        # it so when weir-tunnel-tls is wanted; a --no-build weir without it fails to start).
        weir-tunnel) weir_has_tunnel ;;
        weir-tunnel-tls) weir_has_tunnel ;;
        *.js|ws-*|uws-*) command -v node >/dev/null && [ -f "$ROOT/benches/peers/$1.js" ] ;;
        *) [ -x "$PEER_BIN/$1" ] ;;
    esac
}
PEERS=""
SKIPPED=""
for p in $WANT_PEERS; do
    if peer_available "$p"; then
        PEERS="$PEERS $p"
    elif [[ " $REDIS_PEERS " == *" $p "* ]]; then
        # Said only when a scenario that runs them was asked for.
        [[ " $SCENARIOS " != *"-redis"* ]] || SKIPPED="$SKIPPED $p ($(redis_peer_missing "$p"))"
    else
        SKIPPED="$SKIPPED $p"
    fi
done
[ -z "$SKIPPED" ] || echo "run.sh: skipping peers not built:$SKIPPED" >&2
[[ " $SKIPPED " != *" weir-tunnel"* ]] || echo "run.sh: $WEIR has no tunnel (its --help lists no \`weir tunnel\`): weir-tunnel paths skipped" >&2
if [ "$WITH_TUNNEL" = 1 ] && [ "$TUNNEL_SERVICE" != weir ] && ! peer_available "$TUNNEL_SERVICE"; then
    die "the tunnel- scenarios' service $TUNNEL_SERVICE is not built (benches/peers/build.sh, or TUNNEL_SERVICE=weir)"
fi
# The servers of one scenario: weir, then the peers built for its kind (echo or fan-out);
# weir-base runs every scenario.
servers_for() {
    local list p out=weir
    case "$1" in
        fanout*-redis*) list=$REDIS_PEERS ;;
        # The tunnel- scenarios: the direct path, then the tunnels.
        tunnel-*)
            out=direct
            for p in $PEERS; do
                [[ " $TUNNEL_PATHS " == *" $p "* ]] && out="$out $p"
            done
            echo "$out"
            return ;;
        fanout*) list=$FANOUT_PEERS ;;
        tls-*) list=$TLS_PEERS ;;
        echo*-deflate) list=${DEFLATE_PEERS/weir-off /} ;;
        idle*-deflate) list=${DEFLATE_PEERS/weir-dedicated /} ;;
        *) list=$ECHO_PEERS ;;
    esac
    list="$list weir-base"
    for p in $PEERS; do
        [[ " $list " == *" $p "* ]] && out="$out $p"
    done
    echo "$out"
}
# Every server the chosen scenarios run, in order.
all_servers() {
    local scen
    for scen in $SCENARIOS; do servers_for "$scen"; done | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ' | sed 's/ $//'
}

TMP=$(mktemp -d /tmp/weir-bench.XXXXXX)
RESULTS="$TMP/results.tsv"
: >"$RESULTS"
SPID=""
# The -redis scenarios: the second server, redis-server, and what the generator is given.
EXTRA_PID=""
REDIS_PID=""
REDIS_PORT=""
SERVER_PIDS=""
GEN_URLS=""
cleanup() {
    local p
    for p in $SPID $EXTRA_PID $REDIS_PID; do
        if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- servers -----------------------------------------------------------------------------------
SPORT=""
# weir's flags in every scenario: the per-connection rate limit (1000 msg/s by default, on echo
# paths too) would throttle the publisher and close the echo clients; the peers have none.
WEIR_FLAGS=(--max-connections 20000 --max-connections-per-ip 0 --queue-cap 64MiB
            --max-message-size 16MiB --rate 0)
# Starts "$@" pinned to CPU $1 with its output in file $2; sets LPID, and LPORT from its first
# "listening" line (waits at most 10 s; returns 1 if there is none).
launch() {
    local cpu=$1 log=$2 i
    shift 2
    : >"$log"
    # The TLS peers take the certificate from TLS_CERT and TLS_KEY (the others ignore them).
    TLS_CERT="$TLS_DIR/cert.pem" TLS_KEY="$TLS_DIR/key.pem" taskset -c "$cpu" "$@" >"$log" 2>&1 &
    LPID=$!
    LPORT=""
    for i in $(seq 100); do
        LPORT=$(grep -oE 'listening (on |addr=)127\.0\.0\.1:[0-9]+' "$log" | head -1 | grep -oE '[0-9]+$' || true)
        [ -n "$LPORT" ] && return 0
        kill -0 "$LPID" 2>/dev/null || break
        sleep 0.1
    done
    return 1
}
# A redis-server of the run's own, on a free port, no persistence; sets REDIS_PID, REDIS_PORT.
start_redis() {
    local dir="$TMP/redis" i
    rm -rf "$dir"
    mkdir -p "$dir"
    # redis-server refuses port 0: take a free one from the kernel (another process may take
    # it in between: a few tries).
    for i in 1 2 3; do
        REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$dir" >"$dir/log" 2>&1 &
        REDIS_PID=$!
        for _ in $(seq 50); do
            [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop_pid "$REDIS_PID"
        REDIS_PID=""
    done
    echo "run.sh: redis-server did not start; its output:" >&2
    sed 's/^/    /' "$dir/log" >&2
    return 1
}
# Waits (at most 10 s) until weir's log $1 says both its Redis links (commands, subscriptions)
# are ready: it listens before it has dialled Redis, and answers `unavailable` until then.
redis_links_ready() {
    local i
    for i in $(seq 100); do
        [ "$(grep -c 'redis: link ready' "$1")" -ge 2 ] && return 0
        sleep 0.1
    done
    echo "run.sh: weir's Redis links were not ready within 10 s" >&2
    return 1
}
# The -redis servers: weir-redis (two weir on one port with --reuse-port and --redis),
# socketio-redis (two Socket.IO processes on two ports with the Redis adapter), socketio (one,
# no Redis). The first server on CPU 0, the second on CPU 1.
start_group() {
    local name=$1 redis_url=""
    if [ "$name" != socketio ]; then
        start_redis || return 1
        redis_url="redis://127.0.0.1:$REDIS_PORT"
    fi
    case "$name" in
        weir-redis)
            local w=("$WEIR" "${WEIR_FLAGS[@]}" --reuse-port --redis "$redis_url")
            launch 0 "$TMP/server.log" "${w[@]}" --listen 127.0.0.1:0 || { SPID=$LPID; return 1; }
            SPID=$LPID SPORT=$LPORT
            launch 1 "$TMP/server2.log" "${w[@]}" --listen "127.0.0.1:$SPORT" || { EXTRA_PID=$LPID; return 1; }
            EXTRA_PID=$LPID
            redis_links_ready "$TMP/server.log" && redis_links_ready "$TMP/server2.log" || return 1
            GEN_URLS="ws://127.0.0.1:$SPORT/ws" ;;
        socketio*)
            local n=("$ROOT/benches/peers/socketio-pubsub.js" 127.0.0.1:0)
            launch 0 "$TMP/server.log" env "REDIS_URL=$redis_url" node "${n[@]}" || { SPID=$LPID; return 1; }
            SPID=$LPID SPORT=$LPORT
            GEN_URLS="http://127.0.0.1:$SPORT"
            if [ "$name" = socketio-redis ]; then
                launch 1 "$TMP/server2.log" env "REDIS_URL=$redis_url" node "${n[@]}" || { EXTRA_PID=$LPID; return 1; }
                EXTRA_PID=$LPID
                GEN_URLS="$GEN_URLS,http://127.0.0.1:$LPORT"
            fi ;;
    esac
}
start_server() {
    local name=$1 scen=$2 log="$TMP/server.log" cmd ok=0
    SERVER_PIDS="" GEN_URLS=""
    case "$name" in
        weir-redis|socketio-redis|socketio)
            start_group "$name" && ok=1 ;;
        *)
            case "$name" in
                weir|weir-base|weir-dedicated|weir-off)
                      cmd=("$WEIR" --listen 127.0.0.1:0 "${WEIR_FLAGS[@]}")
                      if [[ $scen == tls-* ]]; then
                          cmd[1]=--listen-tls
                          cmd+=(--tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem")
                      fi
                      if [[ $scen == *-deflate ]]; then
                          case "$name" in
                              weir-dedicated) cmd+=(--compression dedicated) ;;
                              weir-off) ;;
                              *) cmd+=(--compression shared) ;;
                          esac
                      fi
                      [ "$name" != weir-base ] || cmd[0]=$WEIR_BASE_BIN ;;
                ws-*|uws-*) cmd=(node "$ROOT/benches/peers/$name.js" 127.0.0.1:0) ;;
                *) cmd=("$PEER_BIN/$name" 127.0.0.1:0) ;;
            esac
            launch 0 "$log" "${cmd[@]}" && ok=1
            SPID=$LPID SPORT=$LPORT ;;
    esac
    SERVER_PIDS=$SPID${EXTRA_PID:+,$EXTRA_PID}
    [ "$ok" = 0 ] || return 0
    echo "run.sh: $name did not start; its output:" >&2
    cat "$TMP"/server*.log 2>/dev/null | sed 's/^/    /' >&2
    stop_server
    return 1
}
# SIGTERM, then SIGKILL after 5 s.
stop_pid() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || true
    local i
    for i in $(seq 50); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
stop_server() {
    stop_pid "$SPID"
    stop_pid "$EXTRA_PID"
    stop_pid "$REDIS_PID"
    SPID="" EXTRA_PID="" REDIS_PID=""
    rm -f "$TMP"/server2.log
}

# --- tunnel paths (the tunnel- scenarios) -------------------------------------------------------
# A tunnel path's processes besides the service (which start_server starts as any server), in
# the order they started. MPIDS: the pids loadgen measures (--pid), ROLES: what each of them is
# (service; public: the tunnel end loadgen connects to; agent: the end beside the service).
# SPATH: the path loadgen asks for.
TUN_PIDS=()
MPIDS=""
ROLES=""
SPATH=/echo
# tun_spawn LOG CMD...: starts CMD on CPU 0 with its output in LOG; its pid joins TUN_PIDS.
tun_spawn() {
    local log=$1
    shift
    : >"$log"
    taskset -c 0 "$@" >"$log" 2>&1 &
    TUN_PIDS+=("$!")
}
# tun_wait_for LOG REGEX PID: prints the first match of REGEX in LOG, waiting up to 10 s while
# PID lives; fails if it never comes.
tun_wait_for() {
    local log=$1 re=$2 pid=$3 i m
    for i in $(seq 100); do
        m=$(grep -oE "$re" "$log" | head -1 || true)
        [ -z "$m" ] || { echo "$m"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    return 1
}
# Stops the tunnel's processes, the last started first (then stop_server stops the service).
stop_tunnel() {
    local i p n
    for ((n = ${#TUN_PIDS[@]} - 1; n >= 0; n--)); do
        p=${TUN_PIDS[$n]}
        kill -TERM "$p" 2>/dev/null || true
        for i in $(seq 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    TUN_PIDS=()
}
trap 'stop_tunnel; cleanup' EXIT
# A free loopback port (for sshd, which cannot report a port 0 it was given).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Every descendant of PID (sshd's per-connection processes).
descendants() {
    local c
    for c in $(ps -o pid= --ppid "$1"); do
        echo "$c"
        descendants "$c"
    done
}
SSH_DIR="$TMP/ssh"
# ssh -R in front of the service on SPORT: the script's own sshd on a free loopback port, with
# a host key and a user key made here (never the system's: sshd -f, ssh -F /dev/null), and
# `ssh -N -R 127.0.0.1:0:127.0.0.1:SERVICE`; SPORT becomes the port sshd opened for it.
start_ssh_r() {
    local svc_port=$SPORT port try user sshd_pid ssh_pid s
    user=$(id -un)
    if [ ! -d "$SSH_DIR" ]; then
        mkdir -m 0700 "$SSH_DIR"
        ssh-keygen -q -t ed25519 -N '' -C weir-bench-host -f "$SSH_DIR/host_key"
        ssh-keygen -q -t ed25519 -N '' -C weir-bench-user -f "$SSH_DIR/user_key"
        cp "$SSH_DIR/user_key.pub" "$SSH_DIR/authorized_keys"
    fi
    # sshd's privilege-separation directory (Debian's unit makes it when it starts sshd; a
    # machine that never started it may not have it).
    if [ ! -d /run/sshd ]; then
        mkdir -p -m 0755 /run/sshd || { echo "run.sh: sshd needs /run/sshd (run as root)" >&2; return 1; }
    fi
    for try in 1 2 3; do
        port=$(free_port)
        printf '%s\n' "ListenAddress 127.0.0.1:$port" "HostKey $SSH_DIR/host_key" "PidFile none" \
            "AuthorizedKeysFile $SSH_DIR/authorized_keys" "StrictModes no" "UsePAM no" \
            "PasswordAuthentication no" "KbdInteractiveAuthentication no" \
            "PermitRootLogin prohibit-password" "AllowTcpForwarding remote" "GatewayPorts no" \
            "AllowAgentForwarding no" "X11Forwarding no" "PermitTTY no" "PrintMotd no" \
            "Ciphers aes128-gcm@openssh.com" "Compression no" "ClientAliveInterval 0" \
            "LogLevel INFO" >"$SSH_DIR/sshd_config"
        echo "[127.0.0.1]:$port $(cat "$SSH_DIR/host_key.pub")" >"$SSH_DIR/known_hosts"
        tun_spawn "$TMP/sshd.log" /usr/sbin/sshd -D -e -f "$SSH_DIR/sshd_config"
        tun_wait_for "$TMP/sshd.log" 'Server listening on' "${TUN_PIDS[-1]}" >/dev/null && break
        # Most likely the port was taken in between: another one.
        tun_stop_last
        [ "$try" != 3 ] || return 1
    done
    tun_spawn "$TMP/ssh.log" ssh -F /dev/null -N -T -p "$port" -i "$SSH_DIR/user_key" \
        -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$SSH_DIR/known_hosts" -o Ciphers=aes128-gcm@openssh.com \
        -o Compression=no -o ExitOnForwardFailure=yes -o ServerAliveInterval=0 \
        -o ControlMaster=no -o ControlPath=none \
        -R "127.0.0.1:0:127.0.0.1:$svc_port" "$user@127.0.0.1"
    SPORT=$(tun_wait_for "$TMP/ssh.log" 'Allocated port [0-9]+' "${TUN_PIDS[-1]}") || return 1
    SPORT=${SPORT##* }
    sshd_pid=${TUN_PIDS[-2]}
    ssh_pid=${TUN_PIDS[-1]}
    # sshd's per-connection processes carry the traffic (the listener only accepts).
    for s in $(descendants "$sshd_pid"); do
        TUN_PIDS+=("$s")
        MPIDS="$MPIDS,$s"
        ROLES="$ROLES,public"
    done
    MPIDS="$MPIDS,$ssh_pid"
    ROLES="$ROLES,agent"
}
# Stops the process started last.
tun_stop_last() {
    local p=${TUN_PIDS[-1]}
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset 'TUN_PIDS[-1]'
}
# weir's tunnel in front of the service on SPORT: a controller with a tunnel:// route at /t
# and an agent exposing the service (TLS=1: the agent dials wss://); SPORT becomes the
# controller's public port, SPATH the path loadgen asks for.
start_weir_tunnel() {
    local tls=$1 svc_port=$SPORT token="$TMP/tunnel-token" ctl agent tport scheme=ws
    [ -f "$token" ] || { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token"; chmod 600 "$token"; }
    ctl=("$WEIR" --listen 127.0.0.1:0 --max-connections 20000 --max-connections-per-ip 0
         --queue-cap 64MiB --max-message-size 16MiB --rate 0
         --tunnel-token-file "$token" --route "/t=tunnel://bench/web")
    [ "$tls" = 0 ] || ctl+=(--listen-tls 127.0.0.1:0 --tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem")
    tun_spawn "$TMP/controller.log" "${ctl[@]}"
    SPORT=$(tun_wait_for "$TMP/controller.log" 'listening addr=127\.0\.0\.1:[0-9]+ tls=false' "${TUN_PIDS[-1]}") || return 1
    SPORT=${SPORT% tls=*}
    SPORT=${SPORT##*:}
    tport=$SPORT
    if [ "$tls" = 1 ]; then
        scheme=wss
        tport=$(tun_wait_for "$TMP/controller.log" 'listening addr=127\.0\.0\.1:[0-9]+ tls=true' "${TUN_PIDS[-1]}") || return 1
        tport=${tport% tls=*}
        tport=${tport##*:}
    fi
    agent=("$WEIR" tunnel "$scheme://127.0.0.1:$tport/_tunnel" --name bench --token-file "$token"
           --expose "web=ws://127.0.0.1:$svc_port")
    [ "$tls" = 0 ] || agent+=(--tls-ca "$TLS_DIR/ca.pem")
    tun_spawn "$TMP/agent.log" "${agent[@]}"
    # The agent says so once the controller took its tunnel.
    tun_wait_for "$TMP/agent.log" 'tunnel connected' "${TUN_PIDS[-1]}" >/dev/null || return 1
    MPIDS="$MPIDS,${TUN_PIDS[-2]},${TUN_PIDS[-1]}"
    ROLES="$ROLES,public,agent"
    # The controller passes the rest of the path on: /t/echo reaches the service's /echo.
    SPATH=/t/echo
}
# start_path NAME SCENARIO: the service, and the tunnel NAME in front of it (direct: none).
start_path() {
    local name=$1 scen=$2 ok=1 f
    rm -f "$TMP"/{sshd,ssh,controller,agent}.log
    SPATH=/echo
    start_server "$TUNNEL_SERVICE" "$scen" || return 1
    MPIDS=$SPID
    ROLES=service
    case "$name" in
        direct) ;;
        ssh-r) start_ssh_r || ok=0 ;;
        weir-tunnel) start_weir_tunnel 0 || ok=0 ;;
        weir-tunnel-tls) start_weir_tunnel 1 || ok=0 ;;
    esac
    [ "$ok" = 0 ] || return 0
    echo "run.sh: the $name path did not start; the output of its processes:" >&2
    for f in sshd ssh controller agent; do
        [ -s "$TMP/$f.log" ] && { echo "  $f:" >&2; sed 's/^/    /' "$TMP/$f.log" >&2; }
    done
    stop_tunnel
    stop_server
    return 1
}
# loadgen's flags for a tunnel- scenario: --pid lists every process of the path.
tunnel_extra() {
    case "${1#tunnel-}" in
        idle*) echo "--pid $MPIDS --hold $HOLD" ;;
        *) echo "--duration $DURATION --pid $MPIDS" ;;
    esac
}
# Whether every process of the tunnel path still runs.
tunnel_alive() {
    local p
    for p in "${TUN_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || return 1
    done
}
# After a failed tunnel- run: the last lines of the tunnel's logs.
tunnel_logs() {
    local f
    for f in sshd ssh controller agent; do
        [ -s "$TMP/$f.log" ] && { echo "  $f's last lines:" >&2; tail -5 "$TMP/$f.log" | sed 's/^/    /' >&2; }
    done
    return 0
}

scenario_args() {
    case "$1" in
        tls-*) echo "$(scenario_args "${1#tls-}") --ca $TLS_DIR/ca.pem" ;;
        echo64) echo "echo --conns 100 --inflight 16 --size 64 --kind text" ;;
        echo16k) echo "echo --conns 100 --inflight 4 --size 16KiB --kind binary" ;;
        # Every 8th echo compared whole, the others by header, tag and first 4 KiB with the rest
        # discarded unread: reading and comparing every byte made the generator, not the
        # server, the bottleneck at this size (docs/performance.md).
        echo1m) echo "echo --conns 10 --inflight 2 --size 1MiB --kind binary --check-every 8" ;;
        latency64) echo "latency --size 64 --kind binary" ;;
        connrate) echo "connrate --concurrency 32" ;;
        idle10k) echo "idle --conns 10000" ;;
        idle19500) echo "idle --conns 19500" ;;
        # Through a tunnel: 64 streams opening at once (ssh -R reset some of 256).
        tunnel-idle1k) echo "idle --conns 1000" ;;
        tunnel-idle10k) echo "idle --conns 10000 --open-concurrency 64" ;;
        tunnel-echo10k) echo "echo --conns 10000 --inflight 1 --size 64 --kind text --open-concurrency 64" ;;
        tunnel-*) scenario_args "${1#tunnel-}" ;;
        # 1 KiB of JSON, compressed each way (loadgen --deflate: it compresses its messages once
        # and inflates every echo with zlib).
        echo1k-deflate) echo "echo --conns 100 --inflight 16 --size 1KiB --kind text --deflate" ;;
        idle10k-deflate) echo "idle --conns 10000 --offer-deflate" ;;
        fanout10k|fanout10k-redis) echo "fanout --subs $FANOUT_SUBS --size 64 --window 32 --rate 0" ;;
        fanout10k-redis-paced) echo "fanout --subs $FANOUT_SUBS --size 64 --window 32 --rate $FANOUT_RATE" ;;
    esac
}

run_one() {
    local scen=$1 name=$2 round=$3 args extra="" path=/echo out status json scheme=ws
    if [[ $scen == tunnel-* ]]; then
        start_path "$name" "$scen" || {
            printf '%s\t%s\t%s\tfail\t%s\n' "$scen" "$name" "$round" "path did not start" >>"$RESULTS"
            return
        }
    elif ! start_server "$name" "$scen"; then
        printf '%s\t%s\t%s\tfail\t%s\n' "$scen" "$name" "$round" "server did not start" >>"$RESULTS"
        return
    fi
    args=$(scenario_args "$scen")
    [[ $scen != tls-* ]] || scheme=wss
    case "${scen#tls-}" in
        idle*) extra="--pid $SPID --hold $HOLD" ;;
        # --pids: the servers' CPU in the measured window; --redis-pid: Redis's, apart.
        fanout*) extra="--duration $DURATION --pids $SERVER_PIDS${REDIS_PID:+ --redis-pid $REDIS_PID}" ;;
        # --pid: loadgen also reports the server's CPU and its own (which side was the bottleneck).
        *) extra="--duration $DURATION --pid $SPID" ;;
    esac
    [ "$name" = raw-tcp-echo ] && extra="$extra --raw"
    # A tunnel path: every process of it measured, and the path its tunnel asks for.
    [[ $scen != tunnel-* ]] || { extra=$(tunnel_extra "$scen"); path=$SPATH; }
    case "$scen" in
        fanout*)
            case "$name" in
                weir|weir-base|weir-redis) path=/ws; extra="$extra --mode weir" ;;
                socketio*) ;;
                *) path=/sub; extra="$extra --mode uws" ;;
            esac ;;
    esac
    # shellcheck disable=SC2206
    local gen=("$LG" $args $extra --url "$scheme://127.0.0.1:$SPORT$path" --cpu 1)
    case "$name" in
        # Two servers, one per CPU: the generator is not pinned (it would share a CPU with one).
        weir-redis) gen=("$LG" $args $extra --url "$GEN_URLS" --open-concurrency 256) ;;
        # Socket.IO's own client: loadgen's flags but the URLs (and no --mode, --cpu).
        socketio*) gen=(node "$ROOT/benches/peers/socketio-fanout.js" ${args#fanout } $extra --urls "$GEN_URLS") ;;
    esac
    if out=$(timeout $((DURATION + HOLD + 400)) "${gen[@]}" 2>&1); then
        status=ok
    else
        status=fail
    fi
    if ! kill -0 "$SPID" 2>/dev/null || { [ -n "$EXTRA_PID" ] && ! kill -0 "$EXTRA_PID" 2>/dev/null; }; then
        status=fail
        out="$out
server exited during the run"
    fi
    if [[ $scen == tunnel-* ]] && ! tunnel_alive; then
        status=fail
        out="$out
a tunnel process exited during the run"
    fi
    stop_tunnel
    stop_server
    [ "$status" = ok ] || [[ $scen != tunnel-* ]] || tunnel_logs
    json=$(grep '^RESULT ' <<<"$out" | tail -1 | cut -c8- || true)
    # A tunnel path's result names the role of each pid loadgen measured.
    [[ $scen != tunnel-* ]] || [ -z "$json" ] || json="${json%\}},\"roles\":\"$ROLES\",\"service\":\"$TUNNEL_SERVICE\"}"
    printf '  %-10s %-24s round %s: %s\n' "$scen" "$name" "$round" "$(grep -v '^RESULT ' <<<"$out" | tr '\n' ' ' | cut -c1-240)" >&2
    if [ "$status" = ok ] && [ -n "$json" ]; then
        printf '%s\t%s\t%s\tok\t%s\n' "$scen" "$name" "$round" "$json" >>"$RESULTS"
    else
        printf '%s\t%s\t%s\tfail\t%s\n' "$scen" "$name" "$round" "$(grep -v '^RESULT ' <<<"$out" | tr '\t\n' '  ' | cut -c1-300)" >>"$RESULTS"
    fi
}

# --- runs --------------------------------------------------------------------------------------
echo "== servers: $(all_servers); scenarios: $SCENARIOS; rounds: $PAIRS; duration: ${DURATION}s" >&2
for scen in $SCENARIOS; do
    for round in $(seq "$PAIRS"); do
        for name in $(servers_for "$scen"); do
            run_one "$scen" "$name" "$round"
        done
    done
done

mkdir -p "$(dirname "$OUT")"
META="$TMP/meta.txt"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "uname: $(uname -a)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) CPUs)"
    echo "weir: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && [ -n "$(git status --porcelain 2>/dev/null)" ] && echo ' (dirty tree)')"
    echo "mode: $([ "$QUICK" = 1 ] && echo 'QUICK (smoke test of the script, not a measurement)' || echo full)"
    [ "$WITH_TLS" = 0 ] || echo "tls: weir built with --features tls; certificate $TLS_DIR/cert.pem (ECDSA $(openssl x509 -in "$TLS_DIR/cert.pem" -noout -text 2>/dev/null | grep -m1 -oE 'NIST CURVE: [A-Z0-9-]+' | cut -d' ' -f3)); loadgen: TLS 1.3, AES-128-GCM, X25519, no resumption"
    echo "rounds: $PAIRS; duration: ${DURATION}s + 1s warm-up; idle hold: ${HOLD}s"
    echo "servers: $(all_servers)"
    [[ " $PEERS " != *" weir-base "* ]] || echo "weir-base: $WEIR_BASE_BIN ($("$WEIR_BASE_BIN" --version 2>/dev/null || echo 'no --version'))"
    [[ " $SCENARIOS " != *" fanout"* ]] || echo "fanout subscribers: $FANOUT_SUBS$([ "$FANOUT_SUBS" = 10000 ] || echo ' (FANOUT_SUBS; fanout10k is named for 10,000)')"
    [[ " $SCENARIOS " != *" fanout10k-redis-paced "* ]] || echo "fanout10k-redis-paced: $FANOUT_RATE publishes/s (FANOUT_RATE)"
    [[ " $SCENARIOS " != *"-redis"* ]] || echo "redis: $(redis-server --version 2>/dev/null | cut -d' ' -f3); node: $(node --version 2>/dev/null); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    [ "$WITH_TUNNEL" = 0 ] || echo "tunnel paths: service $TUNNEL_SERVICE; ssh-r: $(ssh -V 2>&1 | head -1), sshd and ssh -N -R on loopback, aes128-gcm@openssh.com; the service and both tunnel ends on CPU 0, loadgen on CPU 1"
    [ -z "$SKIPPED" ] || echo "skipped (not built):$SKIPPED"
} >"$META"
python3 "$ROOT/benches/report.py" "$RESULTS" "$META" "$OUT"
echo "report written to $OUT" >&2
# A failed run (a server that did not start or exited, or an echo lost, duplicated, reordered
# or corrupted) is in the report; the exit status says so too, so that CI's smoke run fails.
failed=$(awk -F'\t' '$4 == "fail" { n++ } END { print n + 0 }' "$RESULTS")
if [ "$failed" -gt 0 ]; then
    echo "run.sh: $failed run(s) failed:" >&2
    awk -F'\t' '$4 == "fail" { print "    " $1 " / " $2 " round " $3 ": " $5 }' "$RESULTS" >&2
    exit 1
fi
