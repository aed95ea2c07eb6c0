#!/usr/bin/env python3
"""Medians and ratios (weir / peer) from benches/run.sh's results.

Usage: report.py RESULTS.tsv META.txt OUT.md
RESULTS.tsv lines: scenario, server, round, ok|fail, RESULT json (or the error).
Prints the markdown report to stdout and writes it to OUT.md. Standard library only.
"""
import json
import statistics
import sys

# Which side was busy (loadgen --pid): a share of one CPU, no ratio.
CPU = [("server_cpu", "server CPU", None), ("loadgen_cpu", "loadgen CPU", None)]
# scenario -> [(json key, label, higher_is_better or None for a diagnostic)]
METRICS = {
    "echo64": [("msgs_per_sec", "msg/s", True), ("msgs_per_server_cpu_s", "msg per server CPU-second", True)] + CPU,
    "echo16k": [("msgs_per_sec", "msg/s", True), ("mb_per_sec_up", "MB/s each way", True),
                ("msgs_per_server_cpu_s", "msg per server CPU-second", True)] + CPU,
    "echo1m": [("msgs_per_sec", "msg/s", True), ("mb_per_sec_up", "MB/s each way", True),
               ("msgs_per_server_cpu_s", "msg per server CPU-second", True)] + CPU,
    "latency64": [("p50_us", "p50 us", False), ("p99_us", "p99 us", False), ("p999_us", "p99.9 us", False)] + CPU,
    "connrate": [("conns_per_sec", "conn/s", True), ("conns_per_server_cpu_s", "conn per server CPU-second", True)] + CPU,
    "idle10k": [("bytes_per_conn", "bytes/conn", False)],
    "idle19500": [("bytes_per_conn", "bytes/conn", False)],
    "echo1k-deflate": [("msgs_per_sec", "msg/s", True), ("msgs_per_server_cpu_s", "msg per server CPU-second", True),
                       ("wire_down_bytes", "echo payload bytes on the wire", False)] + CPU,
    "idle10k-deflate": [("bytes_per_conn", "bytes/conn", False)],
    "fanout10k": [
        ("deliveries_per_sec", "deliveries/s", True),
        ("publishes_per_sec", "publishes/s", True),
        ("p50_us", "delivery p50 us", False),
        ("p99_us", "delivery p99 us", False),
        ("deliveries_per_server_cpu_sec", "deliveries per server CPU-second", True),
    ] + CPU,
}
# Through Redis (issue 19): Redis's CPU apart from the servers'.
METRICS["fanout10k-redis"] = METRICS["fanout10k"] + [("redis_cpu", "redis CPU", None)]
METRICS["fanout10k-redis-paced"] = METRICS["fanout10k-redis"]
# The same scenarios over TLS (run.sh --tls).
for _s in ("echo64", "echo16k", "connrate", "idle10k"):
    METRICS["tls-" + _s] = METRICS[_s]
DESCRIPTION = {
    "echo64": "echo, 64 B text, 100 conns x 16 in flight",
    "echo16k": "echo, 16 KiB binary, 100 conns x 4 in flight",
    "echo1m": "echo, 1 MiB binary, 10 conns x 2 in flight",
    "latency64": "round trip, 64 B binary, 1 conn x 1 in flight",
    "connrate": "connect + upgrade + close handshake, 32 at once",
    "idle10k": "server RSS per idle connection, 10,000 conns",
    "idle19500": "server RSS per idle connection, 19,500 conns",
    "tls-echo64": "echo over TLS (wss://), 64 B text, 100 conns x 16 in flight",
    "tls-echo16k": "echo over TLS (wss://), 16 KiB binary, 100 conns x 4 in flight",
    "tls-connrate": "full TLS 1.3 handshake (no resumption) + upgrade + close handshake, 32 at once",
    "tls-idle10k": "server RSS per idle TLS connection (handshake done, upgraded), 10,000 conns",
    "echo1k-deflate": "permessage-deflate echo, 1 KiB JSON text sent compressed (440 B on the wire), "
    "100 conns x 16 in flight, every echo inflated and checked; weir --compression shared, "
    "weir-dedicated --compression dedicated",
    "idle10k-deflate": "server RSS per idle connection that agreed permessage-deflate (offered as "
    "browsers do), 10,000 conns; weir --compression shared, weir-off without compression",
    "fanout10k-redis": "fan-out, 1 publisher -> {subs} subscribers on one channel, {size} B data, closed "
    "loop ({window} publishes in flight): weir = one weir process without Redis; weir-redis = two weir "
    "processes (CPU 0 and 1) on one port (--reuse-port) through Redis; socketio-redis = two Socket.IO "
    "processes (CPU 0 and 1) with @socket.io/redis-adapter on the same kind of Redis; socketio = one "
    "Socket.IO process. server CPU is the servers' summed",
    "fanout10k-redis-paced": "as fanout10k-redis, at a fixed {rate} publishes/s (so latency is one "
    "publish's way to every subscriber, not queueing)",
    "fanout10k": "fan-out, 1 publisher -> {subs} subscribers on one channel, {size} B data, closed loop "
    "({window} publishes in flight until every subscriber has them); weir's hub (/ws, --rate 0; "
    "event frame {weir_frame} B: it wraps the data in event/channel/seq/from/ts) vs uWS.js "
    "publish (frame {peer_frame} B: the data verbatim). Only uws-pubsub (and weir-base, another "
    "build of weir) is compared here",
}


