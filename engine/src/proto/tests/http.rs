//! Streamable HTTP: keep-alive POSTs, JSON and SSE replies, session ids, cookies, 404s,
//! connections the server closes, DELETE; and plain GETs for the `health` scenario.

use std::time::Duration;

use super::harness::*;
use crate::proto::{Action, ErrorKind, Event, Pacing, Scenario, Transport};

const SID: &str = "sess-1";

/// The one request the client sent: its JSON-RPC method and id.
fn one_request(h: &mut Harness) -> Request {
    let mut all = requests(&h.sent());
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn rpc(r: &Request) -> (String, Option<u64>) {
    method_and_id(&r.body)
}

/// Connected, initialized with session id [`SID`]; the first ping (id 1) is in flight.
fn ready_with(pacing: Pacing, init_headers: &[(&str, &str)]) -> Harness {
    let mut h = Harness::new(context(Transport::Http, Scenario::Ping, pacing));
    h.connect();
    let init = one_request(&mut h);
    assert_eq!((init.method.as_str(), init.path.as_str()), ("POST", "/mcp"));
    assert_eq!(rpc(&init), ("initialize".into(), Some(0)));
    assert_eq!(init.header("Host"), Some("127.0.0.1:8080"));
    assert_eq!(init.header("Content-Type"), Some("application/json"));
    assert_eq!(
        init.header("Accept"),
        Some("application/json, text/event-stream")
    );
    assert_eq!(init.header("Mcp-Session-Id"), None);
    assert_eq!(init.header("MCP-Protocol-Version"), None);
    h.advance_ms(2);
    let mut headers = vec![("Mcp-Session-Id", SID)];
    headers.extend_from_slice(init_headers);
    h.feed(&json_response(&headers, &init_result(0, "srv")));
    let notified = one_request(&mut h);
    assert_eq!(rpc(&notified), ("notifications/initialized".into(), None));
    assert_eq!(notified.header("Mcp-Session-Id"), Some(SID));
    assert_eq!(notified.header("MCP-Protocol-Version"), Some("2025-06-18"));
    assert!(
        !h.s.is_initialized(),
        "not before the notification is accepted"
    );
    h.feed(&response(202, &[], ""));
    assert!(h.s.is_initialized());
    let ping = one_request(&mut h);
    assert_eq!(rpc(&ping), ("ping".into(), Some(1)));
    assert_eq!(ping.header("Mcp-Session-Id"), Some(SID));
    assert_eq!(ping.header("MCP-Protocol-Version"), Some("2025-06-18"));
    let events = h.events();
    let connected = Event::Connected {
        took: Duration::ZERO,
    };
    let initialized = Event::Initialized {
        took: Duration::from_millis(2),
    };
    assert!(
        events.contains(&connected) && events.contains(&initialized),
        "{events:?}"
    );
    h
}

fn ready() -> Harness {
    ready_with(closed(0), &[])
}

#[test]
fn handshake_writes_exact_requests() {
    let mut h = Harness::new(context(Transport::Http, Scenario::Ping, closed(0)));
    h.connect();
    let body = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcp-load","version":"0.1.0"}}}"#;
    assert_eq!(
        h.sent_str(),
        format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    );
    let h = ready();
    assert_eq!(h.s.replica(), Some("srv"));
    assert_eq!(h.s.buffered(), 0);
}

#[test]
fn json_replies_split_anywhere() {
    let reply = json_response(&[], &result(1, r#"{"text":"}{\"id\":1}"}"#));
    every_split(&reply, |feeds| {
        let mut h = ready();
        h.feed_all(feeds);
        assert_eq!(h.events(), vec![instant_ok()]);
        assert_eq!(rpc(&one_request(&mut h)), ("ping".into(), Some(2)));
        assert_eq!(h.s.buffered(), 0);
    });
}

#[test]
fn chunked_sse_with_priming_event_and_notifications_split_anywhere() {
    let events = format!(
        "id: 0\ndata:\n\n{}: keep-alive\n\n{}{}",
        sse_event(NOTIFICATION),
        sse_event(r#"{"jsonrpc":"2.0","id":"srv-9","method":"roots/list"}"#),
        sse_event(&result(1, "{}"))
    );
    let reply = sse_chunked(&[], &events, 17);
    every_split(&reply, |feeds| {
        let mut h = ready();
        h.feed_all(feeds);
        assert_eq!(h.events(), vec![instant_ok()]);
        assert_eq!(
            rpc(&one_request(&mut h)),
            ("ping".into(), Some(2)),
            "server requests over HTTP get no reply"
        );
        assert_eq!(h.s.buffered(), 0);
    });
}

#[test]
fn content_length_sse_split_anywhere() {
    let events = format!("id: p\ndata: \n\n{}", sse_event(&result(1, "{}")));
    let reply = response(200, &[("Content-Type", "text/event-stream")], &events);
    every_split(&reply, |feeds| {
        let mut h = ready();
        h.feed_all(feeds);
        assert_eq!(h.events(), vec![instant_ok()]);
        assert_eq!(rpc(&one_request(&mut h)), ("ping".into(), Some(2)));
    });
}

#[test]
fn the_next_request_waits_for_the_sse_stream_to_end() {
    let mut h = ready();
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    let event = sse_event(&result(1, "{}"));
    h.feed(format!("{head}{:x}\r\n{event}\r\n", event.len()).as_bytes());
    assert_eq!(h.events(), vec![instant_ok()], "latency ends at the reply");
    assert!(
        h.sent().is_empty(),
        "the connection is busy until the stream ends"
    );
    h.advance_ms(3);
    h.feed(b"0\r\n\r\n");
    assert_eq!(rpc(&one_request(&mut h)), ("ping".into(), Some(2)));
    let mut stuck = ready();
    stuck.feed(format!("{head}{:x}\r\n{event}\r\n", event.len()).as_bytes());
    stuck.events();
    stuck.advance(REQUEST_TIMEOUT);
    assert_eq!(
        stuck.events(),
        vec![Event::Reconnecting],
        "a stream that never ends is dropped, quietly: its reply was counted"
    );
}

#[test]
fn a_reply_stream_without_our_reply_is_a_protocol_error() {
    let mut h = ready();
    h.feed(&sse_chunked(&[], &sse_event(NOTIFICATION), 100));
    assert_eq!(h.events(), vec![instant_failure(ErrorKind::Protocol)]);
    assert_eq!(rpc(&one_request(&mut h)), ("ping".into(), Some(2)));
}

#[test]
fn plain_text_error_bodies_and_string_error_ids() {
    let mut h = ready();
    h.feed(&response(
        500,
        &[("Content-Type", "text/plain")],
        "Internal Server Error: boom",
    ));
    assert_eq!(h.events(), vec![instant_failure(ErrorKind::Http(500))]);
    assert_eq!(rpc(&one_request(&mut h)), ("ping".into(), Some(2)));
    h.feed(&json_response(&[], &error("\"2\"", -32602)));
    assert_eq!(
        h.events(),
        vec![instant_failure(ErrorKind::JsonRpc(-32602))]
    );
    assert_eq!(rpc(&one_request(&mut h)), ("ping".into(), Some(3)));
    h.feed(&sse_chunked(&[], &sse_event(&error("null", -32700)), 8));
    assert_eq!(
        h.events(),
        vec![instant_failure(ErrorKind::JsonRpc(-32700))]
    );
}

#[test]
fn a_404_on_the_session_reinitializes_without_the_id() {
    for (status, body) in [
        (404, "Not Found: Session not found"),
        (400, "Bad Request: unknown session"),
    ] {
        let mut h = ready();
        h.feed(&response(status, &[("Content-Type", "text/plain")], body));
        assert_eq!(
            h.events(),
            vec![
                instant_failure(ErrorKind::Http(status)),
                Event::Reinitializing
            ]
        );
        assert!(!h.s.is_initialized());
        let init = one_request(&mut h);
        assert_eq!(rpc(&init), ("initialize".into(), Some(2)));
        assert_eq!(init.header("Mcp-Session-Id"), None);
        assert_eq!(init.header("MCP-Protocol-Version"), None);
        h.feed(&json_response(
            &[("Mcp-Session-Id", "sess-2")],
            &init_result(2, "srv"),
        ));
        let notified = one_request(&mut h);
        assert_eq!(notified.header("Mcp-Session-Id"), Some("sess-2"));
        h.feed(&response(202, &[], ""));
        assert_eq!(rpc(&one_request(&mut h)), ("ping".into(), Some(3)));
        assert_eq!(
            h.events(),
            vec![Event::Initialized {
                took: Duration::ZERO
            }]
        );
    }
}

#[test]
fn repeated_session_losses_end_the_session() {
    let mut h = ready();
    for round in 0..3 {
        h.feed(&response(404, &[], ""));
        let mut expected = vec![instant_failure(ErrorKind::Http(404)), Event::Reinitializing];
        if round == 2 {
            expected.push(Event::Error(ErrorKind::Http(404)));
            assert_eq!(h.events(), expected);
            break;
        }
        assert_eq!(h.events(), expected);
        let id = rpc(&one_request(&mut h)).1.unwrap();
        h.feed(&json_response(
            &[("Mcp-Session-Id", SID)],
            &init_result(id, "srv"),
        ));
        one_request(&mut h);
        h.feed(&response(202, &[], ""));
        one_request(&mut h);
        h.events();
    }
    assert_eq!(h.s.action(), Action::Close);
}

#[test]
fn an_idle_keep_alive_close_reconnects_when_due_and_keeps_the_session() {
    let mut h = ready_with(closed(1000), &[]);
    h.feed(&json_response(&[], &result(1, "{}")));
    h.events();
    let due = h.now + Duration::from_secs(1);
    h.advance_ms(300);
    h.eof();
    assert_eq!(h.events(), vec![Event::Reconnecting]);
    assert_eq!(h.s.action(), Action::Connect);
    assert_eq!(
        h.s.next_deadline(),
        Some(due),
        "reopened when the next request is due"
    );
    assert!(
        h.s.is_initialized(),
        "the MCP session outlives the connection"
    );
    h.run_to_deadline();
    h.advance_ms(1);
    h.connect();
    assert_eq!(
        h.events(),
        vec![Event::Connected {
            took: Duration::ZERO
        }]
    );
    let ping = one_request(&mut h);
    assert_eq!(rpc(&ping), ("ping".into(), Some(2)));
    assert_eq!(ping.header("Mcp-Session-Id"), Some(SID));
}

#[test]
fn connection_close_on_a_reply_reconnects_and_continues() {
    let mut h = ready();
    h.feed(&json_response(&[("Connection", "close")], &result(1, "{}")));
    assert_eq!(h.events(), vec![instant_ok(), Event::Reconnecting]);
    assert!(
        h.sent().is_empty(),
        "nothing is sent on a closing connection"
    );
    assert_eq!(h.s.action(), Action::Connect);
    assert_eq!(h.s.next_deadline(), None, "back to back: reconnect at once");
    h.connect();
    let ping = one_request(&mut h);
    assert_eq!(rpc(&ping), ("ping".into(), Some(2)));
    assert_eq!(ping.header("Mcp-Session-Id"), Some(SID));
}

#[test]
fn a_close_delimited_reply_ends_at_eof() {
    let mut h = ready();
    h.feed(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n");
    h.feed(result(1, "{}").as_bytes());
    assert!(h.events().is_empty());
    h.eof();
    assert_eq!(h.events(), vec![instant_ok(), Event::Reconnecting]);
}

#[test]
fn eof_with_a_request_in_flight_fails_it_and_backs_off() {
    let mut h = ready();
    h.feed(b"HTTP/1.1 200 OK\r\nContent-Type: appl");
    h.eof();
    assert_eq!(
        h.events(),
        vec![instant_failure(ErrorKind::Reset), Event::Reconnecting]
    );
    let wait = h.s.next_deadline().unwrap() - h.now;
    assert!(wait >= BACKOFF * 3 / 4, "{wait:?}");
    assert_eq!(h.s.buffered(), 0);
}

#[test]
fn traefik_sticky_cookie_is_replayed() {
    let mut h = ready_with(
        closed(0),
        &[("Set-Cookie", "_lb_mcp=5c6f8e0a2b1d4f7c; Path=/; HttpOnly")],
    );
    h.feed(&json_response(&[], &result(1, "{}")));
    let ping = one_request(&mut h);
    assert_eq!(ping.header("Cookie"), Some("_lb_mcp=5c6f8e0a2b1d4f7c"));
    h.feed(&json_response(
        &[
            ("Set-Cookie", "_lb_mcp=aaaa; Path=/"),
            ("Set-Cookie", "other=1"),
        ],
        &result(2, "{}"),
    ));
    let ping = one_request(&mut h);
    assert_eq!(ping.header("Cookie"), Some("_lb_mcp=aaaa; other=1"));
    h.shutdown();
    h.feed(&json_response(&[], &result(3, "{}")));
    let delete = one_request(&mut h);
    assert_eq!(delete.header("Cookie"), Some("_lb_mcp=aaaa; other=1"));
}

#[test]
fn replica_identity_comes_from_the_header_first() {
    let mut h = ready_with(closed(0), &[("X-Replica", "replica-2")]);
    assert_eq!(h.s.replica(), Some("replica-2"));
    h.feed(&json_response(
        &[("X-Replica", "replica-2")],
        &result(1, "{}"),
    ));
    assert_eq!(h.events(), vec![instant_ok()]);
    one_request(&mut h);
    h.feed(&json_response(
        &[("X-Replica", "replica-4")],
        &result(2, "{}"),
    ));
    assert_eq!(h.events(), vec![Event::ReplicaChanged, instant_ok()]);
    assert_eq!(h.s.replica(), Some("replica-4"));
}

#[test]
fn a_negotiated_version_other_than_ours_is_sent_back() {
    let mut h = Harness::new(context(Transport::Http, Scenario::Ping, closed(0)));
    h.connect();
    h.sent();
    let older = result(
        0,
        r#"{"protocolVersion":"2025-03-26","serverInfo":{"name":"old"},"capabilities":{}}"#,
    );
    h.feed(&json_response(&[("Mcp-Session-Id", SID)], &older));
    let notified = one_request(&mut h);
    assert_eq!(notified.header("MCP-Protocol-Version"), Some("2025-03-26"));
}

#[test]
fn stateless_servers_without_a_session_id_work() {
    let mut h = Harness::new(context(Transport::Http, Scenario::Ping, closed(0)));
    h.connect();
    h.sent();
    h.feed(&sse_chunked(&[], &sse_event(&init_result(0, "s")), 40));
    let notified = one_request(&mut h);
    assert_eq!(notified.header("Mcp-Session-Id"), None);
    h.feed(&response(202, &[], ""));
    one_request(&mut h);
    h.feed(&json_response(&[], &result(1, "{}")));
    one_request(&mut h);
    h.shutdown();
    h.feed(&json_response(&[], &result(2, "{}")));
    assert!(h.sent().is_empty(), "no session, no DELETE");
    assert_eq!(h.events().last(), Some(&Event::Closed));
    assert_eq!(h.s.action(), Action::Close);
}

#[test]
fn handshake_failures_over_http() {
    let mut h = Harness::new(context(Transport::Http, Scenario::Ping, closed(0)));
    h.connect();
    h.sent();
    h.feed(&response(503, &[("Content-Type", "text/plain")], "busy"));
    assert_eq!(
        h.events(),
        vec![
            Event::Connected {
                took: Duration::ZERO
            },
            Event::Error(ErrorKind::Http(503)),
            Event::Reconnecting
        ]
    );
    h.run_to_deadline();
    h.connect();
    h.sent();
    h.feed(&response(200, &[("Content-Type", "text/html")], "<html>"));
    assert_eq!(
        h.events()[1..],
        [Event::Error(ErrorKind::Protocol), Event::Reconnecting]
    );
    h.run_to_deadline();
    h.connect();
    let init_id = rpc(&one_request(&mut h)).1.unwrap();
    h.feed(&json_response(
        &[("Mcp-Session-Id", SID)],
        &init_result(init_id, "s"),
    ));
    let id = rpc(&one_request(&mut h));
    assert_eq!(id.0, "notifications/initialized");
    h.feed(&response(500, &[], ""));
    assert_eq!(
        h.events()[1..],
        [
            Event::ReplicaChanged,
            Event::Initialized {
                took: Duration::ZERO
            },
            Event::Error(ErrorKind::Http(500))
        ]
    );
    assert_eq!(
        h.s.action(),
        Action::Close,
        "three failed handshakes in a row"
    );
}

#[test]
fn unsolicited_and_oversized_replies_are_protocol_errors() {
    let mut h = ready_with(closed(1000), &[]);
    h.feed(&json_response(&[], &result(1, "{}")));
    h.events();
    h.feed(&response(200, &[], ""));
    assert_eq!(
        h.events(),
        vec![Event::Error(ErrorKind::Protocol), Event::Reconnecting]
    );
    let mut h = ready();
    let big = result(1, &format!("\"{}\"", "x".repeat(MAX_MESSAGE)));
    h.feed(&json_response(&[], &big));
    assert_eq!(
        h.events(),
        vec![instant_failure(ErrorKind::Protocol), Event::Reconnecting]
    );
}

#[test]
fn shutdown_deletes_the_session() {
    for (status, last) in [
        (200, Event::Closed),
        (202, Event::Closed),
        (204, Event::Closed),
        (405, Event::Closed),
        (500, Event::Error(ErrorKind::Http(500))),
    ] {
        let mut h = ready();
        h.shutdown();
        assert!(h.sent().is_empty());
        h.feed(&json_response(&[], &result(1, "{}")));
        let delete = one_request(&mut h);
        assert_eq!(
            (delete.method.as_str(), delete.path.as_str()),
            ("DELETE", "/mcp")
        );
        assert_eq!(delete.header("Mcp-Session-Id"), Some(SID));
        assert_eq!(delete.header("MCP-Protocol-Version"), Some("2025-06-18"));
        assert_eq!(h.s.action(), Action::Keep);
        h.feed(&response(status, &[], ""));
        assert_eq!(h.events(), vec![instant_ok(), last]);
        assert_eq!(h.s.action(), Action::Close);
    }
    let mut h = ready();
    h.shutdown();
    h.feed(&json_response(&[], &result(1, "{}")));
    h.sent();
    h.events();
    h.advance(REQUEST_TIMEOUT);
    assert_eq!(h.events(), vec![Event::Error(ErrorKind::Timeout)]);
    assert_eq!(h.s.action(), Action::Close);
}

#[test]
fn shutdown_after_the_server_closed_the_connection_reconnects_to_delete() {
    let mut h = ready_with(closed(1000), &[]);
    h.feed(&json_response(&[], &result(1, "{}")));
    h.eof();
    h.events();
    h.shutdown();
    assert_eq!(h.s.action(), Action::Connect);
    assert_eq!(h.s.next_deadline(), None);
    h.connect();
    let delete = one_request(&mut h);
    assert_eq!(delete.method, "DELETE");
    h.feed(&response(204, &[], ""));
    assert_eq!(
        h.events(),
        vec![
            Event::Connected {
                took: Duration::ZERO
            },
            Event::Closed
        ]
    );
    assert_eq!(h.s.action(), Action::Close);
}

#[test]
fn health_sends_plain_gets() {
    let mut h = Harness::new(context(Transport::Http, Scenario::Health, closed(0)));
    assert!(!h.s.is_initialized());
    h.connect();
    assert!(h.s.is_initialized());
    assert_eq!(
        h.sent_str(),
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
    );
    h.feed(&response(
        200,
        &[("Content-Type", "application/json"), ("X-Replica", "r7")],
        r#"{"status":"ok"}"#,
    ));
    assert_eq!(
        h.events(),
        vec![
            Event::Connected {
                took: Duration::ZERO
            },
            Event::ReplicaChanged,
            instant_ok()
        ]
    );
    assert_eq!(h.s.replica(), Some("r7"));
    assert!(h.sent_str().starts_with("GET /mcp HTTP/1.1\r\n"));
    h.feed(&response(503, &[], "down"));
    assert_eq!(h.events(), vec![instant_failure(ErrorKind::Http(503))]);
    h.shutdown();
    h.feed(&response(200, &[], ""));
    assert_eq!(h.events(), vec![instant_ok(), Event::Closed]);
    assert_eq!(h.s.action(), Action::Close);
}

#[test]
fn stateless_requests_skip_the_handshake_and_reuse_id_one() {
    let mut cx = context(Transport::Http, Scenario::Ping, closed(0));
    cx.stateless = true;
    let mut h = Harness::new(cx);
    h.connect();
    assert!(h.s.is_initialized(), "no handshake to wait for");
    for _ in 0..3 {
        let ping = one_request(&mut h);
        assert_eq!(rpc(&ping), ("ping".into(), Some(1)));
        assert_eq!(ping.header("Mcp-Session-Id"), None);
        h.feed(&json_response(
            &[],
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        ));
    }
    let events = h.events();
    let ok = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Response {
                    outcome: crate::proto::Outcome::Ok,
                    ..
                }
            )
        })
        .count();
    assert_eq!(ok, 3, "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Initialized { .. }))
    );
    assert_eq!(rpc(&one_request(&mut h)), ("ping".into(), Some(1)));
    h.s.shutdown(&h.cx, h.now, &mut Vec::new());
    h.feed(&json_response(
        &[],
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
    ));
    assert!(h.sent().is_empty(), "no session to DELETE");
    assert_eq!(h.s.action(), Action::Close);
}
