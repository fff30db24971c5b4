//! Merges the workers' snapshots as they arrive: exact histogram totals, summed counters, the
//! live progress line, and the engine's own resource use.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::layout::Layout;
use crate::metrics::{Counters, Histos, LatencySummary, ProcessStats, ReplicaTally, Snapshot};
use crate::plan::Plan;
use crate::shard::Msg;
use crate::sys;

/// A worker above this CPU share in an interval is saturated: its figures may be
/// generator-bound.
const SATURATED_CPU: f64 = 0.90;
/// Timers this late mean the worker could not keep up.
const LAG_BOUND_US: u64 = 100_000;

#[derive(Debug, Default)]
struct WorkerView {
    last: Option<Snapshot>,
    last_seen: Option<Instant>,
    done: bool,
}

/// What the run measured, merged over every worker.
#[derive(Debug)]
pub struct Collected {
    pub histos: Histos,
    pub counters: Counters,
    pub at_hold_start: Counters,
    pub at_hold_end: Counters,
    /// CPU the workers used during the hold.
    pub hold_cpu_us: u64,
    /// When every session had initialized (µs after the start), if they all did.
    pub all_initialized_us: Option<u64>,
    pub errors: BTreeMap<String, u64>,
    pub replicas: BTreeMap<String, ReplicaTally>,
    pub peak_open: u64,
    pub rss_peak_bytes: u64,
    pub cpu_us: u64,
    pub max_loop_lag_us: u64,
    pub worker_cpu_peak: f64,
    pub saturated_intervals: u64,
    pub intervals: u64,
    pub failures: Vec<String>,
    pub elapsed: Duration,
}

impl Collected {
    /// Why the figures may reflect the load generator rather than the server, if they may.
    pub fn generator_bound(&self) -> Option<String> {
        if self.intervals > 0 && self.saturated_intervals * 10 >= self.intervals {
            return Some(format!(
                "a worker used over {:.0}% CPU in {} of {} intervals",
                SATURATED_CPU * 100.0,
                self.saturated_intervals,
                self.intervals
            ));
        }
        if self.max_loop_lag_us > LAG_BOUND_US {
            return Some(format!(
                "a worker ran its timers up to {:.1} ms late",
                self.max_loop_lag_us as f64 / 1000.0
            ));
        }
        None
    }
}

pub struct Supervisor<'a> {
    plan: &'a Plan,
    workers: HashMap<u32, WorkerView>,
    expected: u32,
    /// Worker ids of each shard process (empty when the workers run in this process).
    shard_workers: Vec<Vec<u32>>,
    histos: Histos,
    interval: Histos,
    processes: HashMap<u32, ProcessStats>,
    in_process: bool,
    out: Collected,
    start: Instant,
    quiet: bool,
}

impl<'a> Supervisor<'a> {
    pub fn new(
        plan: &'a Plan,
        layout: &Layout,
        in_process: bool,
        start: Instant,
        quiet: bool,
    ) -> Self {
        let shard_workers = layout
            .processes
            .iter()
            .map(|ws| ws.iter().map(|w| w.id).collect())
            .collect();
        Supervisor {
            plan,
            workers: HashMap::new(),
            expected: layout.total_workers,
            shard_workers,
            histos: Histos::default(),
            interval: Histos::default(),
            processes: HashMap::new(),
            in_process,
            out: Collected {
                histos: Histos::default(),
                counters: Counters::default(),
                at_hold_start: Counters::default(),
                at_hold_end: Counters::default(),
                hold_cpu_us: 0,
                all_initialized_us: Some(0),
                errors: BTreeMap::new(),
                replicas: BTreeMap::new(),
                peak_open: 0,
                rss_peak_bytes: 0,
                cpu_us: 0,
                max_loop_lag_us: 0,
                worker_cpu_peak: 0.0,
                saturated_intervals: 0,
                intervals: 0,
                failures: Vec::new(),
                elapsed: Duration::ZERO,
            },
            start,
            quiet,
        }
    }

    /// Receives until every worker is done (or failed, or its shard vanished); `on_tick` runs
    /// about once a second (e.g. to forward a stop request).
    pub fn run(mut self, rx: &Receiver<Msg>, mut on_tick: impl FnMut()) -> Collected {
        let tty = std::io::stderr().is_terminal();
        let progress_every = Duration::from_secs(1);
        let mut next_tick = Instant::now() + Duration::from_secs(1);
        let mut next_progress = Instant::now() + progress_every;
        let mut last_progress = Instant::now();
        let mut last_counters = Counters::default();
        while !self.finished() {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(msg) => self.take(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.out
                        .failures
                        .push("workers went away without finishing".into());
                    break;
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                next_tick += Duration::from_secs(1);
                self.sample_resources();
                on_tick();
            }
            if now >= next_progress && !self.quiet {
                let counters = self.summed_counters();
                self.print_progress(now, &counters, &last_counters, now - last_progress, tty);
                last_counters = counters;
                last_progress = now;
                next_progress += progress_every;
                self.interval.reset();
            }
        }
        if !self.quiet && tty {
            eprintln!();
        }
        self.sample_resources();
        self.finish()
    }

