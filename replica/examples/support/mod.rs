//! Wire helpers shared by the benchmark examples: request bytes and reply boundaries.
#![allow(dead_code)]

pub const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
pub const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
pub const PING: &str = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;
pub const WS_UPGRADE: &[u8] =
    b"GET /mcp/ws HTTP/1.1\r\nHost: r\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// `POST /mcp` carrying `body`, on `session` when given.
pub fn http_post(body: &str, session: Option<&str>) -> Vec<u8> {
    let sid = session.map_or(String::new(), |id| {
        format!("Mcp-Session-Id: {id}\r\nMCP-Protocol-Version: 2025-11-25\r\n")
    });
    format!(
        "POST /mcp HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{sid}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A masked client text frame.
pub fn ws_frame(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    wire::ws::encode_frame(
        &mut out,
        wire::ws::Opcode::Text,
        text.as_bytes(),
        Some([9, 8, 7, 6]),
    );
    out
}

/// Length of the first complete line (newline included).
pub fn line_end(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b).map(|i| i + 1)
}

/// Length of the first complete HTTP response (head + content-length body).
pub fn http_end(b: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut r = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(n) = r.parse(b).ok()? else {
        return None;
    };
    let len: usize = r
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
        .unwrap_or(0);
    (b.len() >= n + len).then_some(n + len)
}

/// Length of the first complete WebSocket frame.
pub fn ws_end(b: &[u8]) -> Option<usize> {
    let h = wire::ws::decode_header(b).ok()??;
    let end = h.header_len + h.payload_len as usize;
    (b.len() >= end).then_some(end)
}

/// A header's value in a raw response.
pub fn header<'a>(response: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(response).ok()?;
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
