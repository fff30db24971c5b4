//! [`Session`]: one connection's protocol state, driven by a reactor (see the module doc of
//! [`super`] for the driving contract). This file holds the public API and the transport
//! layers that turn received bytes into JSON-RPC messages; [`super::state`] decides what they
//! mean and what happens next.

use std::time::Instant;

use wire::lines::LineSplitter;
use wire::ws::{Decoder, Message as WsMessage, Role};

use super::http::{self, ResponseReader, Stop};
use super::idents::Field;
use super::state::{Core, HttpSide, Io, Mcp, Phase, tx};
use super::{Action, Context, ErrorKind, Event, Scenario, Transport, ws};

/// Receive-side state of the current connection.
#[derive(Debug)]
enum Rx {
    /// No connection (or one still connecting).
    None,
    Tcp(LineSplitter),
    /// WebSocket upgrade sent: the 101 head is awaited.
    Upgrade {
        head: Vec<u8>,
        key: ws::Key,
    },
    Ws(Decoder),
    Http(ResponseReader),
}

/// One MCP session over one connection at a time (reconnecting as needed).
///
/// Policies:
/// - Reconnect after a lost connection, a failed connect, a protocol error or a timeout, after
///   `cx.reconnect_backoff` (at least 10 ms), doubled per consecutive connect or handshake
///   failure up to 8x, times a random factor in [0.75, 1.25). An HTTP keep-alive connection
///   the server closed after answering is reopened without backoff, when the next request is
///   due. TCP and WebSocket start a new MCP session on each connection; HTTP keeps its
///   `Mcp-Session-Id` across connections.
/// - A failed `initialize` (JSON-RPC error, HTTP error, timeout, lost connection) is retried
///   on a new connection after backoff; after 3 failures in a row (HTTP session losses right
///   after a handshake count too) the session gives up: `Action::Close`.
/// - `shutdown` lets a request in flight finish (bounded by the request timeout), then closes:
///   HTTP DELETE of the MCP session (reconnecting once for it if the server had closed the
///   keep-alive connection), WebSocket close frame and its echo, TCP a plain close.
#[derive(Debug)]
pub struct Session {
    rx: Rx,
    core: Core,
}

impl Session {
    /// A session for `cx.targets[target]`, not yet connected. `seed` drives its random
    /// choices (WebSocket keys and masks, backoff jitter).
    pub fn new(cx: &Context, target: u32, seed: u64) -> Session {
        let transport = cx.targets[target as usize].transport;
        Session {
            rx: Rx::None,
            core: Core::new(transport, target, seed),
        }
    }

    pub fn target(&self) -> u32 {
        self.core.target
    }

    /// The reactor began a TCP connect.
    pub fn on_connect_start(&mut self, cx: &Context, now: Instant) {
        let t = self.core.ticks(now);
        if self.core.phase != Phase::Closed {
            self.rx = Rx::None;
            self.core.begin_connect(t);
        }
        self.settle(cx);
    }

    /// The TCP connect completed.
    pub fn on_connected(&mut self, cx: &Context, now: Instant, ev: &mut Vec<Event>) {
        let t = self.core.ticks(now);
        let mut io = Io { cx, t, ev };
        match self.core.phase {
            Phase::Connecting => {}
            Phase::Start | Phase::Backoff => self.core.begin_connect(t),
            _ => return self.settle(cx),
        }
        if cx.scenario == Scenario::Health && self.core.transport != Transport::Http {
            // `health` is plain HTTP; the CLI rejects it for other transports.
            io.ev.push(Event::Error(ErrorKind::Protocol));
            self.core.end();
            return self.settle(cx);
        }
        match self.core.transport {
            Transport::Tcp => {
                self.rx = Rx::Tcp(LineSplitter::new());
                self.core.established(&mut io);
            }
            Transport::Http => {
                self.rx = Rx::Http(ResponseReader::default());
                self.core.established(&mut io);
            }
            Transport::WebSocket => {
                let nonce = u128::from(self.core.rand()) << 64 | u128::from(self.core.rand());
                self.rx = Rx::Upgrade {
                    head: Vec::new(),
                    key: ws::key(nonce),
                };
                self.core.phase = Phase::Upgrading;
                self.core.tx |= tx::UPGRADE;
            }
        }
        self.settle(cx);
    }

