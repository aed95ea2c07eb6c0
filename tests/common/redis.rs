//! A real `redis-server` for a test: its own process on a free port in a temporary directory,
//! which the test can stop, restart with or without its data, and pause (SIGSTOP) and resume.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How to get Redis when it is missing.
pub const INSTALL_REDIS: &str = "install Redis 7: `sudo apt-get install -y redis-server` \
     (Debian 12, Ubuntu 24.04), or see https://redis.io/docs/latest/operate/oss_and_stack/install/";

/// A `redis-server` child, killed and its directory removed when dropped.
pub struct Redis {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    aof: bool,
    /// Also listening with TLS: `(port, certificate, key)` (PEM files).
    tls: Option<(u16, PathBuf, PathBuf)>,
}

impl Redis {
    /// Starts one, with the append-only file on (`appendfsync always`: every write is on disk
    /// before it is answered) or off. `None` when `redis-server` is missing and
    /// `WEIR_SKIP_EXTERNAL` names `redis` (the test then returns); without that it fails with
    /// the command that installs it.
    pub fn start(aof: bool) -> Option<Self> {
        Self::start_with(aof, None)
    }

    /// As [`Redis::start`], and also listening with TLS (`--tls-port`, no client
    /// certificates asked) with `cert` and `key` (PEM): [`Redis::tls_url`].
    pub fn start_tls(cert: PathBuf, key: PathBuf) -> Option<Self> {
        Self::start_with(false, Some((cert, key)))
    }

    fn start_with(aof: bool, tls: Option<(PathBuf, PathBuf)>) -> Option<Self> {
        match Command::new("redis-server").arg("--version").stdin(Stdio::null()).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                super::missing_external(
                    "redis",
                    &format!("`redis-server --version` failed ({}): {INSTALL_REDIS}", o.status),
                );
                return None;
            }
            Err(e) => {
                super::missing_external(
                    "redis",
                    &format!("`redis-server` cannot be run ({e}): {INSTALL_REDIS}"),
                );
                return None;
            }
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weir-redis-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self { child: None, dir, port: 0, aof, tls: None };
        // Redis refuses `--port 0`: take a free port from the kernel, let it go, and use it;
        // another process may take it in between, so try a few.
        let free = || TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        for _ in 0..10 {
            redis.port = free();
            redis.tls = tls.clone().map(|(cert, key)| (free(), cert, key));
            if redis.spawn() {
                return Some(redis);
            }
        }
        panic!("redis-server did not start on any of 10 free ports: {}", redis.log());
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://localhost:TLS_PORT` (the name the test certificate carries).
    pub fn tls_url(&self) -> String {
        format!("rediss://localhost:{}", self.tls.as_ref().expect("started with TLS").0)
    }

    /// Stops it with SIGTERM (it writes what it must and exits), waiting at most 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SIGCONT first, in case it was paused: a stopped process does not act on SIGTERM.
        signal(&child, "CONT");
        signal(&child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops it and starts it again on the same port, with its data (the append-only file, if
    /// on) or without (the directory emptied first: Redis lost everything).
    pub fn restart(&mut self, keep_data: bool) {
        self.stop();
        if !keep_data {
            let _ = std::fs::remove_dir_all(&self.dir);
            std::fs::create_dir_all(&self.dir).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(Instant::now() < deadline, "redis-server did not restart: {}", self.log());
        }
    }

    /// SIGSTOP: it holds its connections and answers nothing until [`resume`](Self::resume).
    pub fn pause(&self) {
        assert!(signal(self.child.as_ref().unwrap(), "STOP"), "kill -s STOP failed");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        assert!(signal(self.child.as_ref().unwrap(), "CONT"), "kill -s CONT failed");
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Sends one command on a fresh connection and returns the raw reply (a test's own look
    /// at what Redis holds, independent of the client under test).
    pub fn command(&self, args: &[&str]) -> Vec<u8> {
        let mut s = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut cmd = format!("*{}\r\n", args.len());
        for a in args {
            cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(cmd.as_bytes()).unwrap();
        let mut buf = vec![0u8; 64 << 10];
        let n = s.read(&mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    /// Starts the process on `self.port` and waits (at most 10 s) until it answers PING.
    /// False if it exited first (the port was taken).
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let dir = self.dir.to_str().unwrap().to_string();
        let log = self.dir.join("redis.log");
        let mut cmd = Command::new("redis-server");
        if let Some((tls_port, cert, key)) = &self.tls {
            cmd.args(["--tls-port", &tls_port.to_string(), "--tls-auth-clients", "no"])
                .args(["--tls-cert-file", cert.to_str().unwrap()])
                .args(["--tls-key-file", key.to_str().unwrap()]);
        }
        let mut child = cmd
            .args(["--port", &port, "--bind", "127.0.0.1", "--dir", &dir])
            .args(["--save", "", "--daemonize", "no", "--protected-mode", "no"])
            .args(["--appendonly", if self.aof { "yes" } else { "no" }, "--appendfsync", "always"])
            .args(["--logfile", log.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if ping(self.addr()) {
                self.child = Some(child);
                return true;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, "CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `sig` (`STOP`, `CONT`, `TERM`) with the base system's `kill`, as README.md lists.
/// False when it failed (the process is gone).
fn signal(child: &Child, sig: &str) -> bool {
    Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a Redis answers `PING` at `addr` (and is loaded: `-LOADING` is not `+PONG`).
fn ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}
