//! Reading back what a replica sent: HTTP responses and WebSocket frames. Shared by the unit
//! tests and the integration tests (which include this file by path).
#![allow(dead_code)]

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

/// The first complete response in `bytes` and how many bytes it took; `None` if incomplete.
/// A 101 ends at its head: what follows is WebSocket.
pub fn parse_response(bytes: &[u8]) -> Option<(HttpReply, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let n = match r.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    let mut reply = HttpReply {
        status: r.code.expect("a status"),
        headers: r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
    };
    let rest = &bytes[n..];
    if reply.header("transfer-encoding") == Some("chunked") {
        let mut dec = wire::chunked::ChunkedDecoder::new();
        let mut input = rest;
        while let wire::chunked::Chunk::Data(d) =
            dec.next(&mut input).expect("valid chunked body")?
        {
            reply.body.extend_from_slice(d);
        }
        return Some((reply, bytes.len() - input.len()));
    }
    let len: usize = reply
        .header("content-length")
        .map_or(0, |l| l.parse().expect("a length"));
    reply.body = rest.get(..len)?.to_vec();
    Some((reply, n + len))
}

/// Splits `bytes` into complete responses (skipping 100 Continue); returns them and what
/// follows (e.g. WebSocket frames after a 101).
pub fn parse_responses(mut bytes: &[u8]) -> (Vec<HttpReply>, Vec<u8>) {
    let mut replies = Vec::new();
    while let Some((reply, used)) = parse_response(bytes) {
        bytes = &bytes[used..];
        if reply.status == 100 {
            continue;
        }
        let upgraded = reply.status == 101;
        replies.push(reply);
        if upgraded {
            break;
        }
    }
    (replies, bytes.to_vec())
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
