//! The engine's preflight against a fake /proc/sys tree and given process limits.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::{FakeTree, STUCK_AT_20K};
use tuning::{Finding, NofileLimits, PlanFacts, Report, Severity, preflight};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// `conns` sessions to one destination, split evenly over `processes`.
fn plan(conns: u64, processes: u32, source_ips: &[&str], destination: &str) -> PlanFacts {
    PlanFacts {
        conns,
        processes,
        conns_per_process: conns.div_ceil(u64::from(processes)),
        source_ips: source_ips.iter().map(|s| ip(s)).collect(),
        destinations: vec![(addr(destination), conns)],
        ramp_per_s: Some(5000.0),
    }
}

/// A tree whose conntrack table is large enough for 100K, so each test isolates one limit.
fn tree() -> FakeTree {
    let tree = FakeTree::with_defaults();
    tree.set("net.netfilter.nf_conntrack_max", "262144\n");
    tree
}

/// Preflight on this machine's limits (soft = hard = 20000, no CAP_SYS_RESOURCE).
fn check(tree: &FakeTree, facts: &PlanFacts) -> Report {
    preflight(facts, &tree.root, &STUCK_AT_20K)
}

fn only<'a>(report: &'a Report, check: &str) -> &'a Finding {
    let found: Vec<&Finding> = report.find(check).collect();
    assert_eq!(
        found.len(),
        1,
        "one `{check}` finding expected in\n{}",
        report.render()
    );
    found[0]
}

#[test]
fn one_source_ip_and_one_destination_cannot_hold_100k() {
    let tree = tree();
    let facts = plan(100_000, 6, &["127.0.0.1"], "127.0.0.1:5555");
    let report = check(&tree, &facts);
    assert!(report.refused(), "{}", report.render());
    let refusals: Vec<&Finding> = report.with(Severity::Refuse).collect();
    assert_eq!(
        refusals.len(),
        1,
        "only the port capacity refuses:\n{}",
        report.render()
    );
    let ports = refusals[0];
    assert_eq!(ports.check, "ephemeral ports 127.0.0.1:5555");
    assert_eq!(ports.setting, "net.ipv4.ip_local_port_range");
    assert_eq!(ports.current, "1 source IP(s) x 28232 ports = 28232");
    assert_eq!(
        ports.message,
        "100000 sessions to 127.0.0.1:5555 need as many local ports, but 1 source IP(s) x 28232 ports \
         (net.ipv4.ip_local_port_range 32768-60999) = 28232: add source IPs with --source-ips (>= 4 at \
         this range; on loopback any 127.0.0.0/8 address works: --source-ips 127.0.0.1-127.0.0.4), or widen the port range with \
         `deployer tune apply --profile 100k` (10240-65535: 55296 ports, >= 2 source IP(s)), or add targets \
         to spread the sessions"
    );
    assert!(report.render().contains("preflight: REFUSED (1 limit(s)"));
}

#[test]
fn a_pool_of_four_source_ips_passes_the_port_check() {
    let tree = tree();
    let pool = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let report = check(&tree, &plan(100_000, 6, &pool, "127.0.0.1:5555"));
    let ports = only(&report, "ephemeral ports");
    assert_eq!(ports.severity, Severity::Ok, "{}", report.render());
    assert_eq!(ports.current, "4 source IP(s) x 28232 ports = 112928");
    assert_eq!(ports.message, "88.6% of the ports to this destination");
    assert!(!report.refused(), "{}", report.render());
}

#[test]
fn ports_warn_above_90_percent_and_count_reserved_ports() {
    let tree = tree();
    let report = check(&tree, &plan(26_000, 2, &[], "192.0.2.10:8080"));
    let ports = only(&report, "ephemeral ports");
    assert_eq!(ports.severity, Severity::Warn);
    assert!(
        ports
            .message
            .starts_with("92.1% of the local ports to this destination"),
        "{}",
        ports.message
    );
    assert!(
        !ports.message.contains("127.0.0.0/8"),
        "no loopback hint for a remote target"
    );

    tree.set("net.ipv4.ip_local_reserved_ports", "8080,40000-49999\n");
    let report = check(&tree, &plan(20_000, 2, &[], "192.0.2.10:8080"));
    let ports = only(&report, "ephemeral ports");
    assert_eq!(ports.current, "1 source IP(s) x 18232 ports = 18232");
    assert_eq!(ports.severity, Severity::Refuse);
    assert!(
        ports.message.contains("32768-60999 minus 10000 reserved"),
        "{}",
        ports.message
    );
}

