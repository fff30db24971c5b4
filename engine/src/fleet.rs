//! The embedded default target: a fleet of `replica` processes on loopback, started from this
//! very binary (`engine __replica ...`) and stopped when the run ends.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::cli::{Cli, FleetTransport};
use crate::proto::{Target, Transport};
use crate::target::parse_target;

/// The hidden subcommand under which this binary runs as a replica.
pub const REPLICA_SUBCOMMAND: &str = "__replica";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct EmbeddedFleet {
    fleet: replica::fleet::Fleet,
    transport: FleetTransport,
}

impl EmbeddedFleet {
    pub fn start(cli: &Cli) -> Result<EmbeddedFleet, String> {
        if cli.fleet == 0 {
            return Err(
                "--fleet 0: the embedded fleet needs at least one replica (or give --target)"
                    .into(),
            );
        }
        let program =
            std::env::current_exe().map_err(|e| format!("cannot find the engine binary: {e}"))?;
        let mut extra: Vec<OsString> = vec!["--threads".into(), "1".into()];
        extra.extend(Self::extra_args(cli).into_iter().map(OsString::from));
        let spec = replica::fleet::FleetSpec {
            program,
            leading_args: vec![REPLICA_SUBCOMMAND.into()],
            count: cli.fleet,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            base_tcp: None,
            base_http: None,
            reuseport: cli.fleet_reuseport,
            extra_args: extra,
        };
        let fleet = replica::fleet::Fleet::start(spec, READY_TIMEOUT)
            .map_err(|e| format!("the embedded replica fleet did not start: {e}"))?;
        Ok(EmbeddedFleet {
            fleet,
            transport: cli.fleet_transport,
        })
    }

    pub fn extra_args(cli: &Cli) -> Vec<String> {
        cli.fleet_args
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    pub fn targets(&self) -> Result<Vec<Target>, String> {
        self.fleet
            .urls(self.transport.scheme())
            .iter()
            .map(|u| parse_target(u).map_err(|e| e.to_string()))
            .collect()
    }

    /// Targets shaped like the fleet's (same count, one shared port with reuseport), for
    /// planning without starting it.
    pub fn stand_in_targets(cli: &Cli) -> Vec<Target> {
        let transport = match cli.fleet_transport {
            FleetTransport::Tcp => Transport::Tcp,
            FleetTransport::Ws => Transport::WebSocket,
            FleetTransport::Http => Transport::Http,
        };
        (0..cli.fleet)
            .map(|i| {
                let port = if cli.fleet_reuseport {
                    20000
                } else {
                    20000 + i as u16
                };
                let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
                Target {
                    transport,
                    addr,
                    host: addr.to_string(),
                    path: match transport {
                        Transport::Tcp => String::new(),
                        Transport::WebSocket => "/mcp/ws".into(),
                        Transport::Http => "/mcp".into(),
                    },
                    url: format!(
                        "{}://{addr} (embedded fleet, not started)",
                        cli.fleet_transport.scheme()
                    ),
                }
            })
            .collect()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.fleet.pids()
    }
}
