//! What each HTTP route answers: Streamable HTTP at `/mcp`, the WebSocket upgrade at `/mcp/ws`,
//! health probes and Prometheus metrics.

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use serde_json::value::RawValue;

use super::Next;
use super::head::{Method, RequestHead, Route, SessionHeader};
use super::response::{self, Response};
use crate::mcp::{self, Fault, Lifecycle, Reply, Version};
use crate::metrics::ErrorCode;
use crate::outbox::Io;
use crate::proto::Flow;
use crate::sessions::SessionId;

pub fn dispatch(head: &RequestHead, body: &[u8], io: &mut Io<'_>) -> Next {
    let next = match (head.route, head.method) {
        (Route::Mcp, Method::Post) => mcp_post(head, body, io),
        (Route::Mcp, Method::Delete) => mcp_delete(head, io),
        (Route::Mcp, _) => text(
            io,
            head,
            405,
            b"Allow: POST, DELETE\r\n",
            "Method Not Allowed: this server offers no GET stream; POST JSON-RPC messages to /mcp",
        ),
        (Route::McpWs, Method::Get) => upgrade(head, io),
        (Route::McpWs, _) => text(
            io,
            head,
            405,
            b"Allow: GET\r\n",
            "Method Not Allowed: use GET with a WebSocket upgrade",
        ),
        (Route::Health | Route::Ready | Route::Live, Method::Get) => health(head, io),
        (Route::Metrics, Method::Get) => {
            let mut text = Vec::with_capacity(4096);
            io.w.shared.render_metrics(&mut text);
            respond(io, head, 200, response::PROMETHEUS, None, &[&text]);
            Next::Flow(Flow::Continue)
        }
        (Route::Health | Route::Ready | Route::Live | Route::Metrics, _) => text(
            io,
            head,
            405,
            b"Allow: GET\r\n",
            "Method Not Allowed: use GET",
        ),
        (Route::Unknown, _) => text(
            io,
            head,
            404,
            b"",
            "Not Found: routes are POST/DELETE /mcp, GET /mcp/ws (WebSocket), GET /health, /ready, /live, /metrics",
        ),
    };
    match next {
        Next::Flow(Flow::Continue) if !head.keep_alive => Next::Flow(Flow::CloseAfterFlush),
        other => other,
    }
}

/// Sends a complete response now (no delay).
fn respond(
    io: &mut Io<'_>,
    head: &RequestHead,
    status: u16,
    content_type: &'static str,
    session: Option<SessionId>,
    body: &[&[u8]],
) {
    let r = Response {
        content_type: Some(content_type),
        session,
        chunked: io.w.behaviour().chunked,
        ..Response::new(status, head.keep_alive)
    };
    response::render(&mut io.bufs.frame, io.w, &r, body);
    io.send_frame(Duration::ZERO, None);
}

fn text(io: &mut Io<'_>, head: &RequestHead, status: u16, extra: &[u8], message: &str) -> Next {
    let r = Response {
        content_type: Some(response::TEXT),
        extra,
        chunked: io.w.behaviour().chunked,
        ..Response::new(status, head.keep_alive)
    };
    response::render(&mut io.bufs.frame, io.w, &r, &[message.as_bytes(), b"\n"]);
    io.send_frame(Duration::ZERO, None);
    Next::Flow(Flow::Continue)
}

/// An HTTP error status whose body is a JSON-RPC error.
fn mcp_fault(
    io: &mut Io<'_>,
    head: &RequestHead,
    status: u16,
    id: Option<&RawValue>,
    fault: Fault,
) -> Next {
    io.w.metrics.error(fault.code);
    io.bufs.json.clear();
    mcp::write_error(&mut io.bufs.json, id, &fault);
    let r = Response {
        content_type: Some(response::JSON),
        chunked: io.w.behaviour().chunked,
        ..Response::new(status, head.keep_alive)
    };
    response::render(&mut io.bufs.frame, io.w, &r, &[&io.bufs.json]);
    io.send_frame(Duration::ZERO, None);
    Next::Flow(Flow::Continue)
}

