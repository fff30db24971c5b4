//! A validated run: everything a shard process needs to play its part, serializable so the
//! supervisor can hand it to worker processes.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::{Cli, IoArg, ScenarioArg};
use crate::proto::{Context, Pacing, Scenario, Target, Transport};

/// Past this the request is a typo, not a plan.
pub const MAX_CONNS: u64 = 10_000_000;
/// The default ramp when neither --ramp nor --ramp-time is given: gentle enough that the
/// default accept queues (somaxconn 4096) of a local fleet never overflow.
pub const DEFAULT_RAMP_PER_S: f64 = 5000.0;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub conns: u64,
    pub hold: Duration,
    pub ramp_per_s: f64,
    pub targets: Vec<Target>,
    pub scenario: Scenario,
    pub pacing: Pacing,
    /// Open model: requests per second across all sessions.
    pub rate: Option<f64>,
    pub mcp_version: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub drain_timeout: Duration,
    pub max_message: usize,
    pub source_ips: Vec<IpAddr>,
    pub io: IoArg,
    pub stateless: bool,
}

/// The parts of a plan that do not depend on the targets, checked before any fleet starts.
#[derive(Debug, Clone)]
pub struct Settings {
    pub scenario: Scenario,
    pub pacing: Pacing,
    pub ramp_per_s: f64,
    pub source_ips: Vec<IpAddr>,
}

impl Settings {
    pub fn from_cli(cli: &Cli) -> Result<Settings, UsageError> {
        if cli.conns == 0 {
            return Err(usage(
                "--conns 0: open at least one session (e.g. --conns 1000)",
            ));
        }
        if cli.conns > MAX_CONNS {
            return Err(usage(format!(
                "--conns {}: more than {MAX_CONNS} sessions from one engine is not a plan; split the load over several load hosts",
                cli.conns
            )));
        }
        if cli.max_message < 1024 {
            return Err(usage("--max-message must be at least 1024 bytes"));
        }
        if cli.request_timeout.is_zero() || cli.connect_timeout.is_zero() {
            return Err(usage(
                "--connect-timeout and --request-timeout must be above zero",
            ));
        }
        let scenario = match cli.scenario {
            ScenarioArg::Ping => Scenario::Ping,
            ScenarioArg::ToolsList => Scenario::ToolsList,
            ScenarioArg::Health => Scenario::Health,
            ScenarioArg::Idle => Scenario::Idle,
            ScenarioArg::ToolsCall => {
                let args: serde_json::Value = serde_json::from_str(&cli.tool_args).map_err(|e| {
                    usage(format!("--tool-args {:?} is not JSON ({e}); e.g. --tool-args '{{\"text\":\"hi\"}}'", cli.tool_args))
                })?;
                if !args.is_object() {
                    return Err(usage(
                        "--tool-args must be a JSON object, e.g. '{\"a\":1,\"b\":2}'",
                    ));
                }
                Scenario::ToolsCall {
                    tool: cli.tool.clone(),
                    arguments: args.to_string(),
                }
            }
        };
        let pacing = match cli.rate {
            Some(_) => Pacing::Open,
            None => Pacing::Closed {
                interval: cli.interval,
            },
        };
        let ramp_per_s = match (cli.ramp, cli.ramp_time) {
            (Some(rate), _) => rate,
            (None, Some(t)) if t.is_zero() => {
                return Err(usage(
                    "--ramp-time 0: give a duration above zero, or --ramp RATE/s",
                ));
            }
            (None, Some(t)) => cli.conns as f64 / t.as_secs_f64(),
            (None, None) => DEFAULT_RAMP_PER_S,
        };
        let source_ips = match &cli.source_ips {
            Some(spec) => {
                crate::source_ips::parse_source_ips(spec).map_err(|e| usage(e.to_string()))?
            }
            None => Vec::new(),
        };
        Ok(Settings {
            scenario,
            pacing,
            ramp_per_s,
            source_ips,
        })
    }
}

