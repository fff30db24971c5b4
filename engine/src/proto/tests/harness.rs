//! Drives a [`Session`] with bytes and a fake clock, and plays the server side.

use std::time::{Duration, Instant};

use wire::ws::{Decoder, Message, Opcode, Role, encode_frame};

use crate::proto::{
    Action, Context, ErrorKind, Event, Outcome, Pacing, Scenario, Session, Target, Transport,
};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
pub const BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_MESSAGE: usize = 4096;

pub fn target(transport: Transport) -> Target {
    let path = match transport {
        Transport::Tcp => "",
        Transport::WebSocket => "/mcp/ws",
        Transport::Http => "/mcp",
    };
    Target {
        transport,
        addr: "127.0.0.1:8080".parse().unwrap(),
        host: "127.0.0.1:8080".into(),
        path: path.into(),
        url: format!("{transport:?}://127.0.0.1:8080{path}"),
    }
}

pub fn context(transport: Transport, scenario: Scenario, pacing: Pacing) -> Context {
    Context {
        targets: vec![target(transport)],
        scenario,
        pacing,
        mcp_version: "2025-06-18".into(),
        client_name: "mcp-load".into(),
        client_version: "0.1.0".into(),
        connect_timeout: CONNECT_TIMEOUT,
        request_timeout: REQUEST_TIMEOUT,
        max_message: MAX_MESSAGE,
        reconnect_backoff: BACKOFF,
        stateless: false,
    }
}

pub fn closed(interval_ms: u64) -> Pacing {
    Pacing::Closed {
        interval: Duration::from_millis(interval_ms),
    }
}

/// Every way of cutting `bytes` in two, then byte by byte: the feeds a parser must treat alike.
pub fn every_split(bytes: &[u8], mut check: impl FnMut(&[&[u8]])) {
    for cut in 0..=bytes.len() {
        check(&[&bytes[..cut], &bytes[cut..]]);
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    check(&singles);
}

pub struct Harness {
    pub cx: Context,
    pub s: Session,
    pub t0: Instant,
    pub now: Instant,
    pub ev: Vec<Event>,
}

impl Harness {
    pub fn new(cx: Context) -> Harness {
        let s = Session::new(&cx, 0, 42);
        let t0 = Instant::now();
        Harness {
            cx,
            s,
            t0,
            now: t0,
            ev: Vec::new(),
        }
    }

    pub fn ms(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Moves the clock forward; runs the timer if its deadline passed.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.s.next_deadline().is_some_and(|d| d <= self.now) {
            self.s.on_timer(&self.cx, self.now, &mut self.ev);
            let after = self.s.next_deadline();
            assert!(
                after.is_none_or(|d| d > self.now),
                "the timer left a deadline that is already due: it would spin"
            );
        }
    }

    pub fn advance_ms(&mut self, ms: u64) {
        self.advance(Duration::from_millis(ms));
    }

    /// Moves the clock to the session's deadline and runs the timer.
    pub fn run_to_deadline(&mut self) {
        let deadline = self.s.next_deadline().expect("a deadline is set");
        self.now = self.now.max(deadline);
        self.advance(Duration::ZERO);
    }

    pub fn connect(&mut self) {
        assert_eq!(self.s.action(), Action::Connect);
        self.s.on_connect_start(&self.cx, self.now);
        self.s.on_connected(&self.cx, self.now, &mut self.ev);
    }

    /// Everything the session wants to send now.
    pub fn sent(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.s.poll_transmit(&self.cx, self.now, &mut out) {}
        out
    }

    pub fn sent_str(&mut self) -> String {
        String::from_utf8(self.sent()).unwrap()
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.s.on_bytes(&self.cx, bytes, self.now, &mut self.ev);
    }

    pub fn feed_all(&mut self, feeds: &[&[u8]]) {
        for f in feeds {
            self.feed(f);
        }
    }

    pub fn eof(&mut self) {
        self.s.on_eof(&self.cx, self.now, &mut self.ev);
    }

    pub fn shutdown(&mut self) {
        self.s.shutdown(&self.cx, self.now, &mut self.ev);
    }

    pub fn fire(&mut self, intended: Instant) {
        self.s.fire(&self.cx, self.now, intended, &mut self.ev);
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.ev)
    }
}

