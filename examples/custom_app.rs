//! A custom application on weir's runtime, the way the `weir` binary's apps are built: a
//! WebSocket endpoint at `/upper` that echoes each message in upper case, and `GET /count`,
//! how many it has echoed.
//!
//! Run `cargo run --example custom_app -- 127.0.0.1:9001`, then talk to it with
//! `weir client ws://127.0.0.1:9001/upper` and `curl http://127.0.0.1:9001/count`.

use std::io;
use std::net::SocketAddr;

use weir::proto::MessageKind;
use weir::server::{Config, ConnId, Context, Decision, Handler, Request, Response, Server};

/// The application's state: what it has echoed.
#[derive(Debug, Default)]
pub struct Upper {
    echoed: u64,
}

impl Handler for Upper {
    fn on_request(&mut self, _: &mut Context<'_>, req: &Request<'_>) -> Response {
        match (req.method, req.path) {
            ("GET", "/count") => Response::text(200, format!("{}\n", self.echoed)),
            _ => Response::text(404, "not found\n"),
        }
    }

    fn on_upgrade(&mut self, _: &mut Context<'_>, req: &Request<'_>) -> Decision {
        match req.path {
            "/upper" => Decision::accept(),
            _ => Decision::Reject(Response::text(404, "no WebSocket endpoint here\n")),
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, kind: MessageKind, data: &[u8]) {
        self.echoed += 1;
        // Only ASCII letters change, so text stays valid UTF-8. A failed send is a connection
        // closing or too slow, which the runtime has dealt with.
        let _ = ctx.send(id, kind, &data.to_ascii_uppercase());
    }
}

/// Serves `Upper` as `config` says; `ready` gets the address bound.
pub fn serve(config: Config, ready: impl FnOnce(SocketAddr)) -> io::Result<()> {
    let server = Server::bind(config, Upper::default())?;
    ready(server.local_addrs()[0]);
    server.run()
}

fn main() -> io::Result<()> {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    let listen = arg.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SIGINT or SIGTERM drain the connections, then the server stops.
    let config = Config { listen: vec![listen], handle_signals: true, ..Config::default() };
    serve(config, |addr| println!("listening on {addr}"))
}
