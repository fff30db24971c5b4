//! TCP: newline-delimited JSON-RPC, one message per line, every reply ends with `\n`.

use wire::lines::LineSplitter;

use super::{Flow, StreamSession, is_blank};
use crate::mcp::{self, Fault, Reply};
use crate::metrics::ErrorCode;
use crate::outbox::Io;

#[derive(Debug, Default)]
pub struct LineProto {
    lines: LineSplitter,
    pub(super) session: StreamSession,
}

impl LineProto {
    pub fn on_bytes(&mut self, mut input: &[u8], io: &mut Io<'_>) -> Flow {
        let max = io.w.behaviour().max_message;
        loop {
            match self.lines.next(&mut input, max) {
                Ok(None) => return Flow::Continue,
                Ok(Some(line)) if is_blank(line) => {}
                Ok(Some(line)) => match self.session.handle(line, io) {
                    Reply::Send { delay } => {
                        io.bufs.json.push(b'\n');
                        io.send_json(delay, Some(io.now));
                    }
                    Reply::Nothing => {}
                    Reply::Drop => return Flow::CloseNow,
                },
                Err(too_large) => {
                    too_large_reply(io, &too_large.to_string());
                    io.bufs.json.push(b'\n');
                    io.send_json(std::time::Duration::ZERO, None);
                    return Flow::CloseAfterFlush;
                }
            }
        }
    }
}

/// Renders the JSON-RPC error for a message over `--max-message` into `io.bufs.json`.
pub(super) fn too_large_reply(io: &mut Io<'_>, what: &str) {
    let fault = Fault::new(
        ErrorCode::InvalidRequest,
        format!("Invalid Request: {what} (--max-message); closing the connection"),
    );
    io.w.metrics.error(fault.code);
    io.bufs.json.clear();
    mcp::write_error(&mut io.bufs.json, None, &fault);
}
