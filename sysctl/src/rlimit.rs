//! RLIMIT_NOFILE: read it, raise it, and the fd budget one engine process has for connections.

use std::io;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use serde::Serialize;

/// Descriptors one engine process keeps for things other than connections:
///
/// | use                                                              | fds |
/// |------------------------------------------------------------------|-----|
/// | stdin, stdout, stderr                                            |   3 |
/// | per worker thread: io_uring ring or epoll fd, eventfd, timerfd,  |     |
/// | wake pipe (2), spare (3) = 8, for up to 16 workers               | 128 |
/// | listeners: Prometheus/metrics endpoint, control socket           |  16 |
/// | output files: summary.json, report.md, interval .hlog, logs      |  16 |
/// | resolver sockets, /proc and /sys reads, libraries, margin        |  93 |
pub const FD_RESERVE: u64 = 256;

/// `CAP_SYS_RESOURCE`: needed to raise a hard limit.
const CAP_SYS_RESOURCE: u32 = 24;

/// The open-file limits of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NofileLimits {
    pub soft: u64,
    pub hard: u64,
    /// True when this process holds CAP_SYS_RESOURCE, so the hard limit can be raised (up to fs.nr_open).
    pub can_raise_hard: bool,
}

impl NofileLimits {
    /// Reads this process's limits and capability.
    pub fn current() -> io::Result<NofileLimits> {
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
        Ok(NofileLimits {
            soft,
            hard,
            can_raise_hard: has_capability(CAP_SYS_RESOURCE),
        })
    }

    /// Connections one process can hold once its soft limit is raised to the hard one.
    pub fn conn_budget(&self) -> u64 {
        fd_budget(self.hard)
    }
}

/// Connections a process with this RLIMIT_NOFILE can hold: the limit minus [`FD_RESERVE`].
pub fn fd_budget(limit: u64) -> u64 {
    limit.saturating_sub(FD_RESERVE)
}

/// The RLIMIT_NOFILE a process needs to hold `conns` connections: `conns` plus [`FD_RESERVE`].
pub fn nofile_for(conns: u64) -> u64 {
    conns.saturating_add(FD_RESERVE)
}

/// Raises the soft limit to the hard limit (always allowed) and returns the new limits.
pub fn raise_soft_to_hard() -> io::Result<NofileLimits> {
    let before = NofileLimits::current()?;
    set(before.hard, before.hard)?;
    NofileLimits::current()
}

/// Raises the limits so at least `wanted` descriptors can be open: the soft limit up to the hard
/// one, and with CAP_SYS_RESOURCE the hard limit too (the kernel refuses above fs.nr_open).
/// Never lowers a limit. Returns the limits in force afterwards; check them against `wanted`.
pub fn raise_nofile(wanted: u64) -> io::Result<NofileLimits> {
    let before = NofileLimits::current()?;
    let hard = if wanted > before.hard && before.can_raise_hard {
        wanted
    } else {
        before.hard
    };
    let soft = before.soft.max(wanted.min(hard));
    set(soft, hard)?;
    NofileLimits::current()
}

fn set(soft: u64, hard: u64) -> io::Result<()> {
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).map_err(io::Error::from)
}

/// True when `cap` is in this process's effective capability set.
pub fn has_capability(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    effective_caps(&status).is_some_and(|caps| caps & (1u64 << cap) != 0)
}

fn effective_caps(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_the_limit_minus_the_reserve() {
        assert_eq!(fd_budget(20_000), 20_000 - FD_RESERVE);
        assert_eq!(fd_budget(100), 0);
        assert_eq!(nofile_for(25_000), 25_000 + FD_RESERVE);
        assert_eq!(fd_budget(u64::MAX), u64::MAX - FD_RESERVE);
    }

    #[test]
    fn parses_the_effective_capability_set() {
        let status = "Name:\tx\nCapPrm:\t000001ffffffffff\nCapEff:\t000001fffeffffff\n";
        let caps = effective_caps(status).unwrap();
        assert_eq!(caps & (1 << CAP_SYS_RESOURCE), 0);
        assert_ne!(caps & (1 << 21), 0, "CAP_SYS_ADMIN is set in this sample");
        assert_eq!(effective_caps("Name:\tx\n"), None);
    }

    #[test]
    fn raising_soft_to_hard_restores_a_lowered_soft_limit() {
        let before = NofileLimits::current().unwrap();
        let lowered = before.hard.min(before.soft).saturating_sub(10).max(64);
        set(lowered, before.hard).unwrap();
        assert_eq!(NofileLimits::current().unwrap().soft, lowered);
        let after = raise_soft_to_hard().unwrap();
        assert_eq!((after.soft, after.hard), (before.hard, before.hard));
        let same = raise_nofile(lowered).unwrap();
        assert_eq!(same.soft, before.hard, "raise_nofile never lowers");
        set(before.soft, before.hard).unwrap();
    }
}
