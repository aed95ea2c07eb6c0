//! Child processes as event sources of the one loop: their stdin, stdout and stderr pipes are
//! non-blocking mio sources registered in the same poll as the sockets (no thread per process).
//!
//! A handler starts a process with [`Context::spawn`], writes to its stdin (queued, bounded by
//! the queue cap), receives its output in [`Handler::on_process_output`], and learns that it is
//! gone in [`Handler::on_process_exit`], which comes once the process is reaped *and* its output
//! pipes are read to the end (so every byte it wrote is delivered first). Flow control: while
//! output is paused the pipes are not read, the kernel's pipe buffer fills, and the process
//! blocks in its own `write`.
//!
//! Tokens: a process pipe's token is `1 << 63 | generation << 32 | pipe << 30 | index`, from the
//! processes' own [`Slab`]. Slab generations stay below 2^31, so no connection token has bit 63
//! set, and a stale token (a process removed, its slot reused) matches nothing.
//!
//! Every child leads its own process group, and signals go to the group, so a shell script's
//! children stop, continue and die with it. When the leader exits, what it leaves in its group
//! (a background child) gets SIGTERM, and SIGKILL after the grace; the runtime's drop kills
//! what is left at once. Exits are found with `waitpid(pid, WNOHANG)` for each
//! child the runtime owns (through [`std::process::Child::try_wait`]), when SIGCHLD arrives, when
//! a child's output pipes close, and once a second if the runtime does not handle signals.
//!
//! [`Context::spawn`]: crate::server::Context::spawn
//! [`Handler::on_process_output`]: crate::server::Handler::on_process_output
//! [`Handler::on_process_exit`]: crate::server::Handler::on_process_exit

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use mio::unix::pipe::{Receiver, Sender};
use mio::{Interest, Registry, Token};

use crate::debug;
use crate::server::api::Tag;
use crate::server::signal::{kill_group, signal_group};
use crate::server::slab::{Key, Slab};

/// Set in every process token (and in no connection token).
pub(crate) const PROCESS_BIT: usize = 1 << 63;
/// Where the pipe's number sits in a process token.
const PIPE_SHIFT: u32 = 30;
const PIPE_MASK: usize = 0b11 << PIPE_SHIFT;
/// Slots at or above this index cannot carry a pipe number in their token.
const MAX_INDEX: u32 = 1 << PIPE_SHIFT;
pub(crate) const STDIN: usize = 0;
pub(crate) const STDOUT: usize = 1;
pub(crate) const STDERR: usize = 2;
/// Reads per pipe per turn of the loop; a process with more to say waits for the next turn.
pub(crate) const READS_PER_WAKE: usize = 16;
/// Bytes read per pipe per turn of the loop, in those reads. A program that writes without
/// pause (`yes`) costs each turn this much at most, so the sockets ready in the next turn wait
/// for no more than that (its handler's work on 16 KiB), however fast it writes.
pub(crate) const OUTPUT_PER_TURN: usize = 16 << 10;
/// How long the output of a reaped process may stay open (a grandchild holding the pipe)
/// before it is abandoned and the exit reported.
pub(crate) const EXIT_LINGER: Duration = Duration::from_secs(2);
/// How often exits are polled for when no SIGCHLD handler is installed.
pub(crate) const REAP_POLL: Duration = Duration::from_secs(1);

/// A child process, as the application names it. Stale ids are harmless: every call with the
/// id of a process that is gone does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcId(pub(crate) Key);

impl ProcId {
    /// A number that identifies the process in logs (not its pid).
    pub fn as_u64(self) -> u64 {
        self.0.to_token() as u64
    }
}

/// Which output pipe data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `"stdout"` or `"stderr"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// The signals an application may send to a child's process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGTERM: asks it to exit.
    Term,
    /// SIGKILL: ends it at once.
    Kill,
    /// SIGINT: an interrupt, as Ctrl-C.
    Int,
    /// SIGHUP: a hang-up (many daemons reload on it).
    Hup,
    /// SIGSTOP: stops it until SIGCONT.
    Stop,
    /// SIGCONT: continues a stopped process.
    Cont,
}