    fn finished(&self) -> bool {
        self.workers.len() as u32 >= self.expected && self.workers.values().all(|w| w.done)
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Snapshot(s) => {
                let now = Instant::now();
                self.histos.add(&s.delta);
                self.interval.add(&s.delta);
                if let Some(p) = s.process {
                    self.processes.insert(p.pid, p);
                }
                let view = self.workers.entry(s.worker).or_default();
                if let (Some(prev), Some(seen)) = (&view.last, view.last_seen) {
                    let wall = now.duration_since(seen).as_micros() as f64;
                    if wall > 0.0 && !s.done {
                        let share =
                            (s.thread_cpu_us.saturating_sub(prev.thread_cpu_us)) as f64 / wall;
                        self.out.worker_cpu_peak = self.out.worker_cpu_peak.max(share.min(1.0));
                        self.out.intervals += 1;
                        if share > SATURATED_CPU {
                            self.out.saturated_intervals += 1;
                        }
                    }
                }
                self.out.max_loop_lag_us = self.out.max_loop_lag_us.max(s.max_loop_lag_us);
                view.done = s.done;
                view.last_seen = Some(now);
                view.last = Some(*s);
                let open = self.summed_counters().open;
                self.out.peak_open = self.out.peak_open.max(open);
            }
            Msg::WorkerFailed { worker, error } => {
                self.out.failures.push(error);
                self.workers.entry(worker).or_default().done = true;
            }
            Msg::ShardGone { shard } => {
                let Some(ids) = self.shard_workers.get(shard as usize) else {
                    return;
                };
                let unfinished: Vec<u32> = ids
                    .iter()
                    .copied()
                    .filter(|id| !self.workers.get(id).is_some_and(|w| w.done))
                    .collect();
                if unfinished.is_empty() {
                    return;
                }
                self.out.failures.push(format!(
                    "shard process {shard} ended before its workers {unfinished:?} finished"
                ));
                for id in unfinished {
                    self.workers.entry(id).or_default().done = true;
                }
            }
        }
    }

    fn summed_counters(&self) -> Counters {
        let mut c = Counters::default();
        for s in self.workers.values().filter_map(|w| w.last.as_ref()) {
            c.add(&s.counters);
        }
        c
    }

    fn sample_resources(&mut self) {
        let me = sys::self_stats();
        let mut rss = me.rss_bytes;
        if !self.in_process {
            rss += self.processes.values().map(|p| p.rss_bytes).sum::<u64>();
        }
        self.out.rss_peak_bytes = self.out.rss_peak_bytes.max(rss);
    }

    fn print_progress(&self, now: Instant, c: &Counters, prev: &Counters, dt: Duration, tty: bool) {
        let t = now.duration_since(self.start).as_secs_f64();
        let ramp = self.plan.ramp_duration().as_secs_f64();
        let phase = if t < ramp {
            "ramp"
        } else if t < ramp + self.plan.hold.as_secs_f64() {
            "hold"
        } else {
            "drain"
        };
        let done = c.requests_ok + c.requests_failed;
        let rate =
            (done - (prev.requests_ok + prev.requests_failed)) as f64 / dt.as_secs_f64().max(1e-9);
        let errors: u64 = self
            .workers
            .values()
            .filter_map(|w| w.last.as_ref())
            .flat_map(|s| s.errors.values())
            .sum();
        let p99 = LatencySummary::of(&self.interval.request).p99;
        let line = format!(
            "[{t:6.1}s] {phase:<5} open {}/{}  req/s {rate:.0}  errors {errors}  p99 {}",
            c.open,
            self.plan.conns,
            format_us(p99)
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    fn finish(mut self) -> Collected {
        for view in self.workers.values() {
            let Some(s) = &view.last else { continue };
            self.out.counters.add(&s.counters);
            if let (Some(start), Some(end)) = (&s.at_hold_start, &s.at_hold_end) {
                self.out.at_hold_start.add(&start.counters);
                self.out.at_hold_end.add(&end.counters);
                self.out.hold_cpu_us += end.thread_cpu_us.saturating_sub(start.thread_cpu_us);
            }
            self.out.all_initialized_us = match (self.out.all_initialized_us, s.all_initialized_us)
            {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            for (k, v) in &s.errors {
                *self.out.errors.entry(k.clone()).or_default() += v;
            }
            for (k, v) in &s.replicas {
                let t = self.out.replicas.entry(k.clone()).or_default();
                t.sessions += v.sessions;
                t.requests += v.requests;
            }
        }
        self.out.counters.peak_open = self.out.peak_open;
        self.out.cpu_us = sys::self_cpu_us();
        if !self.in_process {
            self.out.cpu_us += self.processes.values().map(|p| p.cpu_us).sum::<u64>();
        }
        self.out.histos = self.histos;
        self.out.elapsed = self.start.elapsed();
        self.out
    }
}

pub fn format_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}us"),
        1_000..1_000_000 => format!("{:.2}ms", us as f64 / 1000.0),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}
