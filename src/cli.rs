//! Command-line flags and their `WEIR_*` environment twins.
//!
//! Every flag `--foo-bar` can also be set with the environment variable `WEIR_FOO_BAR`
//! (`weir tunnel`'s with `WEIR_TUNNEL_AGENT_FOO_BAR`, apart from the server's); a flag
//! on the command line beats the variable, which beats the default. A repeatable flag
//! (`--listen`, `--echo`, `--header`, `--subprotocol`) takes a comma-separated list in its
//! variable. A variable that is empty (or only whitespace) counts as unset. A flag given more
//! than once that is not repeatable keeps its last value.
//!
//! One table of flags drives both [`parse`] and [`help_text`], so the two cannot drift.

use core::fmt;
use core::iter::Peekable;
use core::ops::ControlFlow;
use core::time::Duration;

use crate::log;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run the server (`weir [serve] [FLAGS]`).
    Serve(Box<Options>),
    /// Run the client (`weir client URL [FLAGS]`).
    Client(ClientOptions),
    /// Run a tunnel agent (`weir tunnel URL [FLAGS]`).
    Tunnel(Box<AgentOptions>),
    /// Print this text to stdout and exit 0 (`--help`, `-h`).
    Help(String),
    /// Print this text to stdout and exit 0 (`--version`, `-V`).
    Version(String),
}

/// The server's settings, after flags, environment and defaults are merged.
///
/// [`Default`] gives the defaults listed by `weir --help`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Addresses to listen on, as `HOST:PORT` or `[V6]:PORT`; resolved at start-up.
    pub listen: Vec<String>,
    /// Addresses that speak TLS (HTTPS and WSS), as `listen`.
    pub listen_tls: Vec<String>,
    /// Every listener sets `SO_REUSEPORT`: several weir processes share one port.
    pub reuse_port: bool,
    /// The PEM certificate chains of the TLS listeners: the first is the default, a later one
    /// is presented to clients asking (SNI) for a name it is valid for.
    pub tls_cert: Vec<String>,
    /// The PEM private keys of `tls_cert`, in the same order.
    pub tls_key: Vec<String>,
    /// PEM roots `wss://` routes are verified against (none: the system's).
    pub tls_ca: Option<String>,
    /// `wss://` routes verify no certificate (testing only).
    pub insecure: bool,
    /// Request paths served by the echo application, each starting with `/`.
    pub echo: Vec<String>,
    /// `--broadcast` paths: what a client sends there goes to the other clients there.
    pub broadcast: Vec<crate::broadcast::BroadcastPath>,
    /// Most connections open at once (at least 1).
    pub max_connections: usize,
    /// Most connections open at once from one IP address; 0 means unlimited.
    pub max_connections_per_ip: usize,
    /// Largest message accepted, all fragments together.
    pub max_message_size: u64,
    /// Largest frame payload accepted (at least 125, the largest control frame). For data
    /// frames the effective limit is the smaller of this and `max_message_size`.
    pub max_frame_size: u64,
    /// Most bytes queued for sending on one connection (at least 1 KiB).
    pub queue_cap: u64,
    /// Most bytes queued for sending on all connections together (at least 1 KiB).
    pub max_queued_total: u64,
    /// permessage-deflate: `None` off, else shared or dedicated (`--compression`).
    pub compression: Option<crate::server::compress::Mode>,
    /// Messages shorter than this are sent uncompressed.
    pub compression_min_size: u64,
    /// Most bytes the HTTP upgrade request may take (at least 512).
    pub max_head_size: usize,
    /// Most header lines the HTTP upgrade request may carry (at least 5, the headers RFC 6455
    /// §4.1 requires).
    pub max_headers: usize,
    /// Size of each connection's read buffer (at least 1 KiB).
    pub read_buffer_size: usize,
    /// How long the opening handshake may take; `None` means no limit.
    pub handshake_timeout: Option<Duration>,
    /// Send a ping after this long without hearing from the peer; `None` means never.
    pub ping_interval: Option<Duration>,
    /// How long a pong may take after a ping before the connection is dropped (> 0).
    pub pong_timeout: Duration,
    /// Close a connection after this long without a data message; `None` means never.
    pub idle_timeout: Option<Duration>,
    /// How long the close handshake may take once the server sent its close frame (> 0).
    pub close_timeout: Duration,
    /// How long queued output may go without a byte written before the connection is dropped.
    pub send_timeout: Duration,
    /// How long a graceful shutdown waits for connections to close (> 0).
    pub shutdown_timeout: Duration,
    /// Messages each hub channel keeps.
    pub history: usize,
    /// Most hub channels in all.
    pub max_channels: usize,
    /// Most hub channels one connection may subscribe to.
    pub max_channels_per_connection: usize,
    /// Largest `data` of one hub `publish`, in bytes of JSON.
    pub max_publish_size: u64,
    /// Bearer tokens a hub client must present (none: no token needed).
    pub tokens: Vec<String>,
    /// A file of tokens, one per line (read at start-up).
    pub token_file: Option<String>,
    /// How long a hub client may take to authenticate.
    pub auth_timeout: Duration,
    /// `user:password` required on the upgrade (HTTP Basic).
    pub basic_auth: Option<String>,
    /// Origins allowed to open hub connections.
    pub origins: Vec<String>,
    /// Paths open with no credentials and from any origin (`--public`).
    pub public: Vec<String>,
    /// Messages per second per connection, HTTP publishes per address (0: no limit).
    pub rate: u32,
    /// Hub messages a connection may send at once above the rate.
    pub rate_burst: u32,
    /// Bytes of history all hub channels may keep together.
    pub history_memory: u64,
    /// Hub channels one client address may create per second (0: no limit).
    pub channel_rate: u32,
    /// Hub channels one client address may create at once above the rate.
    pub channel_rate_burst: u32,
    /// The Redis the hub keeps its channels in, shared with other weir processes (`--redis`).
    pub redis: Option<crate::redis::RedisUrl>,
    /// How long a channel's stream and hash stay in Redis after its last publish (`None`:
    /// forever).
    pub redis_channel_ttl: Option<Duration>,
    /// How long a presence entry lives in Redis unless its node refreshes it.
    pub redis_presence_ttl: Duration,
    /// Reverse-proxy routes: a path prefix and the `ws://` URL its connections go to.
    pub routes: Vec<(String, String)>,
    /// How long connecting to an upstream and its handshake may take (504 after).
    pub upstream_timeout: Duration,
    /// Routes into agents' tunnels (`--route PATH=tunnel://NAME/TARGET`).
    pub tunnel_routes: Vec<crate::tunnel::controller::TunnelRoute>,
    /// Host patterns into agents' tunnels (`--tunnel-host *.DOMAIN`), kept as `.domain`.
    pub tunnel_hosts: Vec<String>,
    /// The file of tokens tunnel agents present (none: no agents taken).
    pub tunnel_token_file: Option<String>,
    /// Where agents dial.
    pub tunnel_path: String,
    /// How long a plain request's upstream (a route's, or a service behind a tunnel) has to
    /// begin its response.
    pub response_timeout: Duration,
    /// `--exec` routes: a path and the program each connection to it runs.
    pub exec: Vec<crate::exec::ExecRoute>,
    /// Exec programs' stdout as raw binary messages (not lines).
    pub exec_binary: bool,
    /// Exec programs' stderr to the client (not the log).
    pub pass_stderr: bool,
    /// How long a process has between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Most exec processes running at once (503 beyond).
    pub max_processes: usize,
    /// Supervised agents.
    pub agents: Vec<crate::agent::AgentSpec>,
    /// When an agent is restarted after it ends on its own.
    pub agent_restart: crate::agent::RestartPolicy,
    /// Output lines an agent keeps for new clients.
    pub agent_log_lines: usize,
    /// Most verbose level written to the log.
    pub log_level: log::Level,
    /// Layout of log lines.
    pub log_format: log::Format,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: vec![String::from("127.0.0.1:8080")],
            listen_tls: Vec::new(),
            reuse_port: false,
            tls_cert: Vec::new(),
            tls_key: Vec::new(),
            tls_ca: None,
            insecure: false,
            echo: vec![String::from("/echo")],
            broadcast: Vec::new(),
            max_connections: 10_000,
            max_connections_per_ip: 1000,
            max_message_size: 16 * MIB,
            max_frame_size: 16 * MIB,
            queue_cap: 32 * MIB,
            max_queued_total: 256 * MIB,
            compression: None,
            compression_min_size: KIB,
            max_head_size: 8 * 1024,
            max_headers: 64,
            read_buffer_size: 16 * 1024,
            handshake_timeout: Some(Duration::from_secs(10)),
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(30),
            idle_timeout: None,
            close_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            history: 100,
            max_channels: 10_000,
            max_channels_per_connection: 100,
            max_publish_size: 64 * 1024,
            tokens: Vec::new(),
            token_file: None,
            auth_timeout: Duration::from_secs(10),
            basic_auth: None,
            origins: Vec::new(),
            public: Vec::new(),
            rate: 1000,
            rate_burst: 2000,
            history_memory: 64 * MIB,
            channel_rate: 10,
            channel_rate_burst: 100,
            redis: None,
            redis_channel_ttl: Some(Duration::from_secs(24 * 3600)),
            redis_presence_ttl: Duration::from_secs(30),
            routes: Vec::new(),
            upstream_timeout: Duration::from_secs(10),
            tunnel_routes: Vec::new(),
            tunnel_hosts: Vec::new(),
            tunnel_token_file: None,
            tunnel_path: String::from(crate::tunnel::DEFAULT_PATH),
            response_timeout: crate::tunnel::controller::RESPONSE_TIMEOUT,
            exec: Vec::new(),
            exec_binary: false,
            pass_stderr: false,
            kill_grace: Duration::from_secs(5),
            max_processes: 64,
            agents: Vec::new(),
            agent_restart: crate::agent::RestartPolicy::OnFailure,
            agent_log_lines: 200,
            log_level: log::Level::Info,
            log_format: log::Format::Text,
        }
    }
}

pub use crate::client::ClientOptions;
pub use crate::tunnel::AgentOptions;

/// Why the command line (or a `WEIR_*` variable) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// A flag that does not exist (for this subcommand).
    UnknownFlag {
        /// The flag as given, e.g. `--lisen`.
        flag: String,
        /// `"weir"` or `"weir client"`.
        command: &'static str,
    },
    /// A flag that takes a value was last on the line, or followed by another flag.
    MissingValue {
        /// The flag, e.g. `--listen`.
        flag: String,
    },
    /// A switch (which takes no value) was given one with `=`.
    UnexpectedValue {
        /// The flag, e.g. `--binary`.
        flag: String,
    },
    /// A value did not parse or is out of range.
    InvalidValue {
        /// Where it came from: the flag (`--listen`) or the variable (`WEIR_LISTEN`).
        source: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A positional argument where none (or no more) is expected.
    UnexpectedArgument(String),
    /// `weir client` or `weir tunnel` without a URL.
    MissingUrl,
    /// `weir tunnel` without a flag it needs.
    MissingFlag(&'static str),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownFlag { flag, command } => {
                write!(f, "unknown flag '{flag}' for '{command}'")
            }
            Self::MissingValue { flag } => write!(f, "missing value for '{flag}'"),
            Self::UnexpectedValue { flag } => write!(f, "'{flag}' takes no value"),
            Self::InvalidValue { source, value, reason } => {
                write!(f, "invalid value '{value}' for '{source}': {reason}")
            }
            Self::UnexpectedArgument(arg) => write!(f, "unexpected argument '{arg}'"),
            Self::MissingUrl => f.write_str(
                "'weir client' and 'weir tunnel' need a URL, e.g. ws://127.0.0.1:8080/echo",
            ),
            Self::MissingFlag(flag) => write!(f, "'weir tunnel' needs {flag}"),
        }
    }
}

