//! The replica binary over real sockets: lifecycle error codes on every transport, fault
//! injection statistics, limits and bad input, health and metrics.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const PING: &str = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;

/// The lifecycle cases shared by every transport: (message, expected error code or None).
fn lifecycle_cases() -> Vec<(String, Option<i64>)> {
    let init = |params: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{params}}}"#)
    };
    vec![
        (PING.to_string(), Some(-32005)),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.into(),
            Some(-32005),
        ),
        (init(r#"{"protocolVersion":"2025-11-25"}"#), Some(-32602)),
        (
            init(r#"{"protocolVersion":"2025-06-18","clientInfo":{"name":"x","version":"1"}}"#),
            Some(-32061),
        ),
        (INIT.into(), None),
        (INIT.into(), Some(-32005)),
        (
            r#"{"jsonrpc":"2.0","id":3,"method":"no/such"}"#.into(),
            Some(-32601),
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}"#.into(),
            Some(-32602),
        ),
        (
            r#"{"jsonrpc":"2.0","id":5,"method":"ping","params":7}"#.into(),
            Some(-32600),
        ),
        ("{oops".into(), Some(-32700)),
        (PING.into(), None),
    ]
}

fn check_case(msg: &str, expected: Option<i64>, reply: &Value) {
    match expected {
        Some(code) => assert_eq!(reply["error"]["code"], code, "{msg} -> {reply}"),
        None => assert!(reply["result"].is_object(), "{msg} -> {reply}"),
    }
    if msg.starts_with("{oops") {
        assert_eq!(reply["id"], Value::Null, "parse errors carry id null");
    }
}

#[test]
fn lifecycle_over_tcp() {
    let (_fleet, m) = start(&[]);
    let mut c = Lines::connect(m.tcp.unwrap());
    for (msg, expected) in lifecycle_cases() {
        check_case(&msg, expected, &c.call(&msg));
    }
}

#[test]
fn lifecycle_over_websocket() {
    let (_fleet, m) = start(&[]);
    let mut ws = Ws::connect(m.http.unwrap());
    assert_eq!(ws.subprotocol.as_deref(), Some("mcp"));
    for (msg, expected) in lifecycle_cases() {
        check_case(&msg, expected, &ws.call(&msg));
    }
    ws.send_frame(wire::ws::Opcode::Ping, b"are you there");
    assert!(matches!(ws.recv(), Some(Frame::Pong(p)) if p == b"are you there"));
    ws.send(&format!("{PING}\n{}", PING.replace("\"id\":2", "\"id\":3")));
    let ids: Vec<Value> = (0..2)
        .map(|_| match ws.recv() {
            Some(Frame::Text(v)) => v["id"].clone(),
            _ => panic!("two replies expected"),
        })
        .collect();
    assert_eq!(
        ids,
        [json!(2), json!(3)],
        "a frame may carry several messages"
    );
    ws.send_frame(wire::ws::Opcode::Close, &1000u16.to_be_bytes());
    assert!(matches!(ws.recv(), Some(Frame::Close(Some(1000)))));
    assert!(
        ws.recv().is_none(),
        "the server closes after the close handshake"
    );
}

#[test]
fn lifecycle_over_http() {
    let (_fleet, m) = start(&[]);
    let mut h = Http::connect(m.http.unwrap());
    let r = h.post(PING, "");
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!(-32005))
    );
    let sid = h.initialize();
    let s = session(&sid);
    let after_initialize = [
        (
            r#"{"jsonrpc":"2.0","id":3,"method":"no/such"}"#,
            200,
            Some(-32601),
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}"#,
            200,
            Some(-32602),
        ),
        (
            r#"{"jsonrpc":"2.0","id":5,"method":"ping","params":7}"#,
            400,
            Some(-32600),
        ),
        ("{oops", 400, Some(-32700)),
        (PING, 200, None),
    ];
    for (msg, status, expected) in after_initialize {
        let r = h.post(msg, &s);
        assert_eq!(r.status, status, "{msg}");
        check_case(msg, expected, &r.json());
    }
    let r = h.post(INIT, &s);
    assert_eq!(r.json()["error"]["code"], -32005, "second initialize");
    let r = h.post(INITIALIZED, &s);
    assert_eq!((r.status, r.body.len()), (202, 0));
    assert_eq!(r.header("x-replica"), Some("r1"));
}

