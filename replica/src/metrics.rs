//! Counters kept per worker thread (written only by their thread, summed at scrape time) and the
//! Prometheus text rendering of `/metrics`. Names are a contract with the deployer's alerts.

use std::io::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The method label of `replica_requests_total`: a fixed set, so the label cannot grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Initialize,
    Initialized,
    Ping,
    ToolsList,
    ToolsCall,
    ResourcesList,
    ResourcesRead,
    OtherRequest,
    OtherNotification,
}

impl Method {
    const ALL: [Method; 9] = [
        Method::Initialize,
        Method::Initialized,
        Method::Ping,
        Method::ToolsList,
        Method::ToolsCall,
        Method::ResourcesList,
        Method::ResourcesRead,
        Method::OtherRequest,
        Method::OtherNotification,
    ];

    pub fn of(name: &str, is_notification: bool) -> Method {
        match name {
            "initialize" => Method::Initialize,
            "notifications/initialized" => Method::Initialized,
            "ping" => Method::Ping,
            "tools/list" => Method::ToolsList,
            "tools/call" => Method::ToolsCall,
            "resources/list" => Method::ResourcesList,
            "resources/read" => Method::ResourcesRead,
            _ if is_notification => Method::OtherNotification,
            _ => Method::OtherRequest,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::Initialized => "notifications/initialized",
            Method::Ping => "ping",
            Method::ToolsList => "tools/list",
            Method::ToolsCall => "tools/call",
            Method::ResourcesList => "resources/list",
            Method::ResourcesRead => "resources/read",
            Method::OtherRequest => "other",
            Method::OtherNotification => "notifications/other",
        }
    }
}

/// Every JSON-RPC error code this server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Parse,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    Injected,
    SessionNotFound,
    ResourceNotFound,
    NotInitialized,
    UnsupportedVersion,
}

impl ErrorCode {
    const ALL: [ErrorCode; 9] = [
        ErrorCode::Parse,
        ErrorCode::InvalidRequest,
        ErrorCode::MethodNotFound,
        ErrorCode::InvalidParams,
        ErrorCode::Injected,
        ErrorCode::SessionNotFound,
        ErrorCode::ResourceNotFound,
        ErrorCode::NotInitialized,
        ErrorCode::UnsupportedVersion,
    ];

    pub fn code(self) -> i32 {
        match self {
            ErrorCode::Parse => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::Injected => -32000,
            ErrorCode::SessionNotFound => -32001,
            ErrorCode::ResourceNotFound => -32002,
            ErrorCode::NotInitialized => -32005,
            ErrorCode::UnsupportedVersion => -32061,
        }
    }
}

/// Fault kinds counted by `replica_injected_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    Error,
    Drop,
}

/// HTTP statuses this server answers with.
pub const STATUSES: [u16; 12] = [101, 200, 202, 400, 404, 405, 408, 413, 415, 426, 431, 500];

/// Upper bounds (seconds) of the request duration histogram buckets, `+Inf` implied.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// One worker thread's counters.
#[derive(Debug, Default)]
pub struct ThreadMetrics {
    requests: [AtomicU64; Method::ALL.len()],
    errors: [AtomicU64; ErrorCode::ALL.len()],
    injected: [AtomicU64; 2],
    statuses: [AtomicU64; STATUSES.len()],
    buckets: [AtomicU64; BUCKETS.len() + 1],
    duration_sum_ns: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

impl ThreadMetrics {
    pub fn request(&self, m: Method) {
        bump(&self.requests[m as usize]);
    }

    pub fn error(&self, e: ErrorCode) {
        bump(&self.errors[e as usize]);
    }

    pub fn injected(&self, kind: Injected) {
        bump(&self.injected[kind as usize]);
    }

    pub fn status(&self, status: u16) {
        if let Some(i) = STATUSES.iter().position(|&s| s == status) {
            bump(&self.statuses[i]);
        }
    }

    pub fn duration(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len());
        bump(&self.buckets[i]);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.duration_sum_ns.store(
            self.duration_sum_ns.load(Relaxed).saturating_add(ns),
            Relaxed,
        );
    }
}

/// Process-wide gauges and counters touched from every thread.
#[derive(Debug, Default)]
pub struct Gauges {
    pub open_connections: AtomicI64,
    /// TCP and WebSocket connections past `initialize` (HTTP sessions live in the table).
    pub stream_sessions: AtomicI64,
    pub accepted: [AtomicU64; 3],
    pub refused: AtomicU64,
}

/// Which listener or upgrade a connection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Http,
    WebSocket,
}

impl Transport {
    const ALL: [Transport; 3] = [Transport::Tcp, Transport::Http, Transport::WebSocket];

    fn label(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Http => "http",
            Transport::WebSocket => "ws",
        }
    }
}

/// Sum of every thread's counters.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub requests: [u64; Method::ALL.len()],
    pub errors: [u64; ErrorCode::ALL.len()],
    pub injected: [u64; 2],
    pub statuses: [u64; STATUSES.len()],
    pub buckets: [u64; BUCKETS.len() + 1],
    pub duration_sum_ns: u64,
}

impl Totals {
    pub fn add(&mut self, t: &ThreadMetrics) {
        let sum = |into: &mut [u64], from: &[AtomicU64]| {
            for (a, b) in into.iter_mut().zip(from) {
                *a += b.load(Relaxed);
            }
        };
        sum(&mut self.requests, &t.requests);
        sum(&mut self.errors, &t.errors);
        sum(&mut self.injected, &t.injected);
        sum(&mut self.statuses, &t.statuses);
        sum(&mut self.buckets, &t.buckets);
        self.duration_sum_ns += t.duration_sum_ns.load(Relaxed);
    }