# The tunnel- scenarios (benches/run.sh): one echo service reached along each path; the columns
# are the paths, the ratios each weir tunnel / ssh -R. Keys made by tunnel_derive().
TUNNEL_PATHS = ["direct", "ssh-r", "weir-tunnel", "weir-tunnel-tls"]
TUNNEL_CPU = [
    ("public_cpu", "public end CPU (sshd / weir controller)", None),
    ("agent_cpu", "agent end CPU (ssh / weir tunnel)", None),
    ("service_cpu", "service CPU", None),
    ("loadgen_cpu", "loadgen CPU", None),
]
TUNNEL_ECHO = [("msgs_per_sec", "msg/s", True), ("msgs_per_tunnel_cpu_s", "msg per tunnel CPU-second (both ends)", True)]
TUNNEL_IDLE = [
    ("public_bytes", "RSS per idle stream, public end (sshd / weir controller)", False),
    ("agent_bytes", "RSS per idle stream, agent end (ssh / weir tunnel)", False),
    ("service_bytes", "RSS per idle connection, service", False),
]
TUNNEL_METRICS = {
    "tunnel-echo64": TUNNEL_ECHO + TUNNEL_CPU,
    "tunnel-echo1m": TUNNEL_ECHO[:1] + [("mb_per_sec_up", "MB/s each way", True)] + TUNNEL_ECHO[1:] + TUNNEL_CPU,
    "tunnel-latency64": [
        ("p50_us", "p50 us", False),
        ("p99_us", "p99 us", False),
        ("added_p50_us", "added p50 us (path - direct)", False),
        ("added_p99_us", "added p99 us (path - direct)", False),
    ] + TUNNEL_CPU,
    "tunnel-connrate": [("conns_per_sec", "conn/s", True), ("conns_per_tunnel_cpu_s", "conn per tunnel CPU-second (both ends)", True)]
    + TUNNEL_CPU,
    "tunnel-idle1k": TUNNEL_IDLE,
    "tunnel-idle10k": TUNNEL_IDLE,
    "tunnel-echo10k": TUNNEL_ECHO + TUNNEL_CPU,
}
DESCRIPTION.update({
    "tunnel-echo64": "echo along each path, 64 B text, 100 conns x 16 in flight",
    "tunnel-echo1m": "echo along each path, 1 MiB binary, 10 conns x 2 in flight",
    "tunnel-latency64": "round trip along each path, 64 B binary, 1 conn x 1 in flight; added = "
    "the path's median minus the direct path's median of the same run",
    "tunnel-connrate": "connect + upgrade + close handshake along each path, 32 at once",
    "tunnel-idle1k": "RSS per idle stream on each end (VmRSS delta / streams), 1,000 upgraded connections",
    "tunnel-idle10k": "RSS per idle stream on each end (VmRSS delta / streams), 10,000 upgraded connections",
    "tunnel-echo10k": "echo along each path, 64 B text, 10,000 conns x 1 in flight (opened 64 at a time)",
})


def tunnel_derive(data):
    """Per-role CPU and memory of one tunnel- run (loadgen's per-pid lists and run.sh's roles)."""
    roles = data.get("roles", "service").split(",")
    cpu = data.get("cpu_by_pid") or [data.get("server_cpu")]
    mem = data.get("bytes_per_conn_by_pid") or [data.get("bytes_per_conn")]
    for role in ("public", "agent", "service"):
        idx = [i for i, r in enumerate(roles) if r == role]
        if not idx:
            continue
        for src, key in ((cpu, role + "_cpu"), (mem, role + "_bytes")):
            vals = [src[i] for i in idx if i < len(src)]
            if vals and None not in vals:
                data[key] = sum(vals)
    tunnel = [data.get("public_cpu"), data.get("agent_cpu")]
    if None not in tunnel and sum(tunnel) > 0:
        for key in ("msgs_per_sec", "conns_per_sec"):
            if key in data:
                data[key.replace("_per_sec", "_per_tunnel_cpu_s")] = data[key] / sum(tunnel)