/// |x - n p| within 4.5 standard deviations.
fn within_binomial_bound(x: usize, n: usize, p: f64) -> bool {
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (x as f64 - n as f64 * p).abs() <= 4.5 * sd
}

#[test]
fn error_rate_over_tcp_matches_its_binomial_bound_and_the_metric() {
    let (_fleet, m) = start(&["--error-rate", "0.1", "--seed", "11"]);
    let mut c = Lines::connect(m.tcp.unwrap());
    assert!(
        c.call(INIT)["result"].is_object(),
        "initialize is never faulted"
    );
    let n = 2000;
    let mut injected = 0;
    for i in 0..n {
        let reply = c.call(&format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"ping"}}"#));
        assert_eq!(reply["id"], i);
        if reply["error"]["code"] == -32000 {
            assert_eq!(reply["error"]["message"], "injected fault");
            injected += 1;
        } else {
            assert_eq!(reply["result"], json!({}));
        }
    }
    assert!(within_binomial_bound(injected, n, 0.1), "{injected} of {n}");
    let http = m.http.unwrap();
    assert_eq!(
        metric(http, "replica_injected_total{kind=\"error\"}"),
        injected as f64
    );
    assert_eq!(
        metric(http, "replica_errors_total{code=\"-32000\"}"),
        injected as f64
    );
    assert_eq!(
        metric(http, "replica_requests_total{method=\"ping\"}"),
        n as f64
    );
}

#[test]
fn drop_rate_closes_connections_without_reply() {
    let (_fleet, m) = start(&["--drop-rate", "0.2", "--seed", "5"]);
    let n = 300;
    let mut dropped = 0;
    for i in 0..n {
        let mut c = Lines::connect(m.tcp.unwrap());
        c.call(INIT);
        c.send(&format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"ping"}}"#));
        match c.recv() {
            None => dropped += 1,
            Some(reply) => assert_eq!(reply["id"], i),
        }
    }
    assert!(within_binomial_bound(dropped, n, 0.2), "{dropped} of {n}");
    assert_eq!(
        metric(m.http.unwrap(), "replica_injected_total{kind=\"drop\"}"),
        dropped as f64
    );
}

#[test]
fn delay_holds_each_reply() {
    let (_fleet, m) = start(&["--delay", "40ms"]);
    let mut c = Lines::connect(m.tcp.unwrap());
    c.call(INIT);
    let t0 = Instant::now();
    c.call(PING);
    assert!(
        t0.elapsed() >= Duration::from_millis(40),
        "{:?}",
        t0.elapsed()
    );
    let mut h = Http::connect(m.http.unwrap());
    let sid = h.initialize();
    let t0 = Instant::now();
    let r = h.post(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":30}}}"#, &session(&sid));
    assert!(
        t0.elapsed() >= Duration::from_millis(70),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(r.json()["result"]["content"][0]["text"], "slept 30 ms");
}

#[test]
fn max_conns_closes_the_excess_at_once() {
    let (_fleet, m) = start(&["--max-conns", "3"]);
    let tcp = m.tcp.unwrap();
    let mut held: Vec<Lines> = (0..3).map(|_| Lines::connect(tcp)).collect();
    for c in &mut held {
        assert!(c.call(INIT)["result"].is_object());
    }
    let mut extra = TcpStream::connect(tcp).unwrap();
    extra.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        matches!(extra.read(&mut buf), Ok(0) | Err(_)),
        "refused connection is closed"
    );
    drop(held);
    let deadline = Instant::now() + TIMEOUT;
    while metric(m.http.unwrap(), "replica_open_connections") > 1.0 {
        assert!(Instant::now() < deadline, "connections were not released");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        metric(m.http.unwrap(), "replica_refused_connections_total"),
        1.0
    );
}

#[test]
fn oversized_tcp_line_gets_an_error_then_close() {
    let (_fleet, m) = start(&["--max-message", "1KiB"]);
    let mut c = Lines::connect(m.tcp.unwrap());
    c.call(INIT);
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(2000)
    );
    c.send(&big);
    let reply = c.recv().expect("an error before the close");
    assert_eq!(reply["error"]["code"], -32600);
    assert!(c.recv().is_none(), "then the connection closes");
}

#[test]
fn oversized_http_body_gets_413_then_close() {
    let (_fleet, m) = start(&["--max-message", "1KiB"]);
    let mut h = Http::connect(m.http.unwrap());
    let r = h.post(&"y".repeat(5000), "");
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(h.read_reply().is_none());
}