#[test]
fn ports_are_counted_per_destination_and_per_address_family() {
    let tree = tree();
    let mut facts = plan(50_000, 4, &["10.0.0.1"], "192.0.2.10:8080");
    facts.destinations = vec![
        (addr("192.0.2.10:8080"), 25_000),
        (addr("192.0.2.11:8080"), 25_000),
    ];
    let report = check(&tree, &facts);
    assert_eq!(
        report.find("ephemeral ports").count(),
        1,
        "all ok: one line for the busiest"
    );
    assert_eq!(report.worst(), Severity::Ok, "{}", report.render());

    facts.destinations.push((addr("127.0.0.1:9"), 0));
    assert_eq!(check(&tree, &facts).find("ephemeral ports").count(), 1);

    facts.destinations.push((addr("[2001:db8::1]:8080"), 10));
    let report = check(&tree, &facts);
    let v6 = only(&report, "ephemeral ports [2001:db8::1]:8080");
    assert_eq!(v6.severity, Severity::Refuse);
    assert_eq!(
        v6.message,
        "--source-ips has no IPv6 address for [2001:db8::1]:8080: add one"
    );
}

#[test]
fn fd_budget_25k_conns_needs_two_processes_under_a_20k_hard_limit() {
    let tree = tree();
    let one = check(&tree, &plan(25_000, 1, &[], "192.0.2.10:8080"));
    let fds = only(&one, "fd budget");
    assert_eq!(fds.severity, Severity::Refuse);
    assert_eq!(fds.wanted, ">= 25256");
    assert!(
        fds.message.starts_with(
            "one process needs 25256 fds (25000 connections + 256 reserved) but the hard RLIMIT_NOFILE \
             is 20000 and cannot be raised here (no CAP_SYS_RESOURCE): use --processes 2 (19744 connections \
             per process fit)"
        ),
        "{}",
        fds.message
    );

    let two = check(&tree, &plan(25_000, 2, &[], "192.0.2.10:8080"));
    let fds = only(&two, "fd budget");
    assert_eq!(fds.severity, Severity::Ok, "{}", two.render());
    assert_eq!(
        fds.message,
        "12500 connections + 256 reserved fds fit the soft limit"
    );

    let low_soft = NofileLimits {
        soft: 1024,
        ..STUCK_AT_20K
    };
    let raised = preflight(
        &plan(25_000, 2, &[], "192.0.2.10:8080"),
        &tree.root,
        &low_soft,
    );
    assert_eq!(
        only(&raised, "fd budget").message,
        "the engine raises the soft limit 1024 to the hard limit 20000 at start"
    );

    let capable = NofileLimits {
        can_raise_hard: true,
        ..STUCK_AT_20K
    };
    let hard_raised = preflight(
        &plan(25_000, 1, &[], "192.0.2.10:8080"),
        &tree.root,
        &capable,
    );
    let fds = only(&hard_raised, "fd budget");
    assert_eq!(fds.severity, Severity::Ok);
    assert!(
        fds.message.contains("raises the hard limit 20000 to 25256"),
        "{}",
        fds.message
    );
}

#[test]
fn nr_open_caps_even_a_capable_process() {
    let tree = tree();
    tree.set("fs.nr_open", "20000\n");
    let capable = NofileLimits {
        can_raise_hard: true,
        ..STUCK_AT_20K
    };
    let report = preflight(
        &plan(25_000, 1, &[], "192.0.2.10:8080"),
        &tree.root,
        &capable,
    );
    assert_eq!(only(&report, "fd budget").severity, Severity::Refuse);
    let nr_open = only(&report, "fds per process ceiling");
    assert_eq!(nr_open.severity, Severity::Refuse);
    assert!(
        nr_open
            .message
            .contains("`deployer tune apply --profile 100k` (sets fs.nr_open = 1048576)"),
        "{}",
        nr_open.message
    );
}

