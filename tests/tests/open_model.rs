//! The open model (`--rate`): requests go at their intended times whatever the server does;
//! when it cannot keep up, sends are counted late and latency runs from the intended time, so
//! the corrected histogram shows the queueing the uncorrected one hides.

use e2e::{assert_clean, engine, heavy};

fn latency(s: &serde_json::Value, which: &str, q: &str) -> u64 {
    s["latency_us"][which][q].as_u64().unwrap()
}

#[test]
fn the_rate_holds_when_the_server_keeps_up() {
    let _one_at_a_time = heavy();
    let r = engine(&[
        "--conns", "200", "--hold", "5s", "--rate", "2000/s", "--fleet", "2",
    ]);
    let s = r.summary();
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_clean(s, 200);
    let per_s = s["requests"]["per_s"].as_f64().unwrap();
    assert!(
        (1900.0..=2100.0).contains(&per_s),
        "asked 2000/s, measured {per_s}/s"
    );
    assert_eq!(s["requests"]["dropped"], 0);
}

#[test]
fn a_slow_server_shows_in_late_sends_and_corrected_latency() {
    let _one_at_a_time = heavy();
    // 10 sessions, each able to do 1 request per 50 ms (20/s): 400/s asked is twice what fits.
    let r = engine(&[
        "--conns",
        "10",
        "--hold",
        "4s",
        "--rate",
        "400/s",
        "--fleet",
        "1",
        "--fleet-args",
        "--delay 50ms",
    ]);
    let s = r.summary();
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        s["requests"]["late"].as_u64().unwrap() > 100,
        "late sends counted: {s:#}"
    );
    let (corrected, uncorrected) = (
        latency(s, "request", "p90"),
        latency(s, "request_uncorrected", "p90"),
    );
    assert!(
        uncorrected >= 50_000,
        "each reply waits the 50 ms delay: {uncorrected}"
    );
    assert!(
        corrected > 2 * uncorrected,
        "queueing behind a slow server shows in the corrected p90 ({corrected} us) and not in the uncorrected one ({uncorrected} us)"
    );
}
