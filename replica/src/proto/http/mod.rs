//! HTTP/1.1 keep-alive: request heads (httparse), bodies by length or chunked, pipelining, the
//! limits (head size, body size, read timeout), then routing (see `routes`).

mod head;
mod response;
mod routes;

use std::mem;
use std::time::{Duration, Instant};

use wire::chunked::{Chunk, ChunkedDecoder};

use self::head::{BodyLen, RequestHead};
use self::response::Response;
use super::Flow;
use crate::outbox::Io;
use crate::state::Worker;

/// Largest request head accepted; beyond it the answer is 431.
pub const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// What the HTTP layer hands back to [`super::Proto`].
#[derive(Debug)]
pub enum HttpFlow {
    Flow(Flow),
    /// The 101 was queued: the connection speaks WebSocket from `rest` on.
    Upgrade {
        rest: Vec<u8>,
    },
}

/// What a routed request asks of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Flow(Flow),
    Upgrade,
}

impl Next {
    /// `None` to go on with the next request; else what the connection does now, `rest` being
    /// the bytes after this request.
    fn stop(self, rest: &[u8]) -> Option<HttpFlow> {
        match self {
            Next::Flow(Flow::Continue) => None,
            Next::Flow(flow) => Some(HttpFlow::Flow(flow)),
            Next::Upgrade => Some(HttpFlow::Upgrade {
                rest: rest.to_vec(),
            }),
        }
    }
}

#[derive(Debug, Default)]
pub struct HttpProto {
    /// An unfinished request head (empty and unallocated between requests).
    head: Vec<u8>,
    body: Option<Box<BodyState>>,
    /// When the unfinished head began, or when the unfinished body last grew.
    since: Option<Instant>,
}

#[derive(Debug)]
struct BodyState {
    req: RequestHead,
    framing: Framing,
    buf: Vec<u8>,
}

#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(ChunkedDecoder),
}

enum BodyStep {
    More,
    Done(Box<BodyState>),
    Failed(HttpFlow),
}

impl HttpProto {
    pub fn on_bytes(&mut self, input: &[u8], io: &mut Io<'_>) -> HttpFlow {
        if self.head.is_empty() {
            return self.process(input, io);
        }
        // A head ends with '\n': without one in `input` it cannot have completed.
        if memchr::memchr(b'\n', input).is_none() {
            if self.head.len() + input.len() > MAX_HEAD {
                return self.fail(431, "request head too large", io);
            }
            self.head.extend_from_slice(input);
            return HttpFlow::Flow(Flow::Continue);
        }
        let mut carried = mem::take(&mut self.head);
        carried.extend_from_slice(input);
        self.process(&carried, io)
    }

    pub fn deadline(&self, w: &Worker) -> Option<Instant> {
        self.since.map(|s| s + w.behaviour().read_timeout)
    }

    pub fn on_timer(&mut self, io: &mut Io<'_>) -> Flow {
        match self.deadline(io.w) {
            Some(due) if due <= io.now => {
                match self.fail(408, "request not completed within --read-timeout", io) {
                    HttpFlow::Flow(flow) => flow,
                    HttpFlow::Upgrade { .. } => unreachable!("a failure never upgrades"),
                }
            }
            _ => Flow::Continue,
        }
    }