#[test]
fn slow_partial_heads_time_out() {
    let (_fleet, m) = start(&["--read-timeout", "300ms"]);
    let mut h = Http::connect(m.http.unwrap());
    h.send_raw(b"GET /health HTTP/1.1\r\nHost: slow");
    let t0 = Instant::now();
    let r = h.read_reply().expect("a 408");
    assert_eq!(r.status, 408);
    assert!(t0.elapsed() >= Duration::from_millis(250));
    assert!(h.read_reply().is_none());
}

#[test]
fn broken_http_gets_400_and_close() {
    let (_fleet, m) = start(&[]);
    let mut h = Http::connect(m.http.unwrap());
    h.send_raw(b"\x16\x03\x01\x02\x00 hello tls\r\n\r\n");
    assert_eq!(h.read_reply().expect("a 400").status, 400);
    assert!(h.read_reply().is_none());
}

#[test]
fn a_client_that_never_reads_is_paused_then_closed() {
    let (_fleet, m) = start(&["--output-cap", "64KiB", "--write-timeout", "500ms"]);
    let mut s = TcpStream::connect(m.tcp.unwrap()).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.write_all(format!("{INIT}\n").as_bytes()).unwrap();
    let echo = format!(
        "{}\n",
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"z".repeat(4000)}}})
    );
    let t0 = Instant::now();
    let mut sent = 0usize;
    // Send until the server stops reading (our writes time out) or it closes us.
    while t0.elapsed() < Duration::from_secs(20) && sent < 2_000_000_000 {
        match s.write(echo.as_bytes()) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the server kept reading everything"
    );
    let http = m.http.unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while metric(http, "replica_open_connections") > 1.0 {
        assert!(
            Instant::now() < deadline,
            "the stalled connection was not closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(sent < 200 * 1024 * 1024, "stopped after {sent} bytes");
}

#[test]
fn health_metrics_and_identity() {
    let (_fleet, m) = start(&[]);
    let http = m.http.unwrap();
    let mut h = Http::connect(http);
    for (path, status) in [
        ("/health", "healthy"),
        ("/ready", "ready"),
        ("/live", "alive"),
    ] {
        let r = h.get(path);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-replica"), Some("r1"));
        assert_eq!(
            (r.json()["status"].clone(), r.json()["node"].clone()),
            (json!(status), json!("r1"))
        );
    }
    let mut c = Lines::connect(m.tcp.unwrap());
    assert_eq!(c.call(INIT)["result"]["serverInfo"]["name"], "r1");
    let sid = h.initialize();
    assert_eq!(metric(http, "replica_sessions"), 2.0);
    assert!(metric(http, "replica_open_connections") >= 2.0);
    assert_eq!(
        metric(http, "replica_info{id=\"r1\",version=\"0.1.0\"}"),
        1.0
    );
    assert_eq!(
        metric(http, "replica_requests_total{method=\"initialize\"}"),
        2.0
    );
    assert_eq!(metric(http, "replica_request_duration_seconds_count"), 2.0);
    let r = Http::connect(http).get("/metrics");
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.contains("replica_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
    assert!(text.contains("replica_request_duration_seconds_sum "));
    h.send_raw(format!("DELETE /mcp HTTP/1.1\r\nMcp-Session-Id: {sid}\r\n\r\n").as_bytes());
    assert_eq!(h.read_reply().unwrap().status, 200);
    assert_eq!(metric(http, "replica_sessions"), 1.0);
}

#[test]
fn probe_reports_status() {
    let (_fleet, m) = start(&[]);
    let http = m.http.unwrap();
    let probe = |path: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_replica"))
            .args(["probe", &format!("http://{http}{path}")])
            .output()
            .unwrap()
    };
    let ok = probe("/health");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let missing = probe("/nope");
    assert_eq!(missing.status.code(), Some(1));
    let why = String::from_utf8_lossy(&missing.stderr);
    assert!(why.contains("404") && why.lines().count() == 1, "{why}");
}

#[test]
fn sse_and_chunked_over_a_real_socket() {
    let (_fleet, m) = start(&["--sse", "--chunked"]);
    let mut s = TcpStream::connect(m.http.unwrap()).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{INIT}",
        INIT.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8(all).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("Transfer-Encoding: chunked"));
    assert!(head.contains("Content-Type: text/event-stream"));
    assert!(body.ends_with("\r\n0\r\n\r\n"));
    assert!(
        body.contains("\ndata: \n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\"")
    );
}
