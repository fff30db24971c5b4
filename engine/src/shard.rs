//! Running the workers: as threads of this process, or as shard processes (the same binary,
//! `engine __shard`) when one process's file-descriptor budget cannot hold the plan. Either way
//! the supervisor receives one stream of [`Msg`]s.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::layout::{Layout, WorkerShare};
use crate::metrics::Snapshot;
use crate::plan::Plan;
use crate::reactor::epoll::Epoll;
use crate::reactor::uring::Uring;
use crate::reactor::{Backend, SocketOptions};
use crate::sys;
use crate::worker::{Share, Worker};

/// The hidden subcommand that runs one shard process.
pub const SHARD_SUBCOMMAND: &str = "__shard";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Msg {
    Snapshot(Box<Snapshot>),
    WorkerFailed {
        worker: u32,
        error: String,
    },
    /// A shard process's output ended (it exited or crashed).
    ShardGone {
        shard: u32,
    },
}

/// Everything a shard process needs, sent on its stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardJob {
    pub plan: Plan,
    pub layout: Layout,
    pub shard: u32,
    pub backend: Backend,
    /// When the run starts, as nanoseconds since the Unix epoch (shared by all shards).
    pub start_unix_ns: u128,
}

/// Starts one thread per worker share; each pins itself, builds its reactor and runs.
pub fn spawn_workers(
    plan: Arc<Plan>,
    layout: &Layout,
    shares: &[WorkerShare],
    backend: Backend,
    start: Instant,
    tx: Sender<Msg>,
) -> Vec<JoinHandle<()>> {
    shares
        .iter()
        .map(|&ws| {
            let plan = Arc::clone(&plan);
            let tx = tx.clone();
            let share = Share {
                worker: ws.id,
                stride: layout.total_workers,
                count: layout.conns_of_worker(plan.conns, ws.id),
            };
            std::thread::Builder::new()
                .name(format!("worker-{}", ws.id))
                .spawn(move || {
                    if let Some(core) = ws.core {
                        sys::pin_to(core);
                    }
                    if let Err(error) = run_worker(&plan, share, backend, start, &tx) {
                        let _ = tx.send(Msg::WorkerFailed {
                            worker: ws.id,
                            error,
                        });
                    }
                })
                .expect("spawn worker thread")
        })
        .collect()
}

fn run_worker(
    plan: &Plan,
    share: Share,
    backend: Backend,
    start: Instant,
    tx: &Sender<Msg>,
) -> Result<(), String> {
    let slots = share.count as usize;
    let opts = SocketOptions::default();
    let sink = |s: Snapshot| {
        let _ = tx.send(Msg::Snapshot(Box::new(s)));
    };
    match backend {
        Backend::Uring => {
            let reactor = Uring::new(slots, opts).map_err(|e| format!("io_uring setup: {e}"))?;
            Worker::new(plan, share, reactor).run(start, sink)
        }
        Backend::Epoll => {
            let reactor = Epoll::new(slots, opts).map_err(|e| format!("epoll setup: {e}"))?;
            Worker::new(plan, share, reactor).run(start, sink)
        }
    }
    .map_err(|e| format!("worker {}: {e}", share.worker))
}

fn unix_ns(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()
}

/// The `Instant` of a wall-clock start time (shards agree on it to within clock reads).
fn instant_of(start_unix_ns: u128) -> Instant {
    let now_ns = unix_ns(SystemTime::now());
    let now = Instant::now();
    if start_unix_ns >= now_ns {
        now + Duration::from_nanos((start_unix_ns - now_ns) as u64)
    } else {
        now.checked_sub(Duration::from_nanos((now_ns - start_unix_ns) as u64))
            .unwrap_or(now)
    }
}

/// Entry point of `engine __shard`: read the job, run its workers, stream their snapshots
/// (with this process's figures) as JSON lines on stdout.
pub fn shard_main() -> std::process::ExitCode {
    sys::die_with_parent();
    sys::install_stop_handlers();
    let job: ShardJob = match serde_json::from_reader(std::io::stdin().lock()) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("engine shard: bad job on stdin: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = tuning::rlimit::raise_soft_to_hard() {
        eprintln!(
            "engine shard {}: cannot raise RLIMIT_NOFILE: {e}",
            job.shard
        );
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let shares = job.layout.processes[job.shard as usize].clone();
    let handles = spawn_workers(
        Arc::new(job.plan),
        &job.layout,
        &shares,
        job.backend,
        instant_of(job.start_unix_ns),
        tx,
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for mut msg in rx {
        if let Msg::Snapshot(s) = &mut msg {
            s.process = Some(sys::self_stats());
        }
        let line = serde_json::to_string(&msg).expect("messages serialize");
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    for h in handles {
        let _ = h.join();
    }
    std::process::ExitCode::SUCCESS
}

/// The shard processes of a run, killed if still running when dropped.
pub struct Shards {
    pub children: Vec<Child>,
    readers: Vec<JoinHandle<()>>,
}

impl Shards {
    /// Starts one `engine __shard` per process of the layout; their messages go to `tx`.
    pub fn spawn(
        plan: &Plan,
        layout: &Layout,
        backend: Backend,
        start_in: Duration,
        tx: Sender<Msg>,
    ) -> std::io::Result<Shards> {
        let exe = std::env::current_exe()?;
        let start_unix_ns = unix_ns(SystemTime::now() + start_in);
        let mut shards = Shards {
            children: Vec::new(),
            readers: Vec::new(),
        };
        for shard in 0..layout.processes.len() as u32 {
            let mut child = Command::new(&exe)
                .arg(SHARD_SUBCOMMAND)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let job = ShardJob {
                plan: plan.clone(),
                layout: layout.clone(),
                shard,
                backend,
                start_unix_ns,
            };
            let mut stdin = child.stdin.take().expect("piped stdin");
            serde_json::to_writer(&mut stdin, &job).map_err(std::io::Error::other)?;
            drop(stdin);
            let stdout = child.stdout.take().expect("piped stdout");
            let tx = tx.clone();
            shards.readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<Msg>(&line) {
                        Ok(msg) => {
                            if tx.send(msg).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            eprintln!("engine: unreadable shard {shard} output ({e}): {line}")
                        }
                    }
                }
                let _ = tx.send(Msg::ShardGone { shard });
            }));
            shards.children.push(child);
        }
        Ok(shards)
    }

    /// Asks every shard to end its hold now (they still close their sessions cleanly).
    pub fn stop(&self) {
        for c in &self.children {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Waits for every shard to exit; returns the failures.
    pub fn wait(mut self) -> Vec<String> {
        let mut failures = Vec::new();
        for (i, c) in self.children.iter_mut().enumerate() {
            match c.wait() {
                Ok(status) if status.success() => {}
                Ok(status) => failures.push(format!("shard {i} exited with {status}")),
                Err(e) => failures.push(format!("shard {i}: {e}")),
            }
        }
        self.children.clear();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        failures
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
