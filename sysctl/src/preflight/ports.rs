//! Ephemeral port capacity per (source IP, destination).
//!
//! connect() (and bind with IP_BIND_ADDRESS_NO_PORT) picks a local port unique per
//! (source IP, destination IP, destination port), so the same local port serves many destinations:
//! the limit is per destination. Capacity = source IPs of the destination's family x (ports in
//! net.ipv4.ip_local_port_range - ports of net.ipv4.ip_local_reserved_ports inside it).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use super::report::{by_use, percent};
use super::{
    FLAG_SOURCE_IPS, Finding, Host, LOAD_PROFILE, PlanFacts, Report, Severity, unreadable,
};
use crate::profile::Profile;
use crate::store::{Failure, SysctlStore};

const RANGE: &str = "net.ipv4.ip_local_port_range";
const RESERVED: &str = "net.ipv4.ip_local_reserved_ports";

/// The ephemeral range and how many of its ports are usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortRange {
    pub low: u64,
    pub high: u64,
    pub reserved: u64,
}

impl PortRange {
    fn new(low: u64, high: u64, reserved_list: &str) -> PortRange {
        PortRange {
            low,
            high,
            reserved: reserved_in(reserved_list, low, high),
        }
    }

    pub fn usable(&self) -> u64 {
        (self.high + 1)
            .saturating_sub(self.low)
            .saturating_sub(self.reserved)
    }

    fn describe(&self) -> String {
        match self.reserved {
            0 => format!("{RANGE} {}-{}", self.low, self.high),
            r => format!("{RANGE} {}-{} minus {r} reserved", self.low, self.high),
        }
    }
}

/// Ports of a reserved list (`8080,9000-9010`) that fall inside `low..=high`.
fn reserved_in(list: &str, low: u64, high: u64) -> u64 {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .filter_map(|item| {
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?))
        })
        .map(|(a, b)| (b.min(high) + 1).saturating_sub(a.max(low)))
        .sum()
}

fn live_range<S: SysctlStore + ?Sized>(host: &Host<'_, S>) -> Result<PortRange, Failure> {
    let [low, high] = host.numbers(RANGE)?[..] else {
        return Err(Failure::Other(format!("{RANGE} is not `low high`")));
    };
    let reserved = host.raw(RESERVED).unwrap_or_default();
    Ok(PortRange::new(low, high, &reserved))
}

/// The range the load profile sets, with the host's reserved ports.
fn profile_range(reserved_list: &str) -> Option<PortRange> {
    let profile = Profile::load(LOAD_PROFILE).ok()?;
    let fields: Vec<u64> = profile
        .value(RANGE)?
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    match fields[..] {
        [low, high] => Some(PortRange::new(low, high, reserved_list)),
        _ => None,
    }
}

pub(super) fn check<S: SysctlStore + ?Sized>(
    facts: &PlanFacts,
    host: &Host<'_, S>,
    report: &mut Report,
) {
    let range = match live_range(host) {
        Ok(range) => range,
        Err(failure) => return report.push(unreadable("ephemeral ports", RANGE, &failure)),
    };
    let wider = profile_range(&host.raw(RESERVED).unwrap_or_default())
        .filter(|p| p.usable() > range.usable());
    let mut per_destination: BTreeMap<SocketAddr, u64> = BTreeMap::new();
    for (addr, sessions) in &facts.destinations {
        *per_destination.entry(*addr).or_default() += sessions;
    }
    let mut busiest: Option<Finding> = None;
    let mut busiest_use = -1.0;
    for (addr, sessions) in per_destination {
        let (finding, used) = destination(facts, addr, sessions, range, wider);
        if finding.severity != Severity::Ok {
            report.push(finding);
        } else if used > busiest_use {
            busiest_use = used;
            busiest = Some(finding);
        }
    }
    if report.find("ephemeral ports").next().is_none() {
        report.findings.extend(busiest);
    }
}

/// Source IPs usable for this destination: the pool's addresses of its family, or the kernel's one.
fn pool_size(facts: &PlanFacts, addr: SocketAddr) -> u64 {
    if facts.source_ips.is_empty() {
        return 1;
    }
    let same_family = facts
        .source_ips
        .iter()
        .filter(|ip| ip.is_ipv4() == addr.is_ipv4())
        .count();
    same_family as u64
}

