//! The `replica` command line: serve (the default), `fleet` and `probe`.

use std::ffi::OsString;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    AcceptVersions, Behaviour, Config, Delay, Listen, check_id, parse_bytes, parse_listen,
    parse_rate,
};

#[derive(Debug, Parser)]
#[command(
    name = "replica",
    version,
    about = "A lean MCP server that speaks what erlmcp speaks: TCP ndjson, Streamable HTTP, WebSocket.",
    args_override_self = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start N replica processes (ids r1..rN), print their target URLs, stop them all on Ctrl-C.
    Fleet(FleetArgs),
    /// GET an http:// URL: exit 0 on status 200, else 1 with the reason (a curl-free healthcheck).
    Probe(ProbeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Replica id: serverInfo.name, the X-Replica header, the metrics label [default: hostname]
    #[arg(long, env = "REPLICA_ID")]
    id: Option<String>,
    /// TCP listener (newline-delimited JSON-RPC): IP:PORT, or off
    #[arg(long, default_value = "127.0.0.1:5555", value_parser = parse_listen)]
    tcp: Listen,
    /// HTTP listener (Streamable HTTP at /mcp, WebSocket at /mcp/ws, /health, /metrics): IP:PORT, or off
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    http: Listen,
    /// Set SO_REUSEPORT on the listeners so several processes can share one port
    #[arg(long)]
    reuseport: bool,
    #[command(flatten)]
    behaviour: BehaviourArgs,
}

/// Flags that shape how requests are answered; `replica fleet` passes them to every child.
#[derive(Debug, Clone, Args)]
pub struct BehaviourArgs {
    /// Worker threads, each with its own event loop [default: number of CPUs]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Answer Streamable HTTP requests as text/event-stream (priming event, then the message)
    #[arg(long)]
    sse: bool,
    /// Send HTTP response bodies with Transfer-Encoding: chunked
    #[arg(long)]
    chunked: bool,
    /// Delay before each reply: 5ms, exp:5ms (mean), uniform:1ms..10ms
    #[arg(long, default_value = "0", value_parser = parse_delay)]
    delay: Delay,
    /// Fraction of requests after initialize answered with error -32000 "injected fault"
    #[arg(long, default_value = "0", value_parser = parse_rate)]
    error_rate: f64,
    /// Fraction of requests after initialize whose connection is closed without a reply
    #[arg(long, default_value = "0", value_parser = parse_rate)]
    drop_rate: f64,
    /// Close connections beyond this many open ones right after accept
    #[arg(long)]
    max_conns: Option<usize>,
    /// Largest message (TCP line, WebSocket message, HTTP body): bytes, or with KiB/MiB/GiB
    #[arg(long, default_value = "16MiB", value_parser = parse_bytes)]
    max_message: usize,
    /// Accepted protocolVersions: erlmcp (2024-11-05, 2025-11-25) or all handshake versions
    #[arg(long, value_enum, default_value = "erlmcp")]
    accept_versions: AcceptVersions,
    /// Seed for fault injection and delays (reproducible runs)
    #[arg(long)]
    seed: Option<u64>,
    /// An HTTP request head must complete, and a body make progress, within this time
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    read_timeout: Duration,
    /// Close a connection whose unsent replies make no progress for this long
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    write_timeout: Duration,
    /// Stop reading from a connection while this many reply bytes wait to be sent
    #[arg(long, default_value = "1MiB", value_parser = parse_bytes)]
    output_cap: usize,
    /// Forget HTTP sessions unused this long (off: keep until DELETE)
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    session_ttl: Ttl,
    /// Answer Streamable HTTP requests without Mcp-Session-Id statelessly (no initialize needed)
    #[arg(long)]
    stateless: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ttl(Option<Duration>);

fn parse_ttl(s: &str) -> Result<Ttl, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Ttl(None));
    }
    humantime::parse_duration(s)
        .map(|d| Ttl(Some(d)))
        .map_err(|e| format!("{s:?}: {e}; write e.g. 30m, 1h or off"))
}

fn parse_delay(s: &str) -> Result<Delay, String> {
    s.parse()
}

impl BehaviourArgs {
    fn behaviour(&self) -> Behaviour {
        Behaviour {
            sse: self.sse,
            chunked: self.chunked,
            delay: self.delay,
            error_rate: self.error_rate,
            drop_rate: self.drop_rate,
            max_conns: self.max_conns,
            max_message: self.max_message,
            versions: self.accept_versions,
            seed: self.seed,
            read_timeout: self.read_timeout,
            write_timeout: self.write_timeout,
            output_cap: self.output_cap,
            session_ttl: self.session_ttl.0,
            stateless: self.stateless,
        }
    }

    /// The same flags as arguments for a child replica.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<String> = Vec::new();
        let mut flag = |name: &str, value: String| {
            args.push(format!("--{name}"));
            args.push(value);
        };
        let h = |d: Duration| humantime::format_duration(d).to_string();
        if let Some(t) = self.threads {
            flag("threads", t.to_string());
        }
        flag("delay", self.delay.to_string());
        flag("error-rate", self.error_rate.to_string());
        flag("drop-rate", self.drop_rate.to_string());
        if let Some(m) = self.max_conns {
            flag("max-conns", m.to_string());
        }
        flag("max-message", self.max_message.to_string());
        flag("accept-versions", self.accept_versions.as_str().to_string());
        if let Some(s) = self.seed {
            flag("seed", s.to_string());
        }
        flag("read-timeout", h(self.read_timeout));
        flag("write-timeout", h(self.write_timeout));
        flag("output-cap", self.output_cap.to_string());
        flag("session-ttl", self.session_ttl.0.map_or("off".into(), h));
        if self.sse {
            args.push("--sse".into());
        }
        if self.chunked {
            args.push("--chunked".into());
        }
        if self.stateless {
            args.push("--stateless".into());
        }
        args.into_iter().map(OsString::from).collect()
    }
}

