//! Network queue and table checks: somaxconn of local targets, the conntrack table.

use super::report::{by_use, percent};
use super::{FLAG_RAMP, Finding, Host, PlanFacts, Report, Severity, is_local, local_addrs};
use super::{tune_fix, unreadable};
use crate::store::{Failure, SysctlStore};

/// An accept loop may stall this long (GC, a busy scheduler); the queue must absorb the arrivals.
const ACCEPT_STALL_S: f64 = 0.1;

/// Local targets' accept queues are capped by net.core.somaxconn of this network namespace.
pub(super) fn check_somaxconn<S: SysctlStore + ?Sized>(
    facts: &PlanFacts,
    host: &Host<'_, S>,
    report: &mut Report,
) {
    const SETTING: &str = "net.core.somaxconn";
    const CHECK: &str = "accept queue of local targets";
    let local = local_addrs();
    let Some(largest_local) = facts
        .destinations
        .iter()
        .filter(|(addr, _)| is_local(addr.ip(), &local))
        .map(|(_, sessions)| *sessions)
        .max()
    else {
        return;
    };
    let somaxconn = match host.number(SETTING) {
        Ok(n) => n,
        Err(failure) => return report.push(unreadable(CHECK, SETTING, &failure)),
    };
    let ramp = facts.ramp_per_s.filter(|r| r.is_finite() && *r > 0.0);
    let (burst, cause) = match ramp {
        Some(rate) => (
            (rate * ACCEPT_STALL_S).ceil() as u64,
            format!(
                "at {FLAG_RAMP} {rate}/s, {} ms of accept stall queues",
                ACCEPT_STALL_S * 1000.0
            ),
        ),
        None => (
            largest_local,
            format!("without {FLAG_RAMP} all sessions of a target arrive at once:"),
        ),
    };
    let burst = burst.min(largest_local);
    let (severity, message) = if somaxconn >= burst {
        (Severity::Ok, format!("{cause} up to {burst} connections"))
    } else {
        (
            Severity::Warn,
            format!(
                "{cause} up to {burst} connections but a listener queues at most {somaxconn} (or its own smaller \
                 listen backlog); the overflow retries its SYN after 1 s, 3 s..., inflating connect latency: \
                 keep {FLAG_RAMP} at or below {}/s, or raise the queue: {}",
                (somaxconn as f64 / ACCEPT_STALL_S) as u64,
                tune_fix(SETTING, burst)
            ),
        )
    };
    report.push(Finding {
        check: CHECK.into(),
        setting: SETTING.into(),
        severity,
        current: somaxconn.to_string(),
        wanted: format!(">= {burst}"),
        message,
    });
}

/// With conntrack loaded every connection takes a table entry; a full table drops new SYNs.
pub(super) fn check_conntrack<S: SysctlStore + ?Sized>(
    facts: &PlanFacts,
    host: &Host<'_, S>,
    report: &mut Report,
) {
    const SETTING: &str = "net.netfilter.nf_conntrack_max";
    const CHECK: &str = "conntrack table";
    let max = match host.number(SETTING) {
        Ok(n) => n,
        Err(Failure::Missing) => {
            return report.push(Finding {
                check: CHECK.into(),
                setting: SETTING.into(),
                severity: Severity::Ok,
                current: "not loaded".into(),
                wanted: "-".into(),
                message: "conntrack is not loaded: no table limit".into(),
            });
        }
        Err(failure) => return report.push(unreadable(CHECK, SETTING, &failure)),
    };
    let in_use = host.number("net.netfilter.nf_conntrack_count").unwrap_or(0);
    let available = max.saturating_sub(in_use);
    let severity = by_use(facts.conns, available);
    let message = match severity {
        Severity::Ok => format!("{} of the free entries", percent(facts.conns, available)),
        _ => format!(
            "{} connections need as many entries but {available} of {max} are free ({in_use} in use); \
             a full table drops new connections (\"nf_conntrack: table full\"): {}, or wait for the \
             entries of earlier runs to expire (closed connections stay net.netfilter.\
             nf_conntrack_tcp_timeout_time_wait seconds, 120 by default)",
            facts.conns,
            tune_fix(SETTING, (in_use + facts.conns).saturating_mul(5) / 4)
        ),
    };
    report.push(Finding {
        check: CHECK.into(),
        setting: SETTING.into(),
        severity,
        current: format!("{max} ({in_use} in use)"),
        wanted: format!(">= {} free", facts.conns),
        message,
    });
}
