//! `apply`: snapshot every key the profile touches, then write the ones that are not as wanted.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::profile::Profile;
use crate::rule::normalize;
use crate::snapshot::{PersistedFile, SavedValue, Snapshot, SnapshotError};
use crate::store::{Failure, SysctlStore};
use crate::table::Table;
use crate::verify::{Inspection, inspect};

/// What `apply` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Print the diff only: no snapshot, no write, no persisted file.
    pub dry_run: bool,
    /// The snapshot state file ([`crate::snapshot::DEFAULT_STATE`]).
    pub state: PathBuf,
    /// Also write the profile to this sysctl.d file (see [`persist_path`]).
    pub persist: Option<PathBuf>,
}

impl ApplyOptions {
    /// Apply for real, snapshot to `state`, no persisted file.
    pub fn new(state: impl Into<PathBuf>) -> ApplyOptions {
        ApplyOptions {
            dry_run: false,
            state: state.into(),
            persist: None,
        }
    }
}

/// The sysctl.d file `--persist` writes for a profile: `<dir>/mcp-load-<profile>.conf`.
pub fn persist_path(dir: &Path, profile: &str) -> PathBuf {
    dir.join(format!("mcp-load-{profile}.conf"))
}

/// The default directory for `--persist`.
pub const SYSCTL_D: &str = "/etc/sysctl.d";

/// What happened to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Already as wanted: left alone.
    Keep,
    /// Optional and absent on this host.
    Skip,
    /// Dry run: would be written.
    WouldWrite,
    /// Written and read back as wanted.
    Written,
    /// Not applied; the note says why.
    Failed,
}

/// One row of the apply report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyRow {
    pub key: String,
    pub before: Option<String>,
    /// The value after apply (or that a dry run would write).
    pub after: Option<String>,
    pub action: Action,
    pub note: String,
}

/// What became of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum SnapshotStatus {
    /// Dry run: none taken.
    NotTaken,
    /// A new snapshot was written.
    Taken { path: PathBuf },
    /// An earlier snapshot exists and was kept; keys it lacked were added.
    Kept {
        path: PathBuf,
        taken_at_unix: u64,
        added: usize,
    },
}

/// The result of `apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub profile: String,
    pub root: PathBuf,
    pub dry_run: bool,
    pub rows: Vec<ApplyRow>,
    pub snapshot: SnapshotStatus,
    pub persisted: Option<PathBuf>,
    /// The profile's wanted RLIMIT_NOFILE: a process limit apply cannot set.
    pub nofile: Option<u64>,
}

/// Apply could not start or finish its bookkeeping (no sysctl was written when the snapshot failed).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("cannot write {path}: {source} (run as root, or leave out --persist)")]
    Persist {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ApplyReport {
    /// True when some key could not be applied: the exit status of `tune apply`.
    pub fn partial(&self) -> bool {
        self.failed() > 0
    }

    /// How many keys could not be applied.
    pub fn failed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.action == Action::Failed)
            .count()
    }

    /// The row of a key.
    pub fn row(&self, key: &str) -> Option<&ApplyRow> {
        self.rows.iter().find(|r| r.key == key)
    }

    pub fn render(&self) -> String {
        let mut table = Table::new(&["key", "before", "after", "action", "note"]);
        for row in &self.rows {
            let action = serde_json::to_value(row.action).expect("action serializes");
            table.row(vec![
                row.key.clone(),
                row.before.clone().unwrap_or_else(|| "-".into()),
                row.after.clone().unwrap_or_else(|| "-".into()),
                action.as_str().unwrap_or_default().to_owned(),
                row.note.clone(),
            ]);
        }
        let mut out = table.render();
        out.push_str(&match &self.snapshot {
            SnapshotStatus::NotTaken => "dry run: nothing written, no snapshot taken\n".into(),
            SnapshotStatus::Taken { path } => format!(
                "snapshot of the previous values: {} (undo with `deployer tune revert`)\n",
                path.display()
            ),
            SnapshotStatus::Kept { path, taken_at_unix, added } => format!(
                "snapshot kept: {} from the first apply (unix time {taken_at_unix}), not overwritten; \
                 {added} key(s) it lacked added; revert restores the values from before the first apply\n",
                path.display()
            ),
        });
        if let Some(path) = &self.persisted {
            out.push_str(&format!(
                "persisted to {} (applied at boot)\n",
                path.display()
            ));
        }
        if let Some(n) = self.nofile {
            out.push_str(&format!(
                "RLIMIT_NOFILE >= {n} is a process limit, not a sysctl: `deployer tune verify` checks it\n"
            ));
        }
        out.push_str(&match (self.failed(), self.dry_run) {
            (0, true) => "result: dry run\n".to_owned(),
            (0, false) => "result: all applied\n".to_owned(),
            (n, _) => format!("result: partial: {n} key(s) not applied (see notes)\n"),
        });
        out
    }
}

