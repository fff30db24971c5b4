//! A fake /proc/sys tree and a store that fails writes on chosen keys.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use tuning::{Key, NofileLimits, SysRoot, SysctlStore};

/// A process whose soft limit can be raised to a hard limit above every profile's wanted one.
pub const ROOMY: NofileLimits = NofileLimits {
    soft: 1024,
    hard: 524_288,
    can_raise_hard: false,
};

/// This machine: soft = hard = 20000, no CAP_SYS_RESOURCE.
pub const STUCK_AT_20K: NofileLimits = NofileLimits {
    soft: 20_000,
    hard: 20_000,
    can_raise_hard: false,
};

/// Kernel defaults as found on a stock host (raw, with the kernel's tabs and newline).
pub const DEFAULTS: &[(&str, &str)] = &[
    ("net.core.somaxconn", "4096\n"),
    ("net.ipv4.tcp_max_syn_backlog", "2048\n"),
    ("net.ipv4.ip_local_port_range", "32768\t60999\n"),
    ("net.ipv4.ip_local_reserved_ports", "\n"),
    ("net.ipv4.tcp_tw_reuse", "2\n"),
    ("net.ipv4.tcp_fin_timeout", "60\n"),
    ("net.core.netdev_max_backlog", "1000\n"),
    ("fs.file-max", "2466186\n"),
    ("fs.file-nr", "397\t0\t2466186\n"),
    ("fs.nr_open", "1048576\n"),
    ("net.ipv4.tcp_rmem", "4096\t131072\t6291456\n"),
    ("net.ipv4.tcp_wmem", "4096\t16384\t4194304\n"),
    ("net.core.rmem_max", "212992\n"),
    ("net.core.wmem_max", "212992\n"),
    ("net.netfilter.nf_conntrack_max", "65536\n"),
    ("net.netfilter.nf_conntrack_count", "12\n"),
];

/// A temporary sysctl tree.
pub struct FakeTree {
    pub dir: tempfile::TempDir,
    pub root: SysRoot,
}

impl FakeTree {
    /// A tree with every key of [`DEFAULTS`].
    pub fn with_defaults() -> FakeTree {
        let tree = FakeTree::empty();
        for (key, raw) in DEFAULTS {
            tree.set(key, raw);
        }
        tree
    }

    pub fn empty() -> FakeTree {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::new(dir.path().join("proc/sys"));
        std::fs::create_dir_all(root.root()).unwrap();
        FakeTree { dir, root }
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.root.path(&Key::parse(key).unwrap())
    }

    pub fn set(&self, key: &str, raw: &str) {
        let path = self.path(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, raw).unwrap();
    }

    pub fn get(&self, key: &str) -> String {
        std::fs::read_to_string(self.path(key)).unwrap()
    }

    pub fn remove(&self, key: &str) {
        std::fs::remove_file(self.path(key)).unwrap();
    }

    /// Every file of the tree (relative path) with its bytes.
    pub fn contents(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        collect(self.root.root(), self.root.root(), &mut out);
        out
    }

    /// A state file path inside the temporary directory.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state/tuning-snapshot.json")
    }
}

fn collect(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(base, &path, out);
        } else {
            let relative = path.strip_prefix(base).unwrap().to_owned();
            out.insert(relative, std::fs::read(&path).unwrap());
        }
    }
}

/// A store over a fake tree whose writes to some keys fail with a given errno.
pub struct Faulty<'a> {
    pub inner: &'a SysRoot,
    pub failures: Vec<(Key, i32)>,
}

impl<'a> Faulty<'a> {
    pub fn new(inner: &'a SysRoot, failures: &[(&str, i32)]) -> Faulty<'a> {
        Faulty {
            inner,
            failures: failures
                .iter()
                .map(|(k, errno)| (Key::parse(k).unwrap(), *errno))
                .collect(),
        }
    }
}

impl SysctlStore for Faulty<'_> {
    fn read(&self, key: &Key) -> io::Result<String> {
        self.inner.read(key)
    }

    fn write(&self, key: &Key, value: &str) -> io::Result<()> {
        match self.failures.iter().find(|(k, _)| k == key) {
            Some((_, errno)) => Err(io::Error::from_raw_os_error(*errno)),
            None => self.inner.write(key, value),
        }
    }

    fn root(&self) -> &Path {
        self.inner.root()
    }
}
