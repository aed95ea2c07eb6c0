//! `weir`: flags and environment to a configuration, then run. Nothing else.

use std::net::ToSocketAddrs;
use std::process::ExitCode;

use weir::access::Auth;
use weir::agent::{Agents, AgentsConfig};
use weir::cli::{self, Command, Options};
use weir::client::console::Outcome;
use weir::exec::{Exec, ExecConfig};
use weir::hub::{Hub, HubConfig};
use weir::server::{Config, Server};
use weir::{app::App, error, log, proto};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("weir: {e}\nTry 'weir --help'.");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help(text) | Command::Version(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Command::Client(opts) => {
            log::init(log::Level::Warn, log::Format::Text);
            match weir::client::console::run(opts) {
                Ok(outcome) => {
                    match &outcome {
                        Outcome::Closed(1000, _) => {}
                        Outcome::Closed(code, reason) => eprintln!("weir: closed: {code} {reason}"),
                        Outcome::Failed(e) => eprintln!("weir: {e}"),
                    }
                    ExitCode::from(outcome.exit_code())
                }
                Err(e) => {
                    eprintln!("weir: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Serve(opts) => serve(*opts),
        Command::Tunnel(opts) => {
            log::init(log::Level::Info, log::Format::Text);
            match weir::tunnel::agent::run(&opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!("tunnel agent failed", error = e);
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn serve(opts: Options) -> ExitCode {
    log::init(opts.log_level, opts.log_format);
    let (mut listen, mut listen_tls) = (Vec::new(), Vec::new());
    for (flag, addrs, out) in [
        ("--listen", &opts.listen, &mut listen),
        ("--listen-tls", &opts.listen_tls, &mut listen_tls),
    ] {
        for addr in addrs {
            // Names are resolved here, once, before the loop starts: the loop never blocks on DNS.
            match addr.to_socket_addrs() {
                Ok(addrs) => out.extend(addrs),
                Err(e) => {
                    eprintln!("weir: {flag} {addr}: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    // One key per certificate, paired in the order given.
    if opts.tls_cert.len() != opts.tls_key.len() {
        eprintln!(
            "weir: --tls-cert given {} times and --tls-key {}: one key for each certificate, in \
             the same order",
            opts.tls_cert.len(),
            opts.tls_key.len()
        );
        return ExitCode::from(2);
    }
    let mut pairs = opts.tls_cert.iter().zip(&opts.tls_key).map(|(c, k)| (c.into(), k.into()));
    let (tls_cert, tls_key) = pairs.next().unzip();
    let config = Config {
        listen,
        listen_tls,
        reuse_port: opts.reuse_port,
        tls_cert,
        tls_key,
        tls_more: pairs.collect(),
        tls_ca: opts.tls_ca.clone().map(Into::into),
        tls_insecure: opts.insecure,
        max_connections: opts.max_connections,
        max_connections_per_ip: opts.max_connections_per_ip,
        queue_cap: usize::try_from(opts.queue_cap).unwrap_or(usize::MAX),
        max_queued_total: usize::try_from(opts.max_queued_total).unwrap_or(usize::MAX),
        send_timeout: opts.send_timeout,
        read_buffer_size: opts.read_buffer_size,
        // The only bodies the HTTP API takes are a publish's data and an HTTP broadcast's message.
        max_body_size: usize::try_from(opts.max_publish_size).unwrap_or(usize::MAX),
        http: proto::http::Limits {
            max_head_len: opts.max_head_size,
            max_headers: opts.max_headers,
            ..proto::http::Limits::default()
        },
        ws: proto::Config {
            max_frame_size: opts.max_frame_size.min(opts.max_message_size),
            max_message_size: opts.max_message_size,
            handshake_timeout: opts.handshake_timeout,
            ping_interval: opts.ping_interval,
            pong_timeout: opts.pong_timeout,
            idle_timeout: opts.idle_timeout,
            close_timeout: opts.close_timeout,
        },
        shutdown_timeout: opts.shutdown_timeout,
        handle_signals: true,
        compression: opts.compression.map(|mode| weir::server::compress::Compression {
            mode,
            min_size: usize::try_from(opts.compression_min_size).unwrap_or(usize::MAX),
        }),
    };
    let mut tokens = opts.tokens.clone();
    if let Some(path) = &opts.token_file {
        // Read once, before the loop starts.
        match std::fs::read_to_string(path) {
            Ok(text) => tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            ),
            Err(e) => {
                eprintln!("weir: --token-file {path}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let auth = Auth {
        tokens,
        basic: opts.basic_auth.clone(),
        origins: opts.origins.clone(),
        public: opts.public.clone(),
    };
    let mut hub = Hub::new(HubConfig {
        history: opts.history,
        max_channels: opts.max_channels,
        max_channels_per_connection: opts.max_channels_per_connection,
        max_publish_size: usize::try_from(opts.max_publish_size).unwrap_or(usize::MAX),
        auth: auth.clone(),
        auth_timeout: opts.auth_timeout,
        rate: opts.rate,
        rate_burst: opts.rate_burst,
        history_memory: usize::try_from(opts.history_memory).unwrap_or(usize::MAX),
        channel_rate: opts.channel_rate,
        channel_rate_burst: opts.channel_rate_burst,
    });
    let mut redis_addr = None;
    if let Some(url) = &opts.redis {
        // Resolved once, here: the event loop never waits for a name.
        use std::net::ToSocketAddrs;
        let addr = match (url.host.as_str(), url.port).to_socket_addrs() {
            Ok(mut addrs) => addrs.next(),
            Err(e) => {
                eprintln!("weir: --redis {}:{}: {e}", url.host, url.port);
                return ExitCode::from(2);
            }
        };
        let Some(addr) = addr else {
            eprintln!("weir: --redis {}: no address", url.host);
            return ExitCode::from(2);
        };
        // The epochs' seed: a new channel's epoch must differ from the one Redis lost.
        let mut seed = [0u8; 8];
        if let Err(e) = std::fs::File::open("/dev/urandom").and_then(|mut f| {
            use std::io::Read;
            f.read_exact(&mut seed)
        }) {
            eprintln!("weir: --redis: /dev/urandom: {e}");
            return ExitCode::from(2);
        }
        redis_addr = Some(addr);
        let config = weir::redis::Config {
            channel_ttl: opts.redis_channel_ttl,
            presence_ttl: opts.redis_presence_ttl,
            ..Default::default()
        };
        hub = hub.with_redis(url, addr, config, u64::from_le_bytes(seed));
    }
    let echo = opts.echo.join(",");
    let mut app =
        App::new(opts.echo).with_hub("/ws", hub).with_access(auth, opts.rate, opts.rate_burst);
    // What the configuration says, logged after "starting" once it is known to be whole.
    let mut exec_lines: Vec<[String; 3]> = Vec::new();
    for r in &opts.exec {
        exec_lines.push([r.path.clone(), r.program.clone(), r.args.join(" ")]);
    }
    let mut route_lines: Vec<[String; 2]> = Vec::new();
    if !opts.exec.is_empty() {
        app = app.with_exec(Exec::new(ExecConfig {
            routes: opts.exec,
            binary: opts.exec_binary,
            pass_stderr: opts.pass_stderr,
            kill_grace: opts.kill_grace,
            max_processes: opts.max_processes,
        }));
    }
    if !opts.agents.is_empty() {
        app = app.with_agents(Agents::new(AgentsConfig {
            agents: opts.agents,
            restart: opts.agent_restart,
            log_lines: opts.agent_log_lines,
            kill_grace: opts.kill_grace,
        }));
    }
    if !opts.broadcast.is_empty() {
        for b in &opts.broadcast {
            weir::info!("broadcast", path = b.path, to_sender = b.to_sender);
        }
        app = app.with_broadcast(weir::broadcast::Broadcast::new(&opts.broadcast));
    }
    if !opts.routes.is_empty() {
        match weir::proxy::Proxy::new(&opts.routes, opts.upstream_timeout, opts.response_timeout) {
            Ok(p) => {
                for r in p.routes() {
                    let scheme = if r.upstream.tls { "wss" } else { "ws" };
                    let upstream =
                        format!("{scheme}://{}{}", r.upstream.authority(), r.upstream.target);
                    route_lines.push([r.prefix.clone(), upstream]);
                }
                app = app.with_proxy(p);
            }
            Err(e) => {
                eprintln!("weir: --route: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if !opts.tunnel_routes.is_empty()
        || !opts.tunnel_hosts.is_empty()
        || opts.tunnel_token_file.is_some()
    {
        let tokens = match &opts.tunnel_token_file {
            Some(path) => match weir::tunnel::read_token_file(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("weir: --tunnel-token-file {path}: {e}");
                    return ExitCode::from(2);
                }
            },
            // Routes into tunnels with no agent ever taken: each answers 502.
            None => Vec::new(),
        };
        // A tunnel message is one WebSocket message of up to 65,542 bytes (docs/tunnel.md).
        let longest = weir::proto::tunnel::MAX_MESSAGE_LEN as u64;
        if opts.max_message_size.min(opts.max_frame_size) < longest {
            eprintln!(
                "weir: the tunnel needs --max-message-size and --max-frame-size >= {longest}"
            );
            return ExitCode::from(2);
        }
        for r in &opts.tunnel_routes {
            route_lines.push([r.prefix.clone(), format!("tunnel://{}/{}", r.agent, r.target)]);
        }
        for h in &opts.tunnel_hosts {
            route_lines.push([format!("TARGET.NAME{h}"), String::from("tunnel://NAME/TARGET")]);
        }
        app = app.with_tunnels(weir::tunnel::controller::Controller::new(
            weir::tunnel::controller::ControllerConfig {
                path: opts.tunnel_path.clone(),
                tokens,
                routes: opts.tunnel_routes.clone(),
                hosts: opts.tunnel_hosts.clone(),
                session: weir::proto::tunnel::Config::default(),
                response_timeout: opts.response_timeout,
            },
        ));
    }
    // Only once the configuration is whole: a refused one never says it is starting.
    weir::info!(
        "starting",
        version = env!("CARGO_PKG_VERSION"),
        max_connections = config.max_connections,
        max_message_size = config.ws.max_message_size,
        queue_cap = config.queue_cap,
        echo = echo
    );
    for [path, program, args] in &exec_lines {
        weir::info!("exec", path = path, program = program, args = args);
    }
    for [path, upstream] in &route_lines {
        weir::info!("route", path = path, upstream = upstream);
    }
    if let Some(addr) = redis_addr {
        weir::info!("hub: channels in redis", addr = addr);
    }
    let server = match Server::bind(config, app) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot listen", error = e);
            return ExitCode::from(1);
        }
    };
    match weir::app::run(server) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("event loop failed", error = e);
            ExitCode::from(1)
        }
    }
}
