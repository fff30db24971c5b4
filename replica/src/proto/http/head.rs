//! What this server needs from an HTTP/1.1 request head, copied out of the parsed bytes.

use crate::mcp::Version;
use crate::sessions::SessionId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Mcp,
    McpWs,
    Health,
    Ready,
    Live,
    Metrics,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLen {
    None,
    Length(u64),
    Chunked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionHeader {
    Absent,
    Id(SessionId),
    /// Present but not an id this server could have minted.
    Malformed,
}

/// Longest `Sec-WebSocket-Key` kept (a valid one is 24 characters).
const MAX_WS_KEY: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    pub route: Route,
    pub keep_alive: bool,
    pub body: BodyLen,
    pub session: SessionHeader,
    /// `MCP-Protocol-Version`: absent, or the version it names (`None` when unknown).
    pub protocol_version: Option<Option<Version>>,
    pub json_content: bool,
    pub accepts_sse: bool,
    pub expect_continue: bool,
    pub upgrade_websocket: bool,
    pub ws_version_13: bool,
    pub ws_key: Option<([u8; MAX_WS_KEY], u8)>,
    pub ws_offers_mcp: bool,
}

/// A head this server refuses, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHead {
    pub status: u16,
    pub why: &'static str,
}

fn bad(why: &'static str) -> BadHead {
    BadHead { status: 400, why }
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn media_type(value: &[u8]) -> &[u8] {
    value
        .split(|&b| b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii()
}

impl RequestHead {
    pub fn from_parsed(req: &httparse::Request<'_, '_>) -> Result<RequestHead, BadHead> {
        let method = match req.method {
            Some("GET") => Method::Get,
            Some("POST") => Method::Post,
            Some("DELETE") => Method::Delete,
            _ => Method::Other,
        };
        let path = req.path.unwrap_or("");
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let route = match path {
            "/mcp" | "/mcp/" => Route::Mcp,
            "/mcp/ws" => Route::McpWs,
            "/health" => Route::Health,
            "/ready" => Route::Ready,
            "/live" => Route::Live,
            "/metrics" => Route::Metrics,
            _ => Route::Unknown,
        };
        let http11 = req.version == Some(1);
        let mut head = RequestHead {
            method,
            route,
            keep_alive: http11,
            body: BodyLen::None,
            session: SessionHeader::Absent,
            protocol_version: None,
            json_content: false,
            accepts_sse: true,
            expect_continue: false,
            upgrade_websocket: false,
            ws_version_13: false,
            ws_key: None,
            ws_offers_mcp: false,
        };
        let mut length: Option<u64> = None;
        let mut chunked = false;
        for h in req.headers.iter() {
            let v = h.value;
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                let n = std::str::from_utf8(v)
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or(bad("Content-Length is not a number"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(bad("conflicting Content-Length headers"));
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                if !v.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    return Err(BadHead {
                        status: 501,
                        why: "only Transfer-Encoding: chunked is supported",
                    });
                }
                chunked = true;
            } else if name.eq_ignore_ascii_case("connection") {
                if has_token(v, "close") {
                    head.keep_alive = false;
                } else if has_token(v, "keep-alive") {
                    head.keep_alive = true;
                }
            } else if name.eq_ignore_ascii_case("mcp-session-id") {
                head.session = match SessionId::parse(v.trim_ascii()) {
                    Some(id) => SessionHeader::Id(id),
                    None => SessionHeader::Malformed,
                };
            } else if name.eq_ignore_ascii_case("mcp-protocol-version") {
                let text = std::str::from_utf8(v).unwrap_or("").trim();
                head.protocol_version = Some(Version::parse(text));
            } else if name.eq_ignore_ascii_case("content-type") {
                head.json_content = media_type(v).eq_ignore_ascii_case(b"application/json");
            } else if name.eq_ignore_ascii_case("accept") {
                head.accepts_sse = v.split(|&b| b == b',').any(|t| {
                    let m = media_type(t);
                    m.eq_ignore_ascii_case(b"text/event-stream")
                        || m == b"*/*"
                        || m.eq_ignore_ascii_case(b"text/*")
                });
            } else if name.eq_ignore_ascii_case("expect") {
                head.expect_continue = v.trim_ascii().eq_ignore_ascii_case(b"100-continue");
            } else if name.eq_ignore_ascii_case("upgrade") {
                head.upgrade_websocket = has_token(v, "websocket");
            } else if name.eq_ignore_ascii_case("sec-websocket-version") {
                head.ws_version_13 = v.trim_ascii() == b"13";
            } else if name.eq_ignore_ascii_case("sec-websocket-key") {
                let key = v.trim_ascii();
                if !key.is_empty() && key.len() <= MAX_WS_KEY {
                    let mut buf = [0u8; MAX_WS_KEY];
                    buf[..key.len()].copy_from_slice(key);
                    head.ws_key = Some((buf, key.len() as u8));
                }
            } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                head.ws_offers_mcp |= has_token(v, "mcp");
            }
        }
        head.body = match (length, chunked) {
            (Some(_), true) => {
                return Err(bad("both Content-Length and Transfer-Encoding were sent"));
            }
            (_, true) => BodyLen::Chunked,
            (Some(0) | None, false) => BodyLen::None,
            (Some(n), false) => BodyLen::Length(n),
        };
        Ok(head)
    }

    pub fn ws_key(&self) -> Option<&[u8]> {
        self.ws_key.as_ref().map(|(buf, len)| &buf[..*len as usize])
    }
}
