//! Byte-level tests of the TCP and WebSocket handlers, including every split of the input.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wire::ws::Opcode;

use super::Flow;
use crate::metrics::Transport;
use crate::testing::{Harness, client_frame, parse_responses, server_frames};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("every reply line is JSON"))
        .collect()
}

fn tcp_session_stream() -> Vec<u8> {
    let mut text = [
        r#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#,
        INIT,
        "",
        INITIALIZED,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a\nb"}}}"#,
        "   \r",
        r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
        "{bad",
    ]
    .join("\n");
    text.push('\n');
    text.into_bytes()
}

#[test]
fn tcp_replies_are_identical_at_every_split() {
    let stream = tcp_session_stream();
    let mut whole = Harness::new(Transport::Tcp, &[]);
    assert_eq!(whole.feed(&stream), Flow::Continue);
    let expected = whole.sent_text();
    let replies = lines(&expected);
    let codes: Vec<_> = replies.iter().map(|r| r["error"]["code"].clone()).collect();
    assert_eq!(
        codes,
        [
            json!(-32005),
            Value::Null,
            Value::Null,
            Value::Null,
            json!(-32700)
        ]
    );
    assert_eq!(replies[2]["result"]["content"][0]["text"], "a\nb");
    assert_eq!(replies[3], json!({"jsonrpc":"2.0","id":3,"result":{}}));
    assert!(expected.ends_with('\n'));
    for cut in 0..=stream.len() {
        let mut h = Harness::new(Transport::Tcp, &[]);
        h.feed_split(&stream, cut);
        assert_eq!(h.sent_text(), expected, "cut at byte {cut}");
    }
    let mut h = Harness::new(Transport::Tcp, &[]);
    for b in &stream {
        h.feed(std::slice::from_ref(b));
    }
    assert_eq!(h.sent_text(), expected, "byte at a time");
}

#[test]
fn tcp_session_gauge_follows_the_connection() {
    let mut h = Harness::new(Transport::Tcp, &[]);
    h.feed(format!("{INIT}\n").as_bytes());
    assert_eq!(h.w.shared.gauges.stream_sessions.load(Relaxed), 1);
    h.reconnect(Transport::Tcp);
    assert_eq!(h.w.shared.gauges.stream_sessions.load(Relaxed), 0);
}

#[test]
fn tcp_oversized_line_gets_an_error_then_close() {
    let mut h = Harness::new(Transport::Tcp, &["--max-message", "64"]);
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"{}\"}}\n",
        "x".repeat(100)
    );
    for cut in [0, 10, 70, big.len()] {
        h.reconnect(Transport::Tcp);
        assert_eq!(
            h.feed_split(big.as_bytes(), cut),
            Flow::CloseAfterFlush,
            "cut {cut}"
        );
        let reply = &lines(&h.sent_text())[0];
        assert_eq!(reply["error"]["code"], -32600);
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("64 byte limit")
        );
    }
    h.reconnect(Transport::Tcp);
    let unfinished = vec![b'x'; 65];
    assert_eq!(
        h.feed(&unfinished),
        Flow::CloseAfterFlush,
        "no newline needed to exceed the cap"
    );
}

#[test]
fn tcp_drop_closes_without_reply() {
    let mut h = Harness::new(Transport::Tcp, &["--drop-rate", "1"]);
    h.feed(format!("{INIT}\n").as_bytes());
    assert_eq!(lines(&String::from_utf8(h.take_sent()).unwrap()).len(), 1);
    let flow = h.feed(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n");
    assert_eq!(flow, Flow::CloseNow);
    assert!(h.sent.is_empty());
}

#[test]
fn tcp_delays_hold_replies_until_due_in_any_order() {
    let mut h = Harness::new(Transport::Tcp, &[]);
    h.feed(format!("{INIT}\n").as_bytes());
    h.take_sent();
    let t0 = Instant::now();
    let sleep = |id: u32, ms: u32| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"sleep","arguments":{{"ms":{ms}}}}}}}"#
        )
    };
    h.feed(format!("{}\n{}\n", sleep(1, 50), sleep(2, 10)).as_bytes());
    assert!(h.sent.is_empty());
    h.tick(t0 + Duration::from_millis(30));
    assert_eq!(
        lines(&h.sent_text())[0]["id"],
        2,
        "the shorter sleep answers first"
    );
    h.tick(t0 + Duration::from_millis(60));
    assert_eq!(lines(&h.sent_text())[1]["id"], 1);
}

fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /mcp/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

