//! Open model: sends at intended times, owed sends when one is in flight, `Late` counted,
//! latency from the intended time (and uncorrected from the real send).

use std::time::{Duration, Instant};

use super::harness::*;
use crate::proto::{Event, Outcome, Pacing, Scenario, Transport};

fn line(json: &str) -> Vec<u8> {
    format!("{json}\n").into_bytes()
}

fn ids_sent(h: &mut Harness) -> Vec<Option<u64>> {
    String::from_utf8(h.sent())
        .unwrap()
        .lines()
        .map(method_and_id)
        .filter(|(method, _)| method == "ping")
        .map(|(_, id)| id)
        .collect()
}

fn response(latency_ms: u64, uncorrected_ms: u64) -> Event {
    Event::Response {
        latency: Duration::from_millis(latency_ms),
        uncorrected: Duration::from_millis(uncorrected_ms),
        outcome: Outcome::Ok,
    }
}

/// Initialized at t0 with no request in flight.
fn ready() -> Harness {
    let mut h = Harness::new(context(Transport::Tcp, Scenario::Ping, Pacing::Open));
    h.connect();
    h.sent();
    h.feed(&line(&init_result(0, "r")));
    assert!(ids_sent(&mut h).is_empty(), "the open model waits for fire");
    assert_eq!(h.s.next_deadline(), None);
    h.events();
    h
}

fn at(h: &mut Harness, ms: u64) -> Instant {
    h.now = h.ms(ms);
    h.now
}

#[test]
fn a_fire_on_an_idle_session_sends_at_once() {
    let mut h = ready();
    let now = at(&mut h, 10);
    h.fire(now);
    assert_eq!(ids_sent(&mut h), vec![Some(1)]);
    at(&mut h, 14);
    h.feed(&line(&result(1, "{}")));
    assert_eq!(h.events(), vec![response(4, 4)]);
    assert!(ids_sent(&mut h).is_empty());
}

#[test]
fn a_fire_the_reactor_delivered_late_counts_from_the_intended_time() {
    let mut h = ready();
    at(&mut h, 12);
    h.fire(h.ms(10));
    assert_eq!(ids_sent(&mut h), vec![Some(1)]);
    at(&mut h, 15);
    h.feed(&line(&result(1, "{}")));
    assert_eq!(h.events(), vec![response(5, 3)]);
}

#[test]
fn a_fire_while_in_flight_is_late_and_owed() {
    let mut h = ready();
    let now = at(&mut h, 10);
    h.fire(now);
    ids_sent(&mut h);
    let now = at(&mut h, 15);
    h.fire(now);
    assert_eq!(h.events(), vec![Event::Late]);
    assert!(
        ids_sent(&mut h).is_empty(),
        "one request in flight per session"
    );
    at(&mut h, 40);
    h.feed(&line(&result(1, "{}")));
    assert_eq!(h.events(), vec![response(30, 30)]);
    assert_eq!(
        ids_sent(&mut h),
        vec![Some(2)],
        "the owed send goes at once"
    );
    at(&mut h, 45);
    h.feed(&line(&result(2, "{}")));
    assert_eq!(h.events(), vec![response(30, 5)]);
    assert!(ids_sent(&mut h).is_empty());
}

#[test]
fn several_owed_sends_keep_their_intended_times() {
    let mut h = ready();
    h.fire(h.now);
    ids_sent(&mut h);
    for ms in [10, 20, 30] {
        let now = at(&mut h, ms);
        h.fire(now);
    }
    assert_eq!(h.events(), vec![Event::Late; 3]);
    at(&mut h, 50);
    h.feed(&line(&result(1, "{}")));
    assert_eq!(h.events(), vec![response(50, 50)]);
    for (id, ms) in [(2, 60), (3, 70), (4, 80)] {
        assert_eq!(ids_sent(&mut h), vec![Some(id)]);
        at(&mut h, ms);
        h.feed(&line(&result(id, "{}")));
        assert_eq!(h.events(), vec![response(50, 10)], "request {id}");
    }
    assert!(ids_sent(&mut h).is_empty());
}

#[test]
fn fires_before_the_session_is_ready_are_owed() {
    let mut h = Harness::new(context(Transport::Tcp, Scenario::Ping, Pacing::Open));
    h.fire(h.now);
    assert_eq!(h.events(), vec![Event::Late]);
    at(&mut h, 5);
    h.connect();
    h.sent();
    at(&mut h, 8);
    h.feed(&line(&init_result(0, "r")));
    assert_eq!(ids_sent(&mut h), vec![Some(1)]);
    at(&mut h, 10);
    h.feed(&line(&result(1, "{}")));
    assert_eq!(h.events().last(), Some(&response(10, 2)));
}

#[test]
fn fire_is_ignored_by_closed_idle_and_finished_sessions() {
    let mut closed_model = Harness::new(context(Transport::Tcp, Scenario::Ping, closed(0)));
    closed_model.fire(closed_model.now);
    assert!(closed_model.events().is_empty());
    let mut idle = Harness::new(context(Transport::Tcp, Scenario::Idle, Pacing::Open));
    idle.fire(idle.now);
    assert!(idle.events().is_empty());
    let mut done = ready();
    done.shutdown();
    done.events();
    done.fire(done.now);
    assert!(done.events().is_empty());
    assert!(done.sent().is_empty());
}
