//! The HTTP API beside the WebSocket, on the same port: health, stats, Prometheus metrics,
//! publish, history, server-sent events, and the console page. `docs/protocol.md` lists the
//! endpoints.

pub mod metrics;

use std::cell::OnceCell;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::access::{Refusal, query_param};
use crate::json::{self, ObjectWriter};
use crate::server::{ConnId, Context, Request, Response};

pub use metrics::{RouteFigures, TunnelFigures};

/// The console page and its assets (`src/http/console/`), embedded in the binary as gzip members
/// that `build.rs` makes (nothing fetched, no build step of their own): 18.7 KB, not 54.4 KB.
const INDEX_HTML: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/index.html.gz"));
const CONSOLE_CSS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/console.css.gz"));
const CONSOLE_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/console.js.gz"));

/// A refusal by the channels: an error code (`too_large`, `rate_limited`, `forbidden`,
/// `not_found`, `invalid_params`, ...) and its message.
pub type Refused = (&'static str, String);

/// What the API serves of the pub/sub channels (the hub's, handed in by `crate::app`, so this
/// module knows no other app).
pub trait Channels {
    /// Whether `channel` is a name a publish may use.
    fn valid_name(&self, channel: &str) -> bool;
    /// Takes an HTTP publish from `addr` against the per-address rate; whether it may go on.
    fn allow_publish(&mut self, addr: IpAddr, now: Duration) -> bool;
    /// Publishes `data` (valid JSON text) on `channel` for the request `id`; its sequence
    /// number, or `None` when the answer is given later with [`Context::respond`] (`--redis`).
    ///
    /// # Errors
    /// `too_large`, `rate_limited`, `invalid_params`, `unavailable` (answered 503) or another
    /// code (answered 403).
    fn publish(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        channel: &str,
        data: &str,
        addr: IpAddr,
    ) -> Result<Option<u64>, Refused>;
    /// Reads a history for the request `id` and answers it later with [`Context::respond`]
    /// (`--redis`): `Ok(false)` when the history is answered at once instead.
    ///
    /// # Errors
    /// `invalid_params`, `unavailable`.
    fn history_later(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        channel: &str,
        since: Option<u64>,
        limit: Option<u64>,
    ) -> Result<bool, Refused>;
    /// A history too large to send whole, written to the streamed response `id` as it drains:
    /// its length, or `None` to answer with [`Channels::history_json`].
    fn history_body(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        channel: &str,
        since: Option<u64>,
        limit: Option<u64>,
    ) -> Option<usize>;
    /// A channel's history as one JSON body.
    ///
    /// # Errors
    /// `not_found` for a channel that does not exist, or a bad parameter.
    fn history_json(
        &self,
        channel: &str,
        since: Option<u64>,
        limit: Option<u64>,
    ) -> Result<String, Refused>;
    /// Makes the streamed response `id` an event stream of `channel`, replaying after `since`.
    ///
    /// # Errors
    /// `forbidden` or `rate_limited` for the channel limits, or a bad channel name.
    fn stream_subscribe(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        channel: &str,
        since: Option<u64>,
        addr: IpAddr,
    ) -> Result<(), Refused>;
    /// The channels' figures now, for `/api/stats` and `/metrics`.
    fn figures(&self) -> ChannelFigures;
}

/// The channels' figures, as `/api/stats` and `/metrics` report them.
#[derive(Debug, Default, Clone)]
pub struct ChannelFigures {
    /// Channels.
    pub channels: usize,
    /// Subscriptions (WebSocket).
    pub subscriptions: usize,
    /// Messages published.
    pub published: u64,
    /// Events delivered to subscribers.
    pub delivered: u64,
    /// Commands, HTTP publishes and channel creations refused for a rate limit.
    pub rate_limited: u64,
    /// Bytes of history all channels keep.
    pub history_bytes: usize,
    /// Messages all channels keep.
    pub history_messages: usize,
    /// Messages evicted from history for the memory budget.
    pub history_evictions: u64,
    /// Commands refused, by error code.
    pub errors: Vec<(&'static str, u64)>,
    /// With `--redis`: the links to Redis.
    pub redis: Option<crate::redis::Figures>,
}

/// Serves the HTTP endpoints.
#[derive(Debug)]
pub struct Api {
    start_time_secs: f64,
    /// The console's files inflated, each the first time a client that takes no gzip asks for
    /// it (54 KB at most): inflating on every request cost 0.2 ms a time, far more unoptimised.
    inflated: [OnceCell<Vec<u8>>; 3],
    /// Connections open by endpoint kind, for `/metrics` ([`Api::set_endpoint_counts`]).
    endpoints: Vec<(&'static str, u64)>,
    /// The proxy's routes, for `/metrics` ([`Api::set_routes`]); `None`: no proxy.
    routes: Option<Vec<RouteFigures>>,
    /// The tunnels' agents ([`Api::set_tunnels`]); `None`: no controller.
    tunnels: Option<Vec<TunnelFigures>>,
}

impl Default for Api {
    fn default() -> Self {
        let start = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        Self {
            start_time_secs: start,
            inflated: Default::default(),
            endpoints: Vec::new(),
            routes: None,
            tunnels: None,
        }
    }
}

/// `GET /api/tunnels`: `{"tunnels":[{"name":..,"connected":..,"streams_open":..,"streams":..,
/// "bytes_in":..,"bytes_out":..,"waiting":..,"resets":{"cause":n,..}},..]}`.
fn tunnels_json(tunnels: &[TunnelFigures]) -> String {
    let mut out = String::from("{\"tunnels\":[");
    for (i, t) in tunnels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Agent names are 1-64 of `A-Z a-z 0-9 . _ -`: nothing to escape.
        out.push_str(&format!(
            "{{\"name\":\"{}\",\"connected\":{},\"streams_open\":{},\"streams\":{},\
             \"bytes_in\":{},\"bytes_out\":{},\"waiting\":{},\"resets\":{{",
            t.name, t.connected, t.streams_open, t.streams, t.bytes_in, t.bytes_out, t.waiting
        ));
        for (j, (cause, n)) in t.resets.iter().enumerate() {
            let sep = if j > 0 { "," } else { "" };
            out.push_str(&format!("{sep}\"{cause}\":{n}"));
        }
        out.push_str("}}");
    }
    out.push_str("]}");
    out
}

fn json_response(status: u16, body: String) -> Response {
    Response::with_type(status, "application/json", body.into_bytes())
}

fn error(status: u16, code: &str, message: &str) -> Response {
    json_response(status, json::error_object(code, message))
}

/// A console file: the gzip member as embedded to a client that accepts gzip, inflated for one
/// that does not. Either way the answer varies by `Accept-Encoding` (RFC 9110 §12.5.5).
fn console_file(
    req: &Request<'_>,
    content_type: &str,
    gz: &[u8],
    inflated: &OnceCell<Vec<u8>>,
) -> Response {
    let mut r = if accepts_gzip(req) {
        let mut r = Response::with_type(200, content_type, gz.to_vec());
        r.headers.push(("Content-Encoding".into(), b"gzip".to_vec()));
        r
    } else {
        // build.rs made it: only a broken build gets an empty body here.
        let body = inflated.get_or_init(|| gunzip(gz).unwrap_or_default());
        Response::with_type(200, content_type, body.clone())
    };
    r.headers.push(("Vary".into(), b"Accept-Encoding".to_vec()));
    r
}

/// Whether `Accept-Encoding` takes gzip (RFC 9110 §12.5.3): `gzip` or `x-gzip` (§8.4.1.3) with a
/// weight above 0, or failing that `*` with one (§12.4.2: `q=0` is "not acceptable").
fn accepts_gzip(req: &Request<'_>) -> bool {
    let mut wildcard = false;
    for item in req.fields().tokens("accept-encoding") {
        let mut parts = item.split(|&b| b == b';').map(<[u8]>::trim_ascii);
        let coding = parts.next().unwrap_or_default();
        let weighted = parts
            .filter_map(|p| p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q=")))
            .all(|q| q.iter().any(|&c| matches!(c, b'1'..=b'9')));
        if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
            return weighted;
        }
        wildcard |= coding == b"*" && weighted;
    }
    wildcard
}

/// The data of a gzip member with no optional fields, as `build.rs` writes them (RFC 1952 §2.3):
/// a 10-byte header, the DEFLATE stream, CRC-32 and size.
fn gunzip(gz: &[u8]) -> Option<Vec<u8>> {
    let body = gz.get(10..gz.len().checked_sub(8)?)?;
    let size = u32::from_le_bytes(gz.get(gz.len() - 4..)?.try_into().ok()?) as usize;
    // A byte to spare: the inflater stops when its output is full, before the blocks that end
    // the stream.
    let mut out = vec![0; size + 1];
    let p = crate::proto::inflate::Inflater::new(15).inflate(body, &mut out).ok()?;
    out.truncate(size);
    (p.done && p.produced == size).then_some(out)
}

impl Api {
    /// The connections open now by endpoint kind, which `/metrics` reports
    /// (`weir_endpoint_connections_open`): the caller counts them, as it routes them.
    pub fn set_endpoint_counts(&mut self, counts: Vec<(&'static str, u64)>) {
        self.endpoints = counts;
    }

    /// The proxy's routes now, which `/metrics` reports (`weir_route_*`); `None` when there
    /// is no proxy.
    pub fn set_routes(&mut self, routes: Option<Vec<RouteFigures>>) {
        self.routes = routes;
    }

    /// The tunnels' agents now, which `/metrics` (`weir_tunnel_*`) and `/api/tunnels` report;
    /// `None` when weir takes no agents.
    pub fn set_tunnels(&mut self, tunnels: Option<Vec<TunnelFigures>>) {
        self.tunnels = tunnels;
    }

    /// Answers a plain HTTP request the access policy let through; its connection streams
    /// server-sent events, its peer's address counts against per-address rates.
    pub fn serve(
        &self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        hub: Option<&mut dyn Channels>,
    ) -> Response {
        let Request { id, peer, body, path, .. } = *req;
        let get = matches!(req.method, "GET" | "HEAD");
        match path {
            "/healthz" if get && ctx.draining() => return Response::text(503, "draining\n"),
            "/healthz" if get => return Response::text(200, "ok\n"),
            "/" if get => {
                let html = "text/html; charset=utf-8";
                return console_file(req, html, INDEX_HTML, &self.inflated[0]);
            }
            "/console.css" if get => {
                let css = "text/css; charset=utf-8";
                return console_file(req, css, CONSOLE_CSS, &self.inflated[1]);
            }
            "/console.js" if get => {
                let js = "text/javascript; charset=utf-8";
                return console_file(req, js, CONSOLE_JS, &self.inflated[2]);
            }
            "/metrics" if get => {
                let mut text = metrics::render(
                    ctx.stats(),
                    hub.map(|h| h.figures()).as_ref(),
                    self.routes.as_deref(),
                    &self.endpoints,
                    self.start_time_secs,
                );
                if let Some(t) = &self.tunnels {
                    text.push_str(&metrics::render_tunnels(t));
                }
                return Response::with_type(
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    text.into_bytes(),
                );
            }
            "/api/stats" if get => return json_response(200, self.stats(ctx, hub.as_deref())),
            "/api/tunnels" if get && self.tunnels.is_some() => {
                return json_response(200, tunnels_json(self.tunnels.as_deref().unwrap_or(&[])));
            }
            "/healthz" | "/" | "/metrics" | "/api/stats" | "/console.css" | "/console.js" => {
                return method_not_allowed("GET, HEAD");
            }
            _ => {}
        }
        let Some(rest) = path.strip_prefix("/api/channels/") else {
            return Response::text(404, "not found\n");
        };
        // The access policy was checked before (crate::app): without it a page of another
        // origin could publish with a form's POST, which needs no CORS preflight.
        let Some(hub) = hub else { return Response::text(404, "not found\n") };
        let Some((channel, action)) = rest.rsplit_once('/') else {
            return Response::text(404, "not found\n");
        };
        // `Err`: the parameter is there but is not a whole number.
        let number = |name: &str| {
            query_param(req.query, name).map(|v| whole_number(v).ok_or(())).transpose()
        };
        match (req.method, action) {
            ("POST", "publish") => {
                // `--rate` per client address, as per connection over WebSocket: every publish
                // takes a token, a malformed one too.
                if !hub.allow_publish(peer.ip(), ctx.now()) {
                    return too_many("too many publishes; slow down");
                }
                // `publish` takes the name as given: refuse what a WebSocket publish would.
                if !hub.valid_name(channel) {
                    return error(
                        400,
                        "invalid_params",
                        "channel names are 1-128 bytes of A-Z a-z 0-9 _ . : / @ -",
                    );
                }
                // The body is the message: any JSON, forwarded as sent.
                if let Err(e) = json::parse_with(
                    body,
                    &json::Limits { max_len: body.len().max(1), ..json::Limits::default() },
                ) {
                    return error(400, "parse_error", &e.to_string());
                }
                let data = std::str::from_utf8(body).unwrap_or_default().trim();
                match hub.publish(ctx, id, channel, data, peer.ip()) {
                    Ok(Some(seq)) => json_response(200, format!("{{\"seq\":{seq}}}")),
                    // Once Redis has answered.
                    Ok(None) => Response::deferred(),
                    Err(("too_large", m)) => error(413, "too_large", &m),
                    Err(("unavailable", m)) => unavailable(&m),
                    Err(("rate_limited", m)) => too_many(&m),
                    Err((code, m)) if code == "invalid_params" => error(400, code, &m),
                    Err((code, m)) => error(403, code, &m),
                }
            }
            ("GET" | "HEAD", "history") => {
                let (Ok(since), Ok(limit)) = (number("since"), number("limit")) else {
                    return error(400, "invalid_params", "since and limit are whole numbers");
                };
                match hub.history_later(ctx, id, channel, since, limit) {
                    Ok(true) => return Response::deferred(),
                    Ok(false) => {}
                    Err(("unavailable", m)) => return unavailable(&m),
                    Err((code, m)) => return error(400, code, &m),
                }
                // A large body is a cursor written as the socket drains (`hub/replay.rs`), not
                // a copy queued up front: a request of a few bytes must not pin megabytes.
                if req.method == "GET" {
                    if let Some(len) = hub.history_body(ctx, id, channel, since, limit) {
                        let mut r = Response::streaming(200, "application/json");
                        r.headers.push(("Content-Length".into(), len.to_string().into_bytes()));
                        return r;
                    }
                }
                match hub.history_json(channel, since, limit) {
                    Ok(body) => json_response(200, body),
                    Err(("not_found", m)) => error(404, "not_found", &m),
                    Err((code, m)) => error(400, code, &m),
                }
            }
            ("GET", "events") => {
                // Resume after Last-Event-ID (what a reconnecting EventSource sends), or ?since=.
                // A browser resends the last `id:` weir wrote, always digits: anything else is
                // not from one, and is refused rather than read as "start live".
                // Both are checked when both came; the header wins.
                let last_id = req
                    .header("last-event-id")
                    .map(|v| std::str::from_utf8(v).ok().and_then(whole_number).ok_or(()));
                let (Ok(last_id), Ok(since)) = (last_id.transpose(), number("since")) else {
                    return error(
                        400,
                        "invalid_params",
                        "since and Last-Event-ID are whole numbers",
                    );
                };
                match hub.stream_subscribe(ctx, id, channel, last_id.or(since), peer.ip()) {
                    Ok(()) => {
                        let mut r = Response::streaming(200, "text/event-stream");
                        r.headers.push(("Cache-Control".into(), b"no-cache".to_vec()));
                        r
                    }
                    Err(("forbidden", m)) => error(403, "forbidden", &m),
                    Err(("rate_limited", m)) => too_many(&m),
                    Err((code, m)) => error(400, code, &m),
                }
            }
            (_, "publish") => method_not_allowed("POST"),
            (_, "history" | "events") => method_not_allowed("GET, HEAD"),
            _ => Response::text(404, "not found\n"),
        }
    }

    fn stats(&self, ctx: &Context<'_>, hub: Option<&dyn Channels>) -> String {
        let s = ctx.stats();
        let mut out = String::new();
        let mut w = ObjectWriter::new(&mut out);
        w.u64("connections", s.connections_open)
            .u64("connections_total", s.connections_total)
            .u64("http_requests", s.http_requests)
            .u64("messages_in", s.messages_in)
            .u64("messages_out", s.messages_out)
            .u64("bytes_in", s.bytes_in)
            .u64("bytes_out", s.bytes_out)
            .u64("slow_reader_disconnects", s.slow_reader_disconnects)
            .u64("rss_bytes", crate::server::stats::resident_memory_bytes().unwrap_or(0));
        if let Some(h) = hub.map(Channels::figures) {
            w.u64("channels", h.channels as u64)
                .u64("subscriptions", h.subscriptions as u64)
                .u64("published", h.published)
                .u64("delivered", h.delivered)
                .u64("rate_limited", h.rate_limited);
            w.u64("history_bytes", h.history_bytes as u64)
                .u64("history_messages", h.history_messages as u64)
                .u64("history_evictions", h.history_evictions);
            if let Some(r) = h.redis {
                let mut o = w.object("redis");
                o.bool("commands_ready", r.ready[0])
                    .bool("subscriber_ready", r.ready[1])
                    .u64("commands_reconnects", r.reconnects[0])
                    .u64("subscriber_reconnects", r.reconnects[1])
                    .u64("refused", r.refused)
                    .u64("lost", r.lost)
                    .u64("errors", r.errors)
                    .u64("dropped", r.dropped)
                    .u64("waiting", r.waiting);
                if let Some(n) = r.nodes {
                    o.u64("nodes", n);
                }
                o.finish();
            }
        }
        w.finish();
        out
    }
}

/// A `since`, `limit` or `Last-Event-ID`: 1 to 20 ASCII digits that fit in a `u64`, nothing
/// else (`str::parse` alone would take a leading `+`).
fn whole_number(s: &str) -> Option<u64> {
    let digits = (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| s.parse().ok()).flatten()
}

/// An access refusal in the API's JSON error form.
pub fn refusal(r: Refusal) -> Response {
    let code = if r == Refusal::Origin { "forbidden" } else { "unauthorized" };
    r.with_challenge(error(r.status(), code, r.reason()))
}

/// `429` for a rate: a token comes back within a second at any `--rate` or `--channel-rate`
/// (both are whole numbers per second), so `Retry-After` (RFC 9110 §10.2.3, whole seconds) is 1.
fn too_many(message: &str) -> Response {
    let mut r = error(429, "rate_limited", message);
    r.headers.push(("Retry-After".into(), b"1".to_vec()));
    r
}

/// `503` when the channels' broker (Redis) is not there; try again in a second.
fn unavailable(message: &str) -> Response {
    let mut r = error(503, "unavailable", message);
    r.headers.push(("Retry-After".into(), b"1".to_vec()));
    r
}

fn method_not_allowed(allow: &str) -> Response {
    let mut r = Response::text(405, "method not allowed\n");
    r.headers.push(("Allow".into(), allow.as_bytes().to_vec()));
    r
}
