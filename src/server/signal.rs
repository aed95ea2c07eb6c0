//! SIGINT, SIGTERM, SIGCHLD (and SIGHUP when asked for) into the event loop, through a self-pipe (no thread, no blocking).
//!
//! The handler only writes one byte, the signal's number, to a non-blocking pipe, which is
//! async-signal-safe; the loop sees the pipe readable and starts the drain (SIGINT, SIGTERM) or
//! reaps the children it owns (SIGCHLD). Each `unsafe` block here is one direct libc call
//! (signals, sending a signal, and the open-file limit); the only other `unsafe` in weir is the
//! read into a message's spare capacity in `payload.rs`.

#![allow(unsafe_code)]

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use mio::unix::pipe;

/// The write end of the pipe, for the handler (which can reach only statics).
static PIPE_FD: AtomicI32 = AtomicI32::new(-1);

/// The read end, registered with the loop, and the write end kept open.
#[derive(Debug)]
pub struct Signals {
    rx: pipe::Receiver,
    _tx: pipe::Sender,
}

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; errno is saved and restored around it so the
        // interrupted code never sees it change. A full pipe drops the byte, which is fine:
        // the loop already has one to read.
        unsafe {
            let errno = *libc::__errno_location();
            // Every signal handled here has a number below 256.
            let byte = sig as u8;
            libc::write(fd, (&raw const byte).cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}

impl Signals {
    /// Installs the handler for SIGINT, SIGTERM and SIGCHLD.
    ///
    /// # Errors
    /// The pipe or the handler could not be set up.
    pub fn install() -> io::Result<Self> {
        let (tx, rx) = pipe::new()?;
        PIPE_FD.store(tx.as_raw_fd(), Ordering::Relaxed);
        let signals = Self { rx, _tx: tx };
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGCHLD] {
            signals.handle(sig)?;
        }
        Ok(signals)
    }

    /// SIGHUP too: reported as [`Arrived::reload`] (the default action would end the process).
    ///
    /// # Errors
    /// The handler could not be set up.
    pub fn handle_reload(&self) -> io::Result<()> {
        self.handle(libc::SIGHUP)
    }

    fn handle(&self, sig: libc::c_int) -> io::Result<()> {
        // SIGCHLD only for children that exit: a child stopped or continued (SIGSTOP and
        // SIGCONT, which the runtime sends itself) raises nothing.
        let flags = if sig == libc::SIGCHLD {
            libc::SA_RESTART | libc::SA_NOCLDSTOP
        } else {
            libc::SA_RESTART
        };
        // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler is an
        // extern "C" fn that only calls async-signal-safe functions.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = flags;
            libc::sigemptyset(&raw mut sa.sa_mask);
            libc::sigaction(sig, &raw const sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The pipe to register with the poll.
    pub fn source(&mut self) -> &mut pipe::Receiver {
        &mut self.rx
    }

    /// Reads the signals that arrived: how many asked to stop, and whether a child exited.
    pub fn take(&mut self) -> Arrived {
        let mut arrived = Arrived::default();
        let mut buf = [0u8; 64];
        loop {
            match self.rx.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => {
                    for &sig in &buf[..k] {
                        if libc::c_int::from(sig) == libc::SIGCHLD {
                            arrived.child = true;
                        } else if libc::c_int::from(sig) == libc::SIGHUP {
                            arrived.reload = true;
                        } else {
                            arrived.stop += 1;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        arrived
    }
}

/// What [`Signals::take`] found in the pipe.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Arrived {
    /// SIGINT and SIGTERM: requests to shut down.
    pub stop: usize,
    /// A SIGCHLD: some child exited (which one is found by asking for each one it owns).
    pub child: bool,
    /// A SIGHUP: re-read the TLS certificate and key.
    pub reload: bool,
}

/// Sends `sig` to the process group `pgid` (a child started as the leader of its own group), or
/// to the process alone if it has left the group. Only called for a child not yet reaped, so the
/// id cannot have been reused.
///
/// # Errors
/// As kill(2): no such process, or not permitted.
pub fn kill_group(pgid: u32, sig: libc::c_int) -> io::Result<()> {
    if signal_group(pgid, sig).is_ok() {
        return Ok(());
    }
    let pid = group_id(pgid)?;
    // SAFETY: kill(2) takes two integers and touches no memory.
    if unsafe { libc::kill(pid, sig) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Sends `sig` to the process group `pgid` only, never to a lone process of that id: once the
/// leader is reaped its pid may be another process's, while the group's id is not reused as long
/// as a member is left (POSIX).
///
/// # Errors
/// As kill(2): no such group (every member is gone), or not permitted.
pub fn signal_group(pgid: u32, sig: libc::c_int) -> io::Result<()> {
    let pid = group_id(pgid)?;
    // SAFETY: kill(2) takes two integers and touches no memory.
    if unsafe { libc::kill(-pid, sig) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// `pgid` as a pid_t that is safe to negate: kill(0) and kill(-1) would signal weir's own group
/// or every process.
fn group_id(pgid: u32) -> io::Result<libc::pid_t> {
    match libc::pid_t::try_from(pgid) {
        Ok(pid) if pid > 1 => Ok(pid),
        _ => Err(io::ErrorKind::InvalidInput.into()),
    }
}
