//! WebSocket: upgrade, masked text frames, several messages per frame, pings, close.

use std::time::Duration;

use wire::ws::{Opcode, accept_key};

use super::harness::*;
use crate::proto::{Action, ErrorKind, Event, Outcome, Scenario, Transport};

fn upgrade_answer(request: &[u8], extra_headers: &str) -> Vec<u8> {
    let text = String::from_utf8(request.to_vec()).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("the upgrade carries a key");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: mcp\r\n{extra_headers}\r\n",
        accept_key(key.as_bytes())
    )
    .into_bytes()
}

fn texts(bytes: &[u8]) -> Vec<(String, Option<u64>)> {
    client_frames(bytes)
        .into_iter()
        .map(|(op, payload)| {
            assert_eq!(op, Opcode::Text);
            method_and_id(std::str::from_utf8(&payload).unwrap())
        })
        .collect()
}

fn text_frame(json: &str) -> Vec<u8> {
    server_frame(Opcode::Text, json.as_bytes())
}

fn upgraded(scenario: Scenario) -> Harness {
    let mut h = Harness::new(context(Transport::WebSocket, scenario, closed(0)));
    h.connect();
    let request = h.sent();
    let answer = upgrade_answer(&request, "");
    h.feed(&answer);
    h
}

/// Upgraded and initialized; the first ping (id 1) is in flight.
fn ready() -> Harness {
    let mut h = upgraded(Scenario::Ping);
    assert_eq!(texts(&h.sent()), vec![("initialize".into(), Some(0))]);
    h.feed(&text_frame(&init_result(0, "ws-replica")));
    assert_eq!(
        texts(&h.sent()),
        vec![
            ("notifications/initialized".into(), None),
            ("ping".into(), Some(1))
        ]
    );
    h.events();
    h
}

#[test]
fn upgrade_request_and_connect_time_include_the_upgrade() {
    let mut h = Harness::new(context(Transport::WebSocket, Scenario::Ping, closed(0)));
    h.connect();
    assert!(h.events().is_empty(), "not connected before the upgrade");
    let request = h.sent_str();
    assert!(request.starts_with(
        "GET /mcp/ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mcp\r\nSec-WebSocket-Key: "
    ));
    assert_eq!(h.s.next_deadline(), Some(h.now + CONNECT_TIMEOUT));
    h.advance_ms(4);
    let answer = upgrade_answer(request.as_bytes(), "");
    h.feed(&answer);
    assert_eq!(
        h.events(),
        vec![Event::Connected {
            took: Duration::from_millis(4)
        }]
    );
    assert_eq!(texts(&h.sent()), vec![("initialize".into(), Some(0))]);
    assert_eq!(h.s.buffered(), 0);
}

#[test]
fn upgrade_answer_and_frames_split_anywhere() {
    let mut h = Harness::new(context(Transport::WebSocket, Scenario::Ping, closed(0)));
    h.connect();
    let mut stream = upgrade_answer(&h.sent(), "X-Other: 1\r\n");
    stream.extend(server_frame(Opcode::Ping, b"hello"));
    stream.extend(text_frame(NOTIFICATION));
    every_split(&stream, |feeds| {
        let mut h = Harness::new(context(Transport::WebSocket, Scenario::Ping, closed(0)));
        h.connect();
        h.sent();
        h.feed_all(feeds);
        assert_eq!(
            h.events(),
            vec![Event::Connected {
                took: Duration::ZERO
            }]
        );
        let frames = client_frames(&h.sent());
        assert_eq!(frames[0], (Opcode::Pong, b"hello".to_vec()));
        assert_eq!(
            texts(&frames_bytes(&frames[1..])),
            vec![("initialize".into(), Some(0))]
        );
    });
    let reply = text_frame(&format!("{NOTIFICATION}\n{}", init_result(0, "ws-1")));
    every_split(&reply, |feeds| {
        let mut h = upgraded(Scenario::Ping);
        h.sent();
        h.events();
        h.feed_all(feeds);
        assert_eq!(
            h.events(),
            vec![
                Event::ReplicaChanged,
                Event::Initialized {
                    took: Duration::ZERO
                }
            ]
        );
        assert_eq!(
            texts(&h.sent()),
            vec![
                ("notifications/initialized".into(), None),
                ("ping".into(), Some(1))
            ]
        );
        assert_eq!(h.s.replica(), Some("ws-1"));
    });
}

