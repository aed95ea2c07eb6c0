//! `GET /metrics`: Prometheus text exposition format 0.0.4, and the process figures it reads
//! from `/proc`.

use std::fmt::Write;

use super::ChannelFigures;
use crate::proto::ProtocolError;
use crate::server::Stats;
use crate::server::stats::{Histogram, close_code_label, open_fds, resident_memory_bytes};

/// A proxy route's counters, as `/metrics` reports them (handed in by `crate::app`).
#[derive(Debug, Default, Clone)]
pub struct RouteFigures {
    /// The path prefix it serves.
    pub prefix: String,
    /// Client connections proxied now.
    pub open: u64,
    /// Client connections proxied.
    pub connections: u64,
    /// Upstream connections that failed.
    pub upstream_failures: u64,
    /// Messages from clients to the upstream.
    pub messages_up: u64,
    /// Messages from the upstream to clients.
    pub messages_down: u64,
    /// Payload bytes from clients to the upstream.
    pub bytes_up: u64,
    /// Payload bytes from the upstream to clients.
    pub bytes_down: u64,
    /// Plain HTTP requests relayed (or answered 502/504 for the upstream).
    pub http_requests: u64,
}

/// A tunnel agent's figures, as `/metrics` and `/api/tunnels` report them (handed in by
/// `crate::app`).
#[derive(Debug, Default, Clone)]
pub struct TunnelFigures {
    /// The agent's name.
    pub name: String,
    /// Its tunnel is connected now.
    pub connected: bool,
    /// Streams open now.
    pub streams_open: u64,
    /// Bytes read from public clients that wait for their streams' credit now.
    pub waiting: u64,
    /// Streams opened since the start.
    pub streams: u64,
    /// Payload bytes from the agent's services to public clients.
    pub bytes_in: u64,
    /// Payload bytes from public clients to the agent's services.
    pub bytes_out: u64,
    /// Stream resets by cause name, either end's.
    pub resets: Vec<(&'static str, u64)>,
    /// From the controller's `OPEN` to the agent's `OPEN_OK`.
    pub open_latency: Histogram,
}

/// The tunnel families (`weir_tunnel_*`), one series per agent, appended to the exposition.
pub fn render_tunnels(tunnels: &[TunnelFigures]) -> String {
    let mut o = String::new();
    type Get = fn(&TunnelFigures) -> u64;
    let fams: [(&str, &str, &str, Get); 6] = [
        ("weir_tunnel_connected", "gauge", "1 while the agent's tunnel is connected.", |t| {
            u64::from(t.connected)
        }),
        ("weir_tunnel_streams_open", "gauge", "Streams open now, by agent.", |t| t.streams_open),
        ("weir_tunnel_streams_total", "counter", "Streams opened, by agent.", |t| t.streams),
        (
            "weir_tunnel_bytes_in_total",
            "counter",
            "Payload bytes from the agent's services.",
            |t| t.bytes_in,
        ),
        ("weir_tunnel_bytes_out_total", "counter", "Payload bytes to the agent's services.", |t| {
            t.bytes_out
        }),
        (
            "weir_tunnel_waiting_bytes",
            "gauge",
            "Bytes read from public clients that wait for their streams' credit.",
            |t| t.waiting,
        ),
    ];
    for (name, kind, help, get) in fams {
        family(&mut o, name, kind, help);
        for t in tunnels {
            sample(&mut o, name, &format!("agent=\"{}\"", label(&t.name)), get(t));
        }
    }
    let name = "weir_tunnel_resets_total";
    family(&mut o, name, "counter", "Stream resets, by agent and cause.");
    for t in tunnels {
        for &(cause, n) in &t.resets {
            sample(&mut o, name, &format!("agent=\"{}\",cause=\"{cause}\"", label(&t.name)), n);
        }
    }
    let name = "weir_tunnel_open_seconds";
    let help = "From a stream's OPEN to the agent's OPEN_OK (the service's 101 included).";
    family(&mut o, name, "histogram", help);
    let bucket = format!("{name}_bucket");
    for t in tunnels {
        let agent = format!("agent=\"{}\"", label(&t.name));
        let h = &t.open_latency;
        for (le, n) in h.cumulative() {
            sample(&mut o, &bucket, &format!("{agent},le=\"{le}\""), n);
        }
        sample(&mut o, &bucket, &format!("{agent},le=\"+Inf\""), h.count);
        sample(&mut o, &format!("{name}_sum"), &agent, h.sum);
        sample(&mut o, &format!("{name}_count"), &agent, h.count);
    }
    o
}

/// A per-route counter: its name, its help, and how to read it.
type RouteFamily = (&'static str, &'static str, fn(&RouteFigures) -> u64);

/// Writes one metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// Writes a histogram family: cumulative `_bucket` samples with `le` (`+Inf` last, equal to
/// `_count`), `_sum` and `_count`.
fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    family(out, name, "histogram", help);
    let bucket = format!("{name}_bucket");
    for (le, n) in h.cumulative() {
        sample(out, &bucket, &format!("le=\"{le}\""), n);
    }
    sample(out, &bucket, "le=\"+Inf\"", h.count);
    sample(out, &format!("{name}_sum"), "", h.sum);
    sample(out, &format!("{name}_count"), "", h.count);
}

