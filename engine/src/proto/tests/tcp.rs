//! TCP: newline-delimited JSON-RPC; a connection is one MCP session.

use std::time::Duration;

use super::harness::*;
use crate::proto::{Action, ErrorKind, Event, Outcome, Scenario, Transport};

fn lines(bytes: &[u8]) -> Vec<(String, Option<u64>)> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "{text:?}");
    text.lines().map(method_and_id).collect()
}

fn line(json: &str) -> Vec<u8> {
    format!("{json}\n").into_bytes()
}

/// Connected and initialized; the first ping (id 1) is in flight.
fn ready(interval_ms: u64) -> Harness {
    let mut h = Harness::new(context(Transport::Tcp, Scenario::Ping, closed(interval_ms)));
    h.connect();
    assert_eq!(lines(&h.sent()), vec![("initialize".into(), Some(0))]);
    h.advance_ms(3);
    h.feed(&line(&init_result(0, "replica-1")));
    assert_eq!(
        lines(&h.sent()),
        vec![
            ("notifications/initialized".into(), None),
            ("ping".into(), Some(1))
        ]
    );
    assert_eq!(
        h.events(),
        vec![
            Event::Connected {
                took: Duration::ZERO
            },
            Event::ReplicaChanged,
            Event::Initialized {
                took: Duration::from_millis(3)
            }
        ]
    );
    assert!(h.s.is_initialized());
    assert_eq!(h.s.replica(), Some("replica-1"));
    h
}

fn ok(latency_ms: u64) -> Event {
    Event::Response {
        latency: Duration::from_millis(latency_ms),
        uncorrected: Duration::from_millis(latency_ms),
        outcome: Outcome::Ok,
    }
}

#[test]
fn handshake_then_back_to_back_pings() {
    let mut h = ready(0);
    let initialize = {
        let mut fresh = Harness::new(h.cx.clone());
        fresh.connect();
        fresh.sent_str()
    };
    assert_eq!(
        initialize,
        "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\",\
         \"capabilities\":{},\"clientInfo\":{\"name\":\"mcp-load\",\"version\":\"0.1.0\"}}}\n"
    );
    for id in 1..=3 {
        h.advance_ms(2);
        h.feed(&line(&result(id, "{}")));
        assert_eq!(h.events(), vec![ok(2)]);
        assert_eq!(lines(&h.sent()), vec![("ping".into(), Some(id + 1))]);
    }
    assert_eq!(h.s.buffered(), 0, "an idle session holds no bytes");
    assert_eq!(h.s.action(), Action::Keep);
}

