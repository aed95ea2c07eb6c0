//! Listening sockets, made by hand so that `--reuse-port` can set `SO_REUSEPORT` before the
//! bind: std and mio bind in one step and offer no way to set an option first.
//!
//! A listener is what `mio::net::TcpListener::bind` makes (non-blocking, close-on-exec,
//! `SO_REUSEADDR`, backlog 1024), plus `SO_REUSEPORT` when asked: then every process that binds
//! the same address with it (the same user, Linux ≥ 3.9) gets its own accept queue, and the
//! kernel spreads new connections over them by a hash of the 4-tuple (socket(7)). Each `unsafe`
//! block is one libc call.

#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use mio::net::TcpListener;

/// The accept queue's length, as mio's (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: libc::c_int = 1024;

/// A non-blocking listener bound to `addr`, shared with other sockets that set `SO_REUSEPORT`
/// on the same address when `reuse_port` is true.
///
/// # Errors
/// The socket cannot be made, an option set, or the address bound (`AddrInUse` when another
/// socket has it and either side did not ask to share it).
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) takes no pointers.
    let fd = unsafe { libc::socket(domain, ty, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // As mio: a restarted weir rebinds at once, past connections still in TIME_WAIT.
    set_flag(&fd, libc::SO_REUSEADDR)?;
    if reuse_port {
        set_flag(&fd, libc::SO_REUSEPORT)?;
    }
    let rc = match addr {
        SocketAddr::V4(a) => {
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: `sa` is a whole sockaddr_in and the length is its size.
            unsafe { libc::bind(fd.as_raw_fd(), (&raw const sa).cast(), socklen_of(&sa)) }
        }
        SocketAddr::V6(a) => {
            let sa = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: `sa` is a whole sockaddr_in6 and the length is its size.
            unsafe { libc::bind(fd.as_raw_fd(), (&raw const sa).cast(), socklen_of(&sa)) }
        }
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen(2) takes no pointers; `fd` is a bound socket.
    if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from_std(std::net::TcpListener::from(fd)))
}

/// Turns a boolean `SOL_SOCKET` option on.
fn set_flag(fd: &OwnedFd, option: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the value is a c_int that outlives the call, and the length is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw const on).cast(),
            socklen_of(&on),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn socklen_of<T>(_: &T) -> libc::socklen_t {
    // The structures passed are a few dozen bytes.
    std::mem::size_of::<T>() as libc::socklen_t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_only_when_both_ask() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let a = bind(any, true).unwrap();
        let addr = a.local_addr().unwrap();
        // Both with the option: the second bind shares the port.
        let b = bind(addr, true).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
        // One without it: refused, as two plain listeners are.
        assert_eq!(bind(addr, false).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        let plain = bind(any, false).unwrap();
        let taken = plain.local_addr().unwrap();
        assert_eq!(bind(taken, true).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        // IPv6 takes the same path (skipped where the host has no IPv6 loopback).
        if let Ok(v6) = bind("[::1]:0".parse().unwrap(), true) {
            let addr6 = v6.local_addr().unwrap();
            assert!(addr6.is_ipv6() && addr6.port() != 0);
            assert!(bind(addr6, true).is_ok());
        }
        drop((a, b));
    }
}
