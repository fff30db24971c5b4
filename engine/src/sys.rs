//! Facts about this host and process: cores we may use, memory and CPU use, kernel, signals.

use std::sync::atomic::Ordering;

use crate::metrics::ProcessStats;

/// CPUs this process may run on (its affinity mask), in order.
pub fn allowed_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

pub fn pin_to(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

/// RSS now and at its peak (VmRSS, VmHWM) of a process, in bytes.
pub fn rss_of(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time (user + system) this process has used.
pub fn self_cpu_us() -> u64 {
    // SAFETY: an all-zero rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid for the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

pub fn self_stats() -> ProcessStats {
    let pid = std::process::id();
    let (rss, peak) = rss_of(pid).unwrap_or((0, 0));
    ProcessStats {
        pid,
        rss_bytes: rss,
        peak_rss_bytes: peak,
        cpu_us: self_cpu_us(),
    }
}

/// TcpExt counters of the host's network namespace (`/proc/net/netstat`), e.g.
/// `ListenOverflows`: accept queues that overflowed.
pub fn tcp_ext(names: &[&str]) -> Vec<Option<u64>> {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines();
    while let (Some(keys), Some(values)) = (lines.next(), lines.next()) {
        if !keys.starts_with("TcpExt:") {
            continue;
        }
        let pairs: Vec<(&str, &str)> = keys
            .split_whitespace()
            .zip(values.split_whitespace())
            .collect();
        return names
            .iter()
            .map(|n| {
                pairs
                    .iter()
                    .find(|(k, _)| k == n)
                    .and_then(|(_, v)| v.parse().ok())
            })
            .collect();
    }
    vec![None; names.len()]
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// SIGINT and SIGTERM end the hold early (sessions still close cleanly); a second one is
/// not special: the drain timeout bounds the exit.
pub fn install_stop_handlers() {
    extern "C" fn on_signal(_: libc::c_int) {
        crate::worker::STOP.store(true, Ordering::Relaxed);
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Ask the kernel to send us SIGTERM when our parent dies, so no shard outlives the run.
pub fn die_with_parent() {
    // SAFETY: plain prctl.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
}