impl Signal {
    /// The signal named `TERM`, `KILL`, `INT`, `HUP`, `STOP` or `CONT` (a `SIG` prefix and any
    /// case are accepted).
    pub fn from_name(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        Some(match upper.strip_prefix("SIG").unwrap_or(&upper) {
            "TERM" => Self::Term,
            "KILL" => Self::Kill,
            "INT" => Self::Int,
            "HUP" => Self::Hup,
            "STOP" => Self::Stop,
            "CONT" => Self::Cont,
            _ => return None,
        })
    }

    /// The short name (`TERM`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Term => "TERM",
            Self::Kill => "KILL",
            Self::Int => "INT",
            Self::Hup => "HUP",
            Self::Stop => "STOP",
            Self::Cont => "CONT",
        }
    }

    fn number(self) -> libc::c_int {
        match self {
            Self::Term => libc::SIGTERM,
            Self::Kill => libc::SIGKILL,
            Self::Int => libc::SIGINT,
            Self::Hup => libc::SIGHUP,
            Self::Stop => libc::SIGSTOP,
            Self::Cont => libc::SIGCONT,
        }
    }
}

/// Why bytes could not be queued for a child's stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    /// The process is gone, or its stdin is closed.
    Closed,
    /// The queue would pass the cap: the process is not reading its input.
    Full,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Closed => "the process's input is closed",
            Self::Full => "the process is not reading its input",
        })
    }
}

/// One child and its pipes.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) child: Child,
    /// Which application owns it (`Context::set_process_tag`, or inherited at spawn).
    pub(crate) tag: Tag,
    pub(crate) pid: u32,
    pub(crate) stdin: Option<Sender>,
    /// Stdout and stderr, until their end.
    pub(crate) out: [Option<Receiver>; 2],
    /// Readiness not yet used up (edge-triggered), per output pipe.
    pub(crate) readable: [bool; 2],
    pub(crate) writable: bool,
    /// Bytes for stdin not yet written, from `input_at`.
    pub(crate) input: Vec<u8>,
    pub(crate) input_at: usize,
    /// Close stdin once the queued input is written.
    pub(crate) close_after_input: bool,
    /// Output is not read (flow control).
    pub(crate) paused: bool,
    /// Set once reaped.
    pub(crate) status: Option<ExitStatus>,
    /// SIGKILL at this time, if still running (after a SIGTERM).
    pub(crate) kill_at: Option<Duration>,
    /// Abandon the output pipes at this time (the process is reaped).
    pub(crate) linger_until: Option<Duration>,
}

/// The group of a reaped leader, with members left in it: SIGKILL to the group at `kill_at`.
#[derive(Debug)]
pub(crate) struct LeftGroup {
    pub(crate) pgid: u32,
    pub(crate) kill_at: Duration,
}

/// The runtime's children.
#[derive(Debug)]
pub(crate) struct Procs {
    pub(crate) slab: Slab<Process>,
    /// Groups whose leader is gone but that had members left when it was reaped.
    pub(crate) left: Vec<LeftGroup>,
    /// Processes to serve in this turn of the loop: a pipe was ready, or output was left from
    /// the last turn.
    pub(crate) pending: Vec<Key>,
    /// The earliest deadline of any process (kill, linger, reap poll), if any.
    pub(crate) next_due: Option<Duration>,
    /// Poll for exits (no SIGCHLD handler).
    pub(crate) poll_reap: bool,
    /// The SIGTERM-to-SIGKILL grace when the server shuts down, and for what a leader leaves in
    /// its group when it exits.
    pub(crate) shutdown_grace: Duration,
}