fn ws_stream() -> Vec<u8> {
    let mut s = upgrade_request("Sec-WebSocket-Protocol: chat, mcp\r\n").into_bytes();
    s.extend(client_frame(Opcode::Text, INIT.as_bytes()));
    s.extend(client_frame(
        Opcode::Text,
        format!(
            "{INITIALIZED}\n{}\n\n{}",
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#
        )
        .as_bytes(),
    ));
    s.extend(client_frame(Opcode::Ping, b"hb"));
    s.extend(client_frame(Opcode::Text, b"\xff\xfe"));
    s.extend(client_frame(Opcode::Close, &1000u16.to_be_bytes()));
    s
}

#[test]
fn websocket_upgrade_and_frames_are_identical_at_every_split() {
    let stream = ws_stream();
    let mut whole = Harness::new(Transport::Http, &[]);
    assert_eq!(whole.feed(&stream), Flow::CloseAfterFlush);
    let expected = whole.take_sent();
    let (replies, frames) = parse_responses(&expected);
    assert_eq!(replies.len(), 1);
    let up = &replies[0];
    assert_eq!(up.status, 101);
    assert_eq!(
        up.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(up.header("sec-websocket-protocol"), Some("mcp"));
    assert_eq!(up.header("x-replica"), Some("r-test"));
    let frames = server_frames(&frames);
    let kinds: Vec<&str> = frames.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["text", "text", "text", "pong", "text", "close"]);
    let json = |i: usize| serde_json::from_slice::<Value>(&frames[i].1).unwrap();
    assert_eq!(json(0)["result"]["serverInfo"]["name"], "r-test");
    assert_eq!(json(1), json!({"jsonrpc":"2.0","id":2,"result":{}}));
    assert_eq!(json(2)["id"], 3);
    assert_eq!(frames[3].1, b"hb");
    assert_eq!(json(4)["error"]["code"], -32700, "invalid UTF-8");
    assert_eq!(frames[5].1, 1000u16.to_be_bytes());
    for cut in 0..=stream.len() {
        let mut h = Harness::new(Transport::Http, &[]);
        h.feed_split(&stream, cut);
        assert_eq!(h.sent, expected, "cut at byte {cut}");
    }
}

#[test]
fn websocket_without_subprotocol_offer_gets_none() {
    let mut h = Harness::new(Transport::Http, &[]);
    h.feed(upgrade_request("").as_bytes());
    let (replies, _) = parse_responses(&h.sent);
    assert_eq!(replies[0].status, 101);
    assert_eq!(replies[0].header("sec-websocket-protocol"), None);
}

#[test]
fn websocket_refusals() {
    let cases = [
        ("GET /mcp/ws HTTP/1.1\r\nHost: x\r\n\r\n", 426),
        (
            "GET /mcp/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: a\r\n\r\n",
            426,
        ),
        (
            "GET /mcp/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
        ),
        ("POST /mcp/ws HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
    ];
    for (request, status) in cases {
        let mut h = Harness::new(Transport::Http, &[]);
        assert_eq!(h.feed(request.as_bytes()), Flow::Continue);
        let (replies, rest) = parse_responses(&h.sent);
        assert_eq!(replies[0].status, status, "{request}");
        assert!(rest.is_empty());
    }
}

#[test]
fn websocket_violations_close_with_the_right_code() {
    let mut unmasked = Vec::new();
    wire::ws::encode_frame(&mut unmasked, Opcode::Text, b"{}", None);
    let too_big = client_frame(Opcode::Text, &[b' '; 100]);
    for (frame, code, error_reply) in [(unmasked, 1002u16, false), (too_big, 1009, true)] {
        let mut h = Harness::new(Transport::Http, &["--max-message", "64"]);
        h.feed(upgrade_request("").as_bytes());
        h.take_sent();
        assert_eq!(h.feed(&frame), Flow::CloseAfterFlush);
        let frames = server_frames(&h.sent);
        let last = frames.last().unwrap();
        assert_eq!(
            (last.0.as_str(), last.1.clone()),
            ("close", code.to_be_bytes().to_vec())
        );
        if error_reply {
            let v: Value = serde_json::from_slice(&frames[0].1).unwrap();
            assert_eq!(v["error"]["code"], -32600);
        }
    }
}

#[test]
fn websocket_upgrade_counts_and_sessions() {
    let mut h = Harness::new(Transport::Http, &[]);
    h.feed(upgrade_request("").as_bytes());
    h.feed(&client_frame(Opcode::Text, INIT.as_bytes()));
    let g = &h.w.shared.gauges;
    assert_eq!(g.accepted[Transport::WebSocket as usize].load(Relaxed), 1);
    assert_eq!(g.stream_sessions.load(Relaxed), 1);
    h.reconnect(Transport::Tcp);
    assert_eq!(h.w.shared.gauges.stream_sessions.load(Relaxed), 0);
}
