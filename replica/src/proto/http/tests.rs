//! Byte-level tests of Streamable HTTP, health and metrics, and of the HTTP limits.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::metrics::Transport;
use crate::proto::Flow;
use crate::testing::{Harness, HttpReply, parse_responses};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn post(body: &str, headers: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn session_header(sid: &str) -> String {
    format!("Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\n")
}

fn replies(h: &mut Harness) -> Vec<HttpReply> {
    let (replies, rest) = parse_responses(&h.take_sent());
    assert!(rest.is_empty(), "trailing bytes after the responses");
    for r in &replies {
        assert_eq!(
            r.header("x-replica"),
            Some("r-test"),
            "every response names the replica"
        );
    }
    replies
}

/// Initializes over `h`; returns the minted session id.
fn initialize(h: &mut Harness) -> String {
    h.feed(post(INIT, "").as_bytes());
    let r = &replies(h)[0];
    assert_eq!(r.status, 200);
    let sid = r
        .header("mcp-session-id")
        .expect("initialize mints a session")
        .to_string();
    assert_eq!(sid.len(), 32);
    assert_eq!(r.json()["result"]["serverInfo"]["name"], "r-test");
    sid
}

fn pipelined_stream(sid: &str) -> Vec<u8> {
    let s = session_header(sid);
    let echo = r#"{"jsonrpc":"2.0","id":"e","method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#;
    let mut stream = String::new();
    stream += &post(
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &s,
    );
    stream += &post(r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#, &s);
    stream += &format!(
        "POST /mcp?x=1 HTTP/1.1\r\nContent-Type: application/json; charset=utf-8\r\n{s}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x};ext=1\r\n{}\r\n0\r\nTrailer: t\r\n\r\n",
        10,
        &echo[..10],
        echo.len() - 10,
        &echo[10..]
    );
    stream += "GET /nowhere HTTP/1.1\r\n\r\n";
    stream += "GET /mcp HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n";
    stream += &post(r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#, &s);
    stream.into_bytes()
}

#[test]
fn pipelined_requests_are_answered_identically_at_every_split() {
    let mut h = Harness::new(Transport::Http, &[]);
    let sid = initialize(&mut h);
    let stream = pipelined_stream(&sid);
    h.reconnect(Transport::Http);
    assert_eq!(h.feed(&stream), Flow::Continue);
    let expected = h.take_sent();
    let (all, _) = parse_responses(&expected);
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [202, 200, 200, 404, 405, 200]);
    assert!(all[0].body.is_empty());
    assert_eq!(all[1].json(), json!({"jsonrpc":"2.0","id":2,"result":{}}));
    assert_eq!(all[2].json()["result"]["content"][0]["text"], "hi");
    assert_eq!(all[4].header("allow"), Some("POST, DELETE"));
    assert_eq!(all[5].json()["id"], 3);
    for cut in 0..=stream.len() {
        h.reconnect(Transport::Http);
        assert_eq!(h.feed_split(&stream, cut), Flow::Continue, "cut {cut}");
        assert_eq!(h.sent, expected, "cut at byte {cut}");
    }
}

#[test]
fn stateless_mode_answers_without_a_session() {
    let mut h = Harness::new(Transport::Http, &["--stateless"]);
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    for _ in 0..2 {
        h.feed(post(ping, "").as_bytes());
        let r = &replies(&mut h)[0];
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!({"jsonrpc":"2.0","id":1,"result":{}}));
        assert_eq!(r.header("mcp-session-id"), None, "no session is minted");
    }
    let init = r#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-11-25","clientInfo":{"name":"t","version":"1"},"capabilities":{}}}"#;
    h.feed(post(init, "").as_bytes());
    let r = &replies(&mut h)[0];
    assert!(
        r.header("mcp-session-id").is_some(),
        "initialize still starts a session"
    );
}

#[test]
fn session_rules() {
    let mut h = Harness::new(Transport::Http, &[]);
    let ping = r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#;
    h.feed(post(ping, "").as_bytes());
    let r = &replies(&mut h)[0];
    assert_eq!(r.status, 400, "no session id on a non-initialize request");
    assert_eq!(r.json()["error"]["code"], -32005);
    assert_eq!(r.json()["id"], 5);
    h.feed(
        post(
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "",
        )
        .as_bytes(),
    );
    assert_eq!(
        replies(&mut h)[0].status,
        400,
        "notifications need the session too"
    );
    h.feed(post(ping, &session_header("0123456789abcdef0123456789abcdef")).as_bytes());
    let r = &replies(&mut h)[0];
    assert_eq!(r.status, 404, "unknown session");
    assert_eq!(r.json()["error"]["code"], -32001);
    h.feed(post(ping, "Mcp-Session-Id: not-ours\r\n").as_bytes());
    assert_eq!(replies(&mut h)[0].status, 404, "malformed session id");

    let sid = initialize(&mut h);
    h.feed(post(INIT, &session_header(&sid)).as_bytes());
    let r = &replies(&mut h)[0];
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (200, json!(-32005)),
        "second initialize"
    );
    h.feed(
        post(
            ping,
            &format!("Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2024-11-05\r\n"),
        )
        .as_bytes(),
    );
    assert_eq!(
        replies(&mut h)[0].status,
        400,
        "protocol version differs from the negotiated one"
    );
    h.feed(
        post(
            ping,
            &format!("Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 1.0\r\n"),
        )
        .as_bytes(),
    );
    assert_eq!(replies(&mut h)[0].status, 400, "unknown protocol version");
    h.feed(post(ping, &format!("Mcp-Session-Id: {sid}\r\n")).as_bytes());
    assert_eq!(
        replies(&mut h)[0].json()["result"],
        json!({}),
        "the version header is optional"
    );

    h.reconnect(Transport::Http);
    h.feed(post(ping, &session_header(&sid)).as_bytes());
    let r = &replies(&mut h)[0];
    assert_eq!(r.status, 200, "a session outlives its connection");
    assert_eq!(r.header("mcp-session-id"), Some(sid.as_str()));

    h.feed(format!("DELETE /mcp HTTP/1.1\r\nMcp-Session-Id: {sid}\r\n\r\n").as_bytes());
    assert_eq!(replies(&mut h)[0].status, 200);
    h.feed(post(ping, &session_header(&sid)).as_bytes());
    assert_eq!(replies(&mut h)[0].status, 404, "a deleted session is gone");
    h.feed(format!("DELETE /mcp HTTP/1.1\r\nMcp-Session-Id: {sid}\r\n\r\n").as_bytes());
    assert_eq!(replies(&mut h)[0].status, 404);
    h.feed(b"DELETE /mcp HTTP/1.1\r\n\r\n");
    assert_eq!(replies(&mut h)[0].status, 400);
    assert_eq!(h.w.shared.sessions.len(), 0);
}