impl Plan {
    pub fn new(cli: &Cli, settings: Settings, targets: Vec<Target>) -> Result<Plan, UsageError> {
        if targets.is_empty() {
            return Err(usage(
                "no targets: give --target URL or --targets-file FILE",
            ));
        }
        if settings.scenario == Scenario::Health
            && let Some(t) = targets.iter().find(|t| t.transport != Transport::Http)
        {
            return Err(usage(format!(
                "--scenario health needs http:// targets, but {} is not one",
                t.url
            )));
        }
        if let Some(ip) = settings
            .source_ips
            .iter()
            .find(|ip| targets.iter().any(|t| t.addr.is_ipv4() != ip.is_ipv4()))
        {
            return Err(usage(format!(
                "--source-ips: {ip} is not of the same address family as every target"
            )));
        }
        Ok(Plan {
            conns: cli.conns,
            hold: cli.hold,
            ramp_per_s: settings.ramp_per_s,
            targets,
            scenario: settings.scenario,
            pacing: settings.pacing,
            rate: cli.rate,
            mcp_version: cli.mcp_version.clone(),
            connect_timeout: cli.connect_timeout,
            request_timeout: cli.request_timeout,
            drain_timeout: cli.drain_timeout,
            max_message: cli.max_message,
            source_ips: settings.source_ips,
            io: cli.io,
            stateless: cli.stateless,
        })
    }

    /// How long opening every session takes at the ramp rate.
    pub fn ramp_duration(&self) -> Duration {
        Duration::from_secs_f64(self.conns as f64 / self.ramp_per_s)
    }

    /// The transport name for reports: one transport, or "mixed".
    pub fn transport_name(&self) -> String {
        let first = self.targets[0].transport;
        if self.targets.iter().all(|t| t.transport == first) {
            serde_json::to_value(first)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        } else {
            "mixed".into()
        }
    }

    pub fn context(&self) -> Context {
        Context {
            targets: self.targets.clone(),
            scenario: self.scenario.clone(),
            pacing: self.pacing,
            mcp_version: self.mcp_version.clone(),
            client_name: "mcp-load-engine".into(),
            client_version: env!("CARGO_PKG_VERSION").into(),
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            max_message: self.max_message,
            reconnect_backoff: Duration::from_millis(500),
            stateless: self.stateless,
        }
    }

    /// Target of global connection `i`: round robin.
    pub fn target_of(&self, i: u64) -> u32 {
        (i % self.targets.len() as u64) as u32
    }

    /// Source address of global connection `i`: round robin among the connections of its
    /// target, so every (source, destination) pair gets an even share.
    pub fn source_of(&self, i: u64) -> Option<IpAddr> {
        if self.source_ips.is_empty() {
            return None;
        }
        let nth_for_target = i / self.targets.len() as u64;
        Some(self.source_ips[(nth_for_target % self.source_ips.len() as u64) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("engine").chain(args.iter().copied())).unwrap()
    }

    fn targets(urls: &[&str]) -> Vec<Target> {
        urls.iter()
            .map(|u| crate::target::parse_target(u).unwrap())
            .collect()
    }

    #[test]
    fn bad_plans_name_the_fix() {
        for (args, needle) in [
            (&["--conns", "0"][..], "at least one session"),
            (&["--conns", "99999999999"][..], "not a plan"),
            (
                &["--scenario", "tools-call", "--tool-args", "{"][..],
                "not JSON",
            ),
            (
                &["--scenario", "tools-call", "--tool-args", "[1]"][..],
                "JSON object",
            ),
            (&["--ramp-time", "0"][..], "above zero"),
            (&["--source-ips", "1.2.3"][..], "--source-ips"),
        ] {
            let e = Settings::from_cli(&cli(args)).unwrap_err().to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
        let c = cli(&["--scenario", "health"]);
        let s = Settings::from_cli(&c).unwrap();
        let e = Plan::new(&c, s, targets(&["tcp://127.0.0.1:5555"])).unwrap_err();
        assert!(e.to_string().contains("needs http://"), "{e}");
    }

    #[test]
    fn connections_spread_round_robin_over_targets_and_sources() {
        let c = cli(&["--conns", "12", "--source-ips", "127.0.0.2-127.0.0.4"]);
        let s = Settings::from_cli(&c).unwrap();
        let p = Plan::new(&c, s, targets(&["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"])).unwrap();
        let pairs: Vec<(u32, String)> = (0..12)
            .map(|i| (p.target_of(i), p.source_of(i).unwrap().to_string()))
            .collect();
        for t in 0..2 {
            let mut per_source = std::collections::BTreeMap::new();
            for (_, src) in pairs.iter().filter(|(tt, _)| *tt == t) {
                *per_source.entry(src.clone()).or_insert(0) += 1;
            }
            assert_eq!(
                per_source.values().copied().collect::<Vec<_>>(),
                vec![2, 2, 2]
            );
        }
        assert_eq!(
            p.ramp_duration(),
            Duration::from_secs_f64(12.0 / DEFAULT_RAMP_PER_S)
        );
    }
}