def tunnel_section(runs, fmt):
    """The tunnel- scenarios' table: a column per path, ratios weir's tunnel / ssh -R."""
    scenarios = []
    for r in runs:
        if r[0] not in scenarios:
            scenarios.append(r[0])
    paths = [p for p in TUNNEL_PATHS if any(r[1] == p for r in runs)]
    weirs = [p for p in paths if p.startswith("weir")] if "ssh-r" in paths else []

    def med(scen, path, key):
        v = [d[key] for (s, sv, _, ok, d) in runs if s == scen and sv == path and ok and d.get(key) is not None]
        return statistics.median(v) if v else None

    lines = [
        "## Tunnels (issue 18)",
        "",
        "- one echo service reached along each path; the service and both tunnel ends on CPU 0,",
        "  loadgen on CPU 1. Medians over the rounds; ratio = weir's tunnel / ssh -R. CPU: share of",
        "  one CPU in the measured window; 'per tunnel CPU-second' divides by both ends' CPU.",
        "",
    ]
    header = ["scenario", "metric"] + paths + [f"{w}/ssh-r" for w in weirs]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
    for scen in scenarios:
        direct = {k: med(scen, "direct", k) for k in ("p50_us", "p99_us")}
        for key, label, higher in TUNNEL_METRICS.get(scen, []):
            m = {}
            for p in paths:
                if key.startswith("added_"):
                    v, base = med(scen, p, key[len("added_"):]), direct.get(key[len("added_"):])
                    m[p] = v - base if v is not None and base is not None and p != "direct" else None
                else:
                    m[p] = med(scen, p, key)
            cells = []
            for p in paths:
                n = [r for r in runs if r[0] == scen and r[1] == p]
                ok = sum(1 for r in n if r[3])
                cell = "-" if m[p] is None and ok else fmt(m[p], higher is None)
                if n and ok < len(n):
                    cell += f" ({ok}/{len(n)} ok)"
                cells.append(cell if n else "-")
            ratios = []
            for w in weirs:
                a, b = m.get(w), m.get("ssh-r")
                ratios.append(f"{a / b:.3g}" if a is not None and b and higher is not None else "-")
            arrow = {True: "higher better", False: "lower better", None: "share of one CPU"}[higher]
            lines.append(f"| {scen} | {label} ({arrow}) | " + " | ".join(cells + ratios) + " |")
    lines.append("")
    return lines