#[test]
fn conntrack_table_too_small_is_refused_and_absent_conntrack_is_fine() {
    let tree = FakeTree::with_defaults();
    let facts = plan(
        100_000,
        6,
        &["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
        "192.0.2.10:8080",
    );
    let report = check(&tree, &facts);
    let conntrack = only(&report, "conntrack table");
    assert_eq!(conntrack.severity, Severity::Refuse);
    assert_eq!(conntrack.current, "65536 (12 in use)");
    assert!(
        conntrack.message.contains(
            "`deployer tune apply --profile 100k` (sets net.netfilter.nf_conntrack_max = 524288)"
        ),
        "{}",
        conntrack.message
    );

    tree.remove("net.netfilter.nf_conntrack_max");
    let report = check(&tree, &facts);
    let conntrack = only(&report, "conntrack table");
    assert_eq!(
        (conntrack.severity, conntrack.current.as_str()),
        (Severity::Ok, "not loaded")
    );
}

#[test]
fn somaxconn_warns_for_local_targets_without_a_ramp() {
    let tree = tree();
    let mut facts = plan(10_000, 1, &[], "127.0.0.1:5555");
    let report = check(&tree, &facts);
    let queue = only(&report, "accept queue");
    assert_eq!(queue.severity, Severity::Ok);
    assert_eq!(queue.wanted, ">= 500", "5000/s over a 100 ms stall");

    facts.ramp_per_s = None;
    let report = check(&tree, &facts);
    let queue = only(&report, "accept queue");
    assert_eq!(queue.severity, Severity::Warn);
    assert!(
        queue
            .message
            .starts_with("without --ramp all sessions of a target arrive at once: up to 10000")
    );
    assert!(
        queue
            .message
            .contains("`deployer tune apply --profile 100k` (sets net.core.somaxconn = 65535)")
    );

    let remote = check(&tree, &plan(10_000, 1, &[], "192.0.2.10:8080"));
    assert_eq!(
        remote.find("accept queue").count(),
        0,
        "somaxconn of a remote host is not ours"
    );
}

#[test]
fn file_max_counts_both_ends_of_local_connections() {
    let tree = tree();
    tree.set("fs.file-max", "150000\n");
    let remote = check(
        &tree,
        &plan(
            100_000,
            6,
            &["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
            "192.0.2.10:8080",
        ),
    );
    assert_eq!(
        only(&remote, "open files").severity,
        Severity::Ok,
        "{}",
        remote.render()
    );
    let pool = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let local = check(&tree, &plan(100_000, 6, &pool, "127.0.0.1:5555"));
    let files = only(&local, "open files");
    assert_eq!(files.severity, Severity::Refuse);
    assert!(
        files
            .message
            .contains("100000 client + 100000 local server sockets"),
        "{}",
        files.message
    );
    assert!(
        files.message.contains("deployer tune apply --profile 100k"),
        "{}",
        files.message
    );
}

#[test]
fn an_inconsistent_plan_is_refused_and_the_report_serializes() {
    let tree = tree();
    let mut facts = plan(1000, 1, &[], "192.0.2.10:8080");
    facts.processes = 0;
    let report = check(&tree, &facts);
    assert_eq!(only(&report, "plan").severity, Severity::Refuse);
    let json = serde_json::to_value(&report).unwrap();
    let first = &json["findings"][0];
    assert_eq!(first["check"], "plan");
    assert_eq!(first["severity"], "refuse");
}

#[test]
fn unreadable_settings_are_warnings_not_silence() {
    let tree = FakeTree::empty();
    let report = check(&tree, &plan(1000, 1, &[], "127.0.0.1:5555"));
    let ports = only(&report, "ephemeral ports");
    assert_eq!(ports.severity, Severity::Warn);
    assert!(
        ports
            .message
            .starts_with("cannot read net.ipv4.ip_local_port_range: missing key"),
        "{}",
        ports.message
    );
    assert!(
        report
            .find("accept queue")
            .all(|f| f.severity == Severity::Warn)
    );
}
