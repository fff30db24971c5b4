//! The fleet launcher, as the engine and `replica fleet` use it.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use replica::fleet::{Fleet, FleetError};

/// Gone, or a zombie nobody reaped yet (in a container PID 1 may never reap it).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pids: &[u32]) {
    let deadline = Instant::now() + TIMEOUT;
    while !pids.iter().all(|&p| process_gone(p)) {
        assert!(Instant::now() < deadline, "replicas {pids:?} still alive");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port range `[base, base + n)` that is free right now (checked by binding it).
fn free_range(n: u16) -> u16 {
    'search: for base in (21000..29000).step_by(37) {
        let mut held = Vec::new();
        for p in base..base + n {
            match TcpListener::bind(("127.0.0.1", p)) {
                Ok(l) => held.push(l),
                Err(_) => continue 'search,
            }
        }
        return base;
    }
    panic!("no free port range found");
}

#[test]
fn members_listen_on_consecutive_ports_and_stop_on_drop() {
    let base = free_range(6);
    let mut spec = spec(3, &[]);
    spec.base_tcp = Some(base);
    spec.base_http = Some(base + 3);
    let fleet = Fleet::start(spec, TIMEOUT).unwrap();
    let ids: Vec<&str> = fleet.members().iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2", "r3"]);
    let tcp: Vec<u16> = fleet
        .members()
        .iter()
        .map(|m| m.tcp.unwrap().port())
        .collect();
    assert_eq!(tcp, [base, base + 1, base + 2]);
    assert_eq!(
        fleet.urls("http"),
        (3..6)
            .map(|i| format!("http://127.0.0.1:{}/mcp", base + i))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        fleet.urls("ws")[0],
        format!("ws://127.0.0.1:{}/mcp/ws", base + 3)
    );
    assert_eq!(
        fleet.urls("tcp")[2],
        format!("tcp://127.0.0.1:{}", base + 2)
    );
    assert!(fleet.urls("gopher").is_empty());
    for m in fleet.members() {
        let mut c = Lines::connect(m.tcp.unwrap());
        assert_eq!(c.call(INIT)["result"]["serverInfo"]["name"], m.id.as_str());
        assert_eq!(
            Http::connect(m.http.unwrap())
                .get("/health")
                .header("x-replica"),
            Some(m.id.as_str())
        );
    }
    let pids = fleet.pids();
    assert_eq!(pids.len(), 3);
    drop(fleet);
    wait_gone(&pids);
}

#[test]
fn free_ports_are_reported_by_the_children() {
    let fleet = Fleet::start(spec(2, &[]), TIMEOUT).unwrap();
    let ports: HashSet<u16> = fleet
        .members()
        .iter()
        .flat_map(|m| [m.tcp.unwrap().port(), m.http.unwrap().port()])
        .collect();
    assert_eq!(ports.len(), 4);
    assert!(!ports.contains(&0));
}

#[test]
fn reuseport_members_share_one_port() {
    let fleet = Fleet::start(
        {
            let mut s = spec(2, &[]);
            s.reuseport = true;
            s
        },
        TIMEOUT,
    )
    .unwrap();
    let m = fleet.members();
    assert_eq!(m[0].http, m[1].http);
    assert_eq!(m[0].tcp, m[1].tcp);
    assert_eq!(fleet.urls("http").len(), 1, "one shared URL");
    let mut seen = HashSet::new();
    for _ in 0..40 {
        let r = Http::connect(m[0].http.unwrap()).get("/live");
        seen.insert(r.header("x-replica").unwrap().to_string());
    }
    assert_eq!(
        seen.len(),
        2,
        "the kernel spreads connections over both: {seen:?}"
    );
}

#[test]
fn extra_args_can_turn_a_listener_off() {
    let fleet = Fleet::start(spec(1, &["--tcp", "off"]), TIMEOUT).unwrap();
    assert_eq!(fleet.members()[0].tcp, None);
    assert!(fleet.urls("tcp").is_empty());
    assert_eq!(fleet.urls("http").len(), 1);
}

