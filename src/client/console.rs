//! `weir client URL`: stdin lines out as messages, messages in as stdout lines (the basic mode
//! of websocat). Ctrl-D sends close 1000 and waits for the echo; the exit status says how the
//! connection ended.

use std::io::{self, BufRead, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

use crate::cli::ClientOptions;
use crate::client::url::WsUrl;
use crate::proto::{CloseCode, MessageKind};
use crate::server::{
    Config, ConnId, ConnectError, ConnectRequest, Context, Handler, Server, Waker,
};

/// How a client session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The connection closed with this code and reason (1000 is a normal end).
    Closed(u16, String),
    /// It never opened.
    Failed(String),
}

impl Outcome {
    /// The process exit status: 0 for a normal close, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Closed(1000, _) => 0,
            _ => 1,
        }
    }
}

/// One piece of standard input.
enum Input {
    Line(String),
    Chunk(Vec<u8>),
    End,
}

/// Runs a client session until the connection ends.
///
/// # Errors
/// The URL is not a `ws://` URL, its host cannot be resolved, or the loop cannot start.
pub fn run(opts: ClientOptions) -> io::Result<Outcome> {
    let url =
        WsUrl::parse(&opts.url).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.0))?;
    // Resolved here, before the loop starts: the loop never waits on DNS.
    let addr = url.authority().to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("{}: no address", url.host))
    })?;
    let mut headers: Vec<(String, Vec<u8>)> =
        opts.headers.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect();
    if let Some(origin) = &opts.origin {
        headers.push(("Origin".into(), origin.clone().into_bytes()));
    }
    let request = ConnectRequest {
        addr,
        host: url.host_header(),
        target: url.target.clone(),
        protocols: opts.subprotocols.clone(),
        headers,
        timeout: None,
    };
    let (tx, rx) = mpsc::channel();
    let config = Config { listen: Vec::new(), ..Config::default() };
    let app = Console { request, rx, binary: opts.binary, id: None, open: false, outcome: None };
    let mut server = Server::bind(config, app)?;
    spawn_stdin(tx, server.waker(), opts.binary);
    server.run_until_stopped()?;
    Ok(server.into_handler().outcome.unwrap_or(Outcome::Failed("the loop stopped".into())))
}

/// Reads standard input on its own thread (a blocking read cannot sit in the loop) and wakes
/// the loop for each piece.
fn spawn_stdin(tx: Sender<Input>, waker: Arc<Waker>, binary: bool) {
    std::thread::spawn(move || {
        let stdin = io::stdin();
        let mut lock = stdin.lock();
        loop {
            let input = if binary {
                let mut buf = vec![0u8; 64 << 10];
                match lock.read(&mut buf) {
                    Ok(0) | Err(_) => Input::End,
                    Ok(n) => {
                        buf.truncate(n);
                        Input::Chunk(buf)
                    }
                }
            } else {
                let mut line = String::new();
                match lock.read_line(&mut line) {
                    Ok(0) | Err(_) => Input::End,
                    Ok(_) => {
                        let trimmed = line.trim_end_matches(['\n', '\r']).len();
                        line.truncate(trimmed);
                        Input::Line(line)
                    }
                }
            };
            let end = matches!(input, Input::End);
            if tx.send(input).is_err() || waker.wake().is_err() || end {
                return;
            }
        }
    });
}

struct Console {
    request: ConnectRequest,
    rx: Receiver<Input>,
    binary: bool,
    id: Option<ConnId>,
    open: bool,
    outcome: Option<Outcome>,
}

impl Console {
    /// Sends what standard input gave, once the connection is open.
    fn drain_stdin(&mut self, ctx: &mut Context<'_>) {
        let Some(id) = self.id.filter(|_| self.open) else { return };
        while let Ok(input) = self.rx.try_recv() {
            let _ = match input {
                Input::Line(line) => ctx.send(id, MessageKind::Text, line.as_bytes()),
                Input::Chunk(bytes) => ctx.send_owned(id, MessageKind::Binary, bytes),
                Input::End => {
                    ctx.close(id, CloseCode::NORMAL, "");
                    Ok(())
                }
            };
        }
    }

    fn finish(&mut self, ctx: &mut Context<'_>, outcome: Outcome) {
        self.outcome.get_or_insert(outcome);
        ctx.stop();
    }
}

impl Handler for Console {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        match ctx.connect(self.request.clone()) {
            Ok(id) => self.id = Some(id),
            Err(e) => self.finish(ctx, Outcome::Failed(format!("connect: {e}"))),
        }
    }

    fn on_connected(&mut self, ctx: &mut Context<'_>, _: ConnId, _: Option<&str>) {
        self.open = true;
        self.drain_stdin(ctx);
    }

    fn on_connect_failed(&mut self, ctx: &mut Context<'_>, _: ConnId, error: &ConnectError) {
        self.finish(ctx, Outcome::Failed(error.to_string()));
    }

    fn on_wake(&mut self, ctx: &mut Context<'_>) {
        self.drain_stdin(ctx);
    }

    fn on_message(&mut self, _: &mut Context<'_>, _: ConnId, kind: MessageKind, data: &[u8]) {
        let mut out = io::stdout().lock();
        // A closed stdout (e.g. `| head`) ends nothing here: the connection decides.
        let _ = match (kind, self.binary) {
            (MessageKind::Text, _) | (_, false) => {
                out.write_all(data).and_then(|()| out.write_all(b"\n"))
            }
            (MessageKind::Binary, true) => out.write_all(data),
        };
        let _ = out.flush();
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, _: ConnId, code: CloseCode, reason: &str) {
        self.finish(ctx, Outcome::Closed(code.0, reason.to_string()));
    }
}
