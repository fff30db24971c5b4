//! The engine's preflight: the plan against the live limits, before any connection is opened.
//!
//! Every non-ok finding names the limiting setting and the `deployer tune ...` command or engine
//! flag that fixes it.

mod fds;
mod net;
mod ports;
mod report;

use std::net::{IpAddr, SocketAddr};

pub use report::{Finding, Report, Severity};

use crate::key::Key;
use crate::profile::Profile;
use crate::rlimit::NofileLimits;
use crate::rule::Rule;
use crate::store::{Failure, SysRoot, SysctlStore};

/// The engine flag that sets the number of engine processes.
pub const FLAG_PROCESSES: &str = "--processes";
/// The engine flag that sets the source IP pool.
pub const FLAG_SOURCE_IPS: &str = "--source-ips";
/// The engine flag that sets the connect rate.
pub const FLAG_RAMP: &str = "--ramp";
/// The profile for the load host that the fixes point at.
pub const LOAD_PROFILE: &str = "100k";

/// What the engine plans to do, as far as host limits care.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanFacts {
    /// Total sessions (connections) planned.
    pub conns: u64,
    /// Engine processes planned.
    pub processes: u32,
    /// The largest number of connections one process holds.
    pub conns_per_process: u64,
    /// The source IP pool; empty means the kernel picks the route's source address.
    pub source_ips: Vec<IpAddr>,
    /// Each unique destination and the sessions planned to it.
    pub destinations: Vec<(SocketAddr, u64)>,
    /// Connect rate in connections per second; `None` opens them as fast as possible.
    pub ramp_per_s: Option<f64>,
}

/// Checks the plan against the host: fd budget, ephemeral ports per (source IP, destination),
/// somaxconn of local targets, conntrack, fs.file-max and fs.nr_open.
pub fn preflight<S: SysctlStore + ?Sized>(
    facts: &PlanFacts,
    sys: &S,
    limits: &NofileLimits,
) -> Report {
    let mut report = Report::default();
    let host = Host { sys };
    fds::check_plan_shape(facts, &mut report);
    fds::check_fd_budget(facts, &host, limits, &mut report);
    fds::check_nr_open(facts, &host, limits, &mut report);
    fds::check_file_max(facts, &host, &mut report);
    ports::check(facts, &host, &mut report);
    net::check_somaxconn(facts, &host, &mut report);
    net::check_conntrack(facts, &host, &mut report);
    report
}

/// [`preflight`] against the live `/proc/sys` and this process's RLIMIT_NOFILE.
pub fn preflight_live(facts: &PlanFacts) -> std::io::Result<Report> {
    Ok(preflight(
        facts,
        &SysRoot::proc_sys(),
        &NofileLimits::current()?,
    ))
}

/// Typed reads of the sysctls the checks need.
struct Host<'a, S: ?Sized> {
    sys: &'a S,
}

impl<S: SysctlStore + ?Sized> Host<'_, S> {
    fn raw(&self, key: &str) -> Result<String, Failure> {
        let key = Key::parse(key).expect("checks use valid keys");
        self.sys.read(&key).map_err(|e| Failure::from_io(&e))
    }

    fn numbers(&self, key: &str) -> Result<Vec<u64>, Failure> {
        let raw = self.raw(key)?;
        raw.split_whitespace()
            .map(|f| f.parse::<u64>())
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|_| Failure::Other(format!("not a number: {:?}", raw.trim())))
    }

    fn number(&self, key: &str) -> Result<u64, Failure> {
        match self.numbers(key)?[..] {
            [n] => Ok(n),
            _ => Err(Failure::Other(format!("{key} is not a single number"))),
        }
    }
}

/// A warning that a check could not run.
fn unreadable(check: &str, setting: &str, failure: &Failure) -> Finding {
    Finding {
        check: check.into(),
        setting: setting.into(),
        severity: Severity::Warn,
        current: "-".into(),
        wanted: "-".into(),
        message: format!("cannot read {setting}: {failure}; check skipped"),
    }
}

/// The `deployer tune` command that brings `key` to at least `needed`.
fn tune_fix(key: &str, needed: u64) -> String {
    let profile = Profile::load(LOAD_PROFILE).expect("built-in profile parses");
    match profile.value(key) {
        Some(value) if Rule::AtLeast.compare(value, &needed.to_string()).ok => {
            format!("`deployer tune apply --profile {LOAD_PROFILE}` (sets {key} = {value})")
        }
        _ => format!("`deployer tune apply --profile PATH` with a profile line `{key} = {needed}`"),
    }
}

/// True for a destination served by this host (loopback, unspecified, or one of its addresses).
fn is_local(ip: IpAddr, local_addrs: &[IpAddr]) -> bool {
    ip.is_loopback() || ip.is_unspecified() || local_addrs.contains(&ip)
}

/// This host's interface addresses (empty when they cannot be listed).
fn local_addrs() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| a.address)
        .filter_map(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tune_fix_points_at_the_profile_when_it_is_enough() {
        assert_eq!(
            tune_fix("net.core.somaxconn", 10_000),
            "`deployer tune apply --profile 100k` (sets net.core.somaxconn = 65535)"
        );
        assert!(tune_fix("net.core.somaxconn", 100_000).contains("`net.core.somaxconn = 100000`"));
    }

    #[test]
    fn loopback_and_host_addresses_are_local() {
        let here: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(is_local("127.0.0.2".parse().unwrap(), &[]));
        assert!(is_local("::1".parse().unwrap(), &[]));
        assert!(is_local(here, &[here]));
        assert!(!is_local("198.51.100.1".parse().unwrap(), &[here]));
        assert!(
            local_addrs().iter().any(|a| a.is_loopback()),
            "lo has 127.0.0.1"
        );
    }
}