impl Procs {
    pub(crate) fn new(poll_reap: bool) -> Self {
        Self {
            slab: Slab::new(),
            left: Vec::new(),
            pending: Vec::new(),
            next_due: None,
            poll_reap,
            shutdown_grace: Duration::from_secs(5),
        }
    }

    /// Processes not yet reported gone.
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Whether some process is to be served in this turn (the poll must not wait).
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The earliest deadline of any process.
    pub(crate) fn next_due(&self) -> Option<Duration> {
        self.next_due
    }

    pub(crate) fn due(&mut self, at: Duration) {
        self.next_due = Some(self.next_due.map_or(at, |d| d.min(at)));
    }

    pub(crate) fn pid(&self, id: ProcId) -> Option<u32> {
        self.slab.get(id.0).filter(|p| p.status.is_none()).map(|p| p.pid)
    }

    pub(crate) fn tag(&self, key: Key) -> Option<Tag> {
        self.slab.get(key).map(|p| p.tag)
    }

    pub(crate) fn set_tag(&mut self, key: Key, tag: Tag) {
        if let Some(p) = self.slab.get_mut(key) {
            p.tag = tag;
        }
    }

    /// SIGKILL to every group a reaped leader left members in.
    pub(crate) fn kill_left_groups(&mut self) {
        for g in self.left.drain(..) {
            let _ = signal_group(g.pgid, libc::SIGKILL);
        }
    }
}

impl Drop for Procs {
    /// A runtime that goes away takes its children with it.
    fn drop(&mut self) {
        for (_, p) in self.slab.iter_mut() {
            if p.status.is_none() {
                let _ = kill_group(p.pid, libc::SIGKILL);
                let _ = p.child.try_wait();
            }
        }
        self.kill_left_groups();
    }
}

/// Whether a token is a process pipe's.
pub(crate) fn is_process_token(token: usize) -> bool {
    token & PROCESS_BIT != 0
}

fn token(key: Key, pipe: usize) -> Token {
    Token(PROCESS_BIT | key.to_token() | pipe << PIPE_SHIFT)
}

pub(crate) fn split_token(token: usize) -> (Key, usize) {
    let pipe = (token & PIPE_MASK) >> PIPE_SHIFT;
    (Key::from_token(token & !(PROCESS_BIT | PIPE_MASK)), pipe)
}

