"""Parses weir's /metrics with the real Prometheus text parser (prometheus_client) and checks
that every family the docs promise is there with HELP and TYPE. Exits non-zero on any problem.

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
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_start_time_seconds": "gauge",
}


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
    h = families.get("weir_handshake_duration_seconds")
    if h is not None:
        count = [s.value for s in h.samples if s.name.endswith("_count")]
        if not count or count[0] < 1:
            problems.append("handshake histogram has no observation (a WebSocket was opened)")
    if problems:
        sys.exit("metrics check failed:\n  " + "\n  ".join(problems))
    print(f"metrics ok: {len(families)} families parsed by prometheus_client")


if __name__ == "__main__":
    main()