impl std::error::Error for CliError {}

/// Parses the command line (`args` without `argv[0]`), reading `WEIR_*` variables through
/// `env` (pass `|k| std::env::var(k).ok()`).
///
/// `--help`/`-h` and `--version`/`-V` win over everything after them.
///
/// # Errors
///
/// [`CliError`] names the flag or variable and the value it refused: an unknown flag, a
/// missing value, a value that does not parse or is out of range, or a stray argument.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, CliError> {
    let mut args = args.into_iter().peekable();
    let target = match args.peek().map(String::as_str) {
        Some("client") => {
            args.next();
            Target::Client
        }
        Some("serve") => {
            args.next();
            Target::Serve
        }
        Some("tunnel") => {
            args.next();
            Target::Tunnel
        }
        _ => Target::Serve,
    };

    // Every flag's values are collected first, so precedence is decided per flag afterwards.
    let Line { given, positionals } = match read_line(args, target)? {
        ControlFlow::Break(command) => return Ok(command),
        ControlFlow::Continue(line) => line,
    };

    // Per flag: command-line values if any, else the variable, else the default.
    let mut serve = Options { listen: Vec::new(), echo: Vec::new(), ..Options::default() };
    let mut client = ClientOptions {
        url: String::new(),
        binary: false,
        headers: Vec::new(),
        subprotocols: Vec::new(),
        origin: None,
        tls_ca: None,
        insecure: false,
        compression: None,
        compression_min_size: KIB,
    };
    let mut tunnel = AgentOptions::default();
    for (flag, values) in FLAGS.iter().zip(given) {
        if flag.setter.target() != target {
            continue;
        }
        let (source, values) = if values.is_empty() {
            let var = flag.env_var();
            match env(&var) {
                Some(raw) if !raw.trim().is_empty() => {
                    let values = if flag.repeatable {
                        raw.split(',').map(|v| v.trim().to_string()).collect()
                    } else {
                        vec![raw.trim().to_string()]
                    };
                    (var, values)
                }
                _ => continue,
            }
        } else {
            (flag.long(), values)
        };
        for value in values {
            let result = match flag.setter {
                Setter::Serve(set) => set(&mut serve, &value),
                Setter::Client(set) => set(&mut client, &value),
                Setter::Tunnel(set) => set(&mut tunnel, &value),
            };
            result.map_err(|reason| CliError::InvalidValue {
                source: source.clone(),
                value,
                reason,
            })?;
        }
    }

    match target {
        Target::Serve => {
            if let Some(arg) = positionals.into_iter().next() {
                return Err(CliError::UnexpectedArgument(arg));
            }
            let defaults = Options::default();
            // `--listen-tls` alone: TLS listeners only.
            if serve.listen.is_empty() && serve.listen_tls.is_empty() {
                serve.listen = defaults.listen;
            }
            if serve.echo.is_empty() {
                serve.echo = defaults.echo;
            }
            Ok(Command::Serve(Box::new(serve)))
        }
        Target::Client => {
            client.url = the_url(positionals)?;
            Ok(Command::Client(client))
        }
        Target::Tunnel => {
            tunnel.url = the_url(positionals)?;
            if tunnel.name.is_empty() {
                return Err(CliError::MissingFlag("--name"));
            }
            if tunnel.token_file.is_empty() {
                return Err(CliError::MissingFlag("--token-file"));
            }
            if tunnel.exposes.is_empty() {
                return Err(CliError::MissingFlag("--expose"));
            }
            Ok(Command::Tunnel(Box::new(tunnel)))
        }
    }
}

/// The one positional of `weir client` and `weir tunnel`: a `ws://` (or `wss://`) URL.
fn the_url(positionals: Vec<String>) -> Result<String, CliError> {
    let mut positionals = positionals.into_iter();
    let url = positionals.next().ok_or(CliError::MissingUrl)?;
    if let Some(extra) = positionals.next() {
        return Err(CliError::UnexpectedArgument(extra));
    }
    check_url(&url).map_err(|reason| CliError::InvalidValue {
        source: String::from("URL"),
        value: url.clone(),
        reason,
    })?;
    Ok(url)
}

/// Sorts the words after the subcommand into each flag's values (indexed like [`FLAGS`]) and
/// positionals; breaks early with `--help` or `--version`.
fn read_line(
    mut args: Peekable<impl Iterator<Item = String>>,
    target: Target,
) -> Result<ControlFlow<Command, Line>, CliError> {
    let mut given: Vec<Vec<String>> = vec![Vec::new(); FLAGS.len()];
    let mut positionals = Vec::new();
    let mut only_positionals = false;
    while let Some(arg) = args.next() {
        if only_positionals || !arg.starts_with('-') || arg == "-" {
            positionals.push(arg);
            continue;
        }
        match arg.as_str() {
            "--" => {
                only_positionals = true;
                continue;
            }
            "-h" | "--help" => return Ok(ControlFlow::Break(Command::Help(help_text()))),
            "-V" | "--version" => return Ok(ControlFlow::Break(Command::Version(version_text()))),
            _ => {}
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (arg.as_str(), None),
        };
        let index = name
            .strip_prefix("--")
            .and_then(|name| {
                FLAGS.iter().position(|f| f.name == name && f.setter.target() == target)
            })
            .ok_or_else(|| CliError::UnknownFlag {
                flag: name.to_string(),
                command: target.command(),
            })?;
        let flag = &FLAGS[index];
        let value = match (flag.metavar, inline) {
            (None, Some(_)) => return Err(CliError::UnexpectedValue { flag: flag.long() }),
            (None, None) => String::from("true"),
            (Some(_), Some(value)) => value,
            (Some(_), None) => match args.next_if(|next| !looks_like_flag(next)) {
                Some(value) => value,
                None => return Err(CliError::MissingValue { flag: flag.long() }),
            },
        };
        given[index].push(value);
    }
    Ok(ControlFlow::Continue(Line { given, positionals }))
}

/// The command line sorted by [`read_line`].
struct Line {
    /// Each flag's values in order given, indexed like [`FLAGS`].
    given: Vec<Vec<String>>,
    /// Words that are not flags or their values.
    positionals: Vec<String>,
}

/// The text printed by `weir --help`: usage, then every flag with its variable, default and
/// meaning, by group.
pub fn help_text() -> String {
    let mut out = String::from(
        "\
Usage: weir [serve] [FLAGS]
       weir client URL [CLIENT FLAGS]
       weir tunnel URL --name NAME --token-file FILE --expose TARGET=ws://HOST:PORT/PATH
       weir --help | --version

weir is a small WebSocket server. Every flag can also be set with the environment variable
shown beside it; a flag beats its variable, which beats the default. Repeatable flags take a
comma-separated list in their variable. An empty variable counts as unset.

Sizes are bytes: a bare number, or with a suffix KiB/MiB/GiB (also K/M/G) for powers of 1024,
or KB/MB/GB for powers of 1000 (suffixes are case-insensitive): 65536, 64KiB, 16MiB, 10MB.
Durations are a whole number with ms, s, m or h, or bare seconds, at most 8760h: 500ms, 30s,
2m, 1h, 30. A timer whose text says '0 = off' accepts 0 to turn it off.
",
    );
    for group in Group::ALL {
        out.push('\n');
        out.push_str(group.title());
        out.push_str(":\n");
        // Client and agent flags sit under their subcommand, one step further in.
        let indent = if group == Group::Subcommands {
            out.push_str(
                "  serve       Run the server (the default when no subcommand is given).\n  \
                 client URL  Connect to URL (ws://, or wss:// when built with TLS). It reads \
                 only its own\n              variables, WEIR_CLIENT_*, never the server's. \
                 Flags:\n",
            );
            "    "
        } else if group == Group::Tunnel {
            out.push_str(
                "  tunnel URL  Dial a weir controller's tunnel URL (wss://, or ws:// to \
                 loopback) and carry its streams to local services (docs/tunnel.md). Flags:\n",
            );
            "    "
        } else {
            "  "
        };
        for flag in FLAGS.iter().filter(|f| f.group == group) {
            out.push_str(indent);
            out.push_str("--");
            out.push_str(flag.name);
            if let Some(metavar) = flag.metavar {
                out.push(' ');
                out.push_str(metavar);
            }
            out.push_str("  [env: ");
            out.push_str(&flag.env_var());
            out.push(']');
            if !flag.default.is_empty() {
                out.push_str(" [default: ");
                out.push_str(flag.default);
                out.push(']');
            }
            out.push('\n');
            out.push_str(indent);
            out.push_str("    ");
            out.push_str(flag.help);
            if flag.repeatable {
                out.push_str(" Repeatable.");
            }
            out.push('\n');
        }
    }
    out.push_str(
        "\nOther:\n  -h, --help     Print this help.\n  -V, --version  Print the version.\n",
    );
    out
}

fn version_text() -> String {
    format!("weir {}", env!("CARGO_PKG_VERSION"))
}

/// Which command a flag belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Serve,
    Client,
    Tunnel,
}

impl Target {
    const fn command(self) -> &'static str {
        match self {
            Self::Serve => "weir",
            Self::Client => "weir client",
            Self::Tunnel => "weir tunnel",
        }
    }
}

/// The sections of `--help`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Listening,
    Limits,
    Timers,
    Hub,
    Proxy,
    Processes,
    Logging,
    Subcommands,
    Tunnel,
}

impl Group {
    const ALL: [Self; 9] = [
        Self::Listening,
        Self::Limits,
        Self::Timers,
        Self::Hub,
        Self::Proxy,
        Self::Processes,
        Self::Logging,
        Self::Subcommands,
        Self::Tunnel,
    ];

    const fn title(self) -> &'static str {
        match self {
            Self::Listening => "Listening",
            Self::Limits => "Limits",
            Self::Timers => "Timers",
            Self::Hub => "Hub (pub/sub at /ws)",
            Self::Proxy => "Reverse proxy",
            Self::Processes => "Processes (--exec, --agent)",
            Self::Logging => "Logging",
            Self::Subcommands => "Subcommands",
            Self::Tunnel => "Tunnel agent",
        }
    }
}

/// Stores one value into the options; `Err` says what is wrong with it.
#[derive(Clone, Copy)]
enum Setter {
    Serve(fn(&mut Options, &str) -> Result<(), String>),
    Client(fn(&mut ClientOptions, &str) -> Result<(), String>),
    Tunnel(fn(&mut AgentOptions, &str) -> Result<(), String>),
}

impl Setter {
    const fn target(self) -> Target {
        match self {
            Self::Serve(_) => Target::Serve,
            Self::Client(_) => Target::Client,
            Self::Tunnel(_) => Target::Tunnel,
        }
    }
}

/// One flag: how it is parsed and how `--help` shows it.
struct Flag {
    /// The long name without `--`; the variable is `WEIR_` (`WEIR_TUNNEL_AGENT_` for
    /// `weir tunnel`'s) plus it upper-cased, `-` → `_`.
    name: &'static str,
    /// The value's placeholder in `--help`; `None` for a switch, which takes no value on the
    /// command line and `1/0/true/false` in its variable.
    metavar: Option<&'static str>,
    repeatable: bool,
    group: Group,
    /// Shown in `--help`; for server flags it parses to the [`Options::default`] value (a test
    /// checks). Empty when there is none.
    default: &'static str,
    help: &'static str,
    setter: Setter,
}

impl Flag {
    fn long(&self) -> String {
        format!("--{}", self.name)
    }