fn destination(
    facts: &PlanFacts,
    addr: SocketAddr,
    sessions: u64,
    range: PortRange,
    wider: Option<PortRange>,
) -> (Finding, f64) {
    let pool = pool_size(facts, addr);
    let capacity = pool * range.usable();
    let used = sessions as f64 / capacity.max(1) as f64;
    let severity = by_use(sessions, capacity);
    let mut finding = Finding {
        check: format!("ephemeral ports {addr}"),
        setting: RANGE.into(),
        severity,
        current: format!(
            "{pool} source IP(s) x {} ports = {capacity}",
            range.usable()
        ),
        wanted: format!(">= {sessions}"),
        message: String::new(),
    };
    if pool == 0 {
        finding.severity = Severity::Refuse;
        finding.setting = FLAG_SOURCE_IPS.into();
        finding.message = format!(
            "{FLAG_SOURCE_IPS} has no {} address for {addr}: add one",
            if addr.is_ipv4() { "IPv4" } else { "IPv6" }
        );
        return (finding, used);
    }
    let fixes = fixes(addr, sessions, range, wider);
    finding.message = match severity {
        Severity::Ok => format!(
            "{} of the ports to this destination",
            percent(sessions, capacity)
        ),
        Severity::Warn => format!(
            "{} of the local ports to this destination ({}): little room for reconnects while closed \
             ports sit in TIME_WAIT; {fixes}",
            percent(sessions, capacity),
            range.describe()
        ),
        Severity::Refuse => format!(
            "{sessions} sessions to {addr} need as many local ports, but {pool} source IP(s) x {} ports \
             ({}) = {capacity}: {fixes}",
            range.usable(),
            range.describe()
        ),
    };
    (finding, used)
}

fn fixes(addr: SocketAddr, sessions: u64, range: PortRange, wider: Option<PortRange>) -> String {
    let ips_needed = |r: PortRange| sessions.div_ceil(r.usable().max(1));
    let needed = ips_needed(range);
    let loopback = if addr.ip().is_loopback() && addr.is_ipv4() {
        let first = Ipv4Addr::new(127, 0, 0, 1);
        let last = u32::from(first)
            .saturating_add(u32::try_from(needed.saturating_sub(1)).unwrap_or(u32::MAX));
        let last = Ipv4Addr::from(last.min(u32::from(Ipv4Addr::new(127, 255, 255, 254))));
        format!("; on loopback any 127.0.0.0/8 address works: {FLAG_SOURCE_IPS} {first}-{last}")
    } else {
        String::new()
    };
    let mut fixes = vec![format!(
        "add source IPs with {FLAG_SOURCE_IPS} (>= {needed} at this range{loopback})"
    )];
    if let Some(wider) = wider {
        fixes.push(format!(
            "widen the port range with `deployer tune apply --profile {LOAD_PROFILE}` ({}-{}: {} ports, >= {} source IP(s))",
            wider.low,
            wider.high,
            wider.usable(),
            ips_needed(wider)
        ));
    }
    fixes.push("add targets to spread the sessions".into());
    fixes.join(", or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_count_only_inside_the_range() {
        assert_eq!(reserved_in("\n", 32768, 60999), 0);
        assert_eq!(
            reserved_in("8080,40000-40009,60990-61010", 32768, 60999),
            20
        );
        assert_eq!(reserved_in("1-65535", 32768, 60999), 28232);
        let range = PortRange::new(32768, 60999, "40000-40009");
        assert_eq!(range.usable(), 28232 - 10);
        assert!(range.describe().ends_with("minus 10 reserved"));
    }

    #[test]
    fn loopback_hint_names_a_valid_address_range() {
        let range = PortRange::new(32768, 60999, "");
        let fix = fixes("127.0.0.1:5555".parse().unwrap(), 28232 * 300, range, None);
        assert!(fix.contains("--source-ips 127.0.0.1-127.0.1.44"), "{fix}");
    }
}
