//! The sans-IO protocol core: one [`Session`] per connection, fed bytes and time by a reactor,
//! handing back bytes to send and [`Event`]s to count. No sockets, no clocks, no async here:
//! both reactors (io_uring and epoll) and the unit tests drive exactly this code.
//!
//! Driving contract (what a reactor does, in this order, after every input it gives a session):
//! 1. call one of `on_connected`, `on_bytes`, `on_eof`, `on_io_error`, `on_timer`, `shutdown`, `fire`,
//!    passing the shared [`Context`], the current time and the worker's event vector;
//! 2. drain `poll_transmit` into a send buffer until it returns false, and send those bytes;
//! 3. act on `action()`: [`Action::Connect`] means close the current socket (if any) and open a new
//!    connection to the same target, then call `on_connect_start`/`on_connected` again;
//!    [`Action::Close`] means close the socket: the session is finished;
//! 4. re-arm the session's timer at `next_deadline()`.
//!
//! While `action()` is [`Action::Connect`], `next_deadline()` is the earliest time to connect
//! (reconnect backoff); `None` means now. Calling `on_timer` at that deadline clears it.
//! Policies (reconnect, backoff, handshake retries, shutdown) are listed on [`Session`].
//!
//! Memory: a session owns no buffer while it waits; the only bytes it keeps are a partially
//! received message (capped by [`Context::max_message`]) and small identifiers (HTTP session id,
//! sticky cookie, replica id).

use std::net::SocketAddr;
use std::time::Duration;

mod http;
mod idents;
mod json;
mod mcp;
mod session;
mod sse;
mod state;
mod ws;

#[cfg(test)]
mod tests;

pub use session::Session;

/// How a target is spoken to; picked by the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// `tcp://host:port`: newline-delimited JSON-RPC.
    Tcp,
    /// `ws://host:port/path`: WebSocket text frames.
    WebSocket,
    /// `http://host:port/path`: MCP Streamable HTTP (or plain GETs for the `health` scenario).
    Http,
}

/// One destination, resolved before the run starts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Target {
    pub transport: Transport,
    pub addr: SocketAddr,
    /// Value of the HTTP `Host` header (`host:port` as the user wrote it).
    pub host: String,
    /// Request path for WebSocket and HTTP (`/mcp`, `/mcp/ws`, ...); unused for TCP.
    pub path: String,
    /// The URL as given, for reports.
    pub url: String,
}

/// What each session does once initialized.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Scenario {
    /// JSON-RPC `ping`.
    Ping,
    /// `tools/list`.
    ToolsList,
    /// `tools/call` of `tool` with `arguments` (a JSON object, already serialized).
    ToolsCall { tool: String, arguments: String },
    /// Plain `GET /health` on HTTP targets: no MCP session at all.
    Health,
    /// Initialize, then hold the connection without requests.
    Idle,
}

impl Scenario {
    /// The name the command line and reports use.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Ping => "ping",
            Scenario::ToolsList => "tools-list",
            Scenario::ToolsCall { .. } => "tools-call",
            Scenario::Health => "health",
            Scenario::Idle => "idle",
        }
    }
}

/// Who decides when a session sends its next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Pacing {
    /// Closed model: the next request goes `interval` after the previous reply.
    Closed { interval: Duration },
    /// Open model: the worker calls [`Session::fire`] at each intended send time.
    Open,
}

/// Settings shared by every session of a worker (passed by reference on each call, so a
/// session need not store it).
#[derive(Debug, Clone)]
pub struct Context {
    pub targets: Vec<Target>,
    pub scenario: Scenario,
    pub pacing: Pacing,
    /// `protocolVersion` sent in `initialize` and `MCP-Protocol-Version` after it.
    pub mcp_version: String,
    pub client_name: String,
    pub client_version: String,
    /// Bound on TCP connect plus the WebSocket upgrade.
    pub connect_timeout: Duration,
    /// Bound on each request, `initialize` included.
    pub request_timeout: Duration,
    /// Cap on a message (a line, a frame, an HTTP head or body) kept while incomplete.
    pub max_message: usize,
    /// Pause before reconnecting after a lost connection.
    pub reconnect_backoff: Duration,
    /// No `initialize`: every request stands alone (a stateless server, or a plain JSON-RPC
    /// endpoint), without a session id, and reuses id 1 since no session spans requests.
    pub stateless: bool,
}

