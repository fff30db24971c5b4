//! Issue 4's acceptance at test size: more sessions than one process's file-descriptor budget
//! (shard processes), one destination address through a source-IP pool, and preflight refusals.

use e2e::{assert_clean, engine, heavy, sessions_per_replica};

fn past_the_fd_budget(io: &str) {
    let _one_at_a_time = heavy();
    let r = engine(&[
        "--conns",
        "25000",
        "--hold",
        "10s",
        "--interval",
        "5s",
        "--fleet",
        "6",
        "--fleet-transport",
        "tcp",
        "--io",
        io,
    ]);
    let s = r.summary();
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        s["manifest"]["processes"].as_u64().unwrap() > 1,
        "{:#}",
        s["manifest"]
    );
    assert_eq!(s["manifest"]["io"], io);
    assert_clean(s, 25_000);
    for (id, n) in sessions_per_replica(s) {
        assert!((4166..=4167).contains(&n), "replica {id}: {n} sessions");
    }
}

#[test]
fn sessions_past_the_fd_budget_with_io_uring() {
    past_the_fd_budget("uring");
}

#[test]
fn sessions_past_the_fd_budget_with_epoll() {
    past_the_fd_budget("epoll");
}

fn port_range() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// One destination (six replicas sharing a port with SO_REUSEPORT) cannot take more sessions
/// than the ephemeral port range from one source address; a pool of three can.
#[test]
fn one_destination_needs_the_source_pool() {
    let _one_at_a_time = heavy();
    let (lo, hi) = port_range();
    let capacity = hi - lo + 1;
    let conns = 30_000u64;
    assert!(
        capacity < conns && 3 * capacity >= conns,
        "this test expects the default port range (about 28K ports), found {lo}-{hi}"
    );
    let n = conns.to_string();
    let base = [
        "--conns",
        n.as_str(),
        "--hold",
        "5s",
        "--interval",
        "5s",
        "--fleet",
        "6",
        "--fleet-reuseport",
        "--fleet-transport",
        "tcp",
    ];

    let refused = engine(&base);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("ip_local_port_range") && refused.stderr.contains("--source-ips"),
        "the refusal names the limit and the fix: {}",
        refused.stderr
    );

    let mut pooled = base.to_vec();
    pooled.extend(["--source-ips", "127.0.0.2-127.0.0.4"]);
    let r = engine(&pooled);
    let s = r.summary();
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        s["plan"]["targets"].as_array().unwrap().len(),
        1,
        "one destination"
    );
    assert_eq!(s["sessions"]["established"], conns);
    assert_clean(s, conns);
}

#[test]
fn a_plan_that_cannot_fit_is_refused_with_exit_2() {
    let r = engine(&[
        "--conns",
        "100000",
        "--preflight-only",
        "--target",
        "tcp://127.0.0.1:5555",
    ]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("preflight refused"), "{}", r.stderr);
}