def fmt(v, share=False):
    if v is None:
        return "fail"
    if share:
        return f"{v:.2f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def main():
    results_path, meta_path, out_path = sys.argv[1:4]
    runs = []  # (scenario, server, round, ok, data)
    with open(results_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 4)
            if len(parts) != 5:
                continue
            scen, server, rnd, status, rest = parts
            data = None
            if status == "ok":
                try:
                    data = json.loads(rest)
                except ValueError:
                    status, rest = "fail", "unparsable RESULT: " + rest
            if status == "ok" and isinstance(data.get("deflate"), dict):
                data.update(data["deflate"])
            if status == "ok" and scen.startswith("tunnel-"):
                tunnel_derive(data)
            if status == "ok" and data.get("server_cpu"):
                # Work per CPU-second the server spent: what it could do if the generator
                # were not the bottleneck (when the server's CPU is well under 1).
                for key in ("msgs_per_sec", "conns_per_sec"):
                    if key in data:
                        data[key.replace("_per_sec", "_per_server_cpu_s")] = data[key] / data["server_cpu"]
            runs.append((scen, server, rnd, status == "ok", data if status == "ok" else rest))
    with open(meta_path) as f:
        meta = [l.rstrip("\n") for l in f if l.strip()]

    servers, scenarios = [], []
    for scen, server, *_ in runs:
        if scen not in scenarios:
            scenarios.append(scen)
        if scen.startswith("tunnel-"):
            continue
        if server not in servers:
            servers.append(server)
    if "weir" in servers:
        servers.remove("weir")
        servers.insert(0, "weir")
    peers = [s for s in servers if s != "weir"]

    def values(scen, server, key):
        return [d[key] for (s, sv, _, ok, d) in runs if s == scen and sv == server and ok and d.get(key) is not None]

    def count(scen, server):
        all_ = [r for r in runs if r[0] == scen and r[1] == server]
        return sum(1 for r in all_ if r[3]), len(all_)

    lines = ["# weir benchmarks", ""]
    lines += [f"- {m}" for m in meta]
    lines += [] if not servers else [
        "- medians over the rounds; ratio = weir / peer. For msg/s, MB/s and conn/s higher is better;",
        "  for latency and bytes/conn lower is better. A cell `(k/n ok)` had failed runs.",
        "- server CPU / loadgen CPU: the share of one CPU each used in the measured window. A server",
        "  well under 1.00 beside a loadgen near 1.00 means the generator was the bottleneck: then",
        "  'per server CPU-second' (throughput / server CPU) compares the servers' own costs.",
        "- server on CPU 0, loadgen on CPU 1 (`taskset`); raw-tcp-echo echoes raw bytes after the 101",
        "  (loadgen `--raw`): the ceiling of the machine, not a WebSocket server.",
        "",
    ]
    header = ["scenario", "metric"] + servers + [f"weir/{p}" for p in peers]
    if servers:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
    for scen in scenarios:
        for key, label, higher in METRICS.get(scen, []):
            med = {}
            cells = []
            for sv in servers:
                v = values(scen, sv, key)
                med[sv] = statistics.median(v) if v else None
                ok, n = count(scen, sv)
                # Runs that went well but have no such figure (Redis's CPU without Redis): "-".
                cell = fmt(med[sv], higher is None) if med[sv] is not None or ok < n else "-"
                if n and ok < n:
                    cell += f" ({ok}/{n} ok)"
                cells.append(cell if n else "-")
            ratios = []
            for p in peers:
                a, b = med.get("weir"), med.get(p)
                ratios.append(f"{a / b:.3g}" if a is not None and b and higher is not None else "-")
            arrow = {True: "higher better", False: "lower better", None: "share of one CPU"}[higher]
            lines.append(f"| {scen} | {label} ({arrow}) | " + " | ".join(cells + ratios) + " |")
    tunnel_runs = [r for r in runs if r[0].startswith("tunnel-")]
    if tunnel_runs:
        lines += [""] + tunnel_section(tunnel_runs, fmt)
    lines += ["", "Scenarios:", ""]
    def describe(scen):
        text = DESCRIPTION.get(scen, scen)
        if scen.startswith("fanout"):
            ds = [(sv, d) for (s, sv, _, ok, d) in runs if s == scen and ok]
            first = ds[0][1] if ds else {}
            frame = lambda want: next((str(d.get("frame_len")) for sv, d in ds if sv.startswith("weir") == want), "?")
            subs = first.get("subs")
            text = text.format(
                subs=f"{subs:,}" if isinstance(subs, int) else "?",
                size=first.get("size", "?"),
                window=first.get("window", "?"),
                weir_frame=frame(True),
                peer_frame=frame(False),
                rate=first.get("rate", "?"),
            )
        return text

    lines += [f"- `{s}`: {describe(s)}" for s in scenarios]
    # Through Redis: the two comparisons, which are not weir / peer.
    def median(scen, server, key):
        v = values(scen, server, key)
        return statistics.median(v) if v else None
    redis_lines = []
    for scen in ("fanout10k-redis", "fanout10k-redis-paced"):
        wr, sr = (median(scen, sv, "deliveries_per_server_cpu_sec") for sv in ("weir-redis", "socketio-redis"))
        if wr and sr:
            redis_lines.append(f"- {scen}: weir-redis / socketio-redis, deliveries per server CPU-second: {wr / sr:.3g}")
        w50, r50 = median(scen, "weir", "p50_us"), median(scen, "weir-redis", "p50_us")
        if w50 is not None and r50 is not None:
            redis_lines.append(f"- {scen}: delivery p50, weir-redis - weir: {r50 - w50:+,.0f} us")
    if redis_lines:
        lines += ["", "Through Redis:", ""] + redis_lines
    lines += ["", "## All runs", ""]
    for scen in scenarios:
        key = {**METRICS, **TUNNEL_METRICS}.get(scen, [("?", "?", True)])[0][0]
        for sv in servers if not scen.startswith("tunnel-") else TUNNEL_PATHS:
            rs = [r for r in runs if r[0] == scen and r[1] == sv]
            if not rs:
                continue
            # (a direct path has no tunnel end: its service's memory)
            vals = ", ".join(fmt(r[4].get(key, r[4].get("service_bytes"))) if r[3] else "FAIL" for r in rs)
            lines.append(f"- {scen} / {sv} ({key}): {vals}")
    fails = [r for r in runs if not r[3]]
    if fails:
        lines += ["", "## Failures", ""]
        for scen, sv, rnd, _, err in fails:
            lines.append(f"- {scen} / {sv} round {rnd}: {err}")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(out_path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
