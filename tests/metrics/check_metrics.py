"""Parses weir's /metrics with the real Prometheus text parser (prometheus_client) and checks
that every family the docs promise is there with HELP and TYPE, and that every histogram keeps
the format's rules (bounds rising, buckets cumulative, +Inf last and equal to _count). Exits
non-zero on any problem.

Usage: python check_metrics.py http://127.0.0.1:PORT/metrics
"""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

REQUIRED = {
    "weir_connections_open": "gauge",
    "weir_connections": "counter",  # weir_connections_total (the parser strips _total)
    "weir_handshakes_rejected": "counter",
    "weir_close_codes_sent": "counter",
    "weir_close_codes_received": "counter",
    "weir_messages_in": "counter",
    "weir_messages_out": "counter",
    "weir_bytes_in": "counter",
    "weir_bytes_out": "counter",
    "weir_slow_reader_disconnects": "counter",
    "weir_send_timeouts": "counter",
    "weir_queue_budget_disconnects": "counter",
    "weir_queued_bytes": "gauge",
    "weir_rate_limited": "counter",
    "weir_hub_channels": "gauge",
    "weir_hub_subscriptions": "gauge",
    "weir_history_bytes": "gauge",
    "weir_history_messages": "gauge",
    "weir_history_evictions": "counter",  # weir_history_evictions_total
    "weir_hub_errors": "counter",  # weir_hub_errors_total{code=...}
    "weir_handshake_timeouts": "counter",
    "weir_idle_timeouts": "counter",
    "weir_handshake_duration_seconds": "histogram",
    "weir_publish_delivery_seconds": "histogram",
    "weir_endpoint_connections_open": "gauge",  # {kind=...}
    "weir_route_connections_open": "gauge",  # {route=...}
    "weir_route_connections": "counter",  # weir_route_connections_total{route=...}
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_start_time_seconds": "gauge",
}


def histogram_problems(f):
    """The exposition rules one histogram family breaks."""
    buckets = [(float(s.labels["le"]), s.value) for s in f.samples if s.name.endswith("_bucket")]
    count = [s.value for s in f.samples if s.name.endswith("_count")]
    total = [s.value for s in f.samples if s.name.endswith("_sum")]
    if not buckets or len(count) != 1 or len(total) != 1:
        return [f"{f.name}: buckets, _sum or _count missing"]
    out = []
    if any(a[0] >= b[0] or a[1] > b[1] for a, b in zip(buckets, buckets[1:])):
        out.append(f"{f.name}: bounds not rising or counts not cumulative: {buckets}")
    if buckets[-1][0] != float("inf") or buckets[-1][1] != count[0]:
        out.append(f"{f.name}: +Inf is not last or is not _count ({buckets[-1]}, {count[0]})")
    if total[0] < 0:
        out.append(f"{f.name}: negative _sum")
    return out


def main():
    url = sys.argv[1]
    with urllib.request.urlopen(url, timeout=10) as r:
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode("utf-8")
    if not ctype.startswith("text/plain; version=0.0.4"):
        sys.exit(f"bad Content-Type: {ctype!r}")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    problems = []
    for name, kind in REQUIRED.items():
        f = families.get(name)
        if f is None:
            problems.append(f"missing family {name}")
        elif f.type != kind:
            problems.append(f"{name}: type {f.type}, expected {kind}")
        elif not f.documentation:
            problems.append(f"{name}: no HELP")
    for f in families.values():
        if f.type == "histogram":
            problems.extend(histogram_problems(f))
    # The traffic of check_metrics.sh: WebSockets opened, a message broadcast to its sender.
    for name in ["weir_handshake_duration_seconds", "weir_publish_delivery_seconds"]:
        h = families.get(name)
        count = [s.value for s in h.samples if s.name.endswith("_count")] if h else []
        if not count or count[0] < 1:
            problems.append(f"{name} has no observation")
    kinds = families.get("weir_endpoint_connections_open")
    labels = {s.labels.get("kind") for s in kinds.samples} if kinds else set()
    want = {"hub", "echo", "route", "exec", "agent", "broadcast", "event_stream", "http", "tunnel_route"}
    if labels != want:
        problems.append(f"weir_endpoint_connections_open kinds {sorted(labels)}, expected {sorted(want)}")
    if problems:
        sys.exit("metrics check failed:\n  " + "\n  ".join(problems))
    print(f"metrics ok: {len(families)} families parsed by prometheus_client")


if __name__ == "__main__":
    main()
