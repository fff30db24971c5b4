//! One run, start to finish: validate, lay out, preflight, (start the embedded fleet), probe
//! the targets, run the workers, merge, write summary.json.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::{Cli, IoArg};
use crate::fleet::EmbeddedFleet;
use crate::layout::{Layout, round_robin_share};
use crate::plan::{Plan, Settings, UsageError};
use crate::proto::Target;
use crate::reactor::{Backend, uring};
use crate::shard::{Shards, spawn_workers};
use crate::summary::{self, FleetInfo, RunInfo, Summary};
use crate::supervisor::Supervisor;
use crate::sys;
use crate::target::{parse_target, read_targets_file};

/// How a run ended, and the process exit code that goes with it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad flags or a plan that cannot fit: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Nothing could be started (no target reachable, fleet failed, backend unavailable): exit 3.
    #[error("{0}")]
    CannotStart(String),
    /// The run started but failed: exit 1.
    #[error("{0}")]
    Failed(String),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) => 2,
            RunError::CannotStart(_) => 3,
            RunError::Failed(_) => 1,
        }
    }
}

impl From<UsageError> for RunError {
    fn from(e: UsageError) -> Self {
        RunError::Usage(e.0)
    }
}

/// Time between spawning shard processes and their common start, so all begin together.
const SHARD_START_DELAY: Duration = Duration::from_millis(300);
const REACHABILITY_TIMEOUT: Duration = Duration::from_secs(3);

/// What a successful invocation produced.
pub enum Outcome {
    Ran(Box<Summary>),
    /// `--preflight-only`: the table was printed; `refused` says whether the plan fits.
    Preflight {
        refused: bool,
    },
}

pub fn run(cli: &Cli) -> Result<Outcome, RunError> {
    let settings = Settings::from_cli(cli)?;
    let mut urls = cli.targets.clone();
    if let Some(file) = &cli.targets_file {
        urls.extend(read_targets_file(file).map_err(RunError::Usage)?);
    }
    let explicit: Vec<Target> = urls
        .iter()
        .map(|u| parse_target(u).map_err(|e| RunError::Usage(e.to_string())))
        .collect::<Result<_, _>>()?;

    let limits = tuning::rlimit::raise_soft_to_hard()
        .map_err(|e| RunError::CannotStart(format!("cannot read RLIMIT_NOFILE: {e}")))?;
    let cores = sys::allowed_cores();
    let layout = Layout::new(
        cli.conns,
        limits.conn_budget(),
        cli.workers,
        cli.processes,
        &cores,
    )?;

    // The fleet starts only when there is a run to make; preflight-only plans against
    // stand-in addresses of the same shape.
    let fleet = if explicit.is_empty() && !cli.preflight_only {
        Some(EmbeddedFleet::start(cli).map_err(RunError::CannotStart)?)
    } else {
        None
    };
    let targets = match &fleet {
        Some(f) => f.targets().map_err(RunError::CannotStart)?,
        None if explicit.is_empty() => EmbeddedFleet::stand_in_targets(cli),
        None => explicit,
    };
    let plan = Plan::new(cli, settings, targets)?;

    let report = preflight(&plan, &layout)?;
    if cli.preflight_only {
        println!("{}", report.render());
        return Ok(Outcome::Preflight {
            refused: report.refused(),
        });
    }
    if report.refused() {
        return Err(RunError::Usage(format!(
            "preflight refused this plan:\n{}",
            report.render()
        )));
    }
    if !cli.quiet {
        for f in report.with(tuning::Severity::Warn) {
            eprintln!("warning: {}", f.message);
        }
    }

    let (backend, io_reason) = choose_backend(cli.io)?;
    check_reachable(&plan)?;

    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    sys::install_stop_handlers();
    const LISTEN: [&str; 2] = ["ListenOverflows", "ListenDrops"];
    let listen_before = sys::tcp_ext(&LISTEN);
    let collected = execute(&plan, &layout, backend, cli.quiet)?;
    let info = RunInfo {
        listen_before,
        listen_after: sys::tcp_ext(&LISTEN),
        io: backend_name(backend).into(),
        io_reason,
        processes: layout.processes.len() as u32,
        workers: layout.total_workers,
        started_unix_s,
        fleet: fleet.as_ref().map(|_| FleetInfo {
            replicas: cli.fleet,
            transport: cli.fleet_transport.scheme().into(),
            reuseport: cli.fleet_reuseport,
            extra_args: EmbeddedFleet::extra_args(cli),
        }),
        preflight: serde_json::to_value(&report).unwrap_or_default(),
    };
    drop(fleet);
    if !collected.failures.is_empty() {
        return Err(RunError::Failed(format!(
            "the run failed: {}",
            collected.failures.join("; ")
        )));
    }
    let summary = summary::build(&plan, info, &collected);
    write_summary(cli, &summary)?;
    Ok(Outcome::Ran(Box::new(summary)))
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Uring => "uring",
        Backend::Epoll => "epoll",
    }
}

