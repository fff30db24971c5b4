//! Fault injection: what the replicas inject (JSON-RPC errors, dropped connections) is what the
//! engine reports, within statistical bounds, and the run still ends on time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use e2e::{bin, engine, heavy};
use replica::fleet::{Fleet, FleetSpec};

/// Sums a counter over every line of a Prometheus text body that starts with `series`.
fn metric(body: &str, series: &str) -> u64 {
    body.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn injected_faults_are_reported_as_injected() {
    let _one_at_a_time = heavy();
    let mut spec = FleetSpec::new(bin("engine"), 2);
    spec.leading_args = vec!["__replica".into()];
    spec.extra_args = ["--error-rate", "0.1", "--drop-rate", "0.01", "--seed", "7"]
        .map(Into::into)
        .to_vec();
    let fleet = Fleet::start(spec, Duration::from_secs(20)).expect("fleet starts");
    let urls = fleet.urls("http");
    let hold = 10;
    let r = engine(&[
        "--conns",
        "200",
        "--hold",
        &format!("{hold}s"),
        "--interval",
        "50ms",
        "--target",
        &urls[0],
        "--target",
        &urls[1],
    ]);
    let s = r.summary();
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.took < Duration::from_secs(hold + 10),
        "faults must not stretch the run: it took {:?}",
        r.took
    );

    let (mut errors, mut drops, mut pings) = (0, 0, 0);
    for m in fleet.members() {
        let body = scrape(m.http.unwrap());
        errors += metric(&body, "replica_injected_total{kind=\"error\"}");
        drops += metric(&body, "replica_injected_total{kind=\"drop\"}");
        pings += metric(&body, "replica_requests_total{method=\"ping\"}");
    }
    // Binomial bounds at 5 sigma on what the replicas injected.
    let within = |k: u64, p: f64| {
        let n = pings as f64;
        (k as f64 - n * p).abs() <= 5.0 * (n * p * (1.0 - p)).sqrt()
    };
    assert!(pings > 10_000, "enough pings to judge: {pings}");
    assert!(
        within(errors, 0.1),
        "{errors} errors injected in {pings} pings"
    );
    assert!(
        within(drops, 0.01),
        "{drops} drops injected in {pings} pings"
    );

    // The engine saw exactly what was injected.
    let seen = |k: &str| s["errors"][k].as_u64().unwrap_or(0);
    assert_eq!(seen("jsonrpc--32000"), errors, "{:#}", s["errors"]);
    assert_eq!(seen("reset"), drops, "{:#}", s["errors"]);
    assert_eq!(
        s["requests"]["failed"].as_u64().unwrap(),
        errors + drops,
        "{s:#}"
    );
    assert_eq!(
        s["sessions"]["failed"], 0,
        "dropped connections are reopened: {s:#}"
    );
    assert!(
        s["sessions"]["reconnects"].as_u64().unwrap() >= drops,
        "{s:#}"
    );
}
