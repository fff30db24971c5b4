//! JSON-RPC 2.0 and the MCP methods, transport-free: bytes of one message in, the reply's bytes
//! out, plus what the transport must do (send after a delay, send nothing, drop the connection).

mod envelope;
mod methods;
mod render;

use std::time::Duration;

pub use envelope::{Message, Rejection, Request, parse};
pub use render::write_error;

use crate::metrics::{ErrorCode, Injected, Method};
use crate::state::Worker;

/// Protocol revisions reachable through the `initialize` handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2024_11_05,
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
}

impl Version {
    pub const ALL: [Version; 4] = [
        Version::V2024_11_05,
        Version::V2025_03_26,
        Version::V2025_06_18,
        Version::V2025_11_25,
    ];

    pub fn parse(text: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2024_11_05 => "2024-11-05",
            Version::V2025_03_26 => "2025-03-26",
            Version::V2025_06_18 => "2025-06-18",
            Version::V2025_11_25 => "2025-11-25",
        }
    }
}

/// Where one MCP session is in its lifecycle: `None` until `initialize` succeeded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub version: Option<Version>,
}

/// What the transport does after a message was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Send the rendered reply once `delay` has passed.
    Send { delay: Duration },
    /// A notification or a client's response: nothing to send.
    Nothing,
    /// Injected fault: close the connection without replying.
    Drop,
}

/// A JSON-RPC error to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub code: ErrorCode,
    pub message: String,
    /// Extra JSON (already serialized) for the error's `data` member.
    pub data: Option<String>,
}

impl Fault {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Fault {
        Fault {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// Handles one raw message (a line, a WebSocket text piece, an HTTP body), rendering any reply
/// into `out` (cleared first).
pub fn handle(raw: &[u8], life: &mut Lifecycle, w: &Worker, out: &mut Vec<u8>) -> Reply {
    match parse(raw) {
        Ok(message) => handle_message(message, life, w, out),
        Err(rejection) => reject(&rejection, w, out),
    }
}

/// Renders the error reply for a message that could not be parsed or is not valid JSON-RPC.
pub fn reject(rejection: &Rejection<'_>, w: &Worker, out: &mut Vec<u8>) -> Reply {
    out.clear();
    w.metrics.error(rejection.fault.code);
    write_error(out, rejection.id, &rejection.fault);
    Reply::Send {
        delay: w.sample_delay(),
    }
}

/// Handles a parsed message.
pub fn handle_message(
    message: Message<'_>,
    life: &mut Lifecycle,
    w: &Worker,
    out: &mut Vec<u8>,
) -> Reply {
    out.clear();
    let request = match message {
        Message::Request(r) => r,
        Message::Notification { method } => {
            w.metrics.request(Method::of(&method, true));
            return Reply::Nothing;
        }
        Message::Response => return Reply::Nothing,
    };
    let method = Method::of(&request.method, false);
    w.metrics.request(method);
    let answered = if method == Method::Initialize {
        methods::initialize(request.params, life, w)
    } else if life.version.is_none() {
        Err(Fault::new(
            ErrorCode::NotInitialized,
            "Not initialized: send initialize first",
        ))
    } else if w.chance(w.behaviour().drop_rate) {
        w.metrics.injected(Injected::Drop);
        return Reply::Drop;
    } else if w.chance(w.behaviour().error_rate) {
        w.metrics.injected(Injected::Error);
        Err(Fault::new(ErrorCode::Injected, "injected fault"))
    } else {
        methods::call(method, &request)
    };
    let extra = match answered {
        Ok(answer) => {
            render::write_result(out, request.id, &answer, w);
            answer.extra_delay()
        }
        Err(fault) => {
            w.metrics.error(fault.code);
            write_error(out, Some(request.id), &fault);
            Duration::ZERO
        }
    };
    Reply::Send {
        delay: w.sample_delay() + extra,
    }
}

#[cfg(test)]
mod tests;
