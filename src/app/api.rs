//! What the HTTP API (`crate::http`) is handed of the other apps: the hub as its
//! [`Channels`], the proxy's routes as figures. The apps stand side by side; this wiring is
//! the one place that knows both.

use std::net::IpAddr;
use std::time::Duration;

use crate::http::{ChannelFigures, Channels, Refused, RouteFigures, TunnelFigures};
use crate::hub::Hub;
use crate::hub::channel::valid_name;
use crate::proto::tunnel::ResetCause;
use crate::proxy::Proxy;
use crate::server::{ConnId, Context};
use crate::tunnel::controller::Controller;

impl Channels for Hub {
    fn valid_name(&self, channel: &str) -> bool {
        valid_name(channel)
    }

    fn allow_publish(&mut self, addr: IpAddr, now: Duration) -> bool {
        self.allow_http_publish(addr, now)
    }

    fn publish(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        channel: &str,
        data: &str,
        addr: IpAddr,
    ) -> Result<Option<u64>, Refused> {
        if self.uses_redis() {
            return self.http_publish_later(ctx, id, channel, data).map(|()| None);
        }
        self.publish_raw(ctx, channel, data, "http", addr).map(Some)
    }

    fn history_later(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        channel: &str,
        since: Option<u64>,
        limit: Option<u64>,
    ) -> Result<bool, Refused> {
        if !self.uses_redis() {
            return Ok(false);
        }
        self.http_history_later(ctx, id, channel, since, limit).map(|()| true)
    }

    fn history_body(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        channel: &str,
        since: Option<u64>,
        limit: Option<u64>,
    ) -> Option<usize> {
        Hub::history_body(self, ctx, id, channel, since, limit)
    }

    fn history_json(
        &self,
        channel: &str,
        since: Option<u64>,
        limit: Option<u64>,
    ) -> Result<String, Refused> {
        Hub::history_json(self, channel, since, limit)
    }

    fn stream_subscribe(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        channel: &str,
        since: Option<u64>,
        addr: IpAddr,
    ) -> Result<(), Refused> {
        Hub::stream_subscribe(self, ctx, id, channel, since, addr)
    }

    fn figures(&self) -> ChannelFigures {
        let s = self.stats();
        let (history_bytes, history_messages, history_evictions) = self.history_held();
        ChannelFigures {
            channels: self.channel_count(),
            subscriptions: self.subscription_count(),
            published: s.published,
            delivered: s.delivered,
            rate_limited: s.rate_limited,
            history_bytes,
            history_messages,
            history_evictions,
            errors: s.errors().collect(),
            redis: self.redis_links(),
        }
    }
}

/// Each route's counters now, for `/metrics`.
pub(super) fn route_figures(proxy: &Proxy) -> Vec<RouteFigures> {
    proxy
        .routes()
        .iter()
        .map(|r| RouteFigures {
            prefix: r.prefix.clone(),
            open: r.stats.open,
            connections: r.stats.connections,
            upstream_failures: r.stats.upstream_failures,
            messages_up: r.stats.messages_up,
            messages_down: r.stats.messages_down,
            bytes_up: r.stats.bytes_up,
            bytes_down: r.stats.bytes_down,
            http_requests: r.stats.http_requests,
        })
        .collect()
}

/// Each tunnel agent's figures now, for `/metrics` and `/api/tunnels`.
pub(super) fn tunnel_figures(controller: &Controller) -> Vec<TunnelFigures> {
    controller
        .figures()
        .into_iter()
        .map(|a| TunnelFigures {
            name: a.name,
            connected: a.connected,
            streams_open: a.streams_open,
            waiting: a.waiting,
            streams: a.stats.streams,
            bytes_in: a.stats.bytes_in,
            bytes_out: a.stats.bytes_out,
            resets: a
                .stats
                .resets
                .iter()
                .enumerate()
                .map(|(cause, &n)| (ResetCause(cause as u8).name(), n))
                .collect(),
            open_latency: a.stats.open_latency,
        })
        .collect()
}