/// Re-encodes decoded client frames (masked) so `texts` can read a subset.
fn frames_bytes(frames: &[(Opcode, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (op, payload) in frames {
        wire::ws::encode_frame(&mut out, *op, payload, Some([9, 8, 7, 6]));
    }
    out
}

#[test]
fn a_wrong_accept_key_is_a_protocol_error() {
    let mut h = Harness::new(context(Transport::WebSocket, Scenario::Ping, closed(0)));
    h.connect();
    h.sent();
    let wrong = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ==")
    );
    h.feed(wrong.as_bytes());
    assert_eq!(h.events(), vec![Event::Error(ErrorKind::Protocol)]);
    assert_eq!(h.s.action(), Action::Connect);
    assert!(h.sent().is_empty());
    let mut refused = Harness::new(context(Transport::WebSocket, Scenario::Ping, closed(0)));
    refused.connect();
    refused.sent();
    refused.feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(refused.events(), vec![Event::Error(ErrorKind::Http(404))]);
}

#[test]
fn an_unanswered_upgrade_times_out_as_a_connect() {
    let mut h = Harness::new(context(Transport::WebSocket, Scenario::Ping, closed(0)));
    h.connect();
    h.sent();
    h.advance(CONNECT_TIMEOUT);
    assert_eq!(h.events(), vec![Event::Error(ErrorKind::ConnectTimeout)]);
    assert_eq!(h.s.action(), Action::Connect);
}

#[test]
fn several_messages_in_one_frame() {
    let mut h = ready();
    let payload = format!(
        "{NOTIFICATION}\n{}\n\n{}\n",
        result(99, "{}"),
        result(1, r#"{"ok":true}"#)
    );
    h.feed(&text_frame(&payload));
    assert_eq!(h.events(), vec![instant_ok()]);
    assert_eq!(texts(&h.sent()), vec![("ping".into(), Some(2))]);
}

#[test]
fn fragmented_frames_are_reassembled() {
    let mut h = ready();
    let text = result(1, "{}");
    let (a, b) = text.as_bytes().split_at(10);
    let mut first = server_frame(Opcode::Text, a);
    first[0] &= 0x7F;
    let mut stream = first;
    stream.extend(server_frame(Opcode::Ping, b"mid"));
    stream.extend(server_frame(Opcode::Continuation, b));
    every_split(&stream, |feeds| {
        let mut h = ready();
        h.feed_all(feeds);
        assert_eq!(h.events(), vec![instant_ok()]);
        let frames = client_frames(&h.sent());
        assert_eq!(frames[0], (Opcode::Pong, b"mid".to_vec()));
        assert_eq!(frames.len(), 2);
    });
    h.feed(&stream);
    assert_eq!(h.events(), vec![instant_ok()]);
}

#[test]
fn server_pings_get_pongs_and_server_requests_get_replies() {
    let mut h = ready();
    h.feed(&server_frame(Opcode::Ping, b"heartbeat"));
    h.feed(&text_frame(
        r#"{"jsonrpc":"2.0","id":"p1","method":"ping"}"#,
    ));
    let frames = client_frames(&h.sent());
    assert_eq!(
        frames,
        vec![
            (Opcode::Pong, b"heartbeat".to_vec()),
            (
                Opcode::Text,
                br#"{"jsonrpc":"2.0","id":"p1","result":{}}"#.to_vec()
            )
        ]
    );
    assert!(h.events().is_empty());
    h.feed(&server_frame(Opcode::Pong, b""));
    assert!(h.sent().is_empty());
}

#[test]
fn shutdown_sends_close_and_waits_for_the_echo() {
    let mut h = ready();
    h.shutdown();
    assert!(h.sent().is_empty(), "the ping in flight is answered first");
    h.feed(&text_frame(&result(1, "{}")));
    assert_eq!(h.events(), vec![instant_ok()]);
    assert_eq!(
        client_frames(&h.sent()),
        vec![(Opcode::Close, 1000u16.to_be_bytes().to_vec())]
    );
    assert_eq!(h.s.action(), Action::Keep);
    h.feed(&server_frame(Opcode::Close, &1000u16.to_be_bytes()));
    assert_eq!(h.events(), vec![Event::Closed]);
    assert_eq!(h.s.action(), Action::Close);

    let mut silent = closing();
    silent.advance(REQUEST_TIMEOUT);
    assert_eq!(silent.events(), vec![Event::Error(ErrorKind::Timeout)]);
    assert_eq!(silent.s.action(), Action::Close);

    let mut dropped = closing();
    dropped.eof();
    assert_eq!(dropped.events(), vec![Event::Closed]);
}

/// Shut down, the last reply read, the close frame sent.
fn closing() -> Harness {
    let mut h = ready();
    h.shutdown();
    h.feed(&text_frame(&result(1, "{}")));
    h.sent();
    h.events();
    h
}

#[test]
fn a_close_from_the_server_is_echoed_and_the_session_reconnects() {
    let mut h = ready();
    h.feed(&text_frame(&result(1, "{}")));
    h.sent();
    h.events();
    h.feed(&server_frame(Opcode::Close, &1001u16.to_be_bytes()));
    assert_eq!(
        h.events(),
        vec![instant_failure(ErrorKind::Reset), Event::Reconnecting]
    );
    assert_eq!(
        client_frames(&h.sent()),
        vec![(Opcode::Close, 1000u16.to_be_bytes().to_vec())]
    );
    assert_eq!(h.s.action(), Action::Connect);
}

#[test]
fn the_replica_header_on_the_upgrade_wins_over_server_info() {
    let mut h = Harness::new(context(Transport::WebSocket, Scenario::Ping, closed(0)));
    h.connect();
    let answer = upgrade_answer(&h.sent(), "X-Replica: task-3\r\n");
    h.feed(&answer);
    h.sent();
    h.feed(&text_frame(&init_result(0, "erlmcp")));
    assert_eq!(h.s.replica(), Some("task-3"));
    assert_eq!(
        h.events()
            .iter()
            .filter(|e| **e == Event::ReplicaChanged)
            .count(),
        1
    );
}

#[test]
fn oversized_frames_and_masked_server_frames_are_protocol_errors() {
    let mut h = ready();
    h.feed(&text_frame(&"x".repeat(MAX_MESSAGE + 1)));
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
    let mut h = ready();
    let mut masked = Vec::new();
    wire::ws::encode_frame(&mut masked, Opcode::Text, b"{}", Some([1, 2, 3, 4]));
    h.feed(&masked);
    assert_eq!(h.s.action(), Action::Connect);
}
