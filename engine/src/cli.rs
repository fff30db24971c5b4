//! The command line: what the user asks for, before validation turns it into a [`Plan`].
//!
//! [`Plan`]: crate::plan::Plan

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "engine",
    version,
    about = "Open and hold real MCP sessions against MCP servers, and measure them honestly.",
    long_about = "Open and hold real MCP sessions (TCP ndjson, WebSocket, Streamable HTTP) and measure \
                  connect, initialize and request latency. Without --target, an embedded fleet of local \
                  replica processes is started and used.\n\nExample: engine --conns 100000 --hold 5m"
)]
pub struct Cli {
    /// Sessions to open and hold.
    #[arg(long, default_value_t = 1000)]
    pub conns: u64,

    /// How long to hold the sessions once the ramp is over (e.g. 30s, 5m).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub hold: Duration,

    /// A target URL: tcp://host:port, ws://host:port/path or http://host:port/path (repeatable;
    /// sessions are spread round robin). Without any, an embedded replica fleet is started.
    #[arg(long = "target", value_name = "URL")]
    pub targets: Vec<String>,

    /// A file with one target URL per line (# comments allowed).
    #[arg(long, value_name = "FILE")]
    pub targets_file: Option<PathBuf>,

    /// Connection opening rate, e.g. 2000/s (token bucket; also paces reconnects).
    #[arg(long, value_parser = parse_rate, conflicts_with = "ramp_time")]
    pub ramp: Option<f64>,

    /// Open all sessions evenly over this long instead of giving a rate.
    #[arg(long, value_parser = parse_duration)]
    pub ramp_time: Option<Duration>,

    /// What each session does once initialized.
    #[arg(long, value_enum, default_value_t = ScenarioArg::Ping)]
    pub scenario: ScenarioArg,

    /// Tool called by the tools-call scenario.
    #[arg(long, default_value = "echo")]
    pub tool: String,

    /// JSON object of arguments for the tools-call scenario.
    #[arg(long, default_value = r#"{"text":"hello"}"#)]
    pub tool_args: String,

    /// Pause between a reply and the session's next request (closed model); 0 = back to back.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub interval: Duration,

    /// Open model: total requests per second across all sessions, sent at their intended times
    /// (latency measured from the intended time; late sends counted).
    #[arg(long, value_parser = parse_rate, conflicts_with = "interval")]
    pub rate: Option<f64>,

    /// Skip initialize: every request stands alone, for stateless MCP servers and plain
    /// JSON-RPC endpoints (requests carry no session id and reuse id 1).
    #[arg(long)]
    pub stateless: bool,

    /// MCP protocol version sent in initialize.
    #[arg(long, default_value = "2025-11-25")]
    pub mcp_version: String,

    /// I/O backend: auto probes io_uring and falls back to epoll.
    #[arg(long, value_enum, default_value_t = IoArg::Auto)]
    pub io: IoArg,

    /// Worker threads in all (one per allowed core by default).
    #[arg(long)]
    pub workers: Option<u32>,

    /// Engine processes (by default: as many as the per-process file-descriptor limit needs).
    #[arg(long)]
    pub processes: Option<u32>,

    /// Source addresses to spread connections over (e.g. 127.0.0.2-127.0.0.60, a list, or a
    /// CIDR); each address gets its own ephemeral port range per destination.
    #[arg(long, value_name = "SPEC")]
    pub source_ips: Option<String>,

    /// Directory for summary.json (default: results/<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Bound on establishing a connection (TCP connect plus WebSocket upgrade).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub connect_timeout: Duration,

    /// Bound on each request, initialize included.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub request_timeout: Duration,

    /// How long the clean close at the end may take before connections are dropped.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub drain_timeout: Duration,

    /// Largest message kept while incomplete, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_message: usize,

    /// Embedded fleet: number of replica processes (used when no --target is given).
    #[arg(long, default_value_t = 12)]
    pub fleet: usize,

    /// Embedded fleet: transport the sessions use.
    #[arg(long, value_enum, default_value_t = FleetTransport::Http)]
    pub fleet_transport: FleetTransport,

    /// Embedded fleet: replicas share one port with SO_REUSEPORT (one destination address, as
    /// behind a load balancer; pair it with --source-ips at scale).
    #[arg(long)]
    pub fleet_reuseport: bool,

    /// Embedded fleet: extra replica flags, e.g. "--delay exp:5ms --error-rate 0.01".
    #[arg(long, allow_hyphen_values = true, value_name = "FLAGS")]
    pub fleet_args: Option<String>,

    /// Print the preflight table (limits vs this plan) and exit.
    #[arg(long)]
    pub preflight_only: bool,

    /// No live progress line.
    #[arg(long, short)]
    pub quiet: bool,

    /// Print summary.json to stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioArg {
    Ping,
    ToolsList,
    ToolsCall,
    Health,
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoArg {
    Auto,
    Uring,
    Epoll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FleetTransport {
    Tcp,
    Ws,
    Http,
}

impl FleetTransport {
    pub fn scheme(self) -> &'static str {
        match self {
            FleetTransport::Tcp => "tcp",
            FleetTransport::Ws => "ws",
            FleetTransport::Http => "http",
        }
    }
}

/// Humantime durations (`30s`, `5m`, `1h30m`, `250ms`), plus a bare `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}); use e.g. 30s, 5m, 250ms"))
}

/// `2000/s`, `2000`, `120/m`: events per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let bad = || format!("{s:?} is not a rate; use e.g. 2000/s or 120/m");
    let (n, per) = match s.trim().split_once('/') {
        Some((n, unit)) => {
            let per = match unit.trim() {
                "s" | "sec" => 1.0,
                "m" | "min" => 60.0,
                "h" => 3600.0,
                _ => return Err(bad()),
            };
            (n, per)
        }
        None => (s, 1.0),
    };
    let n: f64 = n.trim().parse().map_err(|_| bad())?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("{s:?}: a rate must be above zero"));
    }
    Ok(n / per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(
            parse_duration("5 parsecs")
                .unwrap_err()
                .contains("use e.g. 30s")
        );
        assert_eq!(parse_rate("2000/s"), Ok(2000.0));
        assert_eq!(parse_rate("120/m"), Ok(2.0));
        assert_eq!(parse_rate("50"), Ok(50.0));
        assert!(parse_rate("0/s").unwrap_err().contains("above zero"));
        assert!(parse_rate("fast").unwrap_err().contains("2000/s"));
    }

    #[test]
    fn cli_parses_the_readme_command() {
        let cli = Cli::try_parse_from(["engine", "--conns", "100000", "--hold", "5m"]).unwrap();
        assert_eq!((cli.conns, cli.hold), (100_000, Duration::from_secs(300)));
        assert!(cli.targets.is_empty());
        let e = Cli::try_parse_from(["engine", "--scenario", "pong"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
