//! The state file: the values `apply` found before it changed anything, for `revert`.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::key::Key;

/// The default state file.
pub const DEFAULT_STATE: &str = "/var/lib/mcp-load/tuning-snapshot.json";

/// The values before the first `apply`, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version of this file.
    pub version: u32,
    /// The sysctl root the values were read from; revert refuses another one.
    pub root: PathBuf,
    /// Profiles applied since the snapshot was taken, in order.
    pub profiles: Vec<String>,
    /// Seconds since the Unix epoch when the snapshot was taken.
    pub taken_at_unix: u64,
    /// Every key an apply touched, with its raw value before the first apply.
    pub values: Vec<SavedValue>,
    /// sysctl.d files written by `apply --persist`, and what was there before.
    #[serde(default)]
    pub persisted: Vec<PersistedFile>,
}

/// One key's value as read before the first apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedValue {
    pub key: Key,
    /// The raw bytes read from the file (including the trailing newline).
    pub raw: String,
}

/// A persisted profile file and the content it replaced (`None`: it did not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedFile {
    pub path: PathBuf,
    pub previous: Option<String>,
}

/// A state file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read state file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "state file {path} is not a tuning snapshot ({source}): move it away or pass another --state"
    )]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write state file {path}: {source} (pass a writable --state FILE)")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "state file {path} holds values read under {snapshot_root}, not {root}: pass --root {snapshot_root} or another --state"
    )]
    OtherRoot {
        path: PathBuf,
        snapshot_root: PathBuf,
        root: PathBuf,
    },
}

impl Snapshot {
    pub const VERSION: u32 = 1;

    /// An empty snapshot for `root`, stamped now.
    pub fn new(root: &Path) -> Snapshot {
        let taken_at_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Snapshot {
            version: Snapshot::VERSION,
            root: root.to_owned(),
            profiles: Vec::new(),
            taken_at_unix,
            values: Vec::new(),
            persisted: Vec::new(),
        }
    }

    /// Loads the snapshot at `path`; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<Snapshot>, SnapshotError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SnapshotError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| SnapshotError::Corrupt {
                path: path.to_owned(),
                source,
            })
    }

    /// Loads the snapshot at `path` and checks it was taken under `root`.
    pub fn load_for(path: &Path, root: &Path) -> Result<Option<Snapshot>, SnapshotError> {
        let snapshot = Snapshot::load(path)?;
        match snapshot {
            Some(s) if s.root != root => Err(SnapshotError::OtherRoot {
                path: path.to_owned(),
                snapshot_root: s.root,
                root: root.to_owned(),
            }),
            other => Ok(other),
        }
    }

    /// Writes the snapshot atomically (temporary file, fsync, rename), creating the directory.
    pub fn save(&self, path: &Path) -> Result<(), SnapshotError> {
        let write_error = |source| SnapshotError::Write {
            path: path.to_owned(),
            source,
        };
        let json = serde_json::to_string_pretty(self).expect("a snapshot serializes");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_error)?;
        }
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        write_synced(&temporary, json.as_bytes()).map_err(write_error)?;
        std::fs::rename(&temporary, path).map_err(write_error)
    }

    /// The saved raw value of a key.
    pub fn value(&self, key: &Key) -> Option<&str> {
        self.values
            .iter()
            .find(|v| &v.key == key)
            .map(|v| v.raw.as_str())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_raw_bytes_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let mut snapshot = Snapshot::new(Path::new("/proc/sys"));
        let key = Key::parse("net.ipv4.ip_local_port_range").unwrap();
        snapshot.values.push(SavedValue {
            key: key.clone(),
            raw: "32768\t60999\n".into(),
        });
        snapshot.save(&path).unwrap();
        let loaded = Snapshot::load(&path).unwrap().unwrap();
        assert_eq!(loaded, snapshot);
        assert_eq!(loaded.value(&key), Some("32768\t60999\n"));
        assert!(
            Snapshot::load(&dir.path().join("none.json"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn another_root_and_garbage_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        Snapshot::new(Path::new("/tmp/fake")).save(&path).unwrap();
        let err = Snapshot::load_for(&path, Path::new("/proc/sys")).unwrap_err();
        assert!(
            err.to_string()
                .contains("holds values read under /tmp/fake, not /proc/sys"),
            "{err}"
        );
        std::fs::write(&path, "{").unwrap();
        let err = Snapshot::load(&path).unwrap_err().to_string();
        assert!(err.contains("is not a tuning snapshot"), "{err}");
    }
}
