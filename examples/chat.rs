//! A chat room on weir's runtime: every text message goes to everyone connected.
//!
//! Run `cargo run --example chat -- 127.0.0.1:9000` and connect with any WebSocket client
//! (`ws://127.0.0.1:9000/chat`). Each line is encoded as a frame once and shared by every
//! recipient's queue.

use std::collections::HashSet;

use weir::proto::MessageKind;
use weir::server::{Config, ConnId, Context, Decision, Handler, Request, Response, Server};

#[derive(Default)]
struct Chat {
    members: HashSet<ConnId>,
}

impl Handler for Chat {
    fn on_upgrade(&mut self, _: &mut Context<'_>, req: &Request<'_>) -> Decision {
        match req.path {
            "/chat" => Decision::accept(),
            _ => Decision::Reject(Response::text(404, "no such room\n")),
        }
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        self.members.insert(id);
        let hello = format!("{} joined ({} here)", id.as_u64(), self.members.len());
        ctx.broadcast(self.members.iter().copied(), MessageKind::Text, hello.as_bytes());
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, kind: MessageKind, data: &[u8]) {
        if kind == MessageKind::Text {
            let line = [format!("{}: ", id.as_u64()).as_bytes(), data].concat();
            ctx.broadcast(self.members.iter().copied(), MessageKind::Text, &line);
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, id: ConnId, _: weir::proto::CloseCode, _: &str) {
        self.members.remove(&id);
        let bye = format!("{} left", id.as_u64());
        ctx.broadcast(self.members.iter().copied(), MessageKind::Text, bye.as_bytes());
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9000".into());
    let listen = vec![addr.parse().map_err(std::io::Error::other)?];
    let config = Config { listen, handle_signals: true, ..Config::default() };
    let server = Server::bind(config, Chat::default())?;
    println!("chat on ws://{}/chat", server.local_addrs()[0]);
    server.run()
}
