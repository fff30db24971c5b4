//! The preflight's findings and their table.

use serde::Serialize;

use crate::table::Table;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    /// The run can start, but a limit is close or a heuristic says trouble.
    Warn,
    /// The plan cannot fit: the engine must not start.
    Refuse,
}

/// One checked limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked, e.g. `ephemeral ports 127.0.0.1:5555`.
    pub check: String,
    /// The setting that limits it, e.g. `net.ipv4.ip_local_port_range`.
    pub setting: String,
    pub severity: Severity,
    pub current: String,
    pub wanted: String,
    /// What the numbers mean and, for a non-ok finding, the command or flag that fixes it.
    pub message: String,
}

/// All findings of one preflight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when some finding refuses the plan: the engine must not open any connection.
    pub fn refused(&self) -> bool {
        self.worst() == Severity::Refuse
    }

    /// The worst severity (Ok for an empty report).
    pub fn worst(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok)
    }

    /// The findings of a given severity.
    pub fn with(&self, severity: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity == severity)
    }

    /// The findings of one check, by the start of its name.
    pub fn find(&self, check_prefix: &str) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| f.check.starts_with(check_prefix))
    }

    /// The table, then a verdict line.
    pub fn render(&self) -> String {
        let mut table = Table::new(&["check", "setting", "status", "current", "wanted", "message"]);
        for f in &self.findings {
            let status = match f.severity {
                Severity::Ok => "ok",
                Severity::Warn => "WARN",
                Severity::Refuse => "REFUSE",
            };
            table.row(vec![
                f.check.clone(),
                f.setting.clone(),
                status.into(),
                f.current.clone(),
                f.wanted.clone(),
                f.message.clone(),
            ]);
        }
        let verdict = match self.worst() {
            Severity::Ok => "preflight: ok".to_owned(),
            Severity::Warn => format!(
                "preflight: ok with {} warning(s)",
                self.with(Severity::Warn).count()
            ),
            Severity::Refuse => format!(
                "preflight: REFUSED ({} limit(s) the plan cannot fit; fixes in the message column)",
                self.with(Severity::Refuse).count()
            ),
        };
        format!("{}{verdict}\n", table.render())
    }

    pub(crate) fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }
}

/// Ok below 90 % of a capacity, Warn up to 100 %, Refuse above.
pub(crate) fn by_use(needed: u64, capacity: u64) -> Severity {
    if needed > capacity {
        Severity::Refuse
    } else if needed.saturating_mul(10) > capacity.saturating_mul(9) {
        Severity::Warn
    } else {
        Severity::Ok
    }
}

/// `needed` as a percentage of `capacity`, for messages.
pub(crate) fn percent(needed: u64, capacity: u64) -> String {
    if capacity == 0 {
        return "all".into();
    }
    format!("{:.1}%", needed as f64 * 100.0 / capacity as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_thresholds() {
        assert_eq!(by_use(89, 100), Severity::Ok);
        assert_eq!(by_use(90, 100), Severity::Ok);
        assert_eq!(by_use(91, 100), Severity::Warn);
        assert_eq!(by_use(100, 100), Severity::Warn);
        assert_eq!(by_use(101, 100), Severity::Refuse);
        assert_eq!(percent(1, 3), "33.3%");
    }

    #[test]
    fn worst_severity_decides_the_verdict() {
        let finding = |severity| Finding {
            check: "c".into(),
            setting: "s".into(),
            severity,
            current: "1".into(),
            wanted: "2".into(),
            message: "m".into(),
        };
        let mut report = Report::default();
        assert!(!report.refused());
        report.push(finding(Severity::Warn));
        assert!(
            report
                .render()
                .ends_with("preflight: ok with 1 warning(s)\n")
        );
        report.push(finding(Severity::Refuse));
        assert!(report.refused());
        assert!(report.render().contains("REFUSED (1 limit(s)"));
    }
}
