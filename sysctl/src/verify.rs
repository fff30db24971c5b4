//! `verify`: the current value of every profile key against the wanted one, plus RLIMIT_NOFILE.

use std::path::PathBuf;

use serde::Serialize;

use crate::key::Key;
use crate::profile::{Entry, Profile};
use crate::rlimit::NofileLimits;
use crate::rule::{Comparison, normalize};
use crate::store::{Failure, SysctlStore};
use crate::table::Table;

const NOFILE: &str = "RLIMIT_NOFILE";

/// One row of the verify table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyRow {
    /// A sysctl key, or `RLIMIT_NOFILE soft` / `RLIMIT_NOFILE hard`.
    pub key: String,
    /// The current value (fields separated by one space), `None` when it cannot be read.
    pub current: Option<String>,
    /// The wanted value with its rule, e.g. `>= 65535`.
    pub wanted: String,
    pub ok: bool,
    /// Why not ok, how to fix it, or why an ok row is special (skipped, raisable).
    pub note: String,
}

/// The whole verify result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub profile: String,
    pub root: PathBuf,
    pub rows: Vec<VerifyRow>,
    pub limits: NofileLimits,
}

impl VerifyReport {
    /// True when every row is ok: the exit status of `tune verify`.
    pub fn all_ok(&self) -> bool {
        self.rows.iter().all(|r| r.ok)
    }

    /// The row of a key (or `RLIMIT_NOFILE soft` / `RLIMIT_NOFILE hard`).
    pub fn row(&self, key: &str) -> Option<&VerifyRow> {
        self.rows.iter().find(|r| r.key == key)
    }

    /// The table as plain text, with a closing verdict line.
    pub fn render(&self) -> String {
        let mut table = Table::new(&["key", "current", "wanted", "ok", "note"]);
        for row in &self.rows {
            table.row(vec![
                row.key.clone(),
                row.current.clone().unwrap_or_else(|| "-".into()),
                row.wanted.clone(),
                if row.ok { "ok" } else { "NO" }.into(),
                row.note.clone(),
            ]);
        }
        let bad: Vec<&VerifyRow> = self.rows.iter().filter(|r| !r.ok).collect();
        let verdict = if bad.is_empty() {
            format!(
                "all {} settings ok for profile {}",
                self.rows.len(),
                self.profile
            )
        } else {
            let mut fixes = Vec::new();
            if bad.iter().any(|r| !r.key.starts_with(NOFILE)) {
                fixes.push(format!(
                    "sysctls: `deployer tune apply --profile {}`",
                    self.profile
                ));
            }
            if bad.iter().any(|r| r.key.starts_with(NOFILE)) {
                fixes.push(format!("{NOFILE}: see its note"));
            }
            format!(
                "{} of {} settings not ok for profile {}; fix {}",
                bad.len(),
                self.rows.len(),
                self.profile,
                fixes.join("; ")
            )
        };
        format!("{}{verdict}\n", table.render())
    }
}

/// One profile entry as found on the host.
#[derive(Debug, Clone)]
pub(crate) struct Inspection<'p> {
    pub entry: &'p Entry,
    /// The raw current value, or why it cannot be read.
    pub current: Result<String, Failure>,
}

impl Inspection<'_> {
    /// The comparison with the wanted value, when the key could be read.
    pub fn comparison(&self) -> Option<Comparison> {
        let current = self.current.as_ref().ok()?;
        Some(self.entry.rule.compare(current, &self.entry.value))
    }

    /// An optional key the kernel does not have.
    pub fn skipped(&self) -> bool {
        self.entry.optional && self.current == Err(Failure::Missing)
    }
}

/// Reads every key of the profile.
pub(crate) fn inspect<'p, S: SysctlStore + ?Sized>(
    profile: &'p Profile,
    sys: &S,
) -> Vec<Inspection<'p>> {
    profile
        .entries
        .iter()
        .map(|entry| Inspection {
            entry,
            current: sys.read(&entry.key).map_err(|e| Failure::from_io(&e)),
        })
        .collect()
}

