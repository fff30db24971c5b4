//! HTTP/1.1 response rendering: one buffer, head and body, content-length or chunked.

use std::io::Write as _;

use crate::sessions::SessionId;
use crate::state::Worker;

pub const JSON: &str = "application/json";
pub const SSE: &str = "text/event-stream";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub session: Option<SessionId>,
    /// Further header lines, each ending in `\r\n`.
    pub extra: &'a [u8],
    pub keep_alive: bool,
    /// Send the body with `Transfer-Encoding: chunked` (`--chunked`).
    pub chunked: bool,
}

impl Response<'_> {
    pub fn new(status: u16, keep_alive: bool) -> Self {
        Response {
            status,
            content_type: None,
            session: None,
            extra: b"",
            keep_alive,
            chunked: false,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        _ => "Internal Server Error",
    }
}

/// Renders a whole response into `out` (cleared first); the body is `body`'s pieces in order.
pub fn render(out: &mut Vec<u8>, w: &Worker, r: &Response<'_>, body: &[&[u8]]) {
    w.metrics.status(r.status);
    out.clear();
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(num.format(r.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(r.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(ct) = r.content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(ct.as_bytes());
        out.extend_from_slice(b"\r\n");
        if ct == SSE {
            out.extend_from_slice(b"Cache-Control: no-cache\r\n");
        }
    }
    let len: usize = body.iter().map(|b| b.len()).sum();
    let chunked = r.chunked && len > 0;
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    } else if r.status != 101 {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(num.format(len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(id) = r.session {
        let _ = write!(out, "Mcp-Session-Id: {id}\r\n");
    }
    out.extend_from_slice(&w.shared.x_replica);
    if !r.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(r.extra);
    out.extend_from_slice(b"\r\n");
    if chunked {
        let _ = write!(out, "{len:x}\r\n");
    }
    for piece in body {
        out.extend_from_slice(piece);
    }
    if chunked {
        out.extend_from_slice(b"\r\n0\r\n\r\n");
    }
}