#[test]
fn a_child_that_cannot_start_is_named_with_its_stderr() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut spec = spec(2, &[]);
    spec.base_tcp = Some(taken.local_addr().unwrap().port());
    let err = Fleet::start(spec, TIMEOUT).unwrap_err();
    match &err {
        FleetError::EarlyExit { id, stderr, .. } => {
            // r1 has the taken port; r2 (the next port) may find it taken too, and either may
            // be seen first: the error names the one it reports, with that child's stderr.
            assert!(id == "r1" || id == "r2", "{id}");
            assert!(stderr.contains("cannot listen"), "{stderr}");
        }
        other => panic!("unexpected {other}"),
    }
    let mut bad = spec_for_missing_program();
    bad.count = 1;
    assert!(matches!(
        Fleet::start(bad, TIMEOUT),
        Err(FleetError::Spawn { .. })
    ));
}

fn spec_for_missing_program() -> replica::fleet::FleetSpec {
    replica::fleet::FleetSpec::new("/nonexistent/replica", 1)
}

#[test]
fn check_reports_a_dead_member() {
    let mut fleet = Fleet::start(spec(2, &[]), TIMEOUT).unwrap();
    assert!(fleet.check().is_ok());
    let victim = fleet.members()[1].pid;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match fleet.check() {
            Err(FleetError::Exited { id, pid, .. }) => {
                assert_eq!((id.as_str(), pid), ("r2", victim));
                break;
            }
            Ok(()) => assert!(Instant::now() < deadline, "the dead member went unnoticed"),
            Err(e) => panic!("unexpected {e}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `replica fleet`, returns it and the lines it printed up to the last URL.
fn fleet_command(count: &str) -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_replica"))
        .args(["fleet", "--count", count, "--threads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let n: usize = count.parse().unwrap();
    let mut lines = Vec::new();
    for _ in 0..1 + 3 * n {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line.trim_end().to_string());
    }
    (child, lines)
}

fn pids_from_header(header: &str) -> Vec<u32> {
    let list = header
        .split_once("pids [")
        .unwrap()
        .1
        .split_once(']')
        .unwrap()
        .0;
    list.split(", ").map(|p| p.parse().unwrap()).collect()
}

#[test]
fn fleet_command_prints_targets_and_stops_children_on_sigterm() {
    let (mut child, lines) = fleet_command("2");
    assert!(
        lines[0].starts_with("# replica fleet: 2 replicas (r1..r2)"),
        "{}",
        lines[0]
    );
    let urls = &lines[1..];
    assert!(urls[0].starts_with("tcp://") && urls[1].starts_with("tcp://"));
    assert!(urls[2].starts_with("ws://") && urls[2].ends_with("/mcp/ws"));
    assert!(urls[4].starts_with("http://") && urls[5].ends_with("/mcp"));
    let addr = urls[0].strip_prefix("tcp://").unwrap().parse().unwrap();
    assert!(Lines::connect(addr).call(INIT)["result"].is_object());
    let pids = pids_from_header(&lines[0]);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    wait_gone(&pids);
}

#[test]
fn children_die_with_their_parent() {
    let (mut child, lines) = fleet_command("2");
    let pids = pids_from_header(&lines[0]);
    assert!(pids.iter().all(|&p| !process_gone(p)));
    child.kill().unwrap();
    child.wait().unwrap();
    wait_gone(&pids);
}

#[test]
fn a_wrapping_program_with_leading_args_works_like_the_engine_will() {
    // The engine re-executes its own binary with a subcommand before the replica flags; here a
    // shell plays that program, printing a banner first.
    let mut s = spec(2, &[]);
    s.program = "/bin/sh".into();
    s.leading_args = [
        "-c",
        "echo wrapper banner; exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_replica"),
    ]
    .map(Into::into)
    .to_vec();
    let fleet = Fleet::start(s, TIMEOUT).unwrap();
    assert_eq!(fleet.members().len(), 2);
    for m in fleet.members() {
        let r = Http::connect(m.http.unwrap()).get("/ready");
        assert_eq!(r.json()["node"], m.id.as_str());
    }
}
