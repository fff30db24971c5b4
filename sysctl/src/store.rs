//! Reading and writing sysctl values under a root directory (`/proc/sys`, or a fake tree in tests).

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::key::Key;

/// The default sysctl root.
pub const PROC_SYS: &str = "/proc/sys";

/// Where sysctl values are read and written.
pub trait SysctlStore {
    /// The raw value as read, byte for byte (usually with a trailing newline).
    fn read(&self, key: &Key) -> io::Result<String>;
    /// Writes exactly these bytes in one `write` call, as the kernel expects.
    fn write(&self, key: &Key, value: &str) -> io::Result<()>;
    /// The root directory, shown in reports and recorded in snapshots.
    fn root(&self) -> &Path;
}

/// A sysctl tree on the file system: `/proc/sys` by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot {
    root: PathBuf,
}

impl SysRoot {
    /// A tree rooted at `root` (a fake one in tests).
    pub fn new(root: impl Into<PathBuf>) -> SysRoot {
        SysRoot { root: root.into() }
    }

    /// The live `/proc/sys`.
    pub fn proc_sys() -> SysRoot {
        SysRoot::new(PROC_SYS)
    }

    /// The file that holds a key.
    pub fn path(&self, key: &Key) -> PathBuf {
        self.root.join(key.relative_path())
    }
}

impl Default for SysRoot {
    fn default() -> SysRoot {
        SysRoot::proc_sys()
    }
}

impl SysctlStore for SysRoot {
    fn read(&self, key: &Key) -> io::Result<String> {
        std::fs::read_to_string(self.path(key))
    }

    fn write(&self, key: &Key, value: &str) -> io::Result<()> {
        // No O_CREAT: a missing key must fail, not appear in a fake tree.
        let mut file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.path(key))?;
        // procfs parses the whole value in one write; a short write would be a kernel surprise.
        let written = file.write(value.as_bytes())?;
        if written != value.len() {
            return Err(io::Error::other(format!(
                "short write ({written} of {} bytes)",
                value.len()
            )));
        }
        Ok(())
    }

    fn root(&self) -> &Path {
        &self.root
    }
}

/// Why a key could not be read or written, classified for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum Failure {
    /// ENOENT: the kernel (or this network namespace) has no such key.
    Missing,
    /// EACCES / EPERM: not root, or lacking CAP_SYS_ADMIN / CAP_NET_ADMIN.
    PermissionDenied,
    /// EROFS: `/proc/sys` mounted read-only, as in most containers.
    ReadOnly,
    /// EINVAL: the kernel rejected the value (out of range or malformed).
    Rejected,
    /// EISDIR: the key names a directory of keys, not a value.
    NotAValue,
    /// The value was written but reads back differently.
    ReadBack(String),
    /// Anything else, with the OS message.
    Other(String),
}

impl Failure {
    /// Classifies an I/O error from reading or writing a key.
    pub fn from_io(err: &io::Error) -> Failure {
        match err.raw_os_error() {
            Some(libc::ENOENT) => Failure::Missing,
            Some(libc::EACCES | libc::EPERM) => Failure::PermissionDenied,
            Some(libc::EROFS) => Failure::ReadOnly,
            Some(libc::EINVAL) => Failure::Rejected,
            Some(libc::EISDIR) => Failure::NotAValue,
            _ if err.kind() == io::ErrorKind::NotFound => Failure::Missing,
            _ => Failure::Other(err.to_string()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Missing => {
                f.write_str("missing key (module not loaded, or not in this network namespace)")
            }
            Failure::PermissionDenied => {
                f.write_str("permission denied (run as root with CAP_SYS_ADMIN / CAP_NET_ADMIN)")
            }
            Failure::ReadOnly => f.write_str(
                "read-only /proc/sys (in a container: set it on the host or in the service `sysctls`)",
            ),
            Failure::Rejected => f.write_str("value rejected by the kernel (EINVAL: out of range)"),
            Failure::NotAValue => f.write_str("not a value (the key is a directory)"),
            Failure::ReadBack(value) => write!(f, "written, but reads back {value:?}"),
            Failure::Other(message) => f.write_str(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_the_whole_value_and_missing_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::new(dir.path());
        let key = Key::parse("net.ipv4.ip_local_port_range").unwrap();
        std::fs::create_dir_all(dir.path().join("net/ipv4")).unwrap();
        std::fs::write(root.path(&key), "32768\t60999\n").unwrap();
        root.write(&key, "1024 2000").unwrap();
        assert_eq!(root.read(&key).unwrap(), "1024 2000");
        let missing = Key::parse("net.ipv4.nope").unwrap();
        let err = root.write(&missing, "1").unwrap_err();
        assert_eq!(Failure::from_io(&err), Failure::Missing);
        assert!(
            !root.path(&missing).exists(),
            "a write must not create a key"
        );
    }

    #[test]
    fn errors_are_classified() {
        let cases = [
            (libc::EROFS, Failure::ReadOnly),
            (libc::EPERM, Failure::PermissionDenied),
            (libc::EACCES, Failure::PermissionDenied),
            (libc::EINVAL, Failure::Rejected),
            (libc::EISDIR, Failure::NotAValue),
        ];
        for (errno, failure) in cases {
            assert_eq!(
                Failure::from_io(&io::Error::from_raw_os_error(errno)),
                failure
            );
        }
    }
}
