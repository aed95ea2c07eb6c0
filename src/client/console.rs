//! `weir client URL`: stdin lines out as messages, messages in as stdout lines (the basic mode
//! of websocat). Ctrl-D sends close 1000 and waits for the echo; the exit status says how the
//! connection ended.

use std::io::{self, BufRead, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};

use crate::client::ClientOptions;
use crate::proto::{CloseCode, MessageKind};
use crate::server::compress::Compression;
use crate::server::url::WsUrl;
use crate::server::{
    Config, ConnId, ConnectError, ConnectRequest, Connected, Context, Handler, Server, Waker,
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
    /// Reading failed (not EOF): the session ends as a failure.
    Failed(String),
}

/// Runs a client session until the connection ends.
///
/// # Errors
/// The URL is not a `ws://` URL, its host cannot be resolved, or the loop cannot start.
pub fn run(opts: ClientOptions) -> io::Result<Outcome> {
    let url =
        WsUrl::parse(&opts.url).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.0))?;
    // Resolved here, before the loop starts: the loop never waits on DNS. A name that does
    // not resolve is a connection that failed (status 1), not a usage error.
    let addr = match url.authority().to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => addr,
        Ok(None) => return Ok(Outcome::Failed(format!("{}: no address", url.host))),
        Err(e) => return Ok(Outcome::Failed(format!("{}: {e}", url.host))),
    };
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
    let compression = opts.compression.map(|mode| Compression {
        mode,
        min_size: usize::try_from(opts.compression_min_size).unwrap_or(usize::MAX),
    });
    let config = Config {
        listen: Vec::new(),
        compression,
        tls_ca: opts.tls_ca.clone().map(Into::into),
        tls_insecure: opts.insecure,
        ..Config::default()
    };
    let app = Console {
        request,
        server_name: url.tls.then(|| url.host.clone()),
        rx,
        binary: opts.binary,
        id: None,
        open: false,
        closing: false,
        peer_closed: false,
        outcome: None,
    };
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
                    Ok(0) => Input::End,
                    Ok(n) => {
                        buf.truncate(n);
                        Input::Chunk(buf)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Input::Failed(format!("reading standard input: {e}")),
                }
            } else {
                // A text message is UTF-8: a line that is not is sent with U+FFFD in place of
                // its bad bytes, and the lines after it go on.
                let mut line = Vec::new();
                match lock.read_until(b'\n', &mut line) {
                    Ok(0) => Input::End,
                    Ok(_) => {
                        while matches!(line.last(), Some(b'\n' | b'\r')) {
                            line.pop();
                        }
                        Input::Line(String::from_utf8_lossy(&line).into_owned())
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Input::Failed(format!("reading standard input: {e}")),
                }
            };
            let end = matches!(input, Input::End | Input::Failed(_));
            if tx.send(input).is_err() || waker.wake().is_err() || end {
                return;
            }
        }
    });
}

struct Console {
    request: ConnectRequest,
    /// `wss://`: the name the server's certificate must carry.
    server_name: Option<String>,
    rx: Receiver<Input>,
    binary: bool,
    id: Option<ConnId>,
    open: bool,
    /// This end sent its close (end of input), and the server's has not come.
    closing: bool,
    /// The server's close frame came.
    peer_closed: bool,
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
                    self.closing = true;
                    ctx.close(id, CloseCode::NORMAL, "");
                    Ok(())
                }
                Input::Failed(e) => {
                    self.outcome.get_or_insert(Outcome::Failed(e));
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
        let connected = match &self.server_name {
            Some(name) => ctx.connect_tls(self.request.clone(), name),
            None => ctx.connect(self.request.clone()),
        };
        match connected {
            Ok(id) => self.id = Some(id),
            Err(e) => self.finish(ctx, Outcome::Failed(format!("connect: {e}"))),
        }
    }

    fn on_connected(&mut self, ctx: &mut Context<'_>, _: ConnId, _: &Connected<'_>) {
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

    fn on_peer_close(&mut self, _: &mut Context<'_>, _: ConnId, _: CloseCode, _: &str) {
        self.peer_closed = true;
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, _: ConnId, code: CloseCode, reason: &str) {
        // RFC 6455 §7.1.5: no close frame came back, so the close code is 1006, whatever this
        // end sent.
        let outcome = if self.closing && !self.peer_closed {
            Outcome::Closed(CloseCode::ABNORMAL.0, "the server did not answer the close".into())
        } else {
            Outcome::Closed(code.0, reason.to_string())
        };
        self.finish(ctx, outcome);
    }
}