/// What the reactor must do with the session's connection after the last call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep the connection; nothing special.
    Keep,
    /// Close the current connection (if any) and open a new one to the same target, no earlier
    /// than `next_deadline()` when one is set (reconnect backoff).
    Connect,
    /// Close the connection; the session is over.
    Close,
}

/// Why something failed: the error taxonomy of the report (`key()` gives the names used in
/// summary.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// ECONNREFUSED.
    Refused,
    ConnectTimeout,
    /// ECONNRESET / EPIPE, or the peer closed while a reply was due.
    Reset,
    /// EADDRNOTAVAIL: out of ephemeral ports for a (source, destination) pair.
    AddrNotAvail,
    /// EMFILE / ENFILE: out of file descriptors.
    Emfile,
    /// Any other errno from the socket layer.
    Errno(i32),
    /// An HTTP status other than the expected one.
    Http(u16),
    /// A JSON-RPC error response, by its code.
    JsonRpc(i64),
    /// No reply within the request timeout.
    Timeout,
    /// Bytes that break the protocol (bad framing, unparsable reply, oversized message, ...).
    Protocol,
}

impl ErrorKind {
    pub fn from_errno(errno: i32) -> ErrorKind {
        match errno {
            libc::ECONNREFUSED => ErrorKind::Refused,
            libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED => ErrorKind::Reset,
            libc::EADDRNOTAVAIL => ErrorKind::AddrNotAvail,
            libc::EMFILE | libc::ENFILE => ErrorKind::Emfile,
            libc::ETIMEDOUT => ErrorKind::ConnectTimeout,
            e => ErrorKind::Errno(e),
        }
    }

    /// The name used in reports: `refused`, `http-404`, `jsonrpc--32601`, `errno-113`, ...
    pub fn key(&self) -> String {
        match self {
            ErrorKind::Refused => "refused".into(),
            ErrorKind::ConnectTimeout => "connect-timeout".into(),
            ErrorKind::Reset => "reset".into(),
            ErrorKind::AddrNotAvail => "eaddrnotavail".into(),
            ErrorKind::Emfile => "emfile".into(),
            ErrorKind::Errno(e) => format!("errno-{e}"),
            ErrorKind::Http(status) => format!("http-{status}"),
            ErrorKind::JsonRpc(code) => format!("jsonrpc-{code}"),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Protocol => "protocol".into(),
        }
    }
}

/// Something to count; pushed by the session into the worker's event vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Transport established (TCP connect, plus the WebSocket upgrade): time since
    /// `on_connect_start`.
    Connected { took: Duration },
    /// `initialize` answered with a result: time from sending it to its reply (the MCP
    /// handshake alone). Sent once per MCP session (again after a re-initialize).
    Initialized { took: Duration },
    /// A scenario request finished. `latency` runs from the send (closed model) or from the
    /// intended send time (open model) to the reply; `uncorrected` always from the real send.
    Response {
        latency: Duration,
        uncorrected: Duration,
        outcome: Outcome,
    },
    /// The replica answering this session changed (first reply, or a balancer moved it): read
    /// [`Session::replica`] now.
    ReplicaChanged,
    /// A failure not tied to one request's outcome (connect failure, protocol violation or I/O
    /// error with nothing in flight, failed initialize, failed DELETE or close, ...). When a
    /// session gives up, its last event is an `Error`.
    Error(ErrorKind),
    /// The session's MCP session ended on the server (404) and a new `initialize` follows.
    Reinitializing,
    /// An established connection (one that produced `Connected`) was lost, closed by the
    /// peer, or dropped after a timeout or protocol error; a reconnect follows (HTTP keeps its
    /// MCP session id; TCP and WebSocket start a new MCP session). Not sent for failed
    /// connects (those are `Error`s) nor during shutdown.
    Reconnecting,
    /// An open-model send could not go at its intended time because a request was in flight
    /// (or the session was not ready); it goes as soon as it can, its latency counted from
    /// the intended time.
    Late,
    /// The session finished its clean close (DELETE answered, WebSocket close echoed, TCP
    /// closed, or nothing was open to close).
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error(ErrorKind),
}