/// What the handler's `Context` asks of the children, and the loop at shutdown. `registry`
/// is the poll's, where their pipes are registered.
impl Procs {
    /// Starts `cmd` with piped stdin, stdout and stderr, as the leader of a new process group.
    pub(crate) fn spawn(
        &mut self,
        registry: &Registry,
        mut cmd: Command,
        tag: Tag,
        now: Duration,
    ) -> io::Result<ProcId> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn()?;
        let pid = child.id();
        let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
            let _ = kill_group(pid, libc::SIGKILL);
            let _ = child.wait();
            return Err(io::Error::other("the child's pipes are missing"));
        };
        let (stdin, stdout, stderr) =
            (Sender::from(stdin), Receiver::from(stdout), Receiver::from(stderr));
        let mut process = Process {
            child,
            tag,
            pid,
            stdin: None,
            out: [None, None],
            readable: [false; 2],
            writable: false,
            input: Vec::new(),
            input_at: 0,
            close_after_input: false,
            paused: false,
            status: None,
            kill_at: None,
            linger_until: None,
        };
        let setup = || -> io::Result<()> {
            stdin.set_nonblocking(true)?;
            stdout.set_nonblocking(true)?;
            stderr.set_nonblocking(true)
        };
        if let Err(e) = setup() {
            let _ = kill_group(pid, libc::SIGKILL);
            let _ = process.child.wait();
            return Err(e);
        }
        let key = match self.slab.try_insert(process) {
            Ok(key) if key.index() < MAX_INDEX => key,
            Ok(key) => {
                if let Some(mut p) = self.slab.remove(key) {
                    let _ = kill_group(pid, libc::SIGKILL);
                    let _ = p.child.wait();
                }
                return Err(io::Error::other("too many processes"));
            }
            Err(mut p) => {
                let _ = kill_group(pid, libc::SIGKILL);
                let _ = p.child.wait();
                return Err(io::Error::other("too many processes"));
            }
        };
        let (mut stdin, mut stdout, mut stderr) = (stdin, stdout, stderr);
        let registered = registry
            .register(&mut stdin, token(key, STDIN), Interest::WRITABLE)
            .and_then(|()| registry.register(&mut stdout, token(key, STDOUT), Interest::READABLE))
            .and_then(|()| registry.register(&mut stderr, token(key, STDERR), Interest::READABLE));
        let Some(p) = self.slab.get_mut(key) else {
            return Err(io::Error::other("process slot vanished"));
        };
        p.stdin = Some(stdin);
        p.out = [Some(stdout), Some(stderr)];
        if let Err(e) = registered {
            // The pipes are deregistered and closed with the slot.
            self.forget_pipes(registry, key);
            if let Some(mut p) = self.slab.remove(key) {
                let _ = kill_group(pid, libc::SIGKILL);
                let _ = p.child.wait();
            }
            return Err(e);
        }
        if self.poll_reap {
            let at = now + REAP_POLL;
            self.due(at);
        }
        debug!("process started", id = key.to_token(), pid = pid);
        Ok(ProcId(key))
    }

    /// Queues bytes for a child's stdin and writes what the pipe takes now.
    pub(crate) fn write(
        &mut self,
        registry: &Registry,
        id: ProcId,
        bytes: &[u8],
        cap: usize,
    ) -> Result<(), InputError> {
        let Some(p) = self.slab.get_mut(id.0) else { return Err(InputError::Closed) };
        if p.stdin.is_none() || p.close_after_input {
            return Err(InputError::Closed);
        }
        if p.input.len() - p.input_at + bytes.len() > cap {
            return Err(InputError::Full);
        }
        if p.input_at > 0 && p.input_at == p.input.len() {
            p.input.clear();
            p.input_at = 0;
        }
        p.input.extend_from_slice(bytes);
        p.writable = true;
        self.flush_input(registry, id.0);
        Ok(())
    }

    /// Closes a child's stdin once what is queued is written (it reads EOF then).
    pub(crate) fn close_stdin(&mut self, registry: &Registry, id: ProcId) {
        if let Some(p) = self.slab.get_mut(id.0) {
            p.close_after_input = true;
            self.flush_input(registry, id.0);
        }
    }

    /// Writes queued input until the pipe is full or the queue empty.
    pub(crate) fn flush_input(&mut self, registry: &Registry, key: Key) {
        let Some(p) = self.slab.get_mut(key) else { return };
        let Some(stdin) = p.stdin.as_mut() else { return };
        let mut close = false;
        while p.writable && p.input_at < p.input.len() {
            match stdin.write(&p.input[p.input_at..]) {
                Ok(n) => p.input_at += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => p.writable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // EPIPE: the child closed its stdin; what it did not take is dropped.
                    debug!("process stdin closed", id = key.to_token(), error = e);
                    close = true;
                    break;
                }
            }
        }
        if p.input_at == p.input.len() {
            p.input = Vec::new();
            p.input_at = 0;
            close |= p.close_after_input;
        }
        if close {
            p.input = Vec::new();
            p.input_at = 0;
            p.close_after_input = true;
            if let Some(mut stdin) = p.stdin.take() {
                let _ = registry.deregister(&mut stdin);
            }
        }
    }

    /// Sends a signal to a child's process group. A stopped child is continued after a signal
    /// that asks it to end, so that it can act on it.
    pub(crate) fn signal(&mut self, id: ProcId, sig: Signal) -> io::Result<()> {
        let Some(p) = self.slab.get(id.0) else { return Err(ErrorKind::NotFound.into()) };
        if p.status.is_some() {
            return Err(ErrorKind::NotFound.into());
        }
        kill_group(p.pid, sig.number())?;
        if matches!(sig, Signal::Term | Signal::Int | Signal::Hup) {
            let _ = kill_group(p.pid, libc::SIGCONT);
        }
        Ok(())
    }

    /// SIGTERM now, SIGKILL after `grace` if it still runs; stdin is closed.
    pub(crate) fn terminate(
        &mut self,
        registry: &Registry,
        id: ProcId,
        grace: Duration,
        now: Duration,
    ) {
        self.close_stdin(registry, id);
        let Some(p) = self.slab.get_mut(id.0) else { return };
        if p.status.is_some() {
            return;
        }
        let _ = kill_group(p.pid, libc::SIGTERM);
        let _ = kill_group(p.pid, libc::SIGCONT);
        let at = now + grace;
        if p.kill_at.is_none_or(|k| k > at) {
            p.kill_at = Some(at);
            self.due(at);
        }
    }

    /// Stops (or starts again) reading a child's output.
    pub(crate) fn pause_output(&mut self, id: ProcId, paused: bool) {
        let Some(p) = self.slab.get_mut(id.0) else { return };
        let was = std::mem::replace(&mut p.paused, paused);
        if was && !paused && !self.pending.contains(&id.0) {
            self.pending.push(id.0);
        }
    }

    /// Deregisters and closes a process's pipes.
    pub(crate) fn forget_pipes(&mut self, registry: &Registry, key: Key) {
        let Some(p) = self.slab.get_mut(key) else { return };
        if let Some(mut s) = p.stdin.take() {
            let _ = registry.deregister(&mut s);
        }
        for r in &mut p.out {
            if let Some(mut r) = r.take() {
                let _ = registry.deregister(&mut r);
            }
        }
    }

    /// SIGTERM to every child, SIGKILL after the shutdown grace.
    pub(crate) fn terminate_all(&mut self, registry: &Registry, now: Duration) {
        let grace = self.shutdown_grace;
        let keys: Vec<Key> = self.slab.keys().collect();
        for key in keys {
            self.terminate(registry, ProcId(key), grace, now);
        }
    }

    /// SIGKILL to every child still running, and to what reaped ones left in their groups (the
    /// shutdown's time is up).
    pub(crate) fn kill_all(&mut self) {
        self.kill_left_groups();
        for (_, p) in self.slab.iter_mut() {
            if p.status.is_none() {
                let _ = kill_group(p.pid, libc::SIGKILL);
                if let Ok(Some(st)) = p.child.try_wait() {
                    p.status = Some(st);
                }
            }
        }
    }
}