    /// Bytes received.
    pub fn on_bytes(&mut self, cx: &Context, data: &[u8], now: Instant, ev: &mut Vec<Event>) {
        let t = self.core.ticks(now);
        let mut io = Io { cx, t, ev };
        if matches!(self.core.phase, Phase::Upgrading | Phase::Open) {
            self.receive(&mut io, data);
        }
        self.settle(cx);
    }

    /// The peer closed its side (read returned 0).
    pub fn on_eof(&mut self, cx: &Context, now: Instant, ev: &mut Vec<Event>) {
        let t = self.core.ticks(now);
        let mut io = Io { cx, t, ev };
        match (self.core.phase, &mut self.rx) {
            (Phase::Connecting | Phase::Upgrading, _) => {
                self.core.connect_failed(&mut io, ErrorKind::Reset)
            }
            (Phase::Open, Rx::Http(reader)) => {
                let mut side = HttpSide {
                    core: &mut self.core,
                    io: &mut io,
                };
                match reader.eof(cx.max_message, &mut side) {
                    Ok(false) => self.core.peer_closed(&mut io),
                    Ok(true) | Err(Stop::Halted) => {}
                    Err(Stop::Broken) => {
                        self.core
                            .drop_connection(&mut io, ErrorKind::Protocol, false)
                    }
                }
            }
            (Phase::Open, _) => self.core.peer_closed(&mut io),
            _ => {}
        }
        self.settle(cx);
    }

    /// A connect, send or receive failed.
    pub fn on_io_error(
        &mut self,
        cx: &Context,
        kind: ErrorKind,
        now: Instant,
        ev: &mut Vec<Event>,
    ) {
        let t = self.core.ticks(now);
        let mut io = Io { cx, t, ev };
        match self.core.phase {
            Phase::Connecting | Phase::Upgrading => self.core.connect_failed(&mut io, kind),
            Phase::Open => self.core.drop_connection(&mut io, kind, false),
            _ => {}
        }
        self.settle(cx);
    }

    /// Called at (or after) `next_deadline()`; earlier calls do nothing.
    pub fn on_timer(&mut self, cx: &Context, now: Instant, ev: &mut Vec<Event>) {
        let t = self.core.ticks(now);
        self.core.on_timer(&mut Io { cx, t, ev });
        self.settle(cx);
    }

    /// Appends the bytes to send to `out`; false when there is nothing.
    pub fn poll_transmit(&mut self, cx: &Context, now: Instant, out: &mut Vec<u8>) -> bool {
        self.core.ticks(now);
        let mut wrote = false;
        if self.core.tx & tx::UPGRADE != 0 {
            self.core.tx &= !tx::UPGRADE;
            if let Rx::Upgrade { key, .. } = &self.rx {
                ws::write_upgrade(out, &cx.targets[self.core.target as usize], key);
                wrote = true;
            }
        }
        self.core.transmit(cx, out) || wrote
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.core.instant(self.core.deadline)
    }

    pub fn action(&self) -> Action {
        match self.core.phase {
            Phase::Start | Phase::Backoff => Action::Connect,
            Phase::Closed => Action::Close,
            Phase::Connecting | Phase::Upgrading | Phase::Open => Action::Keep,
        }
    }

    /// The hold is over: close cleanly (after a request in flight finishes).
    pub fn shutdown(&mut self, cx: &Context, now: Instant, ev: &mut Vec<Event>) {
        let t = self.core.ticks(now);
        self.core.shutdown(&mut Io { cx, t, ev });
        self.settle(cx);
    }

