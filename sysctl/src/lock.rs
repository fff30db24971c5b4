//! A host-wide lock for tests that change or depend on live sysctls.
//!
//! Tests in any crate that write `/proc/sys`, or assert on values a tuning profile changes, take
//! this lock so they never overlap: `let _guard = tuning::lock::host_sysctls()?;`

use std::fs::{File, OpenOptions};
use std::io;

use nix::fcntl::{Flock, FlockArg};

/// The lock file shared by every process on the host.
pub const LOCK_PATH: &str = "/tmp/mcp-load-sysctl.lock";

/// Holds the lock until dropped.
pub struct HostSysctlLock {
    _lock: Flock<File>,
}

/// Blocks until this process holds the exclusive host sysctl lock.
pub fn host_sysctls() -> io::Result<HostSysctlLock> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)?;
    let lock =
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| io::Error::from(errno))?;
    Ok(HostSysctlLock { _lock: lock })
}