    pub fn requests_total(&self) -> u64 {
        self.requests.iter().sum()
    }
}

/// What `/metrics` shows besides the counters.
pub struct Snapshot<'a> {
    pub id: &'a str,
    pub version: &'a str,
    pub uptime: Duration,
    pub gauges: &'a Gauges,
    pub http_sessions: usize,
    pub totals: &'a Totals,
}

/// Prometheus text exposition format 0.0.4.
pub fn render(s: &Snapshot<'_>, out: &mut Vec<u8>) {
    let t = s.totals;
    let g = s.gauges;
    header(out, "replica_info", "gauge", "Replica identity.");
    let _ = writeln!(
        out,
        "replica_info{{id=\"{}\",version=\"{}\"}} 1",
        s.id, s.version
    );
    let gauges = [
        (
            "replica_open_connections",
            "Open client connections (TCP, HTTP and WebSocket).",
            g.open_connections.load(Relaxed),
        ),
        (
            "replica_sessions",
            "Live MCP sessions (initialized TCP/WebSocket connections plus HTTP sessions).",
            g.stream_sessions.load(Relaxed) + s.http_sessions as i64,
        ),
        (
            "replica_uptime_seconds",
            "Seconds since the process started.",
            s.uptime.as_secs() as i64,
        ),
    ];
    for (name, help, value) in gauges {
        header(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let accepted = Transport::ALL.map(|tr| (tr.label(), g.accepted[tr as usize].load(Relaxed)));
    let counters: [Family<'_>; 6] = [
        (
            "replica_connections_total",
            "Accepted connections by transport.",
            "transport",
            accepted.iter().map(|&(l, n)| (l.to_string(), n)).collect(),
        ),
        (
            "replica_refused_connections_total",
            "Connections closed at accept because --max-conns was reached.",
            "",
            vec![(String::new(), g.refused.load(Relaxed))],
        ),
        (
            "replica_requests_total",
            "JSON-RPC messages received, by method.",
            "method",
            Method::ALL
                .iter()
                .map(|&m| (m.label().to_string(), t.requests[m as usize]))
                .collect(),
        ),
        (
            "replica_errors_total",
            "JSON-RPC error replies, by code.",
            "code",
            ErrorCode::ALL
                .iter()
                .map(|&e| (e.code().to_string(), t.errors[e as usize]))
                .collect(),
        ),
        (
            "replica_injected_total",
            "Injected faults, by kind.",
            "kind",
            ["error", "drop"]
                .iter()
                .zip(t.injected)
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
        ),
        (
            "replica_http_responses_total",
            "HTTP responses, by status.",
            "status",
            STATUSES
                .iter()
                .zip(t.statuses)
                .map(|(s, n)| (s.to_string(), n))
                .collect(),
        ),
    ];
    for (name, help, label, series) in counters {
        header(out, name, "counter", help);
        for (value, n) in series {
            if label.is_empty() {
                let _ = writeln!(out, "{name} {n}");
            } else {
                let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
            }
        }
    }
    let name = "replica_request_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "Time from a request's arrival until its reply is handed to the socket.",
    );
    let mut cumulative = 0;
    for (le, n) in BUCKETS.iter().zip(t.buckets) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    cumulative += t.buckets[BUCKETS.len()];
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "{name}_sum {}", t.duration_sum_ns as f64 / 1e9);
    let _ = writeln!(out, "{name}_count {cumulative}");
}

/// A counter family: name, help, label name (empty: unlabelled), (label value, count) pairs.
type Family<'a> = (&'a str, &'a str, &'a str, Vec<(String, u64)>);

fn header(out: &mut Vec<u8>, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_names_every_series() {
        let m = ThreadMetrics::default();
        m.request(Method::Ping);
        m.request(Method::Ping);
        m.error(ErrorCode::NotInitialized);
        m.injected(Injected::Drop);
        m.status(404);
        m.duration(Duration::from_micros(300));
        m.duration(Duration::from_secs(20));
        let mut totals = Totals::default();
        totals.add(&m);
        let gauges = Gauges::default();
        gauges.open_connections.store(3, Relaxed);
        gauges.stream_sessions.store(2, Relaxed);
        let mut out = Vec::new();
        render(
            &Snapshot {
                id: "r7",
                version: "0.1.0",
                uptime: Duration::from_secs(5),
                gauges: &gauges,
                http_sessions: 4,
                totals: &totals,
            },
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        for line in [
            "replica_info{id=\"r7\",version=\"0.1.0\"} 1",
            "replica_open_connections 3",
            "replica_sessions 6",
            "replica_requests_total{method=\"ping\"} 2",
            "replica_errors_total{code=\"-32005\"} 1",
            "replica_injected_total{kind=\"drop\"} 1",
            "replica_injected_total{kind=\"error\"} 0",
            "replica_http_responses_total{status=\"404\"} 1",
            "replica_request_duration_seconds_bucket{le=\"0.00025\"} 0",
            "replica_request_duration_seconds_bucket{le=\"0.0005\"} 1",
            "replica_request_duration_seconds_bucket{le=\"10\"} 1",
            "replica_request_duration_seconds_bucket{le=\"+Inf\"} 2",
            "replica_request_duration_seconds_count 2",
            "replica_request_duration_seconds_sum 20.0003",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
