//! The connection and MCP state of one session, apart from its receive buffers: what is in
//! flight, what is due, what to send next, and every policy decision (timeouts, reconnects,
//! retries). [`super::Session`] feeds it the messages its transport layer decodes.

use std::time::{Duration, Instant};

use super::http::{self, BodyMode, ContentType, Extra, Halt, Head};
use super::idents::{Field, Idents};
use super::json::{self, Reply, Str};
use super::{Context, ErrorKind, Event, Outcome, Pacing, Scenario, Target, Transport, mcp, ws};
use crate::flags::Flags;

/// "No time": no deadline set.
pub const NONE: u64 = u64::MAX;
/// Failed handshakes (or sessions lost right after one) in a row before a session gives up.
pub const MAX_STRIKES: u8 = 3;
/// The reconnect backoff doubles per consecutive failure, at most this many times.
const MAX_DOUBLINGS: u8 = 3;
/// Floor of the reconnect backoff, so a zero setting cannot make a session spin.
pub const MIN_BACKOFF: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Never connected: connect now.
    Start,
    /// Waiting to reconnect until the deadline (none: now).
    Backoff,
    /// TCP connect in progress.
    Connecting,
    /// WebSocket upgrade sent, 101 awaited.
    Upgrading,
    /// Established.
    Open,
    /// Finished.
    Closed,
}

/// What the open connection waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Nothing,
    /// The `initialize` result.
    Initialize,
    /// The HTTP answer (202) to `notifications/initialized`.
    Initialized,
    /// A scenario request's reply.
    Request,
    /// HTTP: the reply was read; the rest of its body (an SSE stream) is still coming.
    Drain,
    /// HTTP: the answer to the DELETE ending the MCP session.
    Delete,
    /// WebSocket: the server's close frame echoing ours.
    CloseEcho,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mcp {
    /// No MCP session: `initialize` is next.
    Fresh,
    /// HTTP: `initialize` answered, `notifications/initialized` next.
    Acked,
    /// Scenario requests may go.
    Ready,
}

/// Messages waiting for `poll_transmit`.
pub mod tx {
    pub const UPGRADE: u8 = 1;
    pub const INITIALIZE: u8 = 2;
    pub const INITIALIZED: u8 = 4;
    pub const REQUEST: u8 = 8;
    pub const DELETE: u8 = 16;
    pub const CLOSE: u8 = 32;
}

mod flag {
    /// `shutdown` was called.
    pub const CLOSING: u8 = 1;
    /// `Connected` was emitted for the current connection.
    pub const ESTABLISHED: u8 = 2;
    /// The current connection delivered a complete HTTP response.
    pub const PROGRESS: u8 = 4;
    /// Replica identity comes from the `X-Replica` header, not `serverInfo.name`.
    pub const HEADER_REPLICA: u8 = 8;
    /// The request in flight carried an `Mcp-Session-Id`.
    pub const SENT_SID: u8 = 16;
    /// No handshake: requests stand alone and reuse one id.
    pub const STATELESS: u8 = 32;
}

/// Per-call inputs: the shared settings, the time, and where events go.
pub struct Io<'a> {
    pub cx: &'a Context,
    /// `now` in session ticks.
    pub t: u64,
    pub ev: &'a mut Vec<Event>,
}

/// Nanoseconds, saturating below [`NONE`].
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos())
        .unwrap_or(NONE - 1)
        .min(NONE - 1)
}

fn after(t: u64, d: Duration) -> u64 {
    t.saturating_add(nanos(d)).min(NONE - 1)
}

fn since(t: u64, start: u64) -> Duration {
    Duration::from_nanos(t.saturating_sub(start))
}