#[test]
fn replies_split_anywhere_give_the_same_events() {
    let mut stream = line(NOTIFICATION);
    stream.extend(line(&result(1, r#"{"nested":{"id":9,"text":"a\nb"}}"#)));
    stream.extend(b"\r\n");
    every_split(&stream, |feeds| {
        let mut h = ready(0);
        h.feed_all(feeds);
        assert_eq!(h.events(), vec![ok(0)]);
        assert_eq!(lines(&h.sent()), vec![("ping".into(), Some(2))]);
        assert_eq!(h.s.buffered(), 0);
    });
}

#[test]
fn closed_pacing_waits_the_interval_after_each_reply() {
    let mut h = ready(100);
    h.advance_ms(7);
    h.feed(&line(&result(1, "{}")));
    assert!(h.sent().is_empty());
    assert_eq!(
        h.s.next_deadline(),
        Some(h.now + Duration::from_millis(100))
    );
    h.advance_ms(99);
    assert!(h.sent().is_empty());
    h.advance_ms(1);
    assert_eq!(lines(&h.sent()), vec![("ping".into(), Some(2))]);
    assert_eq!(h.s.next_deadline(), Some(h.now + REQUEST_TIMEOUT));
}

#[test]
fn notifications_stale_ids_and_server_requests_between_replies() {
    let mut h = ready(0);
    let mut stream = line(NOTIFICATION);
    stream.extend(line(&result(77, "{}")));
    stream.extend(line(r#"{"jsonrpc":"2.0","id":"srv-1","method":"ping"}"#));
    stream.extend(line(r#"{"jsonrpc":"2.0","id":5,"method":"roots/list"}"#));
    h.feed(&stream);
    assert!(h.events().is_empty());
    assert_eq!(
        String::from_utf8(h.sent()).unwrap(),
        "{\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"result\":{}}\n\
         {\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":-32601,\"message\":\"Method not found\"}}\n"
    );
    h.feed(&line(&result(1, "{}")));
    assert_eq!(h.events(), vec![ok(0)]);
}

#[test]
fn json_rpc_errors_are_request_outcomes() {
    let mut h = ready(0);
    h.feed(&line(&error("\"1\"", -32601)));
    assert_eq!(
        h.events(),
        vec![instant_failure(ErrorKind::JsonRpc(-32601))]
    );
    h.feed(&line(&error("null", -32700)));
    assert!(matches!(
        h.events()[..],
        [Event::Response {
            outcome: Outcome::Error(ErrorKind::JsonRpc(-32700)),
            ..
        }]
    ));
}

#[test]
fn request_timeout_fails_the_request_and_reconnects_with_a_new_session() {
    let mut h = ready(0);
    h.advance(REQUEST_TIMEOUT - Duration::from_millis(1));
    assert!(h.events().is_empty());
    h.advance_ms(1);
    assert_eq!(
        h.events(),
        vec![
            Event::Response {
                latency: REQUEST_TIMEOUT,
                uncorrected: REQUEST_TIMEOUT,
                outcome: Outcome::Error(ErrorKind::Timeout)
            },
            Event::Reconnecting
        ]
    );
    assert_eq!(h.s.action(), Action::Connect);
    assert!(!h.s.is_initialized());
    let wait = h.s.next_deadline().unwrap() - h.now;
    assert!(
        wait >= BACKOFF * 3 / 4 && wait < BACKOFF * 5 / 4,
        "{wait:?}"
    );
    h.run_to_deadline();
    assert_eq!(h.s.next_deadline(), None, "backoff over: connect now");
    assert_eq!(h.s.action(), Action::Connect);
    h.connect();
    assert_eq!(lines(&h.sent()), vec![("initialize".into(), Some(2))]);
}

#[test]
fn a_late_reply_after_a_timeout_is_not_taken_for_a_new_request() {
    let mut h = ready(0);
    h.advance(REQUEST_TIMEOUT);
    h.events();
    h.run_to_deadline();
    h.connect();
    h.sent();
    h.feed(&line(&result(1, "{}")));
    assert_eq!(
        h.events(),
        vec![Event::Connected {
            took: Duration::ZERO
        }]
    );
}

#[test]
fn peer_close_fails_the_request_in_flight_and_an_idle_close_is_no_error() {
    let mut h = ready(0);
    h.eof();
    assert_eq!(
        h.events(),
        vec![instant_failure(ErrorKind::Reset), Event::Reconnecting]
    );
    let mut idle = Harness::new(context(Transport::Tcp, Scenario::Idle, closed(0)));
    idle.connect();
    idle.sent();
    idle.feed(&line(&init_result(0, "r")));
    assert_eq!(
        lines(&idle.sent()),
        vec![("notifications/initialized".into(), None)]
    );
    assert_eq!(idle.s.next_deadline(), None, "idle sessions have no timer");
    idle.events();
    idle.eof();
    assert_eq!(idle.events(), vec![Event::Reconnecting]);
    assert_eq!(idle.s.action(), Action::Connect);
}

#[test]
fn io_errors_are_counted_and_reconnect() {
    let mut h = Harness::new(context(Transport::Tcp, Scenario::Idle, closed(0)));
    h.s.on_connect_start(&h.cx, h.now);
    h.s.on_io_error(&h.cx, ErrorKind::Refused, h.now, &mut h.ev);
    assert_eq!(h.events(), vec![Event::Error(ErrorKind::Refused)]);
    assert_eq!(h.s.action(), Action::Connect);
    h.run_to_deadline();
    h.connect();
    h.sent();
    h.feed(&line(&init_result(0, "r")));
    h.events();
    h.s.on_io_error(&h.cx, ErrorKind::Reset, h.now, &mut h.ev);
    assert_eq!(
        h.events(),
        vec![Event::Error(ErrorKind::Reset), Event::Reconnecting]
    );
}

#[test]
fn connect_timeout_and_growing_backoff() {
    let mut h = Harness::new(context(Transport::Tcp, Scenario::Ping, closed(0)));
    let mut waits = Vec::new();
    for _ in 0..6 {
        h.s.on_connect_start(&h.cx, h.now);
        assert_eq!(h.s.next_deadline(), Some(h.now + CONNECT_TIMEOUT));
        h.advance(CONNECT_TIMEOUT);
        assert_eq!(h.events(), vec![Event::Error(ErrorKind::ConnectTimeout)]);
        assert_eq!(h.s.action(), Action::Connect);
        waits.push(h.s.next_deadline().unwrap() - h.now);
        h.run_to_deadline();
    }
    for (i, wait) in waits.iter().enumerate() {
        let nominal = BACKOFF * (1 << i.min(3));
        assert!(
            *wait >= nominal * 3 / 4 && *wait < nominal * 5 / 4,
            "attempt {i}: {wait:?} vs {nominal:?}"
        );
    }
}

#[test]
fn failed_handshakes_are_retried_then_the_session_gives_up() {
    let mut h = Harness::new(context(Transport::Tcp, Scenario::Ping, closed(0)));
    for attempt in 0..3 {
        h.connect();
        let sent = lines(&h.sent());
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "initialize");
        h.feed(&line(&error(&sent[0].1.unwrap().to_string(), -32005)));
        let mut expected = vec![
            Event::Connected {
                took: Duration::ZERO,
            },
            Event::Error(ErrorKind::JsonRpc(-32005)),
        ];
        if attempt < 2 {
            expected.push(Event::Reconnecting);
            assert_eq!(h.s.action(), Action::Connect);
            h.run_to_deadline();
        }
        assert_eq!(h.events(), expected);
    }
    assert_eq!(h.s.action(), Action::Close);
    assert_eq!(h.s.next_deadline(), None);
}

#[test]
fn an_initialize_timeout_is_an_error_not_a_response() {
    let mut h = Harness::new(context(Transport::Tcp, Scenario::Ping, closed(0)));
    h.connect();
    h.sent();
    h.events();
    h.advance(REQUEST_TIMEOUT);
    assert_eq!(
        h.events(),
        vec![Event::Error(ErrorKind::Timeout), Event::Reconnecting]
    );
}

#[test]
fn oversized_and_garbled_lines_are_protocol_errors() {
    let mut h = ready(0);
    h.feed(&vec![b'x'; MAX_MESSAGE + 1]);
    assert_eq!(
        h.events(),
        vec![instant_failure(ErrorKind::Protocol), Event::Reconnecting]
    );
    assert_eq!(h.s.buffered(), 0);
    let mut h = ready(0);
    h.feed(b"Not JSON at all\n");
    assert!(matches!(
        h.events()[..],
        [
            Event::Response {
                outcome: Outcome::Error(ErrorKind::Protocol),
                ..
            },
            Event::Reconnecting
        ]
    ));
}

#[test]
fn shutdown_waits_for_the_request_in_flight_then_closes() {
    let mut h = ready(0);
    h.shutdown();
    assert_eq!(h.s.action(), Action::Keep);
    assert!(h.events().is_empty());
    h.feed(&line(&result(1, "{}")));
    assert_eq!(h.events(), vec![ok(0), Event::Closed]);
    assert!(h.sent().is_empty(), "no request after shutdown");
    assert_eq!(h.s.action(), Action::Close);
    let mut never = Harness::new(context(Transport::Tcp, Scenario::Ping, closed(0)));
    never.shutdown();
    assert_eq!(never.events(), vec![Event::Closed]);
    assert_eq!(never.s.action(), Action::Close);
}

#[test]
fn tools_call_carries_its_arguments() {
    let scenario = Scenario::ToolsCall {
        tool: "echo".into(),
        arguments: r#"{"text":"hello"}"#.into(),
    };
    let mut h = Harness::new(context(Transport::Tcp, scenario, closed(0)));
    h.connect();
    h.sent();
    h.feed(&line(&init_result(0, "r")));
    let sent = h.sent_str();
    assert!(
        sent.ends_with(
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"hello\"}}}\n"
        ),
        "{sent}"
    );
}