#[test]
fn failed_initialize_mints_no_session() {
    let mut h = Harness::new(Transport::Http, &[]);
    let old = INIT.replace("2025-11-25", "2025-06-18");
    h.feed(post(&old, "").as_bytes());
    let r = &replies(&mut h)[0];
    assert_eq!(r.json()["error"]["code"], -32061);
    assert_eq!(r.header("mcp-session-id"), None);
    assert_eq!(h.w.shared.sessions.len(), 0);
}

#[test]
fn bad_bodies_and_media_types() {
    let mut h = Harness::new(Transport::Http, &[]);
    h.feed(b"POST /mcp HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!(replies(&mut h)[0].status, 415);
    h.feed(post("{oops", "").as_bytes());
    let r = &replies(&mut h)[0];
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!(-32700))
    );
    h.feed(post("[]", "").as_bytes());
    let r = &replies(&mut h)[0];
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!(-32600))
    );
    let mut bytes = post("{\"x\":\"\u{e9}\"}", "").into_bytes();
    let at = bytes.len() - 3;
    bytes[at] = 0xff;
    h.feed(&bytes);
    let r = &replies(&mut h)[0];
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!(-32700)),
        "invalid UTF-8"
    );
    assert_eq!(h.flow, Flow::Continue, "bad JSON keeps the connection");
}