/// Times are nanoseconds since `base` (the first instant the session saw), in `u64`s.
#[derive(Debug)]
pub struct Core {
    pub idents: Idents,
    /// Replies to the server (pongs, answers to its requests, a close echo) to send next.
    replies: Option<Box<[u8]>>,
    base: Option<Instant>,
    pub deadline: u64,
    /// Connect start while connecting; send time of what is in flight once open.
    mark: u64,
    /// Intended send time of the request in flight (open model; else equal to `mark`).
    intended: u64,
    /// Closed model: when the next request is due. Open model: intended time of the oldest
    /// owed send.
    due: u64,
    /// Open model: intended time of the newest owed send.
    owed_last: u64,
    rng: u64,
    pub target: u32,
    next_id: u32,
    /// Open model: sends due while one was in flight (or the session was not ready).
    owed: u32,
    pub transport: Transport,
    pub phase: Phase,
    pub wait: Wait,
    pub mcp: Mcp,
    pub tx: u8,
    flags: Flags,
    /// Failed handshakes (and session losses) since the session last worked.
    strikes: u8,
    /// Consecutive connect or handshake failures: grows the backoff.
    failures: u8,
}

impl Core {
    pub fn new(transport: Transport, target: u32, seed: u64) -> Core {
        Core {
            idents: Idents::default(),
            replies: None,
            base: None,
            deadline: NONE,
            mark: 0,
            intended: 0,
            due: 0,
            owed_last: 0,
            rng: seed,
            target,
            next_id: 0,
            owed: 0,
            transport,
            phase: Phase::Start,
            wait: Wait::Nothing,
            mcp: Mcp::Fresh,
            tx: 0,
            flags: Flags::default(),
            strikes: 0,
            failures: 0,
        }
    }

    /// `t` in ticks; the first instant seen becomes the base.
    pub fn ticks(&mut self, t: Instant) -> u64 {
        let base = *self.base.get_or_insert(t);
        nanos(t.saturating_duration_since(base))
    }

    pub fn instant(&self, t: u64) -> Option<Instant> {
        if t == NONE {
            return None;
        }
        Some(self.base? + Duration::from_nanos(t))
    }

