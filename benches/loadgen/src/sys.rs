//! The few system calls: CPU pinning, the open-file limit, a process's resident memory.

/// Pins the calling thread (the whole single-threaded process) to `cpu`.
pub fn pin_cpu(cpu: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes inside it; sched_setaffinity reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(format!("sched_setaffinity(cpu {cpu}): {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Lowers the calling thread's scheduling priority to nice 19 (Linux: nice is per thread), so
/// an attacker thread on this machine does not take the CPU from the canary it is measured by,
/// as an attacker on another host would not.
pub fn lowest_priority() {
    // SAFETY: gettid and setpriority take and return plain integers.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

/// Raises the soft open-file limit to the hard one; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit read and write one rlimit struct we own.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur as u64;
            }
        }
        r.rlim_cur as u64
    }
}

/// VmRSS of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let s = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().map_err(|_| format!("{path}: bad VmRSS line {line:?}"))?;
            return Ok(kb * 1024);
        }
    }
    Err(format!("{path}: no VmRSS"))
}

/// CPU time (user + system) `pid` has used so far, in seconds (`/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/stat");
    let s = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // Fields after the command name (which may hold spaces and parentheses): state is field 3,
    // utime 14 and stime 15.
    let rest = s.rsplit_once(')').map(|(_, r)| r).ok_or(format!("{path}: no ')'"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).ok_or(format!("{path}: bad field"));
    let ticks = tick(11)? + tick(12)?;
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 })
}

/// CPU time (user + system) this process has used so far, in seconds.
pub fn self_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes one rusage struct we own.
    let r = unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut r);
        r
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// Receives and discards up to `scratch.len()` bytes without copying them (`MSG_TRUNC` on
/// TCP: the kernel frees them unread). Returns how many were discarded (0 at EOF).
pub fn recv_discard(fd: std::os::fd::RawFd, scratch: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: `scratch` is valid for its whole length (TCP with MSG_TRUNC does not write to it).
    let n = unsafe { libc::recv(fd, scratch.as_mut_ptr().cast(), scratch.len(), libc::MSG_TRUNC | libc::MSG_DONTWAIT) };
    if n < 0 { Err(std::io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// CPU used over a window, each a share of one CPU: the server's (the sum over every `--pid`;
/// None if one was unreadable), the generator's, and each pid's apart (in `--pid`'s order).
pub type Cpu = (Option<f64>, f64, Vec<Option<f64>>);

/// CPU used over a measurement window by the server (`--pid`: one process, or the several of a
/// tunnel path) and by the generator itself, as fractions of one CPU: which side was the
/// bottleneck.
pub struct CpuMeter {
    pids: Vec<u32>,
    server0: Vec<Option<f64>>,
    self0: f64,
    t0: std::time::Instant,
}

impl CpuMeter {
    pub fn start(pids: &[u32]) -> CpuMeter {
        let server0 = pids.iter().map(|&p| cpu_seconds(p).ok()).collect();
        CpuMeter { pids: pids.to_vec(), server0, self0: self_cpu_seconds(), t0: std::time::Instant::now() }
    }

    /// (server CPU, if pids were given and all still readable; the generator's CPU; each pid's).
    pub fn stop(&self) -> Cpu {
        let wall = self.t0.elapsed().as_secs_f64().max(1e-9);
        let each: Vec<Option<f64>> = self
            .pids
            .iter()
            .zip(&self.server0)
            .map(|(&p, s0)| Some((cpu_seconds(p).ok()? - (*s0)?) / wall))
            .collect();
        let server = if each.is_empty() { None } else { each.iter().copied().sum::<Option<f64>>() };
        (server, (self_cpu_seconds() - self.self0) / wall, each)
    }
}

/// `[a,b,null]`: one number per pid, for a RESULT line.
pub fn json_list(v: &[Option<f64>], decimals: usize) -> String {
    let items: Vec<String> = v.iter().map(|x| x.map_or("null".into(), |x| format!("{x:.decimals$}"))).collect();
    format!("[{}]", items.join(","))
}

/// `"server_cpu":X,"loadgen_cpu":Y` (and `"cpu_by_pid":[..]` for several pids) for a RESULT
/// line, and a phrase for the human one.
pub fn cpu_fields(cpu: Cpu) -> (String, String) {
    let (server, me, each) = cpu;
    let mut json = match server {
        Some(s) => format!("\"server_cpu\":{s:.3},\"loadgen_cpu\":{me:.3}"),
        None => format!("\"server_cpu\":null,\"loadgen_cpu\":{me:.3}"),
    };
    if each.len() > 1 {
        json += &format!(",\"cpu_by_pid\":{}", json_list(&each, 3));
    }
    let human = match server {
        Some(s) => format!("server CPU {:.0}%, loadgen CPU {:.0}%", s * 100.0, me * 100.0),
        None => format!("loadgen CPU {:.0}%", me * 100.0),
    };
    (json, human)
}
