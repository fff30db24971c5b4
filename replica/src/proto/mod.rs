//! Per-connection protocol state machines, sans-IO: bytes in, bytes out through [`Io`], and a
//! [`Flow`] telling the driver whether to keep going. A connection starts as TCP ndjson or HTTP,
//! and an HTTP connection may become a WebSocket.

mod http;
mod line;
mod ws;

use std::time::Instant;

pub use http::HttpProto;
pub use line::LineProto;
pub use ws::WsProto;

use crate::mcp::{self, Lifecycle, Reply};
use crate::metrics::Transport;
use crate::outbox::Io;
use crate::state::Worker;
use std::sync::atomic::Ordering::Relaxed;

/// What the driver does next with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop reading; close once every queued reply is sent.
    CloseAfterFlush,
    /// Close at once, dropping anything unsent (injected drops).
    CloseNow,
}

/// One connection's protocol.
#[derive(Debug)]
pub enum Proto {
    Line(LineProto),
    Http(HttpProto),
    Ws(WsProto),
}

impl Proto {
    pub fn new(transport: Transport) -> Proto {
        match transport {
            Transport::Tcp => Proto::Line(LineProto::default()),
            Transport::Http => Proto::Http(HttpProto::default()),
            Transport::WebSocket => Proto::Ws(WsProto::default()),
        }
    }

    /// HTTP/1.1 must answer in request order; message streams need not.
    pub fn ordered(&self) -> bool {
        matches!(self, Proto::Http(_))
    }

    pub fn on_bytes(&mut self, input: &[u8], io: &mut Io<'_>) -> Flow {
        match self {
            Proto::Line(p) => p.on_bytes(input, io),
            Proto::Ws(p) => p.on_bytes(input, io),
            Proto::Http(p) => match p.on_bytes(input, io) {
                http::HttpFlow::Flow(flow) => flow,
                http::HttpFlow::Upgrade { rest } => {
                    io.w.shared.gauges.accepted[Transport::WebSocket as usize]
                        .fetch_add(1, Relaxed);
                    io.delayed.set_ordered(false);
                    *self = Proto::Ws(WsProto::default());
                    if rest.is_empty() {
                        Flow::Continue
                    } else {
                        self.on_bytes(&rest, io)
                    }
                }
            },
        }
    }

    /// The peer finished sending.
    pub fn on_eof(&mut self) -> Flow {
        Flow::CloseAfterFlush
    }

    /// When [`Proto::on_timer`] wants to run.
    pub fn deadline(&self, w: &Worker) -> Option<Instant> {
        match self {
            Proto::Http(p) => p.deadline(w),
            Proto::Line(_) | Proto::Ws(_) => None,
        }
    }

    pub fn on_timer(&mut self, io: &mut Io<'_>) -> Flow {
        match self {
            Proto::Http(p) => p.on_timer(io),
            Proto::Line(_) | Proto::Ws(_) => Flow::Continue,
        }
    }

    /// The connection is gone: release what it held in shared counters.
    pub fn on_close(&mut self, w: &Worker) {
        match self {
            Proto::Line(p) => p.session.close(w),
            Proto::Ws(p) => p.session.close(w),
            Proto::Http(_) => {}
        }
    }
}

/// The MCP session of a TCP or WebSocket connection: one connection, one session.
#[derive(Debug, Default)]
pub struct StreamSession {
    life: Lifecycle,
}

impl StreamSession {
    /// Handles one message, rendering any reply into `io.bufs.json`.
    pub fn handle(&mut self, raw: &[u8], io: &mut Io<'_>) -> Reply {
        let was_live = self.life.version.is_some();
        let reply = mcp::handle(raw, &mut self.life, io.w, &mut io.bufs.json);
        if !was_live && self.life.version.is_some() {
            io.w.shared.gauges.stream_sessions.fetch_add(1, Relaxed);
        }
        reply
    }

    pub fn close(&mut self, w: &Worker) {
        if self.life.version.take().is_some() {
            w.shared.gauges.stream_sessions.fetch_sub(1, Relaxed);
        }
    }
}

/// Messages inside a line or WebSocket text: blank pieces are skipped, as erlmcp does.
fn is_blank(piece: &[u8]) -> bool {
    piece.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests;