    fn env_var(&self) -> String {
        // The agent's and the client's flags have twins of their own (`WEIR_TUNNEL_AGENT_NAME`,
        // `WEIR_CLIENT_ORIGIN`, ...), so that a server's environment (a unit's, a shell's) is
        // never read as theirs: `--token-file` is not the server's WEIR_TOKEN_FILE (the hub's
        // tokens), nor the client's `--origin` the server's allow-list, WEIR_ORIGIN.
        let mut var = String::from(match self.setter {
            Setter::Tunnel(_) => "WEIR_TUNNEL_AGENT_",
            Setter::Client(_) => "WEIR_CLIENT_",
            Setter::Serve(_) => "WEIR_",
        });
        var.extend(self.name.chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }));
        var
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Durations longer than this are refused, so that adding one to a clock cannot overflow.
const MAX_DURATION: Duration = Duration::from_secs(8760 * 3600);

/// Every flag except `--help` and `--version`, in `--help` order.
const FLAGS: &[Flag] = &[
    // Listening
    Flag {
        name: "listen",
        metavar: Some("HOST:PORT"),
        repeatable: true,
        group: Group::Listening,
        default: "127.0.0.1:8080",
        help: "Address to listen on; IPv6 as [::1]:8080, all interfaces as 0.0.0.0:8080.",
        setter: Setter::Serve(|o, v| {
            check_listen(v)?;
            o.listen.push(v.to_string());
            Ok(())
        }),
    },
    Flag {
        name: "listen-tls",
        metavar: Some("HOST:PORT"),
        repeatable: true,
        group: Group::Listening,
        default: "",
        help: "Address to listen on with TLS (HTTPS and WSS, every app as on --listen); needs \
               --tls-cert and --tls-key and a weir built with --features tls. Given alone, \
               there is no plain listener.",
        setter: Setter::Serve(|o, v| {
            check_listen(v)?;
            o.listen_tls.push(v.to_string());
            Ok(())
        }),
    },
    Flag {
        name: "reuse-port",
        metavar: None,
        repeatable: false,
        group: Group::Listening,
        default: "",
        help: "Listen with SO_REUSEPORT, so that several weir processes (one per core, each \
               single-threaded) share the same ports and the kernel spreads new connections \
               over them. Every process must set it.",
        setter: Setter::Serve(|o, v| {
            o.reuse_port = parse_bool(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "tls-cert",
        metavar: Some("PEM"),
        repeatable: true,
        group: Group::Listening,
        default: "",
        help: "Certificate chain (PEM, leaf first) for --listen-tls; re-read on SIGHUP. Given \
               more than once (one --tls-key each, in the same order), a client asking (SNI) \
               for a name a later certificate is valid for gets that one, any other the first.",
        setter: Setter::Serve(|o, v| {
            o.tls_cert.push(non_empty(v)?);
            Ok(())
        }),
    },
    Flag {
        name: "tls-key",
        metavar: Some("PEM"),
        repeatable: true,
        group: Group::Listening,
        default: "",
        help: "Private key (PEM) of --tls-cert, one per --tls-cert in the same order; re-read \
               on SIGHUP.",
        setter: Setter::Serve(|o, v| {
            o.tls_key.push(non_empty(v)?);
            Ok(())
        }),
    },
    Flag {
        name: "echo",
        metavar: Some("PATH"),
        repeatable: true,
        group: Group::Listening,
        default: "/echo",
        help: "Request path served by the echo application; must start with '/'.",
        setter: Setter::Serve(|o, v| {
            check_path(v)?;
            o.echo.push(v.to_string());
            Ok(())
        }),
    },
    Flag {
        name: "broadcast",
        metavar: Some("PATH[=all]"),
        repeatable: true,
        group: Group::Listening,
        default: "",
        help: "Every message a client sends to PATH goes to every other client on PATH, text or \
               binary as sent (PATH=all: to the sender too); POST /api/broadcast/PATH feeds it.",
        setter: Setter::Serve(|o, v| {
            let b = crate::broadcast::BroadcastPath::parse(v)?;
            check_path(&b.path)?;
            o.broadcast.push(b);
            Ok(())
        }),
    },
    // Limits
    Flag {
        name: "max-connections",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Limits,
        default: "10000",
        help: "Most connections open at once (at least 1).",
        setter: Setter::Serve(|o, v| {
            o.max_connections = parse_count(v, 1)?;
            Ok(())
        }),
    },
    Flag {
        name: "max-connections-per-ip",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Limits,
        default: "1000",
        help: "Most connections open at once from one IP address; 0 = unlimited.",
        setter: Setter::Serve(|o, v| {
            o.max_connections_per_ip = parse_count(v, 0)?;
            Ok(())
        }),
    },
    Flag {
        name: "max-message-size",
        metavar: Some("SIZE"),
        repeatable: false,
        group: Group::Limits,
        default: "16MiB",
        help: "Largest message, all fragments together (closed with 1009 beyond).",
        setter: Setter::Serve(|o, v| {
            o.max_message_size = parse_size(v, 1)?;
            Ok(())
        }),
    },
    Flag {
        name: "max-frame-size",
        metavar: Some("SIZE"),
        repeatable: false,
        group: Group::Limits,
        default: "16MiB",
        help: "Largest frame payload (at least 125); a data frame also obeys \
               --max-message-size.",
        // RFC 6455 §5.5: control frames carry up to 125 bytes, and refusing a legal close or
        // ping would break the protocol.
        setter: Setter::Serve(|o, v| {
            o.max_frame_size = parse_size(v, 125)?;
            Ok(())
        }),
    },
    Flag {
        name: "queue-cap",
        metavar: Some("SIZE"),
        repeatable: false,
        group: Group::Limits,
        default: "32MiB",
        help: "Most bytes queued for sending on one connection (at least 1KiB).",
        setter: Setter::Serve(|o, v| {
            o.queue_cap = parse_size(v, KIB)?;
            Ok(())
        }),
    },
    Flag {
        name: "compression",
        metavar: Some("MODE"),
        repeatable: false,
        group: Group::Limits,
        default: "off",
        help: "permessage-deflate (RFC 7692) for clients that offer it: off, shared (one \
               compressor, no context kept between messages: no compression memory per \
               connection), or dedicated[:BITS] (a compressor per connection keeping a window \
               of 2^BITS bytes, 8-15, default 15: better ratio, up to about 70 KiB per connection).",
        setter: Setter::Serve(|o, v| {
            o.compression = parse_compression(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "compression-min-size",
        metavar: Some("SIZE"),
        repeatable: false,
        group: Group::Limits,
        default: "1KiB",
        help: "With --compression, messages shorter than this are sent as they are.",
        setter: Setter::Serve(|o, v| {
            o.compression_min_size = parse_size(v, 0)?;
            Ok(())
        }),
    },
    Flag {
        name: "max-queued-total",
        metavar: Some("SIZE"),
        repeatable: false,
        group: Group::Limits,
        default: "256MiB",
        help: "Most bytes queued for sending on all connections together; past it the \
               connections with the most queued are cut first (at least 1KiB).",
        setter: Setter::Serve(|o, v| {
            o.max_queued_total = parse_size(v, KIB)?;
            Ok(())
        }),
    },
    Flag {
        name: "max-head-size",
        metavar: Some("SIZE"),
        repeatable: false,
        group: Group::Limits,
        default: "8KiB",
        help: "Most bytes the HTTP upgrade request may take (431 beyond; at least 512).",
        setter: Setter::Serve(|o, v| {
            o.max_head_size = size_to_usize(parse_size(v, 512)?)?;
            Ok(())
        }),
    },
    Flag {
        name: "max-headers",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Limits,
        default: "64",
        help: "Most header lines in the HTTP upgrade request (431 beyond; at least 5).",
        // RFC 6455 §4.1: a valid request carries at least Host, Upgrade, Connection,
        // Sec-WebSocket-Key and Sec-WebSocket-Version.
        setter: Setter::Serve(|o, v| {
            o.max_headers = parse_count(v, 5)?;
            Ok(())
        }),
    },
    Flag {
        name: "read-buffer-size",
        metavar: Some("SIZE"),
        repeatable: false,
        group: Group::Limits,
        default: "16KiB",
        help: "Size of the read buffer and of each leased write buffer (at least 1KiB).",
        setter: Setter::Serve(|o, v| {
            o.read_buffer_size = size_to_usize(parse_size(v, KIB)?)?;
            Ok(())
        }),
    },
    // Timers
    Flag {
        name: "handshake-timeout",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Timers,
        default: "10s",
        help: "How long the opening handshake may take; 0 = off (not advised).",
        setter: Setter::Serve(|o, v| {
            o.handshake_timeout = parse_optional_duration(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "ping-interval",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Timers,
        default: "30s",
        help: "Send a ping after this long without hearing from the peer; 0 = off.",
        setter: Setter::Serve(|o, v| {
            o.ping_interval = parse_optional_duration(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "pong-timeout",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Timers,
        default: "30s",
        help: "How long a pong may take after a ping before the connection is dropped (> 0).",
        setter: Setter::Serve(|o, v| {
            o.pong_timeout = parse_required_duration(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "idle-timeout",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Timers,
        default: "0",
        help: "Close a connection (1001) after this long without a data message; 0 = off.",
        setter: Setter::Serve(|o, v| {
            o.idle_timeout = parse_optional_duration(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "close-timeout",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Timers,
        default: "5s",
        help: "How long the close handshake may take once the server sent its close (> 0).",
        setter: Setter::Serve(|o, v| {
            o.close_timeout = parse_required_duration(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "send-timeout",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Timers,
        default: "30s",
        help: "Drop a connection whose queued output has had no byte written for this long \
               (> 0).",
        setter: Setter::Serve(|o, v| {
            o.send_timeout = parse_required_duration(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "shutdown-timeout",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Timers,
        default: "10s",
        help: "How long a graceful shutdown waits for connections to close (> 0).",
        setter: Setter::Serve(|o, v| {
            o.shutdown_timeout = parse_required_duration(v)?;
            Ok(())
        }),
    },
    // Hub
    Flag {
        name: "history",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Hub,
        default: "100",
        help: "Messages each channel keeps for history and subscribe with since.",
        setter: Setter::Serve(|o, v| {
            o.history = parse_count(v, 0)?;
            Ok(())
        }),
    },
    Flag {
        name: "history-memory",
        metavar: Some("SIZE"),
        repeatable: false,
        group: Group::Hub,
        default: "64MiB",
        help: "Bytes of history all channels keep together; the oldest messages are evicted first.",
        setter: Setter::Serve(|o, v| {
            o.history_memory = parse_size(v, 0)?;
            Ok(())
        }),
    },
    Flag {
        name: "max-channels",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Hub,
        default: "10000",
        help: "Most channels in all (one is kept while followed or holding a message).",
        setter: Setter::Serve(|o, v| {
            o.max_channels = parse_count(v, 1)?;
            Ok(())
        }),
    },
    Flag {
        name: "max-channels-per-connection",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Hub,
        default: "100",
        help: "Most channels one connection may subscribe to.",
        setter: Setter::Serve(|o, v| {
            o.max_channels_per_connection = parse_count(v, 1)?;
            Ok(())
        }),
    },
    Flag {
        name: "max-publish-size",
        metavar: Some("SIZE"),
        repeatable: false,
        group: Group::Hub,
        default: "64KiB",
        help: "Largest data of one publish (too_large beyond).",
        setter: Setter::Serve(|o, v| {
            o.max_publish_size = parse_size(v, 1)?;
            Ok(())
        }),
    },
    Flag {
        name: "token",
        metavar: Some("TOKEN"),
        repeatable: true,
        group: Group::Hub,
        default: "",
        help: "A bearer token clients must present on every endpoint but the open ones \
               (Authorization: Bearer, ?token=, or the hub's authenticate method).",
        setter: Setter::Serve(|o, v| {
            if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(String::from("a token must be non-empty, without spaces"));
            }
            o.tokens.push(v.to_string());
            Ok(())
        }),
    },
    Flag {
        name: "token-file",
        metavar: Some("PATH"),
        repeatable: false,
        group: Group::Hub,
        default: "",
        help: "A file of tokens, one per line ('#' comments), read at start-up.",
        setter: Setter::Serve(|o, v| {
            o.token_file = Some(v.to_string());
            Ok(())
        }),
    },
    Flag {
        name: "auth-timeout",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Hub,
        default: "10s",
        help: "How long a client may take to authenticate; then it is closed with 1008 (> 0).",
        setter: Setter::Serve(|o, v| {
            o.auth_timeout = parse_required_duration(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "basic-auth",
        metavar: Some("USER:PASSWORD"),
        repeatable: false,
        group: Group::Hub,
        default: "",
        help: "HTTP Basic credentials required on every endpoint but the open ones (401 \
               otherwise).",
        setter: Setter::Serve(|o, v| {
            if !v.contains(':') {
                return Err(String::from("expected USER:PASSWORD"));
            }
            o.basic_auth = Some(v.to_string());
            Ok(())
        }),
    },
    Flag {
        name: "origin",
        metavar: Some("ORIGIN"),
        repeatable: true,
        group: Group::Hub,
        default: "",
        help: "An Origin allowed to connect, e.g. https://app.example.com, or \
               https://*.example.com for its subdomains (others get 403).",
        setter: Setter::Serve(|o, v| {
            let v = v.trim_end_matches('/');
            crate::access::check_origin_pattern(v)?;
            o.origins.push(v.to_string());
            Ok(())
        }),
    },
    Flag {
        name: "public",
        metavar: Some("PATH"),
        repeatable: true,
        group: Group::Hub,
        default: "",
        help: "A path (and the paths under it) open with no credentials, from any origin.",
        setter: Setter::Serve(|o, v| {
            check_path(v)?;
            o.public.push(v.to_string());
            Ok(())
        }),
    },
    Flag {
        name: "rate",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Hub,
        default: "1000",
        help: "Messages per second per connection (rate_limited beyond, 1008 far beyond), and HTTP \
               publishes per client address (429 beyond); 0 = off.",
        setter: Setter::Serve(|o, v| {
            o.rate = u32::try_from(parse_count(v, 0)?).map_err(|_| "too large")?;
            Ok(())
        }),
    },
    Flag {
        name: "rate-burst",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Hub,
        default: "2000",
        help: "Messages a connection may send at once above the rate.",
        setter: Setter::Serve(|o, v| {
            o.rate_burst = u32::try_from(parse_count(v, 1)?).map_err(|_| "too large")?;
            Ok(())
        }),
    },
    Flag {
        name: "channel-rate",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Hub,
        default: "10",
        help: "Channels one client address may create per second (rate_limited, HTTP 429 beyond); \
               0 = off.",
        setter: Setter::Serve(|o, v| {
            o.channel_rate = u32::try_from(parse_count(v, 0)?).map_err(|_| "too large")?;
            Ok(())
        }),
    },
    Flag {
        name: "channel-rate-burst",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Hub,
        default: "100",
        help: "Channels one client address may create at once above the channel rate.",
        setter: Setter::Serve(|o, v| {
            o.channel_rate_burst = u32::try_from(parse_count(v, 1)?).map_err(|_| "too large")?;
            Ok(())
        }),
    },
    Flag {
        name: "redis",
        metavar: Some("redis[s]://[USER:PASSWORD@]HOST[:PORT][/DB]"),
        repeatable: false,
        group: Group::Hub,
        default: "",
        help: "Keep the hub's channels in this Redis (7.0 or later), shared by every weir \
               process using it: publishes, history and fan-out across nodes (docs/redis.md). \
               rediss:// is over TLS (--features tls), verified against --tls-ca's roots.",
        setter: Setter::Serve(|o, v| {
            let url = crate::redis::RedisUrl::parse(v).map_err(|e| e.to_string())?;
            if url.tls && !cfg!(feature = "tls") {
                return Err(crate::redis::UrlError::TlsUnsupported.to_string());
            }
            o.redis = Some(url);
            Ok(())
        }),
    },
    Flag {
        name: "redis-channel-ttl",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Hub,
        default: "24h",
        help: "With --redis: a channel's history and epoch stay in Redis this long after its \
               last publish, then expire (a client resuming after is told recovered: false); \
               0 = never.",
        setter: Setter::Serve(|o, v| {
            o.redis_channel_ttl = parse_optional_duration(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "redis-presence-ttl",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Hub,
        default: "30s",
        help: "With --redis: a presence entry lives this long unless its node refreshes it \
               (every third of it), so a node that dies leaves the counts within it (> 0).",
        setter: Setter::Serve(|o, v| {
            o.redis_presence_ttl = parse_required_duration(v)?;
            Ok(())
        }),
    },
    // Reverse proxy
    Flag {
        name: "route",
        metavar: Some("PATH=ws://HOST:PORT/PATH"),
        repeatable: true,
        group: Group::Proxy,
        default: "",
        help: "Proxy WebSocket connections and plain HTTP requests under PATH to an upstream; \
               the longest matching prefix wins, and the rest of the path and the query are \
               appended. PATH=tunnel://NAME/TARGET sends them down agent NAME's tunnel to its TARGET.",
        setter: Setter::Serve(|o, v| {
            let (path, url) = v.split_once('=').ok_or("expected PATH=ws://HOST:PORT/PATH")?;
            check_path(path)?;
            if url.starts_with("tunnel://") {
                let route = crate::tunnel::controller::TunnelRoute::parse(path, url)?;
                o.tunnel_routes.push(route);
                return Ok(());
            }
            check_url(url)?;
            o.routes.push((path.to_string(), url.to_string()));
            Ok(())
        }),
    },
    Flag {
        name: "tunnel-token-file",
        metavar: Some("FILE"),
        repeatable: false,
        group: Group::Proxy,
        default: "",
        help: "Take tunnel agents (weir tunnel) at --tunnel-path: FILE holds the bearer tokens \
               they may present, one a line (read at start-up).",
        setter: Setter::Serve(|o, v| {
            o.tunnel_token_file = Some(non_empty(v)?);
            Ok(())
        }),
    },
    Flag {
        name: "tunnel-path",
        metavar: Some("PATH"),
        repeatable: false,
        group: Group::Proxy,
        default: "/_tunnel",
        help: "Where tunnel agents dial, with --tunnel-token-file.",
        setter: Setter::Serve(|o, v| {
            check_path(v)?;
            o.tunnel_path = v.to_string();
            Ok(())
        }),
    },
    Flag {
        name: "tunnel-host",
        metavar: Some("*.DOMAIN"),
        repeatable: true,
        group: Group::Proxy,
        default: "",
        help: "Upgrades whose Host is TARGET.NAME.DOMAIN go down agent NAME's tunnel to its \
               TARGET, the whole path with them (before any --route).",
        setter: Setter::Serve(|o, v| {
            o.tunnel_hosts.push(crate::tunnel::controller::host_pattern(v)?);
            Ok(())
        }),
    },
    Flag {
        name: "tls-ca",
        metavar: Some("PEM"),
        repeatable: false,
        group: Group::Proxy,
        default: "",
        help: "Roots (PEM) wss:// upstreams and a rediss:// --redis are verified against; \
               default: the system's (/etc/ssl/certs/ca-certificates.crt, or SSL_CERT_FILE).",
        setter: Setter::Serve(|o, v| {
            o.tls_ca = Some(non_empty(v)?);
            Ok(())
        }),
    },
    Flag {
        name: "insecure",
        metavar: None,
        repeatable: false,
        group: Group::Proxy,
        default: "",
        help: "Verify no wss:// upstream's (or rediss:// Redis's) certificate. For testing only: anyone on the path \
               can read and change the traffic.",
        setter: Setter::Serve(|o, v| {
            o.insecure = parse_bool(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "upstream-timeout",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Proxy,
        default: "10s",
        help: "How long connecting to a --route's upstream and its WebSocket handshake may \
               take (504 after; > 0).",
        setter: Setter::Serve(|o, v| {
            o.upstream_timeout = parse_required_duration(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "response-timeout",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Proxy,
        default: "60s",
        help: "How long a plain HTTP request's upstream (a --route's, or a service behind a \
               tunnel) has to begin its response, from the request or the last piece of its \
               body (504 after; > 0).",
        setter: Setter::Serve(|o, v| {
            o.response_timeout = parse_required_duration(v)?;
            Ok(())
        }),
    },
    // Processes
    Flag {
        name: "exec",
        metavar: Some("PATH=PROGRAM [ARGS...]"),
        repeatable: true,
        group: Group::Processes,
        default: "",
        help: "Each WebSocket connection to PATH (and paths under it) runs PROGRAM: messages are \
               lines on its stdin, its stdout lines are messages. Quote the whole value; \
               PROGRAM [ARGS...] is split into words as sh splits them (quotes and backslash, \
               no expansion), and the variable cannot hold commas.",
        setter: Setter::Serve(|o, v| {
            o.exec.push(crate::exec::ExecRoute::parse(v)?);
            Ok(())
        }),
    },
    Flag {
        name: "exec-binary",
        metavar: None,
        repeatable: false,
        group: Group::Processes,
        default: "",
        help: "Exec: stdout in raw chunks as binary messages, messages to stdin as they are.",
        setter: Setter::Serve(|o, v| {
            o.exec_binary = parse_bool(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "pass-stderr",
        metavar: None,
        repeatable: false,
        group: Group::Processes,
        default: "",
        help: "Exec: stderr lines to the client as messages (else to weir's log).",
        setter: Setter::Serve(|o, v| {
            o.pass_stderr = parse_bool(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "kill-grace",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Processes,
        default: "5s",
        help: "How long a process has between SIGTERM and SIGKILL (> 0).",
        setter: Setter::Serve(|o, v| {
            o.kill_grace = parse_required_duration(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "max-processes",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Processes,
        default: "64",
        help: "Most exec processes running at once (503 beyond; at least 1).",
        setter: Setter::Serve(|o, v| {
            o.max_processes = parse_count(v, 1)?;
            Ok(())
        }),
    },
    Flag {
        name: "agent",
        metavar: Some("NAME=PROGRAM [ARGS...]"),
        repeatable: true,
        group: Group::Processes,
        default: "",
        help: "A supervised process started at boot, watched and steered at /ws/agents/NAME \
               (same quoting rules as --exec).",
        setter: Setter::Serve(|o, v| {
            let spec = crate::agent::AgentSpec::parse(v)?;
            if o.agents.iter().any(|a| a.name == spec.name) {
                return Err(format!("agent '{}' is given twice", spec.name));
            }
            o.agents.push(spec);
            Ok(())
        }),
    },
    Flag {
        name: "agent-restart",
        metavar: Some("POLICY"),
        repeatable: false,
        group: Group::Processes,
        default: "on-failure",
        help: "When an agent that ends on its own is started again: never, on-failure or \
               always (with a back-off from 0.5s doubling to 30s).",
        setter: Setter::Serve(|o, v| {
            o.agent_restart = crate::agent::RestartPolicy::from_name(v)
                .ok_or("expected never, on-failure or always")?;
            Ok(())
        }),
    },
    Flag {
        name: "agent-log-lines",
        metavar: Some("N"),
        repeatable: false,
        group: Group::Processes,
        default: "200",
        help: "Output lines an agent keeps to show new clients (also at most 4MiB).",
        setter: Setter::Serve(|o, v| {
            o.agent_log_lines = parse_count(v, 0)?;
            Ok(())
        }),
    },
    // Logging
    Flag {
        name: "log-level",
        metavar: Some("LEVEL"),
        repeatable: false,
        group: Group::Logging,
        default: "info",
        help: "Most verbose level written to stderr: error, warn, info or debug.",
        setter: Setter::Serve(|o, v| {
            o.log_level =
                log::Level::from_name(v).ok_or("expected one of error, warn, info, debug")?;
            Ok(())
        }),
    },
    Flag {
        name: "log-format",
        metavar: Some("FORMAT"),
        repeatable: false,
        group: Group::Logging,
        default: "text",
        help: "Layout of log lines: text (key=value) or json (one object per line).",
        setter: Setter::Serve(|o, v| {
            o.log_format = log::Format::from_name(v).ok_or("expected text or json")?;
            Ok(())
        }),
    },
    // Subcommands: `weir client`
    Flag {
        name: "binary",
        metavar: None,
        repeatable: false,
        group: Group::Subcommands,
        default: "",
        help: "Send binary messages instead of text.",
        setter: Setter::Client(|o, v| {
            o.binary = parse_bool(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "header",
        metavar: Some("NAME:VALUE"),
        repeatable: true,
        group: Group::Subcommands,
        default: "",
        help: "Extra request header (in the variable, values cannot contain commas).",
        setter: Setter::Client(|o, v| {
            let header = parse_header(v)?;
            o.headers.push(header);
            Ok(())
        }),
    },
    Flag {
        name: "subprotocol",
        metavar: Some("NAME"),
        repeatable: true,
        group: Group::Subcommands,
        default: "",
        help: "Subprotocol to offer, in order of preference.",
        setter: Setter::Client(|o, v| {
            check_token(v)?;
            o.subprotocols.push(v.to_string());
            Ok(())
        }),
    },
    Flag {
        name: "origin",
        metavar: Some("ORIGIN"),
        repeatable: false,
        group: Group::Subcommands,
        default: "",
        help: "Origin header to send, e.g. http://example.com.",
        setter: Setter::Client(|o, v| {
            check_header_value(v)?;
            if v.is_empty() {
                return Err(String::from("must not be empty"));
            }
            o.origin = Some(v.to_string());
            Ok(())
        }),
    },
    Flag {
        name: "tls-ca",
        metavar: Some("PEM"),
        repeatable: false,
        group: Group::Subcommands,
        default: "",
        help: "Roots (PEM) a wss:// server is verified against; default: the system's.",
        setter: Setter::Client(|o, v| {
            o.tls_ca = Some(non_empty(v)?);
            Ok(())
        }),
    },
    Flag {
        name: "compression",
        metavar: Some("MODE"),
        repeatable: false,
        group: Group::Subcommands,
        default: "off",
        help: "Offer permessage-deflate (RFC 7692): off, shared (no context kept between \
               messages either way) or dedicated[:BITS] (this end keeps a window of 2^BITS).",
        setter: Setter::Client(|o, v| {
            o.compression = parse_compression(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "insecure",
        metavar: None,
        repeatable: false,
        group: Group::Subcommands,
        default: "",
        help: "Verify no certificate (testing only; says so on stderr).",
        setter: Setter::Client(|o, v| {
            o.insecure = parse_bool(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "compression-min-size",
        metavar: Some("SIZE"),
        repeatable: false,
        group: Group::Subcommands,
        default: "1KiB",
        help: "With --compression, messages shorter than this are sent as they are.",
        setter: Setter::Client(|o, v| {
            o.compression_min_size = parse_size(v, 0)?;
            Ok(())
        }),
    },
    // Tunnel agent: `weir tunnel`
    Flag {
        name: "name",
        metavar: Some("NAME"),
        repeatable: false,
        group: Group::Tunnel,
        default: "",
        help: "The name this agent registers with the controller (1-64 of A-Z a-z 0-9 . _ -; \
               routes name it in tunnel://NAME/TARGET). Required.",
        setter: Setter::Tunnel(|o, v| {
            check_name(v)?;
            o.name = v.to_string();
            Ok(())
        }),
    },
    Flag {
        name: "token-file",
        metavar: Some("FILE"),
        repeatable: false,
        group: Group::Tunnel,
        default: "",
        help: "File whose first line is the bearer token the controller takes. Required.",
        setter: Setter::Tunnel(|o, v| {
            o.token_file = non_empty(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "expose",
        metavar: Some("TARGET=ws://HOST:PORT/PATH"),
        repeatable: true,
        group: Group::Tunnel,
        default: "",
        help: "A service the controller may reach as TARGET; no other is ever dialled. \
               http://HOST:PORT/PATH is the same: one target takes both WebSocket upgrades \
               and plain HTTP requests. Required.",
        setter: Setter::Tunnel(|o, v| {
            let (name, url) = v.split_once('=').ok_or("expected TARGET=ws://HOST:PORT/PATH")?;
            check_name(name)?;
            // http:// names the service as ws:// does (the agent dials it either way).
            let ws = url.strip_prefix("http://").map(|rest| format!("ws://{rest}"));
            check_url(ws.as_deref().unwrap_or(url))?;
            if o.exposes.iter().any(|(n, _)| n == name) {
                return Err(format!("target '{name}' is given twice"));
            }
            o.exposes.push((name.to_string(), url.to_string()));
            Ok(())
        }),
    },
    Flag {
        name: "allow-plain",
        metavar: None,
        repeatable: false,
        group: Group::Tunnel,
        default: "",
        help: "Dial a plain ws:// controller that is not on loopback (the token and the \
               traffic go in clear).",
        setter: Setter::Tunnel(|o, v| {
            o.allow_plain = parse_bool(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "tls-ca",
        metavar: Some("PEM"),
        repeatable: false,
        group: Group::Tunnel,
        default: "",
        help: "Roots (PEM) a wss:// controller is verified against; default: the system's.",
        setter: Setter::Tunnel(|o, v| {
            o.tls_ca = Some(non_empty(v)?);
            Ok(())
        }),
    },
    Flag {
        name: "insecure",
        metavar: None,
        repeatable: false,
        group: Group::Tunnel,
        default: "",
        help: "Verify no certificate (testing only).",
        setter: Setter::Tunnel(|o, v| {
            o.insecure = parse_bool(v)?;
            Ok(())
        }),
    },
    Flag {
        name: "reconnect-max",
        metavar: Some("DURATION"),
        repeatable: false,
        group: Group::Tunnel,
        default: "30s",
        help: "The longest wait between dials after failures (jittered exponential back-off \
               from 0.2s; > 0).",
        setter: Setter::Tunnel(|o, v| {
            o.reconnect_max = parse_required_duration(v)?;
            Ok(())
        }),
    },
];

/// A tunnel agent's or target's name: 1-64 of `A-Z a-z 0-9 . _ -` (docs/tunnel.md).
fn check_name(v: &str) -> Result<(), String> {
    if crate::proto::tunnel::codec::valid_target(v.as_bytes()) {
        Ok(())
    } else {
        Err(String::from("expected 1-64 of A-Z a-z 0-9 . _ -"))
    }
}

/// A file name or other value that may not be empty.
fn non_empty(v: &str) -> Result<String, String> {
    if v.is_empty() { Err(String::from("must not be empty")) } else { Ok(v.to_string()) }
}

/// `--compression`: off, shared, dedicated or dedicated:BITS (8 to 15).
fn parse_compression(v: &str) -> Result<Option<crate::server::compress::Mode>, String> {
    use crate::server::compress::Mode;
    Ok(match v {
        "off" => None,
        "shared" => Some(Mode::Shared),
        "dedicated" => Some(Mode::Dedicated { bits: 15 }),
        _ => match v.strip_prefix("dedicated:").map(str::parse::<u8>) {
            Some(Ok(bits @ 8..=15)) => Some(Mode::Dedicated { bits }),
            _ => {
                return Err(format!(
                    "{v}: expected off, shared, dedicated or dedicated:8 to dedicated:15"
                ));
            }
        },
    })
}

/// Whether a command-line word is a flag rather than a value (so `--listen --echo /x` reports
/// the missing value instead of taking `--echo` as an address).
fn looks_like_flag(arg: &str) -> bool {
    arg.len() > 2 && arg.starts_with("--")
}

/// A whole number of bytes: `N`, or `N` with a suffix (case-insensitive) `B`; `K`, `KiB`, `M`,
/// `MiB`, `G`, `GiB` (powers of 1024); `KB`, `MB`, `GB` (powers of 1000). At least `min`.
fn parse_size(v: &str, min: u64) -> Result<u64, String> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, suffix) = v.split_at(split);
    let multiplier = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => KIB,
        "m" | "mib" => MIB,
        "g" | "gib" => GIB,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        _ => {
            return Err(String::from("expected a size like 65536, 64KiB, 16MiB, 1GiB or 10MB"));
        }
    };
    let n = parse_digits(digits, "a size like 65536, 64KiB, 16MiB, 1GiB or 10MB")?;
    let bytes = n.checked_mul(multiplier).ok_or_else(|| String::from("size is too large"))?;
    if bytes < min {
        return Err(format!("must be at least {min} bytes"));
    }
    Ok(bytes)
}

fn size_to_usize(bytes: u64) -> Result<usize, String> {
    usize::try_from(bytes).map_err(|_| String::from("size is too large for this platform"))
}

/// A plain count, at least `min`.
fn parse_count(v: &str, min: usize) -> Result<usize, String> {
    let n = parse_digits(v, "a whole number")?;
    let n = usize::try_from(n).map_err(|_| String::from("number is too large"))?;
    if n < min {
        return Err(format!("must be at least {min}"));
    }
    Ok(n)
}

/// ASCII digits only: no sign, no spaces, no fraction.
fn parse_digits(digits: &str, expected: &str) -> Result<u64, String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected {expected}"));
    }
    digits.parse().map_err(|_| String::from("number is too large"))
}

/// `N` with `ms`, `s`, `m` or `h`, or bare seconds; at most [`MAX_DURATION`].
fn parse_duration(v: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "a duration like 500ms, 30s, 2m, 1h or bare seconds";
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n = parse_digits(digits, EXPECTED)?;
    let too_long = || String::from("must be at most 8760h");
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(too_long)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(too_long)?),
        _ => return Err(format!("expected {EXPECTED}")),
    };
    if duration > MAX_DURATION {
        return Err(too_long());
    }
    Ok(duration)
}

/// A timer that 0 turns off.
fn parse_optional_duration(v: &str) -> Result<Option<Duration>, String> {
    let d = parse_duration(v)?;
    Ok((!d.is_zero()).then_some(d))
}

/// A timer that cannot be turned off.
fn parse_required_duration(v: &str) -> Result<Duration, String> {
    let d = parse_duration(v)?;
    if d.is_zero() {
        return Err(String::from("must be greater than 0"));
    }
    Ok(d)
}

/// A switch's value: `true` from the command line, or what its variable holds.
fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(String::from("expected 1, 0, true or false")),
    }
}

/// `HOST:PORT` or `[V6]:PORT`; the host is resolved later, so only its shape is checked.
fn check_listen(v: &str) -> Result<(), String> {
    const EXPECTED: &str = "expected HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:8080";
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:").ok_or(EXPECTED)?;
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| format!("'{v6}' is not an IPv6 address"))?;
        (v6, port)
    } else {
        let (host, port) = v.rsplit_once(':').ok_or(EXPECTED)?;
        if host.contains(':') {
            return Err(String::from("put an IPv6 address in brackets, e.g. [::1]:8080"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(String::from("missing host (use 0.0.0.0:PORT for all interfaces)"));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(String::from(EXPECTED));
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err()
    {
        return Err(format!("'{port}' is not a port (0-65535)"));
    }
    Ok(())
}

/// A request path: starts with `/`, no whitespace or control characters (it could never
/// match a request line).
fn check_path(v: &str) -> Result<(), String> {
    if !v.starts_with('/') {
        return Err(String::from("must start with '/'"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(String::from("must not contain spaces or control characters"));
    }
    Ok(())
}

/// `ws://HOST...`, or `wss://HOST...` when built with the `tls` feature.
fn check_url(v: &str) -> Result<(), String> {
    let scheme_end = v.find("://").ok_or("expected a ws:// URL, e.g. ws://127.0.0.1:8080/echo")?;
    let scheme = &v[..scheme_end];
    if scheme.eq_ignore_ascii_case("wss") && !cfg!(feature = "tls") {
        return Err(String::from(
            "wss:// needs a weir built with TLS (cargo build --features tls)",
        ));
    }
    if !scheme.eq_ignore_ascii_case("ws") && !scheme.eq_ignore_ascii_case("wss") {
        return Err(String::from("expected a ws:// URL, e.g. ws://127.0.0.1:8080/echo"));
    }
    let rest = &v[scheme_end + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(String::from("missing host"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(String::from("must not contain spaces or control characters"));
    }
    Ok(())
}

/// `NAME:VALUE`, with optional whitespace around the value.
fn parse_header(v: &str) -> Result<(String, String), String> {
    let (name, value) = v.split_once(':').ok_or("expected NAME:VALUE")?;
    check_token(name).map_err(|e| format!("header name {e}"))?;
    let value = value.trim_matches([' ', '\t']);
    check_header_value(value)?;
    Ok((name.to_string(), value.to_string()))
}

/// An HTTP token (RFC 9110 §5.6.2), as header names and subprotocols must be.
fn check_token(v: &str) -> Result<(), String> {
    const SEPARATORS: &[u8] = b"\"(),/:;<=>?@[\\]{}";
    if v.is_empty() {
        return Err(String::from("must not be empty"));
    }
    if !v.bytes().all(|b| b.is_ascii_graphic() && !SEPARATORS.contains(&b)) {
        return Err(String::from("must be a token: letters, digits and !#$%&'*+-.^_`|~"));
    }
    Ok(())
}

/// No CR, LF or other control characters, which would split or corrupt the request.
fn check_header_value(v: &str) -> Result<(), String> {
    if v.chars().any(|c| c.is_control() && c != '\t') {
        return Err(String::from("must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn with_env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn serve(line: &str) -> Options {
        serve_env(line, &[])
    }

    fn serve_env(line: &str, vars: &[(&str, &str)]) -> Options {
        match parse(args(line), with_env(vars)) {
            Ok(Command::Serve(o)) => *o,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn err(line: &str) -> CliError {
        err_env(line, &[])
    }

    fn err_env(line: &str, vars: &[(&str, &str)]) -> CliError {
        match parse(args(line), with_env(vars)) {
            Err(e) => e,
            other => panic!("{line:?} should fail: {other:?}"),
        }
    }

    fn invalid(source: &str, value: &str) -> impl Fn(CliError) -> bool {
        move |e| matches!(&e, CliError::InvalidValue { source: s, value: v, .. } if s == source && v == value)
    }

    #[test]
    fn defaults() {
        assert_eq!(parse(Vec::new(), no_env), Ok(Command::Serve(Box::default())));
        assert_eq!(serve("serve"), Options::default());
        let o = Options::default();
        assert_eq!(o.listen, ["127.0.0.1:8080"]);
        assert_eq!(o.echo, ["/echo"]);
        assert_eq!(o.max_connections, 10_000);
        assert_eq!(o.max_connections_per_ip, 1000);
        assert_eq!(o.max_message_size, 16 << 20);
        assert_eq!(o.max_frame_size, 16 << 20);
        assert_eq!(o.queue_cap, 32 << 20);
        assert_eq!(o.max_queued_total, 256 << 20);
        assert_eq!(o.send_timeout, Duration::from_secs(30));
        assert_eq!(o.max_head_size, 8192);
        assert_eq!(o.max_headers, 64);
        assert_eq!(o.read_buffer_size, 16384);
        assert_eq!(o.handshake_timeout, Some(Duration::from_secs(10)));
        assert_eq!(o.ping_interval, Some(Duration::from_secs(30)));
        assert_eq!(o.pong_timeout, Duration::from_secs(30));
        assert_eq!(o.idle_timeout, None);
        assert_eq!(o.close_timeout, Duration::from_secs(5));
        assert_eq!(o.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(o.log_level, log::Level::Info);
        assert_eq!(o.log_format, log::Format::Text);
    }

    #[test]
    fn table_defaults_match_options_default() {
        for flag in FLAGS {
            let Setter::Serve(set) = flag.setter else {
                continue;
            };
            if flag.default.is_empty() {
                continue; // no default: the option starts empty (e.g. --route)
            }
            let mut o = Options { listen: Vec::new(), echo: Vec::new(), ..Options::default() };
            set(&mut o, flag.default).unwrap();
            if o.listen.is_empty() {
                o.listen = Options::default().listen;
            }
            if o.echo.is_empty() {
                o.echo = Options::default().echo;
            }
            assert_eq!(o, Options::default(), "--{} default {:?}", flag.name, flag.default);
        }
    }

    #[test]
    fn every_flag_sets_something() {
        // Parse each server flag with a non-default value through the real parser, both as a
        // flag and as its variable, and check the result differs from the defaults.
        let samples: &[(&str, &str)] = &[
            ("listen", "[::1]:9000"),
            ("listen-tls", "[::1]:9443"),
            ("reuse-port", "true"),
            ("tls-cert", "/etc/weir/cert.pem"),
            ("tls-key", "/etc/weir/key.pem"),
            ("tls-ca", "/etc/weir/ca.pem"),
            ("insecure", "true"),
            ("echo", "/other"),
            ("broadcast", "/room=all"),
            ("max-connections", "5"),
            ("max-connections-per-ip", "0"),
            ("max-message-size", "1MiB"),
            ("max-frame-size", "125"),
            ("queue-cap", "1KiB"),
            ("max-queued-total", "1MiB"),
            ("compression", "dedicated:10"),
            ("compression-min-size", "2KiB"),
            ("max-head-size", "512"),
            ("max-headers", "5"),
            ("read-buffer-size", "1K"),
            ("handshake-timeout", "0"),
            ("ping-interval", "0"),
            ("pong-timeout", "1s"),
            ("idle-timeout", "1m"),
            ("close-timeout", "1ms"),
            ("send-timeout", "2s"),
            ("shutdown-timeout", "1h"),
            ("history", "5"),
            ("history-memory", "1MiB"),
            ("max-channels", "7"),
            ("max-channels-per-connection", "3"),
            ("max-publish-size", "1KiB"),
            ("token", "abc"),
            ("token-file", "/etc/weir/tokens"),
            ("auth-timeout", "3s"),
            ("basic-auth", "u:p"),
            ("origin", "https://a.example"),
            ("public", "/status"),
            ("rate", "5"),
            ("rate-burst", "9"),
            ("channel-rate", "0"),
            ("channel-rate-burst", "7"),
            ("redis", "redis://127.0.0.1:6380/2"),
            ("redis-channel-ttl", "0"),
            ("redis-presence-ttl", "3s"),
            ("route", "/app=ws://127.0.0.1:3000/app"),
            ("upstream-timeout", "1s"),
            ("tunnel-token-file", "/etc/weir/tunnel-tokens"),
            ("tunnel-path", "/agents"),
            ("response-timeout", "5s"),
            ("tunnel-host", "*.t.example.com"),
            ("exec", "/x=cat"),
            ("exec-binary", "true"),
            ("pass-stderr", "true"),
            ("kill-grace", "1s"),
            ("max-processes", "2"),
            ("agent", "a=cat"),
            ("agent-restart", "always"),
            ("agent-log-lines", "5"),
            ("log-level", "debug"),
            ("log-format", "json"),
        ];
        let serve_flags = FLAGS.iter().filter(|f| matches!(f.setter, Setter::Serve(_)));
        assert_eq!(serve_flags.count(), samples.len());
        for (name, value) in samples {
            let flag = FLAGS.iter().find(|f| f.name == *name).unwrap();
            let line = match flag.metavar {
                Some(_) => format!("--{name} {value}"),
                None => format!("--{name}"), // a switch takes no value on the command line
            };
            let from_flag = serve(&line);
            assert_ne!(from_flag, Options::default(), "--{name}");
            let from_env = serve_env("", &[(&flag.env_var(), value)]);
            assert_eq!(from_env, from_flag, "{}", flag.env_var());
        }
    }

    #[test]
    fn all_values() {
        let o = serve(
            "--listen 0.0.0.0:80 --listen=[::]:8443 --reuse-port --echo /a --echo=/b/c \
             --broadcast /r \
             --broadcast=/s=all \
             --max-connections 7 --max-connections-per-ip=0 --max-message-size 1GiB \
             --max-frame-size 64KiB --queue-cap 2MB --max-head-size 4k --max-headers 100 \
             --read-buffer-size 1024 --handshake-timeout 500ms --ping-interval 0 \
             --pong-timeout 2m --idle-timeout 1h --close-timeout 3 --shutdown-timeout 15s \
             --route /app=ws://127.0.0.1:3000/ --route=/b=ws://h:1/x --upstream-timeout 2s \
             --exec=/run=cat --exec-binary --pass-stderr --kill-grace 2s --max-processes 3 \
             --agent=c=sh --agent-restart never --agent-log-lines 10 \
             --compression shared --compression-min-size 0 \
             --log-level DEBUG --log-format json --listen-tls 0.0.0.0:443 --tls-cert c.pem \
             --tls-key k.pem --tls-ca ca.pem --insecure --route /t=tunnel://home/web \
             --tunnel-token-file tt --tunnel-path /agents --response-timeout 90s \
             --tunnel-host *.T.example.com",
        );
        assert_eq!(
            o,
            Options {
                listen: vec!["0.0.0.0:80".into(), "[::]:8443".into()],
                listen_tls: vec!["0.0.0.0:443".into()],
                reuse_port: true,
                tls_cert: vec!["c.pem".into()],
                tls_key: vec!["k.pem".into()],
                tls_ca: Some("ca.pem".into()),
                insecure: true,
                echo: vec!["/a".into(), "/b/c".into()],
                broadcast: vec![
                    crate::broadcast::BroadcastPath { path: "/r".into(), to_sender: false },
                    crate::broadcast::BroadcastPath { path: "/s".into(), to_sender: true },
                ],
                max_connections: 7,
                max_connections_per_ip: 0,
                max_message_size: 1 << 30,
                max_frame_size: 64 << 10,
                queue_cap: 2_000_000,
                max_queued_total: 256 << 20,
                compression: Some(crate::server::compress::Mode::Shared),
                compression_min_size: 0,
                max_head_size: 4096,
                max_headers: 100,
                read_buffer_size: 1024,
                handshake_timeout: Some(Duration::from_millis(500)),
                ping_interval: None,
                pong_timeout: Duration::from_secs(120),
                idle_timeout: Some(Duration::from_secs(3600)),
                close_timeout: Duration::from_secs(3),
                send_timeout: Duration::from_secs(30),
                shutdown_timeout: Duration::from_secs(15),
                history: 100,
                max_channels: 10_000,
                max_channels_per_connection: 100,
                max_publish_size: 64 * 1024,
                tokens: Vec::new(),
                token_file: None,
                auth_timeout: Duration::from_secs(10),
                basic_auth: None,
                origins: Vec::new(),
                public: Vec::new(),
                rate: 1000,
                rate_burst: 2000,
                history_memory: 64 << 20,
                channel_rate: 10,
                channel_rate_burst: 100,
                redis: None,
                redis_channel_ttl: Some(Duration::from_secs(24 * 3600)),
                redis_presence_ttl: Duration::from_secs(30),
                routes: vec![
                    ("/app".into(), "ws://127.0.0.1:3000/".into()),
                    ("/b".into(), "ws://h:1/x".into()),
                ],
                upstream_timeout: Duration::from_secs(2),
                tunnel_routes: vec![crate::tunnel::controller::TunnelRoute {
                    prefix: "/t".into(),
                    agent: "home".into(),
                    target: "web".into(),
                }],
                tunnel_hosts: vec![".t.example.com".into()],
                tunnel_token_file: Some("tt".into()),
                tunnel_path: "/agents".into(),
                response_timeout: Duration::from_secs(90),
                exec: vec![crate::exec::ExecRoute {
                    path: "/run".into(),
                    program: "cat".into(),
                    args: Vec::new(),
                }],
                exec_binary: true,
                pass_stderr: true,
                kill_grace: Duration::from_secs(2),
                max_processes: 3,
                agents: vec![crate::agent::AgentSpec {
                    name: "c".into(),
                    program: "sh".into(),
                    args: Vec::new(),
                }],
                agent_restart: crate::agent::RestartPolicy::Never,
                agent_log_lines: 10,
                log_level: log::Level::Debug,
                log_format: log::Format::Json,
            }
        );
    }

    #[test]
    fn sizes() {
        let ok = [
            ("0", 0),
            ("65536", 65536),
            ("10B", 10),
            ("1K", 1024),
            ("64KiB", 64 << 10),
            ("64kib", 64 << 10),
            ("3M", 3 << 20),
            ("16MiB", 16 << 20),
            ("1G", 1 << 30),
            ("1GiB", 1 << 30),
            ("2KB", 2000),
            ("5MB", 5_000_000),
            ("1GB", 1_000_000_000),
            ("18446744073709551615", u64::MAX),
        ];
        for (text, want) in ok {
            assert_eq!(parse_size(text, 0), Ok(want), "{text}");
        }
        for bad in [
            "",
            "-1",
            "+1",
            "1.5MiB",
            " 1",
            "1 KiB",
            "KiB",
            "1TiB",
            "1x",
            "1Mi",
            "1e6",
            "18446744073709551616",
            "17179869184GiB",
        ] {
            assert!(parse_size(bad, 0).is_err(), "{bad:?}");
        }
        assert_eq!(parse_size("1", 2), Err(String::from("must be at least 2 bytes")));
    }

    #[test]
    fn durations() {
        let ok = [
            ("0", Duration::ZERO),
            ("30", Duration::from_secs(30)),
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("8760h", MAX_DURATION),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "-1s",
            "1.5s",
            "1d",
            "1S",
            "s",
            "1 s",
            "1m30s",
            "8761h",
            "99999999999999999999",
            "5124095576030431h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_optional_duration("0"), Ok(None));
        assert_eq!(parse_optional_duration("0ms"), Ok(None));
        assert!(parse_required_duration("0s").is_err());
    }

    #[test]
    fn flag_beats_env() {
        let vars = [
            ("WEIR_MAX_CONNECTIONS", "5"),
            ("WEIR_LISTEN", "10.0.0.1:1,10.0.0.2:2"),
            ("WEIR_LOG_LEVEL", "debug"),
        ];
        let o = serve_env("--max-connections 9 --listen 127.0.0.1:3", &vars);
        assert_eq!(o.max_connections, 9);
        assert_eq!(o.listen, ["127.0.0.1:3"]);
        assert_eq!(o.log_level, log::Level::Debug, "env used when no flag");
    }

    #[test]
    fn env_used_when_no_flag() {
        let o = serve_env(
            "",
            &[
                ("WEIR_IDLE_TIMEOUT", " 90s "),
                ("WEIR_MAX_MESSAGE_SIZE", "1MiB"),
                ("WEIR_PING_INTERVAL", "0"),
            ],
        );
        assert_eq!(o.idle_timeout, Some(Duration::from_secs(90)));
        assert_eq!(o.max_message_size, 1 << 20);
        assert_eq!(o.ping_interval, None);
    }

    #[test]
    fn empty_env_is_unset() {
        let o = serve_env("", &[("WEIR_LISTEN", ""), ("WEIR_MAX_HEADERS", "  ")]);
        assert_eq!(o, Options::default());
    }

    #[test]
    fn repeatable_list_from_env() {
        let o = serve_env("", &[("WEIR_LISTEN", "0.0.0.0:80, [::]:80"), ("WEIR_ECHO", "/a,/b")]);
        assert_eq!(o.listen, ["0.0.0.0:80", "[::]:80"]);
        assert_eq!(o.echo, ["/a", "/b"]);
        assert!(invalid("WEIR_ECHO", "")(err_env("", &[("WEIR_ECHO", "/a,")])));
    }

    #[test]
    fn process_flags() {
        // The value holds the program and its arguments, as one shell word.
        let line = ["--exec", "/tail=tail -n 5 -f /var/log/x", "--agent", "w=sh /w.sh"];
        let Ok(Command::Serve(o)) = parse(line.map(String::from), no_env) else {
            panic!("process flags did not parse");
        };
        assert_eq!(o.exec[0].program, "tail");
        assert_eq!(o.exec[0].args, ["-n", "5", "-f", "/var/log/x"]);
        assert_eq!(o.agents[0].args, ["/w.sh"]);
        assert!(invalid("--exec", "tail")(err("--exec tail")));
        assert!(invalid("--exec", "/x=")(err("--exec /x=")));
        assert!(invalid("--agent", "a=sh")(err("--agent a=sh --agent a=sh")));
        assert!(invalid("--agent-restart", "sometimes")(err("--agent-restart sometimes")));
        assert!(invalid("--kill-grace", "0")(err("--kill-grace 0")));
        assert!(invalid("--max-processes", "0")(err("--max-processes 0")));
        assert!(serve_env("", &[("WEIR_PASS_STDERR", "1")]).pass_stderr);
    }

    #[test]
    fn process_commands_are_split_as_a_shell_splits_words() {
        let ticker = r#"ticker=sh -c "while :; do date; sleep 1; done""#;
        let line = ["--agent", ticker, "--exec", r"/g=grep -e 'a b' x\ y"];
        let Ok(Command::Serve(o)) = parse(line.map(String::from), no_env) else {
            panic!("quoted process flags did not parse");
        };
        assert_eq!(o.agents[0].program, "sh");
        assert_eq!(o.agents[0].args, ["-c", "while :; do date; sleep 1; done"]);
        assert_eq!(o.exec[0].args, ["-e", "a b", "x y"]);
        let o = serve_env("", &[("WEIR_AGENT", ticker)]);
        assert_eq!(o.agents[0].args, ["-c", "while :; do date; sleep 1; done"]);
        // An unterminated quote is a flag error, not a guess.
        let line = ["--agent", r#"t=sh -c "date"#].map(String::from);
        let e = parse(line, no_env).err().unwrap_or_else(|| panic!("an open quote parsed"));
        assert!(e.to_string().contains("unterminated double quote"), "{e}");
    }

    #[test]
    fn last_value_wins() {
        assert_eq!(serve("--max-headers 10 --max-headers=20").max_headers, 20);
    }

    #[test]
    fn equals_form_keeps_later_equals() {
        let c = client("client ws://h/ --header=X-A:b=c");
        assert_eq!(c.headers, [("X-A".to_string(), "b=c".to_string())]);
    }

    #[test]
    fn listen_shapes() {
        for ok in ["127.0.0.1:8080", "localhost:0", "[::1]:65535", "[::]:80", "example.com:443"] {
            assert!(check_listen(ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "127.0.0.1:",
            ":8080",
            "::1:8080",
            "[::1]",
            "[::1]8080",
            "[zz]:80",
            "host:65536",
            "host:-1",
            "host:http",
            "[]:80",
            "a b:80",
        ] {
            assert!(check_listen(bad).is_err(), "{bad}");
        }
        assert!(invalid("--listen", "localhost")(err("--listen localhost")));
    }

    #[test]
    fn errors() {
        assert_eq!(
            err("--lisen 1:1"),
            CliError::UnknownFlag { flag: "--lisen".into(), command: "weir" }
        );
        assert_eq!(
            err("--listen=x").to_string(),
            "invalid value 'x' for '--listen': expected HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:8080"
        );
        assert!(matches!(err("-x"), CliError::UnknownFlag { .. }));
        assert!(matches!(err("--binary"), CliError::UnknownFlag { .. }));
        assert_eq!(err("--listen"), CliError::MissingValue { flag: "--listen".into() });
        assert_eq!(err("--listen --echo /x"), CliError::MissingValue { flag: "--listen".into() });
        assert_eq!(err("stray"), CliError::UnexpectedArgument("stray".into()));
        assert!(invalid("--idle-timeout", "10x")(err("--idle-timeout 10x")));
        assert!(invalid("--pong-timeout", "0")(err("--pong-timeout 0")));
        assert!(invalid("--close-timeout", "0s")(err("--close-timeout 0s")));
        assert!(invalid("--shutdown-timeout", "0")(err("--shutdown-timeout 0")));
        assert!(invalid("--max-message-size", "-1")(err("--max-message-size -1")));
        assert!(invalid("--max-message-size", "0")(err("--max-message-size 0")));
        assert!(invalid("--max-frame-size", "124")(err("--max-frame-size 124")));
        assert!(invalid("--queue-cap", "1023")(err("--queue-cap 1023")));
        assert!(invalid("--max-head-size", "511")(err("--max-head-size 511")));
        assert!(invalid("--max-headers", "4")(err("--max-headers 4")));
        assert!(invalid("--read-buffer-size", "1023")(err("--read-buffer-size 1023")));
        assert!(invalid("--max-connections", "0")(err("--max-connections 0")));
        assert!(invalid("--max-connections", "1e3")(err("--max-connections 1e3")));
        assert!(invalid("--echo", "echo")(err("--echo echo")));
        assert!(invalid("--log-level", "trace")(err("--log-level trace")));
        assert!(invalid("--log-format", "xml")(err("--log-format xml")));
        assert!(invalid("WEIR_MAX_FRAME_SIZE", "lots")(err_env(
            "",
            &[("WEIR_MAX_FRAME_SIZE", "lots")]
        )));
        // Env values are only read for flags not given, but a bad one is still an error then.
        assert!(invalid("WEIR_LOG_FORMAT", "yaml")(err_env(
            "--log-level warn",
            &[("WEIR_LOG_FORMAT", "yaml")]
        )));
    }

    #[test]
    fn error_messages_name_the_flag() {
        assert_eq!(err("--frob").to_string(), "unknown flag '--frob' for 'weir'");
        assert_eq!(err("--echo").to_string(), "missing value for '--echo'");
        assert_eq!(
            err("--max-headers 1.5").to_string(),
            "invalid value '1.5' for '--max-headers': expected a whole number"
        );
        assert_eq!(err("client --binary=1 ws://x").to_string(), "'--binary' takes no value");
        assert_eq!(
            err("client --listen 1:1 ws://x").to_string(),
            "unknown flag '--listen' for 'weir client'"
        );
    }

    #[test]
    fn help_and_version() {
        let help = match parse(args("--max-connections 0 -h"), no_env) {
            Err(e) => panic!("{e}"),
            Ok(c) => c,
        };
        // `-h` comes after a bad value: values are only checked once the line is read.
        assert_eq!(help, Command::Help(help_text()));
        assert_eq!(parse(args("--help"), no_env), Ok(Command::Help(help_text())));
        assert_eq!(parse(args("client --help"), no_env), Ok(Command::Help(help_text())));
        let want = Command::Version(format!("weir {}", env!("CARGO_PKG_VERSION")));
        assert_eq!(parse(args("-V"), no_env), Ok(want.clone()));
        assert_eq!(parse(args("--version"), no_env), Ok(want));
        assert_eq!(version_text(), "weir 0.1.0");
    }

    #[test]
    fn help_lists_every_flag_and_twin() {
        let help = help_text();
        for flag in FLAGS {
            // `--token-file` is both the server's and the agent's: each line names its twin.
            let twin = format!("[env: {}]", flag.env_var());
            let line = help
                .lines()
                .find(|l| {
                    l.trim_start().starts_with(&format!("{} ", flag.long())) && l.contains(&twin)
                })
                .unwrap_or_else(|| panic!("{} {twin} missing from help", flag.long()));
            assert!(flag.env_var().starts_with("WEIR_"));
            if !flag.default.is_empty() {
                assert!(line.contains(&format!("[default: {}]", flag.default)), "{line}");
            }
            assert!(!flag.help.is_empty());
        }
        // The table adds "Repeatable." itself: a help text must not say it again.
        assert!(!help.contains("Repeatable. Repeatable."), "{help}");
        for group in Group::ALL {
            assert!(help.contains(&format!("\n{}:\n", group.title())));
        }
        for word in ["--help", "--version", "KiB", "KB", "500ms", "client URL"] {
            assert!(help.contains(word), "{word}");
        }
        // Every flag has a variable of its own, across the commands too (`weir --origin` is
        // WEIR_ORIGIN, `weir client --origin` WEIR_CLIENT_ORIGIN): no command reads another's.
        for (i, a) in FLAGS.iter().enumerate() {
            for b in &FLAGS[i + 1..] {
                assert_ne!(a.env_var(), b.env_var(), "--{} and --{}", a.name, b.name);
            }
        }
    }

    #[test]
    fn env_var_names() {
        let names: Vec<String> = FLAGS.iter().map(Flag::env_var).collect();
        assert!(names.contains(&"WEIR_MAX_CONNECTIONS_PER_IP".to_string()));
        assert!(names.contains(&"WEIR_READ_BUFFER_SIZE".to_string()));
        assert!(names.contains(&"WEIR_LISTEN".to_string()));
    }

    #[test]
    fn tunnel_agent_flags_and_what_it_needs() {
        let line = "tunnel ws://c.example/_tunnel --name home --token-file /t --expose \
                    web=ws://127.0.0.1:3001 --expose api=ws://10.0.0.5:8080/x --allow-plain \
                    --reconnect-max 2s";
        let Ok(Command::Tunnel(t)) = parse(args(line), no_env) else { panic!("{line}") };
        assert_eq!(t.url, "ws://c.example/_tunnel");
        assert_eq!(t.name, "home");
        assert_eq!(t.token_file, "/t");
        assert_eq!(t.exposes.len(), 2);
        assert_eq!(t.exposes[1], ("api".into(), "ws://10.0.0.5:8080/x".into()));
        let line = "tunnel ws://c.example/_tunnel --name home --token-file /t --expose \
                    web=http://127.0.0.1:3001/ui";
        let Ok(Command::Tunnel(h)) = parse(args(line), no_env) else { panic!("{line}") };
        assert_eq!(h.exposes[0], ("web".into(), "http://127.0.0.1:3001/ui".into()));
        assert!(t.allow_plain);
        assert_eq!(t.reconnect_max, Duration::from_secs(2));
        // The agent's twins are its own: one environment file may hold a server's WEIR_NAME-like
        // variables (WEIR_TOKEN_FILE is the hub's tokens) beside an agent's.
        let env = [
            ("WEIR_TUNNEL_AGENT_NAME", "n"),
            ("WEIR_TUNNEL_AGENT_TOKEN_FILE", "/f"),
            ("WEIR_TUNNEL_AGENT_EXPOSE", "a=ws://h:1"),
            ("WEIR_TUNNEL_AGENT_RECONNECT_MAX", "3s"),
            ("WEIR_TOKEN_FILE", "/hub-tokens"),
            ("WEIR_TUNNEL_TOKEN_FILE", "/agents-tokens"),
            ("WEIR_NAME", "server"),
        ];
        let Ok(Command::Tunnel(t)) = parse(args("tunnel ws://127.0.0.1:1/"), with_env(&env)) else {
            panic!("from the environment")
        };
        assert_eq!((t.name.as_str(), t.exposes.len()), ("n", 1));
        assert_eq!((t.token_file.as_str(), t.reconnect_max), ("/f", Duration::from_secs(3)));
        let server = [("WEIR_TOKEN_FILE", "/hub-tokens"), ("WEIR_NAME", "n")];
        assert_eq!(
            err_env("tunnel ws://127.0.0.1:1/ --expose a=ws://h:1", &server),
            CliError::MissingFlag("--name"),
            "the agent read a server variable"
        );
        // No agent variable is a server's or a client's.
        for a in FLAGS.iter().filter(|f| f.setter.target() == Target::Tunnel) {
            for b in FLAGS.iter().filter(|f| f.setter.target() != Target::Tunnel) {
                assert_ne!(a.env_var(), b.env_var(), "{} and {}", a.long(), b.long());
            }
        }
        for (line, want) in [
            ("tunnel --name a --token-file f --expose w=ws://h:1", CliError::MissingUrl),
            (
                "tunnel ws://h:1/ --token-file f --expose w=ws://h:1",
                CliError::MissingFlag("--name"),
            ),
            (
                "tunnel ws://h:1/ --name a --expose w=ws://h:1",
                CliError::MissingFlag("--token-file"),
            ),
            ("tunnel ws://h:1/ --name a --token-file f", CliError::MissingFlag("--expose")),
        ] {
            assert_eq!(err(line), want, "{line}");
        }
        assert!(invalid("--name", "a/b")(err("tunnel ws://h:1/ --name a/b")));
        assert!(invalid("--expose", "w")(err("tunnel ws://h:1/ --expose w")));
        assert!(invalid("--route", "/x=tunnel://a")(err("--route /x=tunnel://a")));
        for bad in ["t.example.com", "*.", "*", "*.a/b", "*.a:80", "*..a", "web.*.a"] {
            assert!(invalid("--tunnel-host", bad)(err(&format!("--tunnel-host {bad}"))), "{bad}");
        }
        assert!(matches!(err("tunnel ws://h:1/ --listen 1:1"), CliError::UnknownFlag { .. }));
    }

    fn client(line: &str) -> ClientOptions {
        client_env(line, &[])
    }

    fn client_env(line: &str, vars: &[(&str, &str)]) -> ClientOptions {
        match parse(args(line), with_env(vars)) {
            Ok(Command::Client(c)) => c,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn client_minimal() {
        assert_eq!(
            client("client ws://127.0.0.1:8080/echo"),
            ClientOptions {
                url: "ws://127.0.0.1:8080/echo".into(),
                binary: false,
                headers: Vec::new(),
                subprotocols: Vec::new(),
                origin: None,
                tls_ca: None,
                insecure: false,
                compression: None,
                compression_min_size: KIB,
            }
        );
    }

    #[test]
    fn client_all_flags() {
        let line = [
            "client",
            "--binary",
            "ws://h:1/p?q",
            "--header",
            "X-Token:abc",
            "--header=Accept: \ttext/plain, */* ",
            "--subprotocol",
            "chat",
            "--subprotocol=v2.chat",
            "--origin",
            "http://o.example",
            "--tls-ca",
            "ca.pem",
            "--insecure",
            "--compression",
            "dedicated:9",
            "--compression-min-size=0",
        ];
        let Ok(Command::Client(c)) = parse(line.map(String::from), no_env) else {
            panic!("client flags did not parse");
        };
        assert!(c.binary);
        assert_eq!(c.url, "ws://h:1/p?q");
        assert_eq!(
            c.headers,
            [
                ("X-Token".to_string(), "abc".to_string()),
                ("Accept".to_string(), "text/plain, */*".to_string())
            ]
        );
        assert_eq!(c.subprotocols, ["chat", "v2.chat"]);
        assert_eq!(c.origin.as_deref(), Some("http://o.example"));
        assert_eq!(c.compression, Some(crate::server::compress::Mode::Dedicated { bits: 9 }));
        assert_eq!(c.compression_min_size, 0);
        assert_eq!((c.tls_ca.as_deref(), c.insecure), (Some("ca.pem"), true));
    }

    #[test]
    fn listen_tls_alone_leaves_out_the_default_plain_listener() {
        let o = serve("--listen-tls 0.0.0.0:443 --tls-cert c --tls-key k");
        assert!(o.listen.is_empty());
        assert_eq!(o.listen_tls, ["0.0.0.0:443"]);
        assert_eq!(serve("--tls-cert c").listen, ["127.0.0.1:8080"]);
    }

    #[test]
    fn client_flags_from_env() {
        let c = client_env(
            "client ws://h/",
            &[
                ("WEIR_CLIENT_BINARY", "TRUE"),
                ("WEIR_CLIENT_SUBPROTOCOL", "a,b"),
                ("WEIR_CLIENT_HEADER", "A: 1,B:2"),
                ("WEIR_CLIENT_ORIGIN", "http://x"),
                ("WEIR_LISTEN", "ignored"),
            ],
        );
        assert!(c.binary);
        assert_eq!(c.subprotocols, ["a", "b"]);
        assert_eq!(
            c.headers,
            [("A".to_string(), "1".to_string()), ("B".to_string(), "2".to_string())]
        );
        assert_eq!(c.origin.as_deref(), Some("http://x"));
        assert!(!client_env("client ws://h/", &[("WEIR_CLIENT_BINARY", "0")]).binary);
        // The server's variables of the same flags are not the client's.
        let servers = [("WEIR_BINARY", "1"), ("WEIR_ORIGIN", "http://s"), ("WEIR_INSECURE", "1")];
        let c = client_env("client ws://h/", &servers);
        assert!(!c.binary && !c.insecure && c.origin.is_none());
        assert!(client_env("client --binary ws://h/", &[("WEIR_CLIENT_BINARY", "false")]).binary);
        assert!(invalid("WEIR_CLIENT_BINARY", "yes")(err_env(
            "client ws://h/",
            &[("WEIR_CLIENT_BINARY", "yes")]
        )));
    }

    #[test]
    fn client_errors() {
        assert_eq!(err("client"), CliError::MissingUrl);
        assert_eq!(err("client --binary"), CliError::MissingUrl);
        assert_eq!(err("client ws://a/ ws://b/"), CliError::UnexpectedArgument("ws://b/".into()));
        #[cfg(not(feature = "tls"))]
        assert_eq!(
            err("client wss://example.com/").to_string(),
            "invalid value 'wss://example.com/' for 'URL': wss:// needs a weir built with TLS \
             (cargo build --features tls)"
        );
        #[cfg(feature = "tls")]
        assert!(parse(["client", "wss://example.com/"].map(String::from), no_env).is_ok());
        assert!(invalid("URL", "http://x/")(err("client http://x/")));
        assert!(invalid("URL", "ws:///path")(err("client ws:///path")));
        assert!(invalid("URL", "localhost:80")(err("client localhost:80")));
        assert!(invalid("--header", "NoColon")(err("client ws://h/ --header NoColon")));
        let spaced = ["client", "ws://h/", "--header", "Bad Name:v"].map(String::from);
        assert!(invalid("--header", "Bad Name:v")(parse(spaced, no_env).unwrap_err()));
        let crlf = ["client", "ws://h/", "--header=A:b\r\nC:d"].map(String::from);
        assert!(invalid("--header", "A:b\r\nC:d")(parse(crlf, no_env).unwrap_err()));
        assert!(invalid("--subprotocol", "a/b")(err("client ws://h/ --subprotocol a/b")));
        assert!(matches!(err("client ws://h/ --origin"), CliError::MissingValue { .. }));
    }
}
