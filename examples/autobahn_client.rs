//! Drives Autobahn|Testsuite's fuzzingserver with weir's client role: asks for the case count,
//! runs every case echoing what it receives, then asks for the reports.
//!
//! `cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 [dedicated|shared|off]`
//! (see autobahn/client.sh): permessage-deflate is offered in the mode given, or in
//! `WEIR_COMPRESSION`'s; off by default. A `wss://` URL needs `--features tls`, and the server's
//! certificate is verified against the PEM file in `WEIR_TLS_CA` (else the system's roots;
//! autobahn/tls.sh).

use std::net::{SocketAddr, ToSocketAddrs};

use weir::proto::{CloseCode, MessageKind};
use weir::server::compress::{Compression, Mode};
use weir::server::url::WsUrl;
use weir::server::{Config, ConnId, ConnectError, ConnectRequest, Context, Handler, Server};

const AGENT: &str = "weir";

enum Step {
    Count,
    Case(u32),
    Report,
}

struct Driver {
    addr: SocketAddr,
    host: String,
    /// `wss://`: the name the certificate must carry.
    tls: Option<String>,
    step: Step,
    count: u32,
}

impl Driver {
    fn open(&mut self, ctx: &mut Context<'_>) {
        let target = match self.step {
            Step::Count => "/getCaseCount".to_string(),
            Step::Case(n) => format!("/runCase?case={n}&agent={AGENT}"),
            Step::Report => format!("/updateReports?agent={AGENT}"),
        };
        let req = ConnectRequest {
            addr: self.addr,
            host: self.host.clone(),
            target,
            protocols: Vec::new(),
            headers: Vec::new(),
            timeout: None,
        };
        let connected = match &self.tls {
            Some(name) => ctx.connect_tls(req, name),
            None => ctx.connect(req),
        };
        if let Err(e) = connected {
            eprintln!("autobahn_client: connect: {e}");
            ctx.stop();
        }
    }
}

impl Driver {
    /// The connection for this step ended: open the next one, or stop after the report.
    fn next(&mut self, ctx: &mut Context<'_>) {
        self.step = match self.step {
            Step::Count if self.count > 0 => Step::Case(1),
            Step::Case(n) if n < self.count => Step::Case(n + 1),
            Step::Count | Step::Case(_) => Step::Report,
            Step::Report => return ctx.stop(),
        };
        self.open(ctx);
    }
}

impl Handler for Driver {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        self.open(ctx);
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, kind: MessageKind, data: &[u8]) {
        match self.step {
            Step::Count => {
                self.count =
                    std::str::from_utf8(data).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
                eprintln!("autobahn_client: {} cases", self.count);
            }
            Step::Case(_) => {
                let _ = ctx.send(id, kind, data);
            }
            Step::Report => {}
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, _: ConnId, _: CloseCode, _: &str) {
        self.next(ctx);
    }

    fn on_connect_failed(&mut self, ctx: &mut Context<'_>, _: ConnId, error: &ConnectError) {
        eprintln!("autobahn_client: {error}");
        // A case that refuses is recorded by the fuzzingserver; move on.
        self.next(ctx);
    }
}

fn main() -> std::io::Result<()> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let url = WsUrl::parse(&url).map_err(|e| std::io::Error::other(e.0))?;
    let addr = url
        .authority()
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    // permessage-deflate (Autobahn 12.* and 13.* need it): the second argument, else
    // WEIR_COMPRESSION (as `weir client`), off by default; every message compressed.
    let mode = std::env::args().nth(2).or_else(|| std::env::var("WEIR_COMPRESSION").ok());
    let mode = match mode.as_deref() {
        Some("dedicated") => Some(Mode::Dedicated { bits: 15 }),
        Some("shared") => Some(Mode::Shared),
        None | Some("off") => None,
        Some(other) => {
            return Err(std::io::Error::other(format!("{other}: off, shared or dedicated")));
        }
    };
    let compression = mode.map(|mode| Compression { mode, min_size: 0 });
    let tls_ca = std::env::var_os("WEIR_TLS_CA").map(Into::into);
    let config = Config { listen: Vec::new(), compression, tls_ca, ..Config::default() };
    let tls = url.tls.then(|| url.host.clone());
    let driver = Driver { addr, host: url.host_header(), tls, step: Step::Count, count: 0 };
    let mut server = Server::bind(config, driver)?;
    server.run_until_stopped()
}