fn preflight(plan: &Plan, layout: &Layout) -> Result<tuning::Report, RunError> {
    let mut per_destination: BTreeMap<SocketAddr, u64> = BTreeMap::new();
    let n = plan.targets.len() as u64;
    for (i, t) in plan.targets.iter().enumerate() {
        *per_destination.entry(t.addr).or_default() += round_robin_share(plan.conns, n, i as u64);
    }
    let facts = tuning::PlanFacts {
        conns: plan.conns,
        processes: layout.processes.len() as u32,
        conns_per_process: layout.max_conns_per_process(plan.conns),
        source_ips: plan.source_ips.clone(),
        destinations: per_destination.into_iter().collect(),
        ramp_per_s: Some(plan.ramp_per_s),
    };
    tuning::preflight_live(&facts)
        .map_err(|e| RunError::CannotStart(format!("preflight could not read host limits: {e}")))
}

fn choose_backend(io: IoArg) -> Result<(Backend, String), RunError> {
    match io {
        IoArg::Epoll => Ok((Backend::Epoll, "requested with --io epoll".into())),
        IoArg::Uring => match uring::probe() {
            Ok(()) => Ok((Backend::Uring, "requested with --io uring".into())),
            Err(why) => Err(RunError::CannotStart(format!(
                "--io uring: {why}; use --io epoll or --io auto"
            ))),
        },
        IoArg::Auto => match uring::probe() {
            Ok(()) => Ok((Backend::Uring, "auto: io_uring probe passed".into())),
            Err(why) => Ok((Backend::Epoll, format!("auto: fell back to epoll: {why}"))),
        },
    }
}

/// Refuses to start when no target accepts a connection at all.
fn check_reachable(plan: &Plan) -> Result<(), RunError> {
    let mut seen = BTreeMap::new();
    for t in &plan.targets {
        seen.entry(t.addr).or_insert(&t.url);
    }
    let mut failures = Vec::new();
    for (addr, url) in &seen {
        match TcpStream::connect_timeout(addr, REACHABILITY_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => failures.push(format!("{url} ({addr}): {e}")),
        }
    }
    Err(RunError::CannotStart(format!(
        "no target accepts connections: {}",
        failures.join("; ")
    )))
}

fn execute(
    plan: &Plan,
    layout: &Layout,
    backend: Backend,
    quiet: bool,
) -> Result<crate::supervisor::Collected, RunError> {
    let (tx, rx) = std::sync::mpsc::channel();
    if layout.processes.len() == 1 {
        let start = Instant::now();
        let handles = spawn_workers(
            Arc::new(plan.clone()),
            layout,
            &layout.processes[0],
            backend,
            start,
            tx,
        );
        let collected = Supervisor::new(plan, layout, true, start, quiet).run(&rx, || {});
        for h in handles {
            let _ = h.join();
        }
        return Ok(collected);
    }
    let shards = Shards::spawn(plan, layout, backend, SHARD_START_DELAY, tx)
        .map_err(|e| RunError::CannotStart(format!("cannot start shard processes: {e}")))?;
    let start = Instant::now() + SHARD_START_DELAY;
    let mut stop_forwarded = false;
    let mut collected = Supervisor::new(plan, layout, false, start, quiet).run(&rx, || {
        if crate::worker::STOP.load(std::sync::atomic::Ordering::Relaxed) && !stop_forwarded {
            shards.stop();
            stop_forwarded = true;
        }
    });
    collected.failures.extend(shards.wait());
    Ok(collected)
}

fn write_summary(cli: &Cli, summary: &Summary) -> Result<(), RunError> {
    let dir = match &cli.out {
        Some(d) => d.clone(),
        None => default_out_dir(),
    };
    let json = serde_json::to_string_pretty(summary).expect("summary serializes");
    write_file(&dir, "summary.json", &json)?;
    if cli.json {
        println!("{json}");
    }
    if !cli.quiet {
        eprint!("{}", summary::render(summary));
        eprintln!("summary   {}", dir.join("summary.json").display());
    }
    Ok(())
}

fn write_file(dir: &Path, name: &str, body: &str) -> Result<(), RunError> {
    std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(dir.join(name), body))
        .map_err(|e| {
            RunError::Failed(format!(
                "cannot write {}: {e}; pick another directory with --out",
                dir.join(name).display()
            ))
        })
}

fn default_out_dir() -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    PathBuf::from("results").join(format!("run-{secs}"))
}
