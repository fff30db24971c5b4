//! `revert`: write back exactly the snapshot, check every value byte for byte, then drop the snapshot.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::rule::normalize;
use crate::snapshot::{PersistedFile, Snapshot, SnapshotError};
use crate::store::{Failure, SysctlStore};
use crate::table::Table;

/// What happened to one key or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevertAction {
    /// Already byte-identical to the snapshot.
    Unchanged,
    /// Written back and read back byte-identical.
    Restored,
    /// A persisted sysctl.d file that did not exist before: deleted.
    Removed,
    /// Not restored; the note says why.
    Failed,
}

/// One row of the revert report: a sysctl key or a persisted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevertRow {
    pub key: String,
    pub current: Option<String>,
    pub restored: Option<String>,
    pub action: RevertAction,
    pub note: String,
}

/// The result of `revert`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevertReport {
    pub root: PathBuf,
    pub state: PathBuf,
    pub rows: Vec<RevertRow>,
    /// True when everything was restored and the state file deleted.
    pub snapshot_removed: bool,
}

/// Revert cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    #[error(
        "no snapshot at {0}: nothing to revert (apply was not run with this --state, or revert already ran)"
    )]
    NoSnapshot(PathBuf),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("restored every value but cannot remove the state file {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RevertReport {
    /// True when something could not be restored: the exit status of `tune revert`.
    pub fn partial(&self) -> bool {
        !self.snapshot_removed
    }

    /// The row of a key or persisted file.
    pub fn row(&self, key: &str) -> Option<&RevertRow> {
        self.rows.iter().find(|r| r.key == key)
    }

    pub fn render(&self) -> String {
        let mut table = Table::new(&["key", "current", "restored", "action", "note"]);
        for row in &self.rows {
            let action = serde_json::to_value(row.action).expect("action serializes");
            table.row(vec![
                row.key.clone(),
                row.current.clone().unwrap_or_else(|| "-".into()),
                row.restored.clone().unwrap_or_else(|| "-".into()),
                action.as_str().unwrap_or_default().to_owned(),
                row.note.clone(),
            ]);
        }
        let verdict = if self.snapshot_removed {
            format!(
                "result: snapshot restored; {} removed\n",
                self.state.display()
            )
        } else {
            format!(
                "result: partial: some values not restored; snapshot kept at {} (fix the cause and run revert again)\n",
                self.state.display()
            )
        };
        table.render() + &verdict
    }
}

/// Restores every value in the snapshot at `state`, then removes the state file when all match.
pub fn revert<S: SysctlStore + ?Sized>(sys: &S, state: &Path) -> Result<RevertReport, RevertError> {
    let snapshot = Snapshot::load_for(state, sys.root())?
        .ok_or_else(|| RevertError::NoSnapshot(state.to_owned()))?;
    let mut rows: Vec<RevertRow> = snapshot
        .values
        .iter()
        .map(|saved| restore_value(sys, &saved.key, &saved.raw))
        .collect();
    rows.extend(snapshot.persisted.iter().map(restore_file));
    let all_restored = rows.iter().all(|r| r.action != RevertAction::Failed);
    if all_restored {
        std::fs::remove_file(state).map_err(|source| RevertError::Remove {
            path: state.to_owned(),
            source,
        })?;
    }
    Ok(RevertReport {
        root: sys.root().to_owned(),
        state: state.to_owned(),
        rows,
        snapshot_removed: all_restored,
    })
}

fn restore_value<S: SysctlStore + ?Sized>(sys: &S, key: &crate::key::Key, raw: &str) -> RevertRow {
    let current = sys.read(key);
    let mut row = RevertRow {
        key: key.to_string(),
        current: current.as_deref().ok().map(normalize),
        restored: Some(normalize(raw)),
        action: RevertAction::Unchanged,
        note: String::new(),
    };
    if current.as_deref().ok() == Some(raw) {
        return row;
    }
    let outcome = sys
        .write(key, raw)
        .and_then(|()| sys.read(key))
        .map_err(|e| Failure::from_io(&e))
        .and_then(|read_back| match read_back == raw {
            true => Ok(()),
            false => Err(Failure::ReadBack(read_back)),
        });
    match outcome {
        Ok(()) => row.action = RevertAction::Restored,
        Err(failure) => {
            row.action = RevertAction::Failed;
            row.note = format!("not restored: {failure}");
        }
    }
    row
}

fn restore_file(file: &PersistedFile) -> RevertRow {
    let outcome = match &file.previous {
        Some(text) => std::fs::write(&file.path, text).map(|()| RevertAction::Restored),
        None => match std::fs::remove_file(&file.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(RevertAction::Removed),
        },
    };
    let (action, note) = match outcome {
        Ok(action) => (action, "persisted profile".to_owned()),
        Err(e) => (
            RevertAction::Failed,
            format!("persisted profile not restored: {e}"),
        ),
    };
    RevertRow {
        key: file.path.display().to_string(),
        current: None,
        restored: None,
        action,
        note,
    }
}