    /// splitmix64.
    pub fn rand(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn mask(&mut self) -> [u8; 4] {
        (self.rand() as u32).to_ne_bytes()
    }

    pub fn closing(&self) -> bool {
        self.flags.has(flag::CLOSING)
    }

    fn is_health(cx: &Context) -> bool {
        cx.scenario == Scenario::Health
    }

    fn has_session_id(&self) -> bool {
        self.idents.get(Field::SessionId).is_some()
    }

    /// The reconnect pause: the configured backoff (at least [`MIN_BACKOFF`]), doubled per
    /// consecutive failure up to 8x, times a random factor in [0.75, 1.25) so sessions that
    /// failed together do not return together.
    fn backoff(&mut self, cx: &Context) -> u64 {
        let base = nanos(cx.reconnect_backoff.max(MIN_BACKOFF));
        let doublings = self.failures.saturating_sub(1).min(MAX_DOUBLINGS);
        let jitter = 768 + self.rand() % 512;
        (base.saturating_mul(1 << doublings) / 1024).saturating_mul(jitter)
    }

    /// Recomputes the deadline from the state (backoff keeps the one it was given).
    pub fn refresh(&mut self, cx: &Context) {
        self.deadline = match self.phase {
            Phase::Start | Phase::Closed => NONE,
            Phase::Backoff => self.deadline,
            Phase::Connecting | Phase::Upgrading => after(self.mark, cx.connect_timeout),
            Phase::Open => match self.wait {
                Wait::Nothing => {
                    let paced =
                        matches!(cx.pacing, Pacing::Closed { .. }) && cx.scenario != Scenario::Idle;
                    if paced && self.mcp == Mcp::Ready && !self.closing() {
                        self.due
                    } else {
                        NONE
                    }
                }
                _ => after(self.mark, cx.request_timeout),
            },
        };
    }

    // ---- connection lifecycle ----

    pub fn begin_connect(&mut self, t: u64) {
        self.phase = Phase::Connecting;
        self.mark = t;
        self.wait = Wait::Nothing;
        self.tx = 0;
        self.replies = None;
        self.flags.set(flag::ESTABLISHED | flag::PROGRESS, false);
    }

    /// The transport is up (TCP connected; WebSocket upgraded).
    pub fn established(&mut self, io: &mut Io<'_>) {
        self.phase = Phase::Open;
        self.wait = Wait::Nothing;
        self.flags.set(flag::ESTABLISHED, true);
        io.ev.push(Event::Connected {
            took: since(io.t, self.mark),
        });
        if Self::is_health(io.cx) || io.cx.stateless {
            self.mcp = Mcp::Ready;
            self.failures = 0;
            self.flags.set(flag::STATELESS, io.cx.stateless);
        }
        self.advance(io);
    }

    /// A connect (or WebSocket upgrade) failed.
    pub fn connect_failed(&mut self, io: &mut Io<'_>, kind: ErrorKind) {
        if !matches!(self.phase, Phase::Connecting | Phase::Upgrading) {
            return;
        }
        io.ev.push(Event::Error(kind));
        self.failures = self.failures.saturating_add(1);
        self.reconnect(io, false);
    }

    /// The open connection is gone or must go (`cause`): settles what was in flight, then
    /// plans a reconnect. `quiet`: the peer closed in an orderly way, which is no error
    /// when nothing was in flight.
    pub fn drop_connection(&mut self, io: &mut Io<'_>, cause: ErrorKind, quiet: bool) {
        if self.phase != Phase::Open {
            return;
        }
        let lazy = quiet
            && self.transport == Transport::Http
            && self.flags.has(flag::PROGRESS)
            && matches!(self.wait, Wait::Nothing | Wait::Drain);
        match self.wait {
            Wait::Request => self.report(io, Outcome::Error(cause)),
            Wait::Initialize | Wait::Initialized => return self.init_failed(io, cause),
            Wait::Delete => return self.finish(io, Some(cause)),
            Wait::CloseEcho => {
                return self.finish(io, (cause == ErrorKind::Timeout).then_some(cause));
            }
            Wait::Drain => {}
            Wait::Nothing if !quiet => io.ev.push(Event::Error(cause)),
            Wait::Nothing => {}
        }
        self.reconnect(io, lazy)
    }

    /// The peer closed its side.
    pub fn peer_closed(&mut self, io: &mut Io<'_>) {
        if self.wait == Wait::CloseEcho {
            self.finish(io, None);
        } else {
            self.drop_connection(io, ErrorKind::Reset, true);
        }
    }

    /// The session is over: `Closed` after a clean close, else the error that ended it.
    fn finish(&mut self, io: &mut Io<'_>, error: Option<ErrorKind>) {
        io.ev.push(error.map_or(Event::Closed, Event::Error));
        self.end();
    }

    /// No more connections and no more requests (queued replies, such as a close echo,
    /// still go out before the reactor closes the socket).
    pub fn end(&mut self) {
        self.phase = Phase::Closed;
        self.wait = Wait::Nothing;
        self.tx = 0;
    }

    /// Plans the next connection. `lazy` (an HTTP keep-alive connection closed by the server
    /// after it answered): no backoff, and no earlier than the next request is due.
    fn reconnect(&mut self, io: &mut Io<'_>, lazy: bool) {
        let was_established = self.flags.has(flag::ESTABLISHED);
        self.flags.set(flag::ESTABLISHED | flag::PROGRESS, false);
        self.wait = Wait::Nothing;
        self.tx = 0;
        if self.closing() {
            return self.end();
        }
        if was_established {
            io.ev.push(Event::Reconnecting);
        }
        if self.transport != Transport::Http {
            self.mcp = Mcp::Fresh;
        }
        self.phase = Phase::Backoff;
        self.deadline = if lazy {
            let paced = matches!(io.cx.pacing, Pacing::Closed { .. })
                && io.cx.scenario != Scenario::Idle
                && self.mcp == Mcp::Ready;
            let due = if paced { self.due } else { 0 };
            if due > io.t { due } else { NONE }
        } else {
            io.t.saturating_add(self.backoff(io.cx)).min(NONE - 1)
        };
    }

    // ---- the MCP conversation ----

    /// Sends whatever is next on an idle open connection.
    pub fn advance(&mut self, io: &mut Io<'_>) {
        if self.phase != Phase::Open || self.wait != Wait::Nothing {
            return;
        }
        if self.closing() {
            return self.begin_close(io);
        }
        match self.mcp {
            Mcp::Fresh => {
                self.send(io.t, tx::INITIALIZE, Wait::Initialize);
                self.flags.set(flag::SENT_SID, false);
            }
            Mcp::Acked => self.send(io.t, tx::INITIALIZED, Wait::Initialized),
            Mcp::Ready => match (&io.cx.scenario, io.cx.pacing) {
                (Scenario::Idle, _) => {}
                (_, Pacing::Closed { .. }) if self.due <= io.t => self.send_request(io.t, io.t),
                (_, Pacing::Closed { .. }) => {}
                (_, Pacing::Open) if self.owed > 0 => {
                    let intended = self.take_owed();
                    self.send_request(io.t, intended);
                }
                (_, Pacing::Open) => {}
            },
        }
    }

    fn send(&mut self, t: u64, what: u8, wait: Wait) {
        if self.flags.has(flag::STATELESS) {
            self.next_id = 2;
        } else if what != tx::INITIALIZED {
            self.next_id = self.next_id.wrapping_add(1);
        }
        self.tx |= what;
        self.wait = wait;
        self.mark = t;
        self.intended = t;
    }

    fn send_request(&mut self, t: u64, intended: u64) {
        self.send(t, tx::REQUEST, Wait::Request);
        self.intended = intended.min(t);
        self.flags.set(flag::SENT_SID, self.has_session_id());
    }

    /// The id of the last request sent.
    fn current_id(&self) -> u32 {
        self.next_id.wrapping_sub(1)
    }

    fn take_owed(&mut self) -> u64 {
        let intended = self.due;
        if self.owed > 1 {
            let step = self.owed_last.saturating_sub(self.due) / u64::from(self.owed - 1);
            self.due += step;
        }
        self.owed -= 1;
        intended
    }

    /// Open model: a send is due at `intended`.
    pub fn fire(&mut self, io: &mut Io<'_>, intended: u64) {
        let open = io.cx.pacing == Pacing::Open && io.cx.scenario != Scenario::Idle;
        if !open || self.phase == Phase::Closed || self.closing() {
            return;
        }
        let ready = self.phase == Phase::Open && self.wait == Wait::Nothing;
        if ready && self.mcp == Mcp::Ready && self.owed == 0 {
            return self.send_request(io.t, intended);
        }
        if self.owed == 0 {
            self.due = intended;
        }
        self.owed_last = intended;
        self.owed = self.owed.saturating_add(1);
        io.ev.push(Event::Late);
    }

    /// A JSON-RPC message (or batch) arrived. False when the connection is gone.
    pub fn message(&mut self, io: &mut Io<'_>, text: &[u8]) -> bool {
        let waiting = matches!(self.wait, Wait::Initialize | Wait::Request);
        let expected = u64::from(self.current_id());
        let parsed = json::each_message(text, self.wait == Wait::Initialize, |m| {
            if m.is_request() {
                self.server_request(m.id_raw, m.method.is_some_and(|s| s.eq_str("ping")));
                return true;
            }
            if m.method.is_some() || !waiting || !m.answers(expected) {
                return true;
            }
            self.answer(io, m.reply);
            false
        });
        if parsed.is_err() {
            self.drop_connection(io, ErrorKind::Protocol, false);
        }
        self.phase == Phase::Open
    }

    fn answer(&mut self, io: &mut Io<'_>, reply: Reply<'_>) {
        match (self.wait, reply) {
            (
                Wait::Initialize,
                Reply::Result {
                    server_name,
                    protocol_version,
                },
            ) => self.initialized(io, server_name, protocol_version),
            (Wait::Initialize, Reply::Error { code }) => {
                self.init_failed(io, code.map_or(ErrorKind::Protocol, ErrorKind::JsonRpc))
            }
            (Wait::Initialize, Reply::None) => self.init_failed(io, ErrorKind::Protocol),
            (Wait::Request, reply) => {
                let outcome = match reply {
                    Reply::Result { .. } => Outcome::Ok,
                    Reply::Error { code: Some(code) } => Outcome::Error(ErrorKind::JsonRpc(code)),
                    _ => Outcome::Error(ErrorKind::Protocol),
                };
                self.report(io, outcome);
                self.reply_read(io);
            }
            _ => {}
        }
    }

    /// The awaited reply was read: HTTP drains the rest of the body first.
    fn reply_read(&mut self, io: &mut Io<'_>) {
        if self.transport == Transport::Http {
            self.wait = Wait::Drain;
        } else {
            self.wait = Wait::Nothing;
            self.advance(io);
        }
    }

    fn initialized(&mut self, io: &mut Io<'_>, name: Option<Str<'_>>, version: Option<Str<'_>>) {
        // The replica first, so whoever counts sessions per replica sees who initialized it.
        if let Some(name) = name {
            let known = self.idents.get(Field::Replica).unwrap_or("");
            if !self.flags.has(flag::HEADER_REPLICA) && !name.eq_str(known) {
                self.set_replica(io, &name.decode());
            }
        }
        io.ev.push(Event::Initialized {
            took: since(io.t, self.mark),
        });
        let negotiated = match version {
            Some(v) if !v.eq_str(&io.cx.mcp_version) => v.decode(),
            _ => String::new(),
        };
        self.idents.set(Field::Version, &negotiated);
        self.failures = 0;
        if io.cx.scenario == Scenario::Idle {
            self.strikes = 0;
        }
        if self.transport == Transport::Http {
            self.mcp = Mcp::Acked;
        } else {
            self.mcp = Mcp::Ready;
            self.tx |= tx::INITIALIZED;
        }
        self.reply_read(io);
    }

    /// The handshake failed: retried on a new connection after backoff, up to
    /// [`MAX_STRIKES`] times in a row, then the session gives up.
    fn init_failed(&mut self, io: &mut Io<'_>, kind: ErrorKind) {
        io.ev.push(Event::Error(kind));
        self.strikes = self.strikes.saturating_add(1);
        self.failures = self.failures.saturating_add(1);
        self.idents.set(Field::SessionId, "");
        self.mcp = Mcp::Fresh;
        if self.strikes >= MAX_STRIKES {
            return self.end();
        }
        self.reconnect(io, false);
    }

    /// The server forgot our MCP session (HTTP 404): start a new one on this connection.
    fn session_lost(&mut self, io: &mut Io<'_>, status: u16) {
        io.ev.push(Event::Reinitializing);
        self.idents.set(Field::SessionId, "");
        self.mcp = Mcp::Fresh;
        self.strikes = self.strikes.saturating_add(1);
        if self.strikes >= MAX_STRIKES {
            self.finish(io, Some(ErrorKind::Http(status)));
        } else if self.closing() {
            self.finish(io, None);
        }
    }

    /// A scenario request finished.
    fn report(&mut self, io: &mut Io<'_>, outcome: Outcome) {
        io.ev.push(Event::Response {
            latency: since(io.t, self.intended),
            uncorrected: since(io.t, self.mark),
            outcome,
        });
        if let Pacing::Closed { interval } = io.cx.pacing {
            self.due = after(io.t, interval);
        }
        if matches!(outcome, Outcome::Ok | Outcome::Error(ErrorKind::JsonRpc(_))) {
            self.strikes = 0;
        }
    }

    fn set_replica(&mut self, io: &mut Io<'_>, name: &str) {
        let changed = self.idents.get(Field::Replica) != Some(name);
        if changed && !name.is_empty() && self.idents.set(Field::Replica, name) {
            io.ev.push(Event::ReplicaChanged);
        }
    }

    /// An `X-Replica` header: it names the replica from now on.
    pub fn replica_header(&mut self, io: &mut Io<'_>, value: &[u8]) {
        self.flags.set(flag::HEADER_REPLICA, true);
        if let Ok(name) = std::str::from_utf8(value) {
            self.set_replica(io, name);
        }
    }

    pub fn shutdown(&mut self, io: &mut Io<'_>) {
        if self.phase == Phase::Closed || self.closing() {
            return;
        }
        self.flags.set(flag::CLOSING, true);
        self.owed = 0;
        let needs_delete = self.transport == Transport::Http && self.has_session_id();
        match self.phase {
            Phase::Start | Phase::Backoff if needs_delete => {
                self.phase = Phase::Backoff;
                self.deadline = NONE;
            }
            Phase::Connecting | Phase::Upgrading if needs_delete => {}
            Phase::Open => self.advance(io),
            _ => self.finish(io, None),
        }
    }

    fn begin_close(&mut self, io: &mut Io<'_>) {
        match self.transport {
            Transport::WebSocket => self.send(io.t, tx::CLOSE, Wait::CloseEcho),
            Transport::Http if self.has_session_id() => self.send(io.t, tx::DELETE, Wait::Delete),
            Transport::Http | Transport::Tcp => self.finish(io, None),
        }
    }

    pub fn on_timer(&mut self, io: &mut Io<'_>) {
        if self.deadline == NONE || io.t < self.deadline {
            return;
        }
        match self.phase {
            Phase::Backoff => self.deadline = NONE,
            Phase::Connecting | Phase::Upgrading => {
                self.connect_failed(io, ErrorKind::ConnectTimeout)
            }
            Phase::Open => match self.wait {
                Wait::Nothing => self.advance(io),
                Wait::Drain => self.drop_connection(io, ErrorKind::Timeout, true),
                _ => self.drop_connection(io, ErrorKind::Timeout, false),
            },
            Phase::Start | Phase::Closed => {}
        }
    }

    // ---- replies to the server (TCP and WebSocket) ----

    /// A request from the server: `ping` gets an empty result, anything else "method not
    /// found". Over HTTP it would need a POST of its own; it is skipped.
    fn server_request(&mut self, raw_id: &[u8], is_ping: bool) {
        if self.transport == Transport::Http {
            return;
        }
        self.queue_reply(|core, out| {
            core.write_framed(out, |o| mcp::write_server_reply(o, raw_id, is_ping))
        });
    }

    pub fn queue_pong(&mut self, payload: &[u8]) {
        self.queue_reply(|core, out| {
            let mask = core.mask();
            ws::write_pong(out, payload, mask)
        });
    }

    /// The server closed the WebSocket: the echo is ours to send, then the connection goes
    /// (or, when we asked for the close, the session is done).
    pub fn ws_close(&mut self, io: &mut Io<'_>) {
        if self.wait == Wait::CloseEcho {
            return self.finish(io, None);
        }
        self.queue_reply(|core, out| {
            let mask = core.mask();
            ws::write_close(out, mask)
        });
        self.drop_connection(io, ErrorKind::Reset, true);
    }

    fn queue_reply(&mut self, write: impl FnOnce(&mut Self, &mut Vec<u8>)) {
        let mut bytes = self.replies.take().map(Vec::from).unwrap_or_default();
        write(self, &mut bytes);
        self.replies = Some(bytes.into_boxed_slice());
    }

    /// One JSON-RPC message in the transport's framing (TCP line or WebSocket text frame).
    fn write_framed(&mut self, out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
        if self.transport == Transport::WebSocket {
            let mask = self.mask();
            ws::write_text(out, mask, body);
        } else {
            body(out);
            out.push(b'\n');
        }
    }

    // ---- transmit ----

    fn extra<'a>(&'a self, cx: &'a Context, after_init: bool) -> Extra<'a> {
        Extra {
            session_id: self.idents.get(Field::SessionId).filter(|_| after_init),
            protocol_version: after_init
                .then(|| self.idents.get(Field::Version).unwrap_or(&cx.mcp_version)),
            cookie: self.idents.get(Field::Cookie),
        }
    }

    /// Writes the queued replies and messages (all but the WebSocket upgrade, which needs
    /// the key the receive side keeps). True if anything was written.
    pub fn transmit(&mut self, cx: &Context, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        if let Some(replies) = self.replies.take() {
            out.extend_from_slice(&replies);
        }
        let pending = std::mem::take(&mut self.tx);
        let target = &cx.targets[self.target as usize];
        for what in [
            tx::INITIALIZE,
            tx::INITIALIZED,
            tx::REQUEST,
            tx::DELETE,
            tx::CLOSE,
        ] {
            if pending & what != 0 {
                self.write_message(cx, target, what, out);
            }
        }
        out.len() > start
    }

    fn write_message(&mut self, cx: &Context, target: &Target, what: u8, out: &mut Vec<u8>) {
        let id = self.current_id();
        let body = |o: &mut Vec<u8>| match what {
            tx::INITIALIZE => mcp::write_initialize(o, id, cx),
            tx::INITIALIZED => mcp::write_initialized(o),
            _ => mcp::write_scenario(o, id, &cx.scenario),
        };
        match (self.transport, what) {
            (Transport::WebSocket, tx::CLOSE) => {
                let mask = self.mask();
                ws::write_close(out, mask);
            }
            (Transport::Http, tx::DELETE) => http::write_delete(out, target, &self.extra(cx, true)),
            (Transport::Http, tx::REQUEST) if Self::is_health(cx) => {
                http::write_get(out, target, &self.extra(cx, false))
            }
            (Transport::Http, _) => {
                let extra = self.extra(cx, what != tx::INITIALIZE);
                http::write_post(out, target, &extra, body)
            }
            _ => self.write_framed(out, body),
        }
    }
}

/// The session seen by the HTTP response reader.
pub struct HttpSide<'a, 'c> {
    pub core: &'a mut Core,
    pub io: &'a mut Io<'c>,
}

impl http::Handler for HttpSide<'_, '_> {
    fn head(&mut self, head: &Head<'_>) -> Result<BodyMode, Halt> {
        let Self { core, io } = self;
        if let Some(replica) = head.value("x-replica") {
            core.replica_header(io, replica);
        }
        for cookie in head.values("set-cookie") {
            core.idents.apply_set_cookie(cookie);
        }
        match core.wait {
            Wait::Initialize | Wait::Request => {}
            Wait::Initialized | Wait::Delete => return Ok(BodyMode::Skip),
            Wait::Nothing | Wait::Drain | Wait::CloseEcho => {
                core.drop_connection(io, ErrorKind::Protocol, false);
                return Err(Halt);
            }
        }
        if !head.is_success() || Core::is_health(io.cx) {
            return Ok(BodyMode::Skip);
        }
        if core.wait == Wait::Initialize {
            let sid = head.value("mcp-session-id").unwrap_or(b"");
            let stored =
                std::str::from_utf8(sid).is_ok_and(|s| core.idents.set(Field::SessionId, s));
            if !stored {
                core.drop_connection(io, ErrorKind::Protocol, false);
                return Err(Halt);
            }
        }
        Ok(match head.content_type {
            ContentType::Json => BodyMode::Json,
            ContentType::EventStream => BodyMode::Sse,
            ContentType::Other => BodyMode::Skip,
        })
    }