fn closes_with(args: &[&str], request: &[u8], status: u16) -> Harness {
    let mut h = Harness::new(Transport::Http, args);
    assert_eq!(
        h.feed(request),
        Flow::CloseAfterFlush,
        "{}",
        String::from_utf8_lossy(request)
    );
    let r = &replies(&mut h)[0];
    assert_eq!(r.status, status);
    assert_eq!(r.header("connection"), Some("close"));
    h
}

#[test]
fn limits_answer_and_close() {
    let big = post(&"x".repeat(200), "");
    closes_with(&["--max-message", "100"], big.as_bytes(), 413);
    let chunked = format!(
        "POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n60\r\n{}\r\n60\r\n{}\r\n",
        "a".repeat(0x60),
        "b".repeat(0x60)
    );
    closes_with(&["--max-message", "100"], chunked.as_bytes(), 413);
    let huge_head = format!(
        "GET /health HTTP/1.1\r\nX-Big: {}\r\n",
        "h".repeat(super::MAX_HEAD)
    );
    closes_with(&[], huge_head.as_bytes(), 431);
    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    closes_with(
        &[],
        format!("GET /health HTTP/1.1\r\n{many}\r\n").as_bytes(),
        431,
    );
    closes_with(&[], b"BLAH\x01 / HTTP/1.1\r\n\r\n", 400);
    closes_with(&[], b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400);
    closes_with(
        &[],
        b"POST /mcp HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    );
    closes_with(
        &[],
        b"POST /mcp HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    );
    closes_with(
        &[],
        b"POST /mcp HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
    );
}

#[test]
fn a_head_dribbled_in_small_pieces_is_still_capped() {
    let mut h = Harness::new(Transport::Http, &[]);
    h.feed(b"GET /health HTTP/1.1\r\n");
    let mut flow = Flow::Continue;
    for _ in 0..(super::MAX_HEAD / 8 + 2) {
        flow = h.feed(b"X-A: bbb");
        if flow != Flow::Continue {
            break;
        }
    }
    assert_eq!(flow, Flow::CloseAfterFlush);
    assert_eq!(replies(&mut h)[0].status, 431);
}

#[test]
fn unfinished_requests_time_out() {
    let t0 = Instant::now();
    for partial in [
        &b"GET /health HTTP/1.1\r\nHost:"[..],
        &post(INIT, "").as_bytes()[..150],
    ] {
        let mut h = Harness::new(Transport::Http, &["--read-timeout", "2s"]);
        h.feed(partial);
        assert_eq!(h.tick(t0 + Duration::from_millis(1500)), Flow::Continue);
        assert!(h.sent.is_empty());
        assert_eq!(h.tick(t0 + Duration::from_secs(3)), Flow::CloseAfterFlush);
        assert_eq!(replies(&mut h)[0].status, 408);
    }
    let mut h = Harness::new(Transport::Http, &["--read-timeout", "2s"]);
    h.feed(b"GET /live HTTP/1.1\r\n\r\n");
    replies(&mut h);
    assert_eq!(
        h.proto.deadline(&h.w),
        None,
        "no timer while idle between requests"
    );
}

#[test]
fn sse_mode_primes_then_sends_the_message() {
    let mut h = Harness::new(Transport::Http, &["--sse"]);
    h.feed(post(INIT, "").as_bytes());
    let r = &replies(&mut h)[0];
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let body = String::from_utf8(r.body.clone()).unwrap();
    let events: Vec<&str> = body.split("\n\n").collect();
    assert_eq!(events.len(), 3, "{body:?}");
    assert!(events[2].is_empty());
    let priming: Vec<&str> = events[0].lines().collect();
    assert!(priming[0].starts_with("id: ") && priming[0].len() > 4);
    assert_eq!(priming[1], "data: ");
    let message: Vec<&str> = events[1].lines().collect();
    assert_eq!(message[0], "event: message");
    let data: Value = serde_json::from_str(message[1].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(data["result"]["protocolVersion"], "2025-11-25");
    let sid = r.header("mcp-session-id").unwrap().to_string();
    h.feed(
        post(
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
            &format!("Mcp-Session-Id: {sid}\r\nAccept: application/json\r\n"),
        )
        .as_bytes(),
    );
    let r = &replies(&mut h)[0];
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "a client that takes no SSE gets JSON"
    );
}

#[test]
fn chunked_mode_frames_bodies() {
    let mut h = Harness::new(Transport::Http, &["--chunked", "--sse"]);
    h.feed(post(INIT, "").as_bytes());
    let r = &replies(&mut h)[0];
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    assert!(String::from_utf8_lossy(&r.body).contains("event: message\ndata: {"));
    h.feed(b"GET /ready HTTP/1.1\r\n\r\n");
    let r = &replies(&mut h)[0];
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.json()["status"], "ready");
}

#[test]
fn delayed_replies_keep_http_order() {
    let mut h = Harness::new(Transport::Http, &[]);
    let sid = initialize(&mut h);
    let s = session_header(&sid);
    let sleep = |id: u32, ms: u32| {
        post(
            &format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"sleep","arguments":{{"ms":{ms}}}}}}}"#
            ),
            &s,
        )
    };
    let t0 = Instant::now();
    let mut stream = sleep(1, 40);
    stream += &sleep(2, 5);
    stream += "GET /live HTTP/1.1\r\n\r\n";
    h.feed(stream.as_bytes());
    assert!(
        h.sent.is_empty(),
        "nothing may overtake the first, delayed reply"
    );
    h.tick(t0 + Duration::from_millis(20));
    assert!(h.sent.is_empty());
    h.tick(t0 + Duration::from_millis(100));
    let r = replies(&mut h);
    assert_eq!(r.len(), 3);
    assert_eq!(
        (r[0].json()["id"].clone(), r[1].json()["id"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(r[2].json()["status"], "alive");
}

#[test]
fn keep_alive_rules() {
    let mut h = Harness::new(Transport::Http, &[]);
    assert_eq!(h.feed(b"GET /live HTTP/1.0\r\n\r\n"), Flow::CloseAfterFlush);
    assert_eq!(replies(&mut h)[0].header("connection"), Some("close"));
    h.reconnect(Transport::Http);
    assert_eq!(
        h.feed(b"GET /live HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        Flow::Continue
    );
    h.reconnect(Transport::Http);
    let two = b"GET /live HTTP/1.1\r\nConnection: close\r\n\r\nGET /live HTTP/1.1\r\n\r\n";
    assert_eq!(h.feed(two), Flow::CloseAfterFlush);
    assert_eq!(
        replies(&mut h).len(),
        1,
        "nothing is answered after Connection: close"
    );
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let mut h = Harness::new(Transport::Http, &[]);
    let head = format!(
        "POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        INIT.len()
    );
    h.feed(head.as_bytes());
    assert_eq!(h.take_sent(), b"HTTP/1.1 100 Continue\r\n\r\n");
    h.feed(INIT.as_bytes());
    assert_eq!(replies(&mut h)[0].status, 200);
}

#[test]
fn health_endpoints_and_metrics() {
    let mut h = Harness::new(Transport::Http, &[]);
    let _ = initialize(&mut h);
    for (path, status) in [
        ("/health", "healthy"),
        ("/ready", "ready"),
        ("/live", "alive"),
    ] {
        h.feed(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes());
        let r = &replies(&mut h)[0];
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(
            (v["status"].as_str(), v["node"].as_str()),
            (Some(status), Some("r-test"))
        );
        assert!(v["uptime"].as_f64().unwrap() >= 0.0);
    }
    h.feed(b"GET /health HTTP/1.1\r\n\r\n");
    let v = replies(&mut h)[0].json();
    assert_eq!(v["metrics"]["http_sessions"], 1);
    assert_eq!(v["metrics"]["requests"], 1);
    h.feed(b"POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(replies(&mut h)[0].status, 405);
    h.feed(b"GET /metrics HTTP/1.1\r\n\r\n");
    let r = &replies(&mut h)[0];
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(r.body.clone()).unwrap();
    for line in [
        "replica_sessions 1",
        "replica_requests_total{method=\"initialize\"} 1",
        "replica_http_responses_total{status=\"200\"} 5",
        "replica_http_responses_total{status=\"405\"} 1",
        "replica_info{id=\"r-test\",version=\"0.1.0\"} 1",
        "replica_request_duration_seconds_count 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}");
    }
}
