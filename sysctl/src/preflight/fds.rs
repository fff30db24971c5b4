//! File descriptor checks: per-process budget, fs.nr_open and fs.file-max.

use super::report::{by_use, percent};
use super::{FLAG_PROCESSES, Finding, Host, PlanFacts, Report, Severity, is_local, local_addrs};
use super::{tune_fix, unreadable};
use crate::rlimit::{FD_RESERVE, NofileLimits, fd_budget, nofile_for};
use crate::store::SysctlStore;

/// The plan's own numbers must add up before any limit means anything.
pub(super) fn check_plan_shape(facts: &PlanFacts, report: &mut Report) {
    let covered = facts
        .conns_per_process
        .saturating_mul(u64::from(facts.processes));
    if facts.processes == 0 || covered < facts.conns {
        report.push(Finding {
            check: "plan".into(),
            setting: FLAG_PROCESSES.into(),
            severity: Severity::Refuse,
            current: format!("{} x {}", facts.processes, facts.conns_per_process),
            wanted: format!(">= {} conns", facts.conns),
            message: format!(
                "{} process(es) holding at most {} connections each cannot hold {} (engine bug: report it)",
                facts.processes, facts.conns_per_process, facts.conns
            ),
        });
    }
}

/// Connections per process against RLIMIT_NOFILE minus the reserve.
pub(super) fn check_fd_budget<S: SysctlStore + ?Sized>(
    facts: &PlanFacts,
    host: &Host<'_, S>,
    limits: &NofileLimits,
    report: &mut Report,
) {
    let needed = nofile_for(facts.conns_per_process);
    let nr_open = host.number("fs.nr_open").ok();
    let budget = limits.conn_budget();
    let (severity, message) = if needed <= limits.soft {
        (
            Severity::Ok,
            format!(
                "{} connections + {FD_RESERVE} reserved fds fit the soft limit",
                facts.conns_per_process
            ),
        )
    } else if needed <= limits.hard {
        (
            Severity::Ok,
            format!(
                "the engine raises the soft limit {} to the hard limit {} at start",
                limits.soft, limits.hard
            ),
        )
    } else if limits.can_raise_hard && nr_open.is_some_and(|max| needed <= max) {
        (
            Severity::Ok,
            format!(
                "the engine raises the hard limit {} to {needed} at start (CAP_SYS_RESOURCE held)",
                limits.hard
            ),
        )
    } else {
        let processes = facts.conns.div_ceil(budget.max(1));
        let why = match (limits.can_raise_hard, nr_open) {
            (false, _) => "no CAP_SYS_RESOURCE".to_owned(),
            (true, Some(max)) => format!("fs.nr_open is {max}"),
            (true, None) => "fs.nr_open unreadable".to_owned(),
        };
        let more = if budget == 0 {
            format!("the hard limit is below the {FD_RESERVE}-fd reserve")
        } else {
            format!("use {FLAG_PROCESSES} {processes} ({budget} connections per process fit)")
        };
        (
            Severity::Refuse,
            format!(
                "one process needs {needed} fds ({} connections + {FD_RESERVE} reserved) but the hard \
                 RLIMIT_NOFILE is {} and cannot be raised here ({why}): {more}, or raise the hard limit where the engine starts (`ulimit -Hn {needed}`, \
                 LimitNOFILE={needed}, `docker run --ulimit nofile={needed}:{needed}`)",
                facts.conns_per_process, limits.hard
            ),
        )
    };
    report.push(Finding {
        check: "fd budget per process".into(),
        setting: "RLIMIT_NOFILE".into(),
        severity,
        current: format!("soft {} / hard {}", limits.soft, limits.hard),
        wanted: format!(">= {needed}"),
        message,
    });
}

/// fs.nr_open caps every hard limit, even for root.
pub(super) fn check_nr_open<S: SysctlStore + ?Sized>(
    facts: &PlanFacts,
    host: &Host<'_, S>,
    limits: &NofileLimits,
    report: &mut Report,
) {
    const SETTING: &str = "fs.nr_open";
    let nr_open = match host.number(SETTING) {
        Ok(n) => n,
        Err(failure) => {
            return report.push(unreadable("fds per process ceiling", SETTING, &failure));
        }
    };
    let needed = nofile_for(facts.conns_per_process);
    let (severity, message) = if needed <= limits.hard || needed <= nr_open {
        (Severity::Ok, "a process may hold this many fds".to_owned())
    } else {
        let per_process = fd_budget(nr_open).max(1);
        (
            Severity::Refuse,
            format!(
                "no RLIMIT_NOFILE can exceed {SETTING} {nr_open}, even as root: {}, or use {FLAG_PROCESSES} {}",
                tune_fix(SETTING, needed),
                facts.conns.div_ceil(per_process)
            ),
        )
    };
    report.push(Finding {
        check: "fds per process ceiling".into(),
        setting: SETTING.into(),
        severity,
        current: nr_open.to_string(),
        wanted: format!(">= {needed}"),
        message,
    });
}

/// fs.file-max against every socket the run opens on this host (both ends for local targets).
pub(super) fn check_file_max<S: SysctlStore + ?Sized>(
    facts: &PlanFacts,
    host: &Host<'_, S>,
    report: &mut Report,
) {
    const SETTING: &str = "fs.file-max";
    const CHECK: &str = "open files system-wide";
    let file_max = match host.number(SETTING) {
        Ok(n) => n,
        Err(failure) => return report.push(unreadable(CHECK, SETTING, &failure)),
    };
    // fs/file-nr: allocated, unused (always 0), max.
    let in_use = host
        .numbers("fs.file-nr")
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(0);
    let local = local_addrs();
    let server_side: u64 = facts
        .destinations
        .iter()
        .filter(|(addr, _)| is_local(addr.ip(), &local))
        .map(|(_, sessions)| sessions)
        .sum();
    let needed = facts.conns + server_side + u64::from(facts.processes) * FD_RESERVE;
    let available = file_max.saturating_sub(in_use);
    let severity = by_use(needed, available);
    let message = match severity {
        Severity::Ok => format!(
            "the run opens {needed} files: {} of the {available} free",
            percent(needed, available)
        ),
        _ => format!(
            "the run opens {needed} files ({} client + {server_side} local server sockets + reserve) with \
             {in_use} already open of {file_max}: {}",
            facts.conns,
            tune_fix(SETTING, (in_use + needed).saturating_mul(5) / 4)
        ),
    };
    report.push(Finding {
        check: CHECK.into(),
        setting: SETTING.into(),
        severity,
        current: format!("{file_max} ({in_use} in use)"),
        wanted: format!(">= {needed} free"),
        message,
    });
}