    fn message(&mut self, json: &[u8]) -> Result<(), Halt> {
        if self.core.message(self.io, json) {
            Ok(())
        } else {
            Err(Halt)
        }
    }

    fn end(&mut self, status: u16, keep_alive: bool) -> Result<(), Halt> {
        let Self { core, io } = self;
        core.flags.set(flag::PROGRESS, true);
        let ok = (200..300).contains(&status);
        let lost = status == 404 || (status == 400 && core.flags.has(flag::SENT_SID));
        match core.wait {
            Wait::Drain => core.wait = Wait::Nothing,
            Wait::Initialize => {
                let kind = if ok {
                    ErrorKind::Protocol
                } else {
                    ErrorKind::Http(status)
                };
                core.init_failed(io, kind);
            }
            Wait::Initialized if ok => {
                core.mcp = Mcp::Ready;
                core.wait = Wait::Nothing;
            }
            Wait::Initialized if lost => {
                core.wait = Wait::Nothing;
                core.session_lost(io, status);
            }
            Wait::Initialized => core.init_failed(io, ErrorKind::Http(status)),
            Wait::Request => {
                let health = Core::is_health(io.cx);
                let outcome = match (ok, health) {
                    (true, true) => Outcome::Ok,
                    (true, false) => Outcome::Error(ErrorKind::Protocol),
                    (false, _) => Outcome::Error(ErrorKind::Http(status)),
                };
                core.report(io, outcome);
                core.wait = Wait::Nothing;
                if lost && !health {
                    core.session_lost(io, status);
                }
            }
            Wait::Delete => {
                let fine = ok || status == 404 || status == 405;
                core.finish(io, (!fine).then_some(ErrorKind::Http(status)));
            }
            Wait::Nothing | Wait::CloseEcho => {}
        }
        if core.phase != Phase::Open {
            return Err(Halt);
        }
        if !keep_alive {
            core.drop_connection(io, ErrorKind::Reset, true);
            return Err(Halt);
        }
        core.advance(io);
        Ok(())
    }
}