    /// Open model: a send is due at `intended`. If a request is in flight (or the session is
    /// not ready) the send is owed, goes as soon as possible, and `Late` is counted.
    pub fn fire(&mut self, cx: &Context, now: Instant, intended: Instant, ev: &mut Vec<Event>) {
        self.core.ticks(intended.min(now));
        let t = self.core.ticks(now);
        let intended = self.core.ticks(intended);
        self.core.fire(&mut Io { cx, t, ev }, intended);
        self.settle(cx);
    }

    /// The last replica identity seen (`X-Replica` header, else `serverInfo.name`).
    pub fn replica(&self) -> Option<&str> {
        self.core.idents.get(Field::Replica)
    }

    /// The MCP session is ready for requests (for `health`: the target was reached).
    pub fn is_initialized(&self) -> bool {
        self.core.mcp == Mcp::Ready
    }

    /// Bytes held for partly received messages (0 for an idle session).
    pub fn buffered(&self) -> usize {
        match &self.rx {
            Rx::None => 0,
            Rx::Tcp(lines) => lines.buffered(),
            Rx::Upgrade { head, .. } => head.len(),
            Rx::Ws(decoder) => decoder.buffered(),
            Rx::Http(reader) => reader.buffered(),
        }
    }

    /// Heap bytes the receive side holds (the wire decoders free theirs once a unit is
    /// consumed, which their own tests check; their `buffered` stands in for capacity).
    #[cfg(test)]
    pub fn rx_heap(&self) -> usize {
        match &self.rx {
            Rx::Http(reader) => reader.capacity(),
            Rx::Upgrade { head, .. } => head.capacity(),
            _ => self.buffered(),
        }
    }

    /// Drops receive state that outlived its connection and recomputes the deadline.
    fn settle(&mut self, cx: &Context) {
        if !matches!(self.core.phase, Phase::Upgrading | Phase::Open) {
            self.rx = Rx::None;
        }
        self.core.refresh(cx);
    }

    fn receive(&mut self, io: &mut Io<'_>, mut input: &[u8]) {
        let max = io.cx.max_message;
        if let Rx::Upgrade { head, key } = &mut self.rx {
            let verdict = match http::take_head(head, &mut input, max) {
                Ok(None) => return,
                Ok(Some(bytes)) => {
                    let mut slots = http::header_slots();
                    http::parse_head(bytes, &mut slots).and_then(|h| {
                        ws::check_upgrade(&h, key)?;
                        if let Some(replica) = h.value("x-replica") {
                            self.core.replica_header(io, replica);
                        }
                        Ok(())
                    })
                }
                Err(kind) => Err(kind),
            };
            if let Err(kind) = verdict {
                return self.core.connect_failed(io, kind);
            }
            self.rx = Rx::Ws(Decoder::new(Role::Client));
            self.core.established(io);
        }
        match &mut self.rx {
            Rx::Tcp(lines) => loop {
                match lines.next(&mut input, max) {
                    Ok(Some(line)) => {
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        if !line.trim_ascii().is_empty() && !self.core.message(io, line) {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(_) => return self.core.drop_connection(io, ErrorKind::Protocol, false),
                }
            },
            Rx::Ws(decoder) => loop {
                match decoder.next(&mut input, max) {
                    Ok(Some(WsMessage::Text(text) | WsMessage::Binary(text))) => {
                        for part in text.split(|&b| b == b'\n') {
                            if !part.trim_ascii().is_empty() && !self.core.message(io, part) {
                                return;
                            }
                        }
                    }
                    Ok(Some(WsMessage::Ping(payload))) => self.core.queue_pong(payload),
                    Ok(Some(WsMessage::Pong(_))) => {}
                    Ok(Some(WsMessage::Close(..))) => return self.core.ws_close(io),
                    Ok(None) => return,
                    Err(_) => return self.core.drop_connection(io, ErrorKind::Protocol, false),
                }
            },
            Rx::Http(reader) => {
                let mut side = HttpSide {
                    core: &mut self.core,
                    io,
                };
                if reader.feed(input, max, &mut side) == Err(Stop::Broken) {
                    self.core.drop_connection(io, ErrorKind::Protocol, false);
                }
            }
            Rx::None | Rx::Upgrade { .. } => {}
        }
    }
}
