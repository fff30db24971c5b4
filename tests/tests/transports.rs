//! Issue 3's acceptance: against 4 replica processes, for each transport and each reactor,
//! 2,000 sessions held 5 s with pings: all initialized, none failed, no request error, and
//! every replica holds 500 +/- 1 sessions.

use e2e::{assert_clean, engine, heavy, sessions_per_replica};

fn run(transport: &str, io: &str) {
    let _one_at_a_time = heavy();
    let r = engine(&[
        "--conns",
        "2000",
        "--hold",
        "5s",
        "--interval",
        "1s",
        "--fleet",
        "4",
        "--fleet-transport",
        transport,
        "--io",
        io,
    ]);
    let s = r.summary();
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(s["manifest"]["io"], io);
    assert_clean(s, 2000);
    let per = sessions_per_replica(s);
    assert_eq!(per.len(), 4, "{per:?}");
    for (id, n) in per {
        assert!(
            (499..=501).contains(&n),
            "replica {id} holds {n} sessions, not 500 +/- 1"
        );
    }
    // Pinging every second for 5 s: each session answered at least 4 pings.
    assert!(s["requests"]["ok"].as_u64().unwrap() >= 4 * 2000, "{s:#}");
}

#[test]
fn tcp_uring() {
    run("tcp", "uring");
}

#[test]
fn tcp_epoll() {
    run("tcp", "epoll");
}

#[test]
fn websocket_uring() {
    run("ws", "uring");
}

#[test]
fn websocket_epoll() {
    run("ws", "epoll");
}

#[test]
fn streamable_http_uring() {
    run("http", "uring");
}

#[test]
fn streamable_http_epoll() {
    run("http", "epoll");
}
