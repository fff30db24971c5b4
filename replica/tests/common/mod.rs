//! Shared by the integration tests: start replicas through the fleet API, and tiny blocking
//! clients for each transport that let tests see the exact bytes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use replica::fleet::{Fleet, FleetSpec, Member};

#[path = "../../src/testing/replies.rs"]
mod replies;
pub use replies::HttpReply as Reply;
use serde_json::Value;

pub const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"it","version":"1"}}}"#;
pub const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn spec(count: usize, args: &[&str]) -> FleetSpec {
    let mut spec = FleetSpec::new(env!("CARGO_BIN_EXE_replica"), count);
    spec.extra_args = ["--threads", "1"]
        .iter()
        .chain(args)
        .map(Into::into)
        .collect();
    spec
}

/// One replica with `args`, on free ports.
pub fn start(args: &[&str]) -> (Fleet, Member) {
    let fleet = Fleet::start(spec(1, args), TIMEOUT).expect("replica starts");
    let member = fleet.members()[0].clone();
    (fleet, member)
}

fn stream(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Newline-delimited JSON-RPC over TCP.
pub struct Lines {
    pub reader: BufReader<TcpStream>,
}

impl Lines {
    pub fn connect(addr: SocketAddr) -> Lines {
        Lines {
            reader: BufReader::new(stream(addr)),
        }
    }

    pub fn send(&mut self, line: &str) {
        let s = self.reader.get_mut();
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
    }

    /// The next reply line; `None` once the server closed.
    pub fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                assert!(line.ends_with('\n'), "replies end with a newline: {line:?}");
                Some(serde_json::from_str(&line).expect("reply lines are JSON"))
            }
        }
    }

    pub fn call(&mut self, line: &str) -> Value {
        self.send(line);
        self.recv().expect("a reply")
    }
}

/// HTTP/1.1 keep-alive on one connection, content-length bodies.
pub struct Http {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    pub fn connect(addr: SocketAddr) -> Http {
        Http {
            stream: stream(addr),
            buf: Vec::new(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn post(&mut self, body: &str, headers: &str) -> Reply {
        let req = format!(
            "POST /mcp HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.send_raw(req.as_bytes());
        self.read_reply().expect("a response")
    }

    pub fn get(&mut self, path: &str) -> Reply {
        self.send_raw(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.read_reply().expect("a response")
    }

    /// The next response; `None` if the server closed first.
    pub fn read_reply(&mut self) -> Option<Reply> {
        loop {
            if let Some((reply, used)) = replies::parse_response(&self.buf) {
                self.buf.drain(..used);
                return Some(reply);
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> Option<()> {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(())
            }
        }
    }

    /// Initializes; returns the session id.
    pub fn initialize(&mut self) -> String {
        let r = self.post(INIT, "");
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        r.header("mcp-session-id")
            .expect("a session id")
            .to_string()
    }
}

pub fn session(sid: &str) -> String {
    format!("Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\n")
}

/// A WebSocket client: masked text frames out, server frames in.
pub struct Ws {
    stream: TcpStream,
    decoder: wire::ws::Decoder,
    buf: Vec<u8>,
    pub subprotocol: Option<String>,
}

pub enum Frame {
    Text(Value),
    Pong(Vec<u8>),
    Close(Option<u16>),
}

impl Ws {
    pub fn connect(addr: SocketAddr) -> Ws {
        let mut http = Http::connect(addr);
        http.send_raw(
            b"GET /mcp/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Protocol: mcp\r\n\r\n",
        );
        let r = http.read_reply().expect("an upgrade response");
        assert_eq!(r.status, 101);
        assert_eq!(
            r.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        Ws {
            subprotocol: r.header("sec-websocket-protocol").map(str::to_string),
            stream: http.stream,
            decoder: wire::ws::Decoder::new(wire::ws::Role::Client),
            buf: http.buf,
        }
    }

    pub fn send_frame(&mut self, opcode: wire::ws::Opcode, payload: &[u8]) {
        let mut out = Vec::new();
        wire::ws::encode_frame(&mut out, opcode, payload, Some([1, 2, 3, 4]));
        self.stream.write_all(&out).unwrap();
    }

    pub fn send(&mut self, text: &str) {
        self.send_frame(wire::ws::Opcode::Text, text.as_bytes());
    }

    /// The next frame; `None` if the server closed the connection.
    pub fn recv(&mut self) -> Option<Frame> {
        loop {
            let mut input = &self.buf[..];
            let got = self
                .decoder
                .next(&mut input, 1 << 26)
                .expect("valid server frames")
                .map(|m| match m {
                    wire::ws::Message::Text(t) => {
                        Frame::Text(serde_json::from_slice(t).expect("JSON text"))
                    }
                    wire::ws::Message::Pong(p) => Frame::Pong(p.to_vec()),
                    wire::ws::Message::Close(code, _) => Frame::Close(code),
                    other => panic!("unexpected frame {other:?}"),
                });
            let used = self.buf.len() - input.len();
            self.buf.drain(..used);
            if got.is_some() {
                return got;
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub fn call(&mut self, text: &str) -> Value {
        self.send(text);
        match self.recv() {
            Some(Frame::Text(v)) => v,
            _ => panic!("expected a text reply to {text}"),
        }
    }
}

/// `GET /metrics`, one sample's value.
pub fn metric(http: SocketAddr, series: &str) -> f64 {
    let body = Http::connect(http).get("/metrics").body;
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in /metrics"))
}