fn session_not_found(io: &mut Io<'_>, head: &RequestHead, id: Option<&RawValue>) -> Next {
    let fault = Fault::new(
        ErrorCode::SessionNotFound,
        "Session not found: it ended or never existed; initialize again without Mcp-Session-Id",
    );
    mcp_fault(io, head, 404, id, fault)
}

fn mcp_post(head: &RequestHead, body: &[u8], io: &mut Io<'_>) -> Next {
    if !head.json_content {
        let fault = Fault::new(
            ErrorCode::InvalidRequest,
            "Unsupported Media Type: send the JSON-RPC message with Content-Type: application/json",
        );
        return mcp_fault(io, head, 415, None, fault);
    }
    let message = match mcp::parse(body) {
        Ok(m) => m,
        Err(rejection) => return mcp_fault(io, head, 400, rejection.id, rejection.fault),
    };
    let id = message.id();
    let now = io.now;
    let sessions = &io.w.shared.sessions;
    let stateless = io.w.behaviour().stateless
        && matches!(head.session, SessionHeader::Absent)
        && !message.is_initialize();
    let session = match head.session {
        SessionHeader::Absent if message.is_initialize() || stateless => None,
        SessionHeader::Absent => {
            let fault = Fault::new(
                ErrorCode::NotInitialized,
                "Bad Request: Mcp-Session-Id header is required; send initialize first to get one",
            );
            return mcp_fault(io, head, 400, id, fault);
        }
        SessionHeader::Malformed => return session_not_found(io, head, id),
        SessionHeader::Id(sid) => match sessions.touch(sid, now) {
            Some(version) => Some((sid, version)),
            None => return session_not_found(io, head, id),
        },
    };
    if let (Some((_, version)), Some(header)) = (session, head.protocol_version)
        && header != Some(version)
    {
        let fault = Fault::new(
            ErrorCode::InvalidRequest,
            format!(
                "Bad Request: MCP-Protocol-Version does not match this session's negotiated version {}",
                version.as_str()
            ),
        );
        return mcp_fault(io, head, 400, id, fault);
    }
    let mut life = Lifecycle {
        version: session
            .map(|(_, v)| v)
            .or(stateless.then_some(Version::V2025_11_25)),
    };
    let reply = mcp::handle_message(message, &mut life, io.w, &mut io.bufs.json);
    let session_id = match (session, life.version) {
        (Some((sid, _)), _) => Some(sid),
        (None, Some(version)) if !stateless => Some(sessions.create(version, now)),
        (None, _) => None,
    };
    match reply {
        Reply::Drop => Next::Flow(Flow::CloseNow),
        Reply::Nothing => {
            let r = Response {
                session: session_id,
                ..Response::new(202, head.keep_alive)
            };
            response::render(&mut io.bufs.frame, io.w, &r, &[]);
            io.send_frame(Duration::ZERO, None);
            Next::Flow(Flow::Continue)
        }
        Reply::Send { delay } => {
            send_reply(io, head, session_id, delay);
            Next::Flow(Flow::Continue)
        }
    }
}

/// The reply in `io.bufs.json` as `application/json`, or as an SSE stream under `--sse`: a
/// priming event (an id, empty data), then the message event.
fn send_reply(io: &mut Io<'_>, head: &RequestHead, session: Option<SessionId>, delay: Duration) {
    let w = io.w;
    let b = w.behaviour();
    let sse = b.sse && head.accepts_sse;
    let r = Response {
        content_type: Some(if sse { response::SSE } else { response::JSON }),
        session,
        chunked: b.chunked,
        ..Response::new(200, head.keep_alive)
    };
    if sse {
        let mut prefix = [0u8; 64];
        let mut cursor = &mut prefix[..];
        let _ = write!(
            cursor,
            "id: {}\ndata: \n\nevent: message\ndata: ",
            w.next_event_id()
        );
        let used = 64 - cursor.len();
        let body: [&[u8]; 3] = [&prefix[..used], &io.bufs.json, b"\n\n"];
        response::render(&mut io.bufs.frame, w, &r, &body);
    } else {
        response::render(&mut io.bufs.frame, w, &r, &[&io.bufs.json]);
    }
    io.send_frame(delay, Some(io.now));
}