impl ServeArgs {
    pub fn into_config(self) -> Result<Config, String> {
        let id = match self.id {
            Some(id) => id,
            None => hostname().ok_or(
                "cannot read the hostname to use as replica id; pass --id or set REPLICA_ID",
            )?,
        };
        check_id(&id)?;
        let threads = match self.behaviour.threads {
            Some(t) => usize::from(t),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(Config {
            id,
            tcp: self.tcp.0,
            http: self.http.0,
            reuseport: self.reuseport,
            threads,
            behaviour: self.behaviour.behaviour(),
        })
    }
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec())
        .ok()
        .filter(|h| !h.is_empty())
}

#[derive(Debug, Args)]
struct FleetArgs {
    /// How many replica processes
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    count: u16,
    /// TCP port of r1 (r2 gets the next, ...); default: each picks a free port
    #[arg(long)]
    base_tcp: Option<u16>,
    /// HTTP port of r1 (r2 gets the next, ...); default: each picks a free port
    #[arg(long)]
    base_http: Option<u16>,
    /// Address every replica listens on
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// All replicas share one TCP and one HTTP port (SO_REUSEPORT)
    #[arg(long)]
    reuseport: bool,
    /// How long to wait for every replica to listen
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    ready_timeout: Duration,
    #[command(flatten)]
    behaviour: BehaviourArgs,
}

#[derive(Debug, Args)]
struct ProbeArgs {
    /// The URL to GET, e.g. http://127.0.0.1:8080/health
    url: String,
    /// Give up after this long
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// The whole replica command line; `args` starts with the program name.
pub fn run_cli<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Probe(p)) => match crate::probe::probe(&p.url, p.timeout) {
            Ok(()) => ExitCode::SUCCESS,
            Err(why) => {
                eprintln!("replica probe: {}: {why}", p.url);
                ExitCode::FAILURE
            }
        },
        Some(Command::Fleet(f)) => run_fleet(f),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match args.into_config() {
        Ok(c) => c,
        Err(why) => {
            eprintln!("replica: error: {why}");
            return ExitCode::from(2);
        }
    };
    match crate::server::serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("replica: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_fleet(f: FleetArgs) -> ExitCode {
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "replica fleet: error: cannot find this program's path to start children: {e}"
            );
            return ExitCode::FAILURE;
        }
    };
    let spec = crate::fleet::FleetSpec {
        program,
        leading_args: Vec::new(),
        count: usize::from(f.count),
        host: f.host,
        base_tcp: f.base_tcp,
        base_http: f.base_http,
        reuseport: f.reuseport,
        extra_args: f.behaviour.to_args(),
    };
    match crate::fleet::run_until_signal(spec, f.ready_timeout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("replica fleet: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
pub(crate) fn config_from(args: &[&str]) -> Config {
    let cli = Cli::try_parse_from(std::iter::once("replica").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("bad test arguments {args:?}: {e}"));
    let mut serve = cli.serve;
    serve.id.get_or_insert_with(|| "r-test".into());
    serve.into_config().expect("valid test config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviour_flags_survive_the_trip_to_a_child() {
        let cli = Cli::try_parse_from([
            "replica",
            "fleet",
            "--count",
            "2",
            "--threads",
            "1",
            "--sse",
            "--delay",
            "exp:5ms",
            "--error-rate",
            "0.25",
            "--max-conns",
            "9",
            "--max-message",
            "1KiB",
            "--accept-versions",
            "all",
            "--seed",
            "7",
            "--session-ttl",
            "off",
        ])
        .unwrap();
        let Some(Command::Fleet(f)) = cli.command else {
            panic!("fleet expected")
        };
        let child_args: Vec<OsString> = std::iter::once(OsString::from("replica"))
            .chain(["--id", "r1"].map(OsString::from))
            .chain(f.behaviour.to_args())
            .collect();
        let child = Cli::try_parse_from(child_args).unwrap();
        let a = f.behaviour.behaviour();
        let b = child.serve.behaviour.behaviour();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(b.delay, Delay::Exp(Duration::from_millis(5)));
        assert_eq!(b.max_message, 1024);
        assert_eq!(b.session_ttl, None);
    }

    #[test]
    fn later_flags_override_earlier_ones() {
        let c = config_from(&[
            "--tcp",
            "127.0.0.1:0",
            "--tcp",
            "off",
            "--id",
            "a",
            "--id",
            "b",
        ]);
        assert_eq!(c.tcp, None);
        assert_eq!(c.id, "b");
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &["--error-rate", "2"][..],
            &["--delay", "soon"],
            &["--max-message", "0"],
            &["--tcp", "nowhere"],
            &["--threads", "0"],
        ] {
            let all = std::iter::once("replica").chain(args.iter().copied());
            assert!(
                Cli::try_parse_from(all).is_err(),
                "{args:?} should be refused"
            );
        }
        let bad_id = ServeArgs {
            id: Some("has space".into()),
            ..Cli::try_parse_from(["replica"]).unwrap().serve
        };
        assert!(bad_id.into_config().is_err());
    }
}