/// A label value with `\` and `"` escaped (the exposition format's rule; a route's path may
/// hold either).
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The whole exposition. `hub` and `routes` are there when the hub and the proxy are;
/// `endpoints` are the connections open now by endpoint kind.
pub fn render(
    stats: &Stats,
    hub: Option<&ChannelFigures>,
    routes: Option<&[RouteFigures]>,
    endpoints: &[(&str, u64)],
    start_time_secs: f64,
) -> String {
    let mut o = String::with_capacity(8192);
    let counters: [(&str, &str, u64); 12] = [
        (
            "weir_connections_total",
            "WebSocket connections opened since start.",
            stats.connections_total,
        ),
        ("weir_tcp_accepted_total", "TCP connections accepted since start.", stats.tcp_accepted),
        ("weir_http_requests_total", "Plain HTTP requests answered.", stats.http_requests),
        ("weir_messages_in_total", "Data messages received.", stats.messages_in),
        (
            "weir_messages_out_total",
            "Data messages sent (a broadcast counts once per recipient).",
            stats.messages_out,
        ),
        ("weir_bytes_in_total", "Payload bytes received in data messages.", stats.bytes_in),
        (
            "weir_compressed_messages_total",
            "Messages compressed (permessage-deflate); a broadcast compressed once counts once.",
            stats.compressed_messages,
        ),
        ("weir_bytes_out_total", "Bytes written to sockets.", stats.bytes_out),
        (
            "weir_slow_reader_disconnects_total",
            "Connections closed because their queue passed the cap.",
            stats.slow_reader_disconnects,
        ),
        (
            "weir_send_timeouts_total",
            "Connections dropped because their queued output had no byte written for the send \
             timeout.",
            stats.send_timeouts,
        ),
        (
            "weir_queue_budget_disconnects_total",
            "Connections cut because all queues together passed --max-queued-total.",
            stats.queue_budget_disconnects,
        ),
        (
            "weir_pong_timeouts_total",
            "Connections dropped for a missing pong.",
            stats.pong_timeouts,
        ),
    ];
    family(&mut o, "weir_connections_open", "gauge", "WebSocket connections open now.");
    sample(&mut o, "weir_connections_open", "", stats.connections_open);
    family(
        &mut o,
        "weir_queued_bytes",
        "gauge",
        "Unsent bytes queued on all connections, and 32 for each queued piece.",
    );
    sample(&mut o, "weir_queued_bytes", "", stats.queued_bytes);
    for (name, help, value) in counters {
        family(&mut o, name, "counter", help);
        sample(&mut o, name, "", value);
    }
    family(
        &mut o,
        "weir_handshakes_rejected_total",
        "counter",
        "Requests refused, by HTTP status.",
    );
    for (status, n) in &stats.handshakes_rejected {
        sample(&mut o, "weir_handshakes_rejected_total", &format!("status=\"{status}\""), n);
    }
    family(&mut o, "weir_close_codes_sent_total", "counter", "Close frames sent, by code.");
    for (code, n) in &stats.close_codes_sent {
        sample(
            &mut o,
            "weir_close_codes_sent_total",
            &format!("code=\"{}\"", close_code_label(*code)),
            n,
        );
    }
    family(&mut o, "weir_close_codes_received_total", "counter", "Close frames received, by code.");
    for (code, n) in &stats.close_codes_received {
        sample(
            &mut o,
            "weir_close_codes_received_total",
            &format!("code=\"{}\"", close_code_label(*code)),
            n,
        );
    }
    family(
        &mut o,
        "weir_protocol_errors_total",
        "counter",
        "Protocol violations by peers, by kind.",
    );
    for (kind, n) in ProtocolError::ALL.iter().zip(stats.protocol_errors.iter()) {
        sample(&mut o, "weir_protocol_errors_total", &format!("kind=\"{}\"", kind.name()), n);
    }
    family(
        &mut o,
        "weir_endpoint_connections_open",
        "gauge",
        "Connections open now, by endpoint kind (WebSocket: hub, echo, route, exec, agent, \
         broadcast; plain HTTP: event_stream, http).",
    );
    for (kind, n) in endpoints {
        sample(&mut o, "weir_endpoint_connections_open", &format!("kind=\"{kind}\""), n);
    }
    histogram(
        &mut o,
        "weir_handshake_duration_seconds",
        "Time from accepting a connection to its 101 response being queued.",
        &stats.handshake_seconds,
    );
    histogram(
        &mut o,
        "weir_publish_delivery_seconds",
        "Time from a broadcast (a hub publish, a --broadcast message, an agent's line) being \
         queued to its last byte being written to a receiver's socket, once per receiver.",
        &stats.delivery_seconds,
    );
    let timeouts: [(&str, &str, u64); 2] = [
        (
            "weir_handshake_timeouts_total",
            "Connections dropped for not finishing the opening handshake in time.",
            stats.handshake_timeouts,
        ),
        (
            "weir_idle_timeouts_total",
            "Connections closed for sending no data message for the idle timeout.",
            stats.idle_timeouts,
        ),
    ];
    for (name, help, value) in timeouts {
        family(&mut o, name, "counter", help);
        sample(&mut o, name, "", value);
    }
    if let Some(s) = hub {
        family(&mut o, "weir_hub_channels", "gauge", "Hub channels.");
        sample(&mut o, "weir_hub_channels", "", s.channels);
        family(&mut o, "weir_hub_subscriptions", "gauge", "Hub subscriptions (WebSocket).");
        sample(&mut o, "weir_hub_subscriptions", "", s.subscriptions);
        family(&mut o, "weir_hub_published_total", "counter", "Messages published.");
        sample(&mut o, "weir_hub_published_total", "", s.published);
        family(&mut o, "weir_hub_delivered_total", "counter", "Events delivered to subscribers.");
        sample(&mut o, "weir_hub_delivered_total", "", s.delivered);
        family(
            &mut o,
            "weir_rate_limited_total",
            "counter",
            "Hub commands, HTTP publishes and channel creations refused for a rate limit.",
        );
        sample(&mut o, "weir_rate_limited_total", "", s.rate_limited);
        let (bytes, messages, evictions) =
            (s.history_bytes, s.history_messages, s.history_evictions);
        family(
            &mut o,
            "weir_history_bytes",
            "gauge",
            "Bytes of history all channels keep (counted against --history-memory).",
        );
        sample(&mut o, "weir_history_bytes", "", bytes);
        family(&mut o, "weir_history_messages", "gauge", "Messages all channels keep.");
        sample(&mut o, "weir_history_messages", "", messages);
        family(
            &mut o,
            "weir_history_evictions_total",
            "counter",
            "Messages evicted from history for --history-memory, the oldest first.",
        );
        sample(&mut o, "weir_history_evictions_total", "", evictions);
        family(
            &mut o,
            "weir_hub_errors_total",
            "counter",
            "Hub commands refused, by error code (notifications included).",
        );
        for &(code, n) in &s.errors {
            sample(&mut o, "weir_hub_errors_total", &format!("code=\"{code}\""), n);
        }
        if let Some(r) = &s.redis {
            redis(&mut o, r);
        }
    }
    if let Some(routes) = routes {
        family(
            &mut o,
            "weir_route_connections_open",
            "gauge",
            "Client connections proxied now, by route.",
        );
        for r in routes {
            let route = format!("route=\"{}\"", label(&r.prefix));
            sample(&mut o, "weir_route_connections_open", &route, r.open);
        }
        let fams: [RouteFamily; 7] = [
            ("weir_route_connections_total", "Connections proxied, by route.", |s| s.connections),
            (
                "weir_route_upstream_failures_total",
                "Upstream connections that failed, by route.",
                |s| s.upstream_failures,
            ),
            ("weir_route_messages_up_total", "Messages from clients to the upstream.", |s| {
                s.messages_up
            }),
            ("weir_route_messages_down_total", "Messages from the upstream to clients.", |s| {
                s.messages_down
            }),
            ("weir_route_bytes_up_total", "Payload bytes from clients to the upstream.", |s| {
                s.bytes_up
            }),
            ("weir_route_bytes_down_total", "Payload bytes from the upstream to clients.", |s| {
                s.bytes_down
            }),
            ("weir_route_http_requests_total", "Plain HTTP requests relayed, by route.", |s| {
                s.http_requests
            }),
        ];
        for (name, help, get) in fams {
            family(&mut o, name, "counter", help);
            for r in routes {
                sample(&mut o, name, &format!("route=\"{}\"", label(&r.prefix)), get(r));
            }
        }
    }
    family(&mut o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    sample(&mut o, "process_resident_memory_bytes", "", resident_memory_bytes().unwrap_or(0));
    family(&mut o, "process_open_fds", "gauge", "Number of open file descriptors.");
    sample(&mut o, "process_open_fds", "", open_fds().unwrap_or(0));
    family(
        &mut o,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch in seconds.",
    );
    sample(&mut o, "process_start_time_seconds", "", format!("{start_time_secs:.3}"));
    o
}

/// The Redis links' families (`--redis`).
fn redis(o: &mut String, r: &crate::redis::Figures) {
    let links = ["link=\"commands\"", "link=\"subscriber\""];
    family(o, "weir_redis_link_up", "gauge", "1 while the Redis link is connected and ready.");
    for (l, up) in links.iter().zip(r.ready) {
        sample(o, "weir_redis_link_up", l, u64::from(up));
    }
    family(
        o,
        "weir_redis_reconnects_total",
        "counter",
        "Redis links made ready again after one was lost.",
    );
    for (l, n) in links.iter().zip(r.reconnects) {
        sample(o, "weir_redis_reconnects_total", l, n);
    }
    let counters = [
        (
            "weir_redis_requests_refused_total",
            "Requests to Redis refused before they were queued (not connected, queue full).",
            r.refused,
        ),
        (
            "weir_redis_requests_lost_total",
            "Requests to Redis whose reply was lost with the link (answered unavailable).",
            r.lost,
        ),
        ("weir_redis_errors_total", "Requests Redis answered with an error.", r.errors),
        (
            "weir_redis_messages_dropped_total",
            "Pub/sub messages dropped (not in weir's form, or no longer followed).",
            r.dropped,
        ),
    ];
    for (name, help, n) in counters {
        family(o, name, "counter", help);
        sample(o, name, "", n);
    }
    family(o, "weir_redis_requests_waiting", "gauge", "Requests awaiting Redis's reply.");
    sample(o, "weir_redis_requests_waiting", "", r.waiting);
}