fn mcp_delete(head: &RequestHead, io: &mut Io<'_>) -> Next {
    match head.session {
        SessionHeader::Absent => {
            let fault = Fault::new(
                ErrorCode::InvalidRequest,
                "Bad Request: DELETE /mcp needs the Mcp-Session-Id header of the session to end",
            );
            mcp_fault(io, head, 400, None, fault)
        }
        SessionHeader::Id(sid) if io.w.shared.sessions.remove(sid) => {
            let r = Response::new(200, head.keep_alive);
            response::render(&mut io.bufs.frame, io.w, &r, &[]);
            io.send_frame(Duration::ZERO, None);
            Next::Flow(Flow::Continue)
        }
        SessionHeader::Id(_) | SessionHeader::Malformed => session_not_found(io, head, None),
    }
}

fn upgrade(head: &RequestHead, io: &mut Io<'_>) -> Next {
    if !head.upgrade_websocket {
        return text(
            io,
            head,
            426,
            b"Upgrade: websocket\r\n",
            "Upgrade Required: /mcp/ws speaks WebSocket (send Upgrade: websocket)",
        );
    }
    if !head.ws_version_13 {
        return text(
            io,
            head,
            426,
            b"Sec-WebSocket-Version: 13\r\n",
            "Upgrade Required: only WebSocket version 13 is supported",
        );
    }
    let Some(key) = head.ws_key() else {
        return text(
            io,
            head,
            400,
            b"",
            "Bad Request: the WebSocket upgrade needs a Sec-WebSocket-Key header",
        );
    };
    let mut extra = Vec::with_capacity(160);
    extra.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    extra.extend_from_slice(wire::ws::accept_key(key).as_bytes());
    extra.extend_from_slice(b"\r\n");
    if head.ws_offers_mcp {
        extra.extend_from_slice(b"Sec-WebSocket-Protocol: mcp\r\n");
    }
    let r = Response {
        extra: &extra,
        ..Response::new(101, true)
    };
    response::render(&mut io.bufs.frame, io.w, &r, &[]);
    io.send_frame(Duration::ZERO, None);
    Next::Upgrade
}

fn health(head: &RequestHead, io: &mut Io<'_>) -> Next {
    let shared = &io.w.shared;
    let uptime = shared.started.elapsed().as_secs_f64();
    let node = &shared.config.id;
    let body = match head.route {
        Route::Ready => serde_json::json!({"status": "ready", "node": node, "uptime": uptime}),
        Route::Live => serde_json::json!({"status": "alive", "node": node, "uptime": uptime}),
        _ => {
            let totals = shared.totals();
            let gauges = &shared.gauges;
            let relaxed = std::sync::atomic::Ordering::Relaxed;
            serde_json::json!({
                "status": "healthy",
                "version": env!("CARGO_PKG_VERSION"),
                "uptime": uptime,
                "node": node,
                "timestamp": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
                "checks": {
                    "tcp": if shared.config.tcp.is_some() { "listening" } else { "off" },
                    "http": "listening",
                },
                "metrics": {
                    "connections": gauges.open_connections.load(relaxed),
                    "http_sessions": shared.sessions.len(),
                    "stream_sessions": gauges.stream_sessions.load(relaxed),
                    "requests": totals.requests_total(),
                },
            })
        }
    };
    let bytes = serde_json::to_vec(&body).expect("JSON values serialize");
    respond(io, head, 200, response::JSON, None, &[&bytes]);
    Next::Flow(Flow::Continue)
}