/// How one turn's reading of an output pipe ended.
#[derive(Debug)]
pub(crate) enum Turn {
    /// The turn's budget is spent, or the output was paused: there may be more to read.
    More,
    /// Nothing more for now (`WouldBlock`).
    Drained,
    /// The end of the output, or a read error: the pipe is done.
    Ended(Option<io::Error>),
}

/// Reads `pipe` for one turn of the loop: at most [`READS_PER_WAKE`] reads into `buf` and at
/// most `budget` bytes in all, each read handed to `deliver`, which returns false to stop (the
/// output was paused).
pub(crate) fn read_turn(
    pipe: &mut impl Read,
    buf: &mut [u8],
    budget: usize,
    deliver: &mut dyn FnMut(&[u8]) -> bool,
) -> Turn {
    let mut left = budget;
    for _ in 0..READS_PER_WAKE {
        let Some(chunk) = buf.get_mut(..left.min(buf.len())).filter(|c| !c.is_empty()) else {
            break;
        };
        match pipe.read(chunk) {
            Ok(0) => return Turn::Ended(None),
            Ok(n) => {
                left = left.saturating_sub(n);
                if !deliver(chunk.get(..n).unwrap_or_default()) {
                    return Turn::More;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Turn::Drained,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Turn::Ended(Some(e)),
        }
    }
    Turn::More
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_never_look_like_connections() {
        let mut slab: Slab<()> = Slab::new();
        for _ in 0..5 {
            let k = slab.insert(());
            slab.remove(k);
        }
        let key = slab.insert(());
        for pipe in [STDIN, STDOUT, STDERR] {
            let Token(t) = token(key, pipe);
            assert!(is_process_token(t));
            assert_eq!(split_token(t), (key, pipe));
        }
        assert!(!is_process_token(key.to_token()));
        assert!(!is_process_token(0));
    }

    /// A pipe that never runs dry, as `yes`'s: every read fills what it is given, up to the
    /// 64 KiB a Linux pipe holds.
    #[derive(Default)]
    struct Endless {
        reads: usize,
        bytes: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(64 << 10);
            buf[..n].fill(b'y');
            self.reads += 1;
            self.bytes += n;
            Ok(n)
        }
    }

    /// A pipe that hands out its chunks, then `WouldBlock` (or its end).
    struct Chunks(Vec<io::Result<usize>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(ErrorKind::WouldBlock.into());
            }
            self.0.remove(0).map(|n| n.min(buf.len()))
        }
    }

    #[test]
    fn a_turn_reads_at_most_its_budget_from_a_pipe_that_never_runs_dry() {
        let mut buf = vec![0u8; 256 << 10];
        let mut pipe = Endless::default();
        let mut delivered = 0;
        let turn = read_turn(&mut pipe, &mut buf, OUTPUT_PER_TURN, &mut |d| {
            delivered += d.len();
            true
        });
        assert!(matches!(turn, Turn::More), "{turn:?}");
        assert!(pipe.bytes <= OUTPUT_PER_TURN, "{} bytes read in one turn", pipe.bytes);
        assert_eq!(delivered, pipe.bytes);
        // The budget is spent whatever the buffer's size.
        for size in [1000, OUTPUT_PER_TURN, OUTPUT_PER_TURN + 1] {
            let mut pipe = Endless::default();
            let turn = read_turn(&mut pipe, &mut buf[..size], OUTPUT_PER_TURN, &mut |_| true);
            assert!(matches!(turn, Turn::More), "{turn:?}");
            assert!(pipe.bytes <= OUTPUT_PER_TURN && pipe.reads <= READS_PER_WAKE, "{size}");
        }
        // Paused by the handler: the turn stops at once.
        let mut pipe = Endless::default();
        assert!(matches!(read_turn(&mut pipe, &mut buf, 1 << 20, &mut |_| false), Turn::More));
        assert_eq!(pipe.reads, 1);
        // Drained, ended, failed.
        let mut got = Vec::new();
        let mut pipe = Chunks(vec![Ok(3), Err(ErrorKind::Interrupted.into()), Ok(5)]);
        let turn = read_turn(&mut pipe, &mut buf, OUTPUT_PER_TURN, &mut |d| {
            got.push(d.len());
            true
        });
        assert!(matches!(turn, Turn::Drained), "{turn:?}");
        assert_eq!(got, [3, 5]);
        let mut pipe = Chunks(vec![Ok(3), Ok(0)]);
        assert!(matches!(read_turn(&mut pipe, &mut buf, 64, &mut |_| true), Turn::Ended(None)));
        let mut pipe = Chunks(vec![Err(ErrorKind::BrokenPipe.into())]);
        assert!(matches!(read_turn(&mut pipe, &mut buf, 64, &mut |_| true), Turn::Ended(Some(_))));
    }

    #[test]
    fn signal_names() {
        for s in [Signal::Term, Signal::Kill, Signal::Int, Signal::Hup, Signal::Stop, Signal::Cont]
        {
            assert_eq!(Signal::from_name(s.name()), Some(s));
        }
        assert_eq!(Signal::from_name("sigterm"), Some(Signal::Term));
        assert_eq!(Signal::from_name("USR1"), None);
        assert_eq!(Signal::from_name(""), None);
    }
}
