//! Helpers for the byte-level unit tests: a worker built from real command-line flags.

use std::time::Instant;

use crate::outbox::{Delayed, Io};
use crate::proto::{Flow, Proto};
use crate::state::{Shared, Worker};

pub fn worker(args: &[&str]) -> Worker {
    Shared::new(crate::cli::config_from(args)).worker(0)
}

/// A protocol fed bytes by hand, collecting everything it would send.
pub struct Harness {
    pub w: Worker,
    pub proto: Proto,
    pub delayed: Delayed,
    pub sent: Vec<u8>,
    pub flow: Flow,
}

impl Harness {
    pub fn new(transport: crate::metrics::Transport, args: &[&str]) -> Harness {
        let proto = Proto::new(transport);
        Harness {
            w: worker(args),
            delayed: Delayed::new(proto.ordered()),
            proto,
            sent: Vec::new(),
            flow: Flow::Continue,
        }
    }

    /// A new connection of `transport` on the same worker (sessions and counters survive).
    pub fn reconnect(&mut self, transport: crate::metrics::Transport) {
        self.proto.on_close(&self.w);
        self.proto = Proto::new(transport);
        self.delayed = Delayed::new(self.proto.ordered());
        self.sent.clear();
        self.flow = Flow::Continue;
    }

    fn run(&mut self, now: Instant, f: impl FnOnce(&mut Proto, &mut Io<'_>) -> Flow) -> Flow {
        let mut bufs = self.w.buffers.borrow_mut();
        bufs.out.clear();
        let flow = f(
            &mut self.proto,
            &mut Io {
                w: &self.w,
                now,
                bufs: &mut bufs,
                delayed: &mut self.delayed,
            },
        );
        self.sent.extend_from_slice(&bufs.out);
        flow
    }

    /// Feeds `bytes`; returns the flow. After a close, further feeds are ignored.
    pub fn feed(&mut self, bytes: &[u8]) -> Flow {
        if self.flow != Flow::Continue {
            return self.flow;
        }
        self.flow = self.run(Instant::now(), |p, io| p.on_bytes(bytes, io));
        self.flow
    }

    /// Feeds `stream` cut at `cut`, then the rest.
    pub fn feed_split(&mut self, stream: &[u8], cut: usize) -> Flow {
        self.feed(&stream[..cut]);
        self.feed(&stream[cut..])
    }

    /// Moves time to `now`: releases due replies and runs protocol timers.
    pub fn tick(&mut self, now: Instant) -> Flow {
        let flow = self.run(now, |p, io| {
            io.delayed.release(now, &mut io.bufs.out, io.w);
            p.on_timer(io)
        });
        if self.flow == Flow::Continue {
            self.flow = flow;
        }
        flow
    }

    pub fn take_sent(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.sent)
    }

    pub fn sent_text(&self) -> String {
        String::from_utf8_lossy(&self.sent).into_owned()
    }
}

/// One HTTP response read back from bytes a harness sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Splits `bytes` into complete responses; returns them and what follows (e.g. WebSocket frames).
pub fn parse_responses(mut bytes: &[u8]) -> (Vec<HttpReply>, Vec<u8>) {
    let mut replies = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut headers);
        let n = match r.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            _ => return (replies, bytes.to_vec()),
        };
        let status = r.code.unwrap();
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let mut reply = HttpReply {
            status,
            headers,
            body: Vec::new(),
        };
        let rest = &bytes[n..];
        if status == 100 {
            bytes = rest;
            continue;
        }
        if reply.header("transfer-encoding") == Some("chunked") {
            let mut dec = wire::chunked::ChunkedDecoder::new();
            let mut input = rest;
            loop {
                match dec.next(&mut input).expect("valid chunked body") {
                    Some(wire::chunked::Chunk::Data(d)) => reply.body.extend_from_slice(d),
                    Some(wire::chunked::Chunk::End) => break,
                    None => panic!("chunked body cut short"),
                }
            }
            bytes = input;
        } else {
            let len: usize = reply
                .header("content-length")
                .map_or(0, |l| l.parse().unwrap());
            reply.body = rest[..len].to_vec();
            bytes = &rest[len..];
        }
        let upgraded = status == 101;
        replies.push(reply);
        if upgraded {
            return (replies, bytes.to_vec());
        }
    }
}

/// Masked client frames, as a WebSocket client sends them.
pub fn client_frame(opcode: wire::ws::Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::ws::encode_frame(&mut out, opcode, payload, Some([0x12, 0x34, 0x56, 0x78]));
    out
}

/// Server frames decoded back into (opcode-ish tag, payload).
pub fn server_frames(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use wire::ws::{Decoder, Message, Role};
    let mut d = Decoder::new(Role::Client);
    let mut input = bytes;
    let mut out = Vec::new();
    while let Some(m) = d.next(&mut input, 1 << 26).expect("valid server frames") {
        out.push(match m {
            Message::Text(t) => ("text".to_string(), t.to_vec()),
            Message::Binary(b) => ("binary".to_string(), b.to_vec()),
            Message::Ping(p) => ("ping".to_string(), p.to_vec()),
            Message::Pong(p) => ("pong".to_string(), p.to_vec()),
            Message::Close(code, _) => (
                "close".to_string(),
                code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default(),
            ),
        });
    }
    assert!(input.is_empty(), "a partial frame was sent");
    out
}