    fn process(&mut self, mut input: &[u8], io: &mut Io<'_>) -> HttpFlow {
        loop {
            if self.body.is_some() {
                let next = match self.feed_body(&mut input, io) {
                    BodyStep::More => return HttpFlow::Flow(Flow::Continue),
                    BodyStep::Failed(flow) => return flow,
                    BodyStep::Done(state) => routes::dispatch(&state.req, &state.buf, io),
                };
                if let Some(stop) = next.stop(input) {
                    return stop;
                }
            }
            if input.is_empty() {
                return HttpFlow::Flow(Flow::Continue);
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let parsed = req.parse(input);
            let n = match parsed {
                Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
                Ok(httparse::Status::Complete(_)) => {
                    return self.fail(431, "request head too large", io);
                }
                Ok(httparse::Status::Partial) if input.len() > MAX_HEAD => {
                    return self.fail(431, "request head too large", io);
                }
                Ok(httparse::Status::Partial) => {
                    self.head.extend_from_slice(input);
                    self.since.get_or_insert(io.now);
                    return HttpFlow::Flow(Flow::Continue);
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return self.fail(431, "too many header fields", io);
                }
                Err(e) => {
                    return self.fail(400, &format!("malformed request head ({e})"), io);
                }
            };
            let head = match RequestHead::from_parsed(&req) {
                Ok(h) => h,
                Err(bad) => return self.fail(bad.status, bad.why, io),
            };
            input = &input[n..];
            self.since = None;
            let max = io.w.behaviour().max_message as u64;
            let next = match head.body {
                BodyLen::None => routes::dispatch(&head, b"", io),
                BodyLen::Length(len) if len > max => {
                    return self.fail(413, "request body exceeds --max-message", io);
                }
                BodyLen::Length(len) if input.len() as u64 >= len => {
                    let (body, rest) = input.split_at(len as usize);
                    input = rest;
                    routes::dispatch(&head, body, io)
                }
                BodyLen::Length(len) => {
                    self.start_body(head, Framing::Length(len), len as usize, input, io);
                    continue;
                }
                BodyLen::Chunked => {
                    self.start_body(head, Framing::Chunked(ChunkedDecoder::new()), 0, input, io);
                    continue;
                }
            };
            if let Some(stop) = next.stop(input) {
                return stop;
            }
        }
    }

    fn start_body(
        &mut self,
        req: RequestHead,
        framing: Framing,
        expected: usize,
        input: &[u8],
        io: &mut Io<'_>,
    ) {
        if req.expect_continue && input.is_empty() && io.delayed.is_empty() {
            io.bufs
                .out
                .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        self.body = Some(Box::new(BodyState {
            req,
            framing,
            buf: Vec::with_capacity(expected.min(64 * 1024)),
        }));
        self.since = Some(io.now);
    }

    fn feed_body(&mut self, input: &mut &[u8], io: &mut Io<'_>) -> BodyStep {
        let max = io.w.behaviour().max_message;
        let state = self.body.as_mut().expect("a body is being read");
        let before = state.buf.len();
        let complete = match &mut state.framing {
            Framing::Length(remaining) => {
                let take = (*remaining).min(input.len() as u64) as usize;
                state.buf.extend_from_slice(&input[..take]);
                *input = &input[take..];
                *remaining -= take as u64;
                *remaining == 0
            }
            Framing::Chunked(decoder) => loop {
                match decoder.next(input) {
                    Ok(Some(Chunk::Data(data))) => {
                        if state.buf.len() + data.len() > max {
                            return BodyStep::Failed(self.fail(
                                413,
                                "request body exceeds --max-message",
                                io,
                            ));
                        }
                        state.buf.extend_from_slice(data);
                    }
                    Ok(Some(Chunk::End)) => break true,
                    Ok(None) => break false,
                    Err(e) => return BodyStep::Failed(self.fail(400, &e.to_string(), io)),
                }
            },
        };
        if complete {
            self.since = None;
            BodyStep::Done(self.body.take().expect("a body is being read"))
        } else {
            if state.buf.len() > before {
                self.since = Some(io.now);
            }
            BodyStep::More
        }
    }

    /// Answers a request this server will not serve, then closes the connection.
    fn fail(&mut self, status: u16, why: &str, io: &mut Io<'_>) -> HttpFlow {
        self.head = Vec::new();
        self.body = None;
        self.since = None;
        let body = format!("{} {why}\n", status_word(status));
        let r = Response {
            content_type: Some(response::TEXT),
            ..Response::new(status, false)
        };
        response::render(&mut io.bufs.frame, io.w, &r, &[body.as_bytes()]);
        io.send_frame(Duration::ZERO, None);
        HttpFlow::Flow(Flow::CloseAfterFlush)
    }
}

fn status_word(status: u16) -> &'static str {
    match status {
        408 => "Request Timeout:",
        413 => "Content Too Large:",
        431 => "Request Header Fields Too Large:",
        501 => "Not Implemented:",
        _ => "Bad Request:",
    }
}

#[cfg(test)]
mod tests;
