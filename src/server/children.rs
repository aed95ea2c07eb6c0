//! The loop's side of child processes (`process.rs` holds them): readiness on their pipes,
//! output read within a budget per turn and handed to the handler, exits reaped and reported
//! once the output is read to the end, and the deadlines of the groups they leave behind.

use std::process::ExitStatus;
use std::time::Duration;

use crate::server::dispatch::{Owner, Then};
use crate::server::event_loop::Engine;
use crate::server::process::{
    EXIT_LINGER, LeftGroup, OUTPUT_PER_TURN, ProcId, REAP_POLL, STDERR, STDIN, STDOUT, Stream,
    Turn, read_turn, split_token,
};
use crate::server::signal::{kill_group, signal_group};
use crate::server::slab::Key;
use crate::{debug, warn};

impl<D: Default> Engine<'_, D> {
    /// Readiness on one of a process's pipes.
    pub(super) fn on_process_event(&mut self, token: usize, event: &mio::event::Event) {
        let (key, pipe) = split_token(token);
        let Some(p) = self.core.procs.slab.get_mut(key) else { return };
        match pipe {
            STDIN => p.writable |= event.is_writable() || event.is_error(),
            STDOUT | STDERR => {
                p.readable[pipe - 1] |=
                    event.is_readable() || event.is_read_closed() || event.is_error();
            }
            _ => return,
        }
        // Served once a turn, with the processes that had more to read (`run_processes`): so
        // a turn reads at most one budget from each pipe, however many wake-ups it saw.
        if !self.core.procs.pending.contains(&key) {
            self.core.procs.pending.push(key);
        }
    }

    /// Writes queued input, reads output (within the budget, unless paused), and reports the
    /// exit once the process is reaped and its output read to the end.
    fn service_process(&mut self, key: Key) {
        self.core.procs.flush_input(self.core.poll.registry(), key);
        let mut more = false;
        for (i, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
            let Some(p) = self.core.procs.slab.get_mut(key) else { return };
            if p.paused || !p.readable[i] {
                continue;
            }
            // Out of its slot while the handler runs, and the read buffer out of the loop's
            // (both are put back below).
            let Some(mut pipe) = p.out[i].take() else { continue };
            let mut buf = std::mem::take(&mut self.rbuf);
            let owner = Owner::Proc(key, p.tag);
            let turn = read_turn(&mut pipe, &mut buf, OUTPUT_PER_TURN, &mut |data| {
                self.call(owner, Then::Flush, |h, ctx| {
                    h.on_process_output(ctx, ProcId(key), stream, data);
                });
                self.core.procs.slab.get(key).is_some_and(|p| !p.paused)
            });
            self.rbuf = buf;
            let Some(p) = self.core.procs.slab.get_mut(key) else { return };
            match turn {
                Turn::More => {
                    more |= !p.paused;
                    p.out[i] = Some(pipe);
                }
                Turn::Drained => {
                    p.readable[i] = false;
                    p.out[i] = Some(pipe);
                }
                Turn::Ended(error) => {
                    if let Some(e) = error {
                        debug!("process read failed", id = key.to_token(), error = e);
                    }
                    p.readable[i] = false;
                    let _ = self.core.poll.registry().deregister(&mut pipe);
                }
            }
        }
        if more && !self.core.procs.pending.contains(&key) {
            self.core.procs.pending.push(key);
        }
        let Some(p) = self.core.procs.slab.get_mut(key) else { return };
        if p.status.is_none() && p.out.iter().all(Option::is_none) {
            // Both pipes closed: it has most likely exited (SIGCHLD may still be on its way).
            if let Ok(Some(st)) = p.child.try_wait() {
                self.reaped(key, st);
            }
        }
        self.finish_if_done(key);
    }

    /// SIGCHLD: asks each child the runtime owns whether it has exited.
    pub(super) fn reap_processes(&mut self) {
        let keys: Vec<Key> = self.core.procs.slab.keys().collect();
        for key in keys {
            let Some(p) = self.core.procs.slab.get_mut(key) else { continue };
            if p.status.is_some() {
                continue;
            }
            match p.child.try_wait() {
                Ok(Some(st)) => {
                    self.reaped(key, st);
                    // Output written just before the exit is read before the exit is reported.
                    self.service_process(key);
                }
                Ok(None) => {}
                Err(e) => warn!("waitpid failed", pid = p.pid, error = e),
            }
        }
    }

    fn reaped(&mut self, key: Key, status: ExitStatus) {
        let now = self.core.now;
        let Some(p) = self.core.procs.slab.get_mut(key) else { return };
        debug!("process exited", id = key.to_token(), pid = p.pid, status = status);
        p.status = Some(status);
        p.kill_at = None;
        p.linger_until = Some(now + EXIT_LINGER);
        let pgid = p.pid;
        // Nobody reads its stdin any more.
        if let Some(mut s) = p.stdin.take() {
            let _ = self.core.poll.registry().deregister(&mut s);
        }
        self.core.procs.due(now + EXIT_LINGER);
        // What the leader started in its group (a background child) would outlive it, uncounted:
        // the group gets SIGTERM (and SIGCONT, if it was stopped) now, SIGKILL after the grace.
        // This fails when no member is left.
        if signal_group(pgid, libc::SIGTERM).is_ok() {
            let _ = signal_group(pgid, libc::SIGCONT);
            let kill_at = now + self.core.procs.shutdown_grace;
            debug!("processes left in the group: terminating", pgid = pgid);
            self.core.procs.left.push(LeftGroup { pgid, kill_at });
            self.core.procs.due(kill_at);
        }
    }

    /// Reports the exit and forgets the process, once it is reaped and its output read.
    fn finish_if_done(&mut self, key: Key) {
        let Some(p) = self.core.procs.slab.get(key) else { return };
        let Some(status) = p.status else { return };
        if p.out.iter().any(Option::is_some) {
            return;
        }
        let owner = Owner::Proc(key, p.tag);
        self.core.procs.forget_pipes(self.core.poll.registry(), key);
        self.core.procs.slab.remove(key);
        self.call(owner, Then::Flush, |h, ctx| h.on_process_exit(ctx, ProcId(key), status));
    }

    /// SIGKILL to the groups whose grace is over (a group already gone is simply forgotten).
    fn kill_left_groups_due(&mut self, now: Duration) {
        let procs = &mut self.core.procs;
        procs.left.retain(|g| {
            if now < g.kill_at {
                return true;
            }
            if signal_group(g.pgid, libc::SIGKILL).is_ok() {
                warn!(
                    "processes left in the process group ignored SIGTERM: killing",
                    pgid = g.pgid
                );
            }
            false
        });
        if let Some(at) = procs.left.iter().map(|g| g.kill_at).min() {
            procs.due(at);
        }
    }

    /// The processes whose pipes were ready or had output left, and the processes' deadlines.
    pub(super) fn run_processes(&mut self) {
        for key in std::mem::take(&mut self.core.procs.pending) {
            self.service_process(key);
        }
        let now = self.core.now;
        if self.core.procs.next_due.is_none_or(|d| now < d) {
            return;
        }
        self.core.procs.next_due = None;
        if self.core.procs.poll_reap {
            self.reap_processes();
        }
        self.kill_left_groups_due(now);
        let keys: Vec<Key> = self.core.procs.slab.keys().collect();
        for key in keys {
            let Some(p) = self.core.procs.slab.get_mut(key) else { continue };
            if p.kill_at.is_some_and(|t| now >= t) {
                p.kill_at = None;
                if p.status.is_none() {
                    warn!("process did not exit after SIGTERM: killing", pid = p.pid);
                    let _ = kill_group(p.pid, libc::SIGKILL);
                }
            }
            if p.linger_until.is_some_and(|t| now >= t) {
                if p.paused {
                    // Its output is still wanted, only slowly.
                    p.linger_until = Some(now + EXIT_LINGER);
                } else {
                    p.linger_until = None;
                    debug!("process output abandoned after exit", pid = p.pid);
                    self.core.procs.forget_pipes(self.core.poll.registry(), key);
                    self.finish_if_done(key);
                    continue;
                }
            }
            let Some(p) = self.core.procs.slab.get(key) else { continue };
            let next = [p.kill_at, p.linger_until].into_iter().flatten().min();
            if let Some(at) = next {
                self.core.procs.due(at);
            }
        }
        if self.core.procs.poll_reap && !self.core.procs.is_empty() {
            self.core.procs.due(now + REAP_POLL);
        }
    }
}
