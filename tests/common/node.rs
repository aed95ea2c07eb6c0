//! Node.js peers from tests/node: installing their packages once, and running a script as a
//! child process whose stdout lines the test reads.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

pub fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// How to get Node when it is missing or too old (tests/node/package.json: `node >= 20`).
const INSTALL_NODE: &str = "install Node.js 20 or newer and npm, e.g. `apt-get install nodejs npm` \
     (Debian 13, Ubuntu 24.04; older releases ship an older Node: see https://nodejs.org)";

/// Whether Node and tests/node's packages are there, installing the packages (`npm ci`, from
/// tests/node/package-lock.json) once: `cargo test` installs what it needs. Several test
/// processes may race here: a lock directory lets one install while the others wait. When Node
/// is missing or the install fails, the test fails with the command to run, unless
/// `WEIR_SKIP_EXTERNAL=node` (README.md): then it is skipped, loudly, and this is false.
pub fn node_ready() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    match READY.get_or_init(install_node_modules) {
        Ok(()) => true,
        Err(why) => {
            super::missing_external("node", why);
            false
        }
    }
}

fn install_node_modules() -> Result<(), String> {
    let version = match Command::new("node").arg("--version").stdin(Stdio::null()).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => return Err(format!("`node --version` failed ({}): {INSTALL_NODE}", o.status)),
        Err(e) => return Err(format!("`node` cannot be run ({e}): {INSTALL_NODE}")),
    };
    let major =
        version.trim_start_matches('v').split('.').next().and_then(|m| m.parse::<u32>().ok());
    if major.is_none_or(|m| m < 20) {
        return Err(format!("`node` is {version}: {INSTALL_NODE}"));
    }
    let dir = node_dir();
    let installed = || {
        ["ws", "socket.io", "socket.io-client"]
            .iter()
            .all(|m| dir.join("node_modules").join(m).join("package.json").is_file())
    };
    if installed() {
        return Ok(());
    }
    let lock = dir.join(".install-lock");
    let deadline = Instant::now() + Duration::from_secs(180);
    while std::fs::create_dir(&lock).is_err() {
        // Someone else is installing: wait for them (a lock older than the deadline is stale).
        if installed() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = std::fs::remove_dir(&lock);
            continue;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let result = if installed() {
        Ok(())
    } else {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() && installed() => Ok(()),
            Ok(o) => Err(format!(
                "`npm ci` in tests/node failed ({}): {}\nrun `npm ci --prefix tests/node` and \
                 fix what it reports",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!("`npm` cannot be run ({e}): {INSTALL_NODE}")),
        }
    };
    let _ = std::fs::remove_dir(&lock);
    result
}

/// A Node script from tests/node in a child process: its stdout lines arrive on a channel, its
/// stdin is a pipe (the scripts exit when it closes), and it is killed when dropped.
pub struct Node {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Node {
    pub fn spawn(script: &str, args: &[&str]) -> Self {
        Self::spawn_env(script, args, &[])
    }

    /// As [`Node::spawn`], with variables added to its environment (`NODE_EXTRA_CA_CERTS`).
    pub fn spawn_env(script: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::spawn_under(&[], script, args, envs)
    }

    /// A server script run under `wrapper` (`ip netns exec NS`): waits for its `PORT n` line.
    pub fn server_under(wrapper: &[&str], script: &str) -> (Self, u16) {
        let mut node = Self::spawn_under(wrapper, script, &[], &[]);
        let line = node.expect_line("PORT ", TIMEOUT);
        (node, line.trim().parse().unwrap())
    }

    fn spawn_under(wrapper: &[&str], script: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let (program, before) = match wrapper {
            [program, rest @ ..] => (*program, rest),
            [] => ("node", &[][..]),
        };
        let node: &[&str] = if wrapper.is_empty() { &[] } else { &["node"] };
        let mut child = Command::new(program)
            .args(before)
            .args(node)
            .arg(script)
            .args(args)
            .envs(envs.iter().copied())
            .current_dir(node_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self { child, lines, stderr }
    }

    /// A server script: waits for its `PORT n` line.
    pub fn server(script: &str) -> (Self, u16) {
        let mut node = Self::spawn(script, &[]);
        let line = node.expect_line("PORT ", TIMEOUT);
        (node, line.trim().parse().unwrap())
    }

    /// Waits (bounded) for the next stdout line and checks it starts with `prefix`; returns the
    /// rest. A `FAIL` line or the script's exit fails the test with its stderr.
    pub fn expect_line(&mut self, prefix: &str, within: Duration) -> String {
        match self.lines.recv_timeout(within) {
            Ok(line) => match line.strip_prefix(prefix) {
                Some(rest) => rest.to_string(),
                None => panic!(
                    "expected a line starting {prefix:?}, got {line:?}; stderr:\n{}",
                    self.stderr.lock().unwrap()
                ),
            },
            Err(e) => panic!(
                "no line starting {prefix:?} within {within:?} ({e}); stderr:\n{}",
                self.stderr.lock().unwrap()
            ),
        }
    }

    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        super::eventually(within, || self.child.try_wait().unwrap())
            .unwrap_or_else(|| panic!("node still running after {within:?}"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