/// Applies a profile: snapshot first (kept if one exists), then writes every key that is not as
/// wanted, continuing past keys that fail. With `dry_run` it only reports what it would write.
pub fn apply<S: SysctlStore + ?Sized>(
    profile: &Profile,
    sys: &S,
    options: &ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    let found = inspect(profile, sys);
    let mut rows: Vec<ApplyRow> = found.iter().map(plan_row).collect();
    let mut report = ApplyReport {
        profile: profile.name.clone(),
        root: sys.root().to_owned(),
        dry_run: options.dry_run,
        rows: Vec::new(),
        snapshot: SnapshotStatus::NotTaken,
        persisted: None,
        nofile: profile.nofile,
    };
    if options.dry_run {
        report.rows = rows;
        return Ok(report);
    }
    let mut snapshot = Snapshot::load_for(&options.state, sys.root())?;
    report.snapshot = record(&mut snapshot, &found, profile, sys.root(), &options.state)?;
    for (row, found) in rows.iter_mut().zip(&found) {
        if row.action == Action::WouldWrite {
            write_row(row, found, sys);
        }
    }
    if let Some(path) = &options.persist {
        let snapshot = snapshot.as_mut().expect("recorded above");
        persist(profile, &rows, path, snapshot, &options.state)?;
        report.persisted = Some(path.clone());
    }
    report.rows = rows;
    Ok(report)
}

fn plan_row(found: &Inspection<'_>) -> ApplyRow {
    let before = found.current.as_deref().ok().map(normalize);
    let (action, after, note) = match (&found.current, found.comparison()) {
        _ if found.skipped() => (
            Action::Skip,
            None,
            "optional, absent on this host".to_owned(),
        ),
        (Err(failure), _) => (Action::Failed, None, format!("cannot read: {failure}")),
        (Ok(_), Some(c)) if c.ok => (Action::Keep, before.clone(), String::new()),
        (Ok(_), Some(c)) => (
            Action::WouldWrite,
            Some(normalize(&c.target)),
            c.why_not.unwrap_or_default(),
        ),
        (Ok(_), None) => unreachable!("a readable key always has a comparison"),
    };
    ApplyRow {
        key: found.entry.key.to_string(),
        before,
        after,
        action,
        note,
    }
}

fn write_row<S: SysctlStore + ?Sized>(row: &mut ApplyRow, found: &Inspection<'_>, sys: &S) {
    let entry = found.entry;
    let Some(comparison) = found.comparison() else {
        return;
    };
    let target = format!("{}\n", comparison.target);
    let outcome = sys
        .write(&entry.key, &target)
        .and_then(|()| sys.read(&entry.key))
        .map_err(|e| Failure::from_io(&e))
        .and_then(|read_back| {
            let normalized = normalize(&read_back);
            if entry.rule.compare(&read_back, &entry.value).ok {
                Ok(normalized)
            } else {
                Err(Failure::ReadBack(normalized))
            }
        });
    match outcome {
        Ok(value) => {
            row.action = Action::Written;
            row.after = Some(value);
        }
        Err(failure) => {
            row.action = Action::Failed;
            row.after = None;
            row.note = format!("not applied: {failure}");
        }
    }
}

/// Adds every readable key to the snapshot (keeping values already there) and saves it.
fn record(
    snapshot: &mut Option<Snapshot>,
    found: &[Inspection<'_>],
    profile: &Profile,
    root: &Path,
    state: &Path,
) -> Result<SnapshotStatus, ApplyError> {
    let existed = snapshot.is_some();
    let snapshot = snapshot.get_or_insert_with(|| Snapshot::new(root));
    let mut added = 0;
    for found in found {
        if let Ok(raw) = &found.current
            && snapshot.value(&found.entry.key).is_none()
        {
            snapshot.values.push(SavedValue {
                key: found.entry.key.clone(),
                raw: raw.clone(),
            });
            added += 1;
        }
    }
    snapshot.profiles.push(profile.name.clone());
    snapshot.save(state)?;
    Ok(if existed {
        SnapshotStatus::Kept {
            path: state.to_owned(),
            taken_at_unix: snapshot.taken_at_unix,
            added,
        }
    } else {
        SnapshotStatus::Taken {
            path: state.to_owned(),
        }
    })
}

/// Writes the profile as a sysctl.d file with the values now in force, recording what it replaces.
fn persist(
    profile: &Profile,
    rows: &[ApplyRow],
    path: &Path,
    snapshot: &mut Snapshot,
    state: &Path,
) -> Result<(), ApplyError> {
    let persist_error = |source| ApplyError::Persist {
        path: path.to_owned(),
        source,
    };
    if !snapshot.persisted.iter().any(|p| p.path == path) {
        let previous = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(persist_error(e)),
        };
        snapshot.persisted.push(PersistedFile {
            path: path.to_owned(),
            previous,
        });
        snapshot.save(state)?;
    }
    let header = format!(
        "Written by `deployer tune apply --profile {} --persist`; removed by `deployer tune revert`.\n\
         Values are those in force after apply (limits the host already exceeded are kept).",
        profile.name
    );
    let text = profile.render(&header, |entry| {
        let key = entry.key.to_string();
        rows.iter()
            .find(|r| r.key == key && matches!(r.action, Action::Keep | Action::Written))
            .and_then(|r| r.after.clone())
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(persist_error)?;
    }
    std::fs::write(path, text).map_err(persist_error)
}