/// Compares the host with the profile: one row per key, then the RLIMIT_NOFILE rows.
pub fn verify<S: SysctlStore + ?Sized>(
    profile: &Profile,
    sys: &S,
    limits: &NofileLimits,
) -> VerifyReport {
    let mut rows: Vec<VerifyRow> = inspect(profile, sys).iter().map(sysctl_row).collect();
    let nr_open = Key::parse("fs.nr_open")
        .and_then(|k| sys.read(&k).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    rows.extend(limit_rows(profile.nofile, limits, nr_open));
    VerifyReport {
        profile: profile.name.clone(),
        root: sys.root().to_owned(),
        rows,
        limits: *limits,
    }
}

fn sysctl_row(found: &Inspection<'_>) -> VerifyRow {
    let entry = found.entry;
    let (ok, note) = match (&found.current, found.comparison()) {
        (_, Some(c)) => (c.ok, c.why_not.unwrap_or_default()),
        _ if found.skipped() => (true, "optional, absent on this host: skipped".into()),
        (Err(failure), None) => (false, format!("cannot read: {failure}")),
        (Ok(_), None) => unreachable!("a readable key always has a comparison"),
    };
    VerifyRow {
        key: entry.key.to_string(),
        current: found.current.as_deref().ok().map(normalize),
        wanted: entry.rule.describe(&entry.value),
        ok,
        note,
    }
}

fn limit_rows(wanted: Option<u64>, limits: &NofileLimits, nr_open: Option<u64>) -> [VerifyRow; 2] {
    let wanted_text = wanted.map_or_else(|| "-".into(), |n| format!(">= {n}"));
    let soft_ok = wanted.is_none_or(|n| limits.soft >= n || limits.hard >= n);
    let soft_note = match wanted {
        Some(n) if limits.soft < n && limits.hard >= n => {
            format!(
                "the engine raises soft to the hard limit ({}) at start",
                limits.hard
            )
        }
        Some(n) if limits.hard < n => "capped by the hard limit (next row)".into(),
        _ => String::new(),
    };
    let hard_ok = wanted.is_none_or(|n| limits.hard >= n);
    let hard_note = hard_limit_note(wanted, limits, nr_open);
    [
        VerifyRow {
            key: format!("{NOFILE} soft"),
            current: Some(limits.soft.to_string()),
            wanted: wanted_text.clone(),
            ok: soft_ok,
            note: soft_note,
        },
        VerifyRow {
            key: format!("{NOFILE} hard"),
            current: Some(limits.hard.to_string()),
            wanted: wanted_text,
            ok: hard_ok,
            note: hard_note,
        },
    ]
}

fn hard_limit_note(wanted: Option<u64>, limits: &NofileLimits, nr_open: Option<u64>) -> String {
    let target = wanted.unwrap_or(limits.hard);
    let above_nr_open = nr_open.filter(|max| target > *max);
    match (wanted, limits.can_raise_hard) {
        (Some(n), _) if limits.hard >= n => String::new(),
        (_, true) if above_nr_open.is_some() => format!(
            "CAP_SYS_RESOURCE held, but fs.nr_open ({}) caps it: raise fs.nr_open with `deployer tune apply`",
            above_nr_open.unwrap_or_default()
        ),
        (Some(n), true) => format!(
            "can be raised (CAP_SYS_RESOURCE held): `ulimit -Hn {n}` before starting the engine"
        ),
        (None, true) => "can be raised (CAP_SYS_RESOURCE held)".into(),
        (None, false) => "cannot be raised by this process (no CAP_SYS_RESOURCE)".into(),
        (Some(n), false) => format!(
            "cannot be raised without CAP_SYS_RESOURCE: set LimitNOFILE={n} (systemd), \
             `docker run --ulimit nofile={n}:{n}` or limits.conf, or run the engine with more --processes"
        ),
    }
}