/// A scenario response while the fake clock stood still.
pub fn instant(outcome: Outcome) -> Event {
    Event::Response {
        latency: Duration::ZERO,
        uncorrected: Duration::ZERO,
        outcome,
    }
}

pub fn instant_ok() -> Event {
    instant(Outcome::Ok)
}

pub fn instant_failure(kind: ErrorKind) -> Event {
    instant(Outcome::Error(kind))
}

/// JSON-RPC texts a server sends.
pub fn result(id: u64, result: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
}

pub fn init_result(id: u64, server: &str) -> String {
    result(
        id,
        &format!(
            r#"{{"protocolVersion":"2025-06-18","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"{server}","version":"1"}}}}"#
        ),
    )
}

pub fn error(id: &str, code: i64) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":"no"}}}}"#)
}

pub const NOTIFICATION: &str =
    r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}"#;

/// The JSON-RPC method and id of a message the client sent.
pub fn method_and_id(json: &str) -> (String, Option<u64>) {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    (
        v["method"].as_str().unwrap_or("").to_string(),
        v["id"].as_u64(),
    )
}

/// WebSocket: an unmasked server frame.
pub fn server_frame(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, opcode, payload, None);
    out
}

/// WebSocket: the frames the client sent, unmasked, as (opcode, payload).
pub fn client_frames(bytes: &[u8]) -> Vec<(Opcode, Vec<u8>)> {
    let mut d = Decoder::new(Role::Server);
    let mut input = bytes;
    let mut frames = Vec::new();
    while let Some(m) = d
        .next(&mut input, 1 << 20)
        .expect("client frames are valid")
    {
        frames.push(match m {
            Message::Text(t) => (Opcode::Text, t.to_vec()),
            Message::Binary(b) => (Opcode::Binary, b.to_vec()),
            Message::Ping(p) => (Opcode::Ping, p.to_vec()),
            Message::Pong(p) => (Opcode::Pong, p.to_vec()),
            Message::Close(code, _) => (
                Opcode::Close,
                code.map_or(vec![], |c| c.to_be_bytes().to_vec()),
            ),
        });
    }
    frames
}

/// HTTP: one request the client sent.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// HTTP: splits what the client sent into requests (Content-Length framed).
pub fn requests(mut bytes: &[u8]) -> Vec<Request> {
    let mut all = Vec::new();
    while !bytes.is_empty() {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut slots);
        let httparse::Status::Complete(n) = req.parse(bytes).expect("a valid request") else {
            panic!(
                "incomplete request head: {:?}",
                String::from_utf8_lossy(bytes)
            );
        };
        let headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8(h.value.to_vec()).unwrap(),
                )
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        all.push(Request {
            method: req.method.unwrap().to_string(),
            path: req.path.unwrap().to_string(),
            headers,
            body: String::from_utf8(bytes[n..n + len].to_vec()).unwrap(),
        });
        bytes = &bytes[n + len..];
    }
    all
}

/// HTTP: a response with a Content-Length body.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

pub fn json_response(headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    response(200, &all, body)
}

/// HTTP: an SSE response, chunked with one chunk per `chunk` bytes of events.
pub fn sse_chunked(headers: &[(&str, &str)], events: &str, chunk: usize) -> Vec<u8> {
    let mut out = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n",
    );
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    for piece in events.as_bytes().chunks(chunk) {
        bytes.extend(format!("{:x}\r\n", piece.len()).bytes());
        bytes.extend(piece);
        bytes.extend(b"\r\n");
    }
    bytes.extend(b"0\r\n\r\n");
    bytes
}

pub fn sse_event(json: &str) -> String {
    format!("event: message\ndata: {json}\n\n")
}
