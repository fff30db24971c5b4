//! summary.json: the contract of a run's results. Every figure comes from `Collected`, i.e.
//! from what this run measured.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::{LatencySummary, ReplicaTally};
use crate::plan::Plan;
use crate::proto::Pacing;
use crate::supervisor::Collected;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub manifest: Manifest,
    pub plan: PlanSummary,
    pub sessions: Sessions,
    pub requests: Requests,
    pub latency_us: Latencies,
    pub errors: BTreeMap<String, u64>,
    pub replicas: BTreeMap<String, ReplicaTally>,
    pub resources: Resources,
    pub host: Host,
    pub duration_s: f64,
}

/// Host-wide counters over the run (every process on the host counts, not only this run).
#[derive(Debug, Serialize)]
pub struct Host {
    /// TcpExt ListenOverflows: connections dropped because an accept queue was full.
    pub listen_overflows: Option<u64>,
    /// TcpExt ListenDrops.
    pub listen_drops: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub engine_version: String,
    pub io: String,
    /// Why this backend ran (the auto probe's finding, or "requested").
    pub io_reason: String,
    pub processes: u32,
    pub workers: u32,
    pub kernel: String,
    pub hostname: String,
    pub args: Vec<String>,
    pub started_unix_s: u64,
    /// The embedded fleet, when the engine started one.
    pub fleet: Option<FleetInfo>,
    /// The preflight findings for this plan.
    pub preflight: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetInfo {
    pub replicas: usize,
    pub transport: String,
    pub reuseport: bool,
    pub extra_args: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PlanSummary {
    pub conns: u64,
    pub hold_s: f64,
    pub ramp_per_s: f64,
    pub transport: String,
    pub targets: Vec<String>,
    pub scenario: String,
    pub interval_s: Option<f64>,
    pub rate_per_s: Option<f64>,
    pub source_ips: usize,
}

#[derive(Debug, Serialize)]
pub struct Sessions {
    pub attempted: u64,
    pub established: u64,
    pub initialized: u64,
    /// Sessions not open when the hold ended.
    pub failed: u64,
    pub peak_open: u64,
    pub open_at_hold_end: u64,
    /// Seconds from the start until every session had initialized (null if some never did).
    pub all_initialized_s: Option<f64>,
    pub reconnects: u64,
    pub reinitializations: u64,
    pub closed_clean: u64,
}

#[derive(Debug, Serialize)]
pub struct Requests {
    /// Requests that got an answer or failed (none is left uncounted: a request still in flight
    /// at the end counts as failed).
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    /// Requests completed per second during the hold phase.
    pub per_s: f64,
    pub late: u64,
    pub dropped: u64,
}

#[derive(Debug, Serialize)]
pub struct Latencies {
    pub connect: LatencySummary,
    pub initialize: LatencySummary,
    pub request: LatencySummary,
    pub request_uncorrected: LatencySummary,
}

#[derive(Debug, Serialize)]
pub struct Resources {
    /// Peak of the summed RSS of all engine processes (supervisor and shards).
    pub rss_peak_bytes: u64,
    pub rss_per_session_bytes: u64,
    pub cpu_s: f64,
    /// CPU the workers used during the hold, in all and per minute of hold.
    pub hold_cpu_s: f64,
    pub hold_cpu_s_per_min: f64,
    pub worker_cpu_peak: f64,
    pub max_loop_lag_us: u64,
    /// Set when the load generator itself was the bottleneck, with the reason.
    pub generator_bound: Option<String>,
}

pub struct RunInfo {
    /// ListenOverflows and ListenDrops before and after the run.
    pub listen_before: Vec<Option<u64>>,
    pub listen_after: Vec<Option<u64>>,
    pub io: String,
    pub io_reason: String,
    pub processes: u32,
    pub workers: u32,
    pub started_unix_s: u64,
    pub fleet: Option<FleetInfo>,
    pub preflight: serde_json::Value,
}

pub fn build(plan: &Plan, info: RunInfo, c: &Collected) -> Summary {
    let hold_requests = (c.at_hold_end.requests_ok + c.at_hold_end.requests_failed)
        .saturating_sub(c.at_hold_start.requests_ok + c.at_hold_start.requests_failed);
    let hold_s = plan.hold.as_secs_f64();
    let host = Host {
        listen_overflows: delta(&info, 0),
        listen_drops: delta(&info, 1),
    };
    Summary {
        manifest: Manifest {
            engine_version: env!("CARGO_PKG_VERSION").into(),
            io: info.io,
            io_reason: info.io_reason,
            processes: info.processes,
            workers: info.workers,
            kernel: crate::sys::kernel_release(),
            hostname: crate::sys::hostname(),
            args: std::env::args().collect(),
            started_unix_s: info.started_unix_s,
            fleet: info.fleet,
            preflight: info.preflight,
        },
        plan: PlanSummary {
            conns: plan.conns,
            hold_s,
            ramp_per_s: plan.ramp_per_s,
            transport: plan.transport_name(),
            targets: plan.targets.iter().map(|t| t.url.clone()).collect(),
            scenario: plan.scenario.name().into(),
            interval_s: match plan.pacing {
                Pacing::Closed { interval } => Some(interval.as_secs_f64()),
                Pacing::Open => None,
            },
            rate_per_s: plan.rate,
            source_ips: plan.source_ips.len(),
        },
        sessions: Sessions {
            attempted: c.counters.attempted,
            established: c.counters.established,
            initialized: c.counters.initialized,
            failed: c.counters.failed,
            peak_open: c.counters.peak_open,
            open_at_hold_end: c.at_hold_end.open,
            all_initialized_s: c.all_initialized_us.map(|us| round3(us as f64 / 1e6)),
            reconnects: c.counters.reconnects,
            reinitializations: c.counters.reinitializations,
            closed_clean: c.counters.closed_clean,
        },
        requests: Requests {
            sent: c.counters.requests_ok + c.counters.requests_failed,
            ok: c.counters.requests_ok,
            failed: c.counters.requests_failed,
            per_s: if hold_s > 0.0 {
                round1(hold_requests as f64 / hold_s)
            } else {
                0.0
            },
            late: c.counters.late,
            dropped: c.counters.dropped,
        },
        latency_us: Latencies {
            connect: LatencySummary::of(&c.histos.connect),
            initialize: LatencySummary::of(&c.histos.initialize),
            request: LatencySummary::of(&c.histos.request),
            request_uncorrected: LatencySummary::of(&c.histos.request_uncorrected),
        },
        errors: c.errors.clone(),
        replicas: c.replicas.clone(),
        resources: Resources {
            rss_peak_bytes: c.rss_peak_bytes,
            rss_per_session_bytes: c.rss_peak_bytes / c.counters.peak_open.max(1),
            cpu_s: round1(c.cpu_us as f64 / 1e6),
            hold_cpu_s: round3(c.hold_cpu_us as f64 / 1e6),
            hold_cpu_s_per_min: if hold_s > 0.0 {
                round3(c.hold_cpu_us as f64 / 1e6 / (hold_s / 60.0))
            } else {
                0.0
            },
            worker_cpu_peak: (c.worker_cpu_peak * 100.0).round() / 100.0,
            max_loop_lag_us: c.max_loop_lag_us,
            generator_bound: c.generator_bound(),
        },
        host,
        duration_s: round1(c.elapsed.as_secs_f64()),
    }
}

fn delta(info: &RunInfo, i: usize) -> Option<u64> {
    let (before, after) = (
        info.listen_before.get(i)?.as_ref()?,
        info.listen_after.get(i)?.as_ref()?,
    );
    Some(after.saturating_sub(*before))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A few human lines for stderr.
pub fn render(s: &Summary) -> String {
    use crate::supervisor::format_us;
    let l = &s.latency_us;
    let mut out = format!(
        "engine {} | io {} | {} process(es), {} worker(s) | {:.1}s\n\
         sessions  attempted {} established {} initialized {} failed {} peak open {}\n\
         requests  ok {} failed {} | {:.1}/s during hold\n\
         latency   connect p50 {} p99 {} | initialize p50 {} p99 {} | request p50 {} p99 {} max {}\n",
        s.manifest.engine_version,
        s.manifest.io,
        s.manifest.processes,
        s.manifest.workers,
        s.duration_s,
        s.sessions.attempted,
        s.sessions.established,
        s.sessions.initialized,
        s.sessions.failed,
        s.sessions.peak_open,
        s.requests.ok,
        s.requests.failed,
        s.requests.per_s,
        format_us(l.connect.p50),
        format_us(l.connect.p99),
        format_us(l.initialize.p50),
        format_us(l.initialize.p99),
        format_us(l.request.p50),
        format_us(l.request.p99),
        format_us(l.request.max),
    );
    if !s.errors.is_empty() {
        let errs: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out += &format!("errors    {}\n", errs.join(" "));
    }
    out += &format!(
        "resources rss peak {:.1} MiB ({} B/session) cpu {:.1}s\n",
        s.resources.rss_peak_bytes as f64 / (1 << 20) as f64,
        s.resources.rss_per_session_bytes,
        s.resources.cpu_s
    );
    if let Some(why) = &s.resources.generator_bound {
        out += &format!("WARNING   figures may be generator-bound: {why}\n");
    }
    out
}
