//! WebSocket (RFC 6455, server side) after the `/mcp/ws` upgrade: text frames carrying JSON-RPC,
//! a frame's text split on `\n` (several messages per frame allowed), one reply per text frame.

use std::time::{Duration, Instant};

use wire::ws::{Decoder, Message, Opcode, Role, WsError, encode_frame};

use super::line::too_large_reply;
use super::{Flow, StreamSession, is_blank};
use crate::mcp::Reply;
use crate::outbox::Io;

const CLOSE_PROTOCOL_ERROR: u16 = 1002;
const CLOSE_TOO_BIG: u16 = 1009;

#[derive(Debug)]
pub struct WsProto {
    frames: Decoder,
    pub(super) session: StreamSession,
}

impl Default for WsProto {
    fn default() -> Self {
        WsProto {
            frames: Decoder::new(Role::Server),
            session: StreamSession::default(),
        }
    }
}

impl WsProto {
    pub fn on_bytes(&mut self, mut input: &[u8], io: &mut Io<'_>) -> Flow {
        let max = io.w.behaviour().max_message;
        loop {
            let message = match self.frames.next(&mut input, max) {
                Ok(None) => return Flow::Continue,
                Ok(Some(m)) => m,
                Err(WsError::TooLarge(t)) => {
                    too_large_reply(io, &t.to_string());
                    send_frame(io, Opcode::Text, Duration::ZERO, None);
                    send_close(io, Some(CLOSE_TOO_BIG));
                    return Flow::CloseAfterFlush;
                }
                Err(_) => {
                    send_close(io, Some(CLOSE_PROTOCOL_ERROR));
                    return Flow::CloseAfterFlush;
                }
            };
            match message {
                Message::Text(text) | Message::Binary(text) => {
                    for piece in text.split(|&b| b == b'\n').filter(|p| !is_blank(p)) {
                        match self.session.handle(piece, io) {
                            Reply::Send { delay } => {
                                send_frame(io, Opcode::Text, delay, Some(io.now));
                            }
                            Reply::Nothing => {}
                            Reply::Drop => return Flow::CloseNow,
                        }
                    }
                }
                Message::Ping(payload) => {
                    io.bufs.json.clear();
                    io.bufs.json.extend_from_slice(payload);
                    send_frame(io, Opcode::Pong, Duration::ZERO, None);
                }
                Message::Pong(_) => {}
                Message::Close(code, _) => {
                    send_close(io, code);
                    return Flow::CloseAfterFlush;
                }
            }
        }
    }
}

/// Frames `io.bufs.json` as one unmasked frame and sends it after `delay`.
fn send_frame(io: &mut Io<'_>, opcode: Opcode, delay: Duration, started: Option<Instant>) {
    io.bufs.frame.clear();
    encode_frame(&mut io.bufs.frame, opcode, &io.bufs.json, None);
    io.send_frame(delay, started);
}

fn send_close(io: &mut Io<'_>, code: Option<u16>) {
    io.bufs.json.clear();
    if let Some(code) = code {
        io.bufs.json.extend_from_slice(&code.to_be_bytes());
    }
    send_frame(io, Opcode::Close, Duration::ZERO, None);
}
