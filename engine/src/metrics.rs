//! Per-worker measurements and their exact merge.
//!
//! Each worker keeps one HdrHistogram per metric (microseconds) and plain counters. Every
//! interval it ships a [`Snapshot`]: cumulative counters plus the histogram *deltas* since the
//! previous snapshot, which the supervisor adds into its totals (HdrHistogram `add` is exact).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::proto::ErrorKind;

/// Highest latency a histogram records, in microseconds (one hour); larger values saturate.
const MAX_US: u64 = 3_600_000_000;
const SIGFIGS: u8 = 3;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, SIGFIGS).expect("static histogram bounds")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, MAX_US);
    h.record(us).expect("value clamped into range");
}

/// The latency histograms of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Histos {
    #[serde(with = "hist_b64")]
    pub connect: Histogram<u64>,
    #[serde(with = "hist_b64")]
    pub initialize: Histogram<u64>,
    /// From the intended send time (open model) or the send (closed model).
    #[serde(with = "hist_b64")]
    pub request: Histogram<u64>,
    /// Always from the real send, as wrk2 keeps beside the corrected one.
    #[serde(with = "hist_b64")]
    pub request_uncorrected: Histogram<u64>,
}

impl Default for Histos {
    fn default() -> Self {
        Histos {
            connect: new_histogram(),
            initialize: new_histogram(),
            request: new_histogram(),
            request_uncorrected: new_histogram(),
        }
    }
}

impl Histos {
    pub fn add(&mut self, other: &Histos) {
        for (mine, theirs) in self.all_mut().into_iter().zip(other.all()) {
            mine.add(theirs).expect("same bounds");
        }
    }

    pub fn reset(&mut self) {
        for h in self.all_mut() {
            h.reset();
        }
    }

    fn all(&self) -> [&Histogram<u64>; 4] {
        [
            &self.connect,
            &self.initialize,
            &self.request,
            &self.request_uncorrected,
        ]
    }

    fn all_mut(&mut self) -> [&mut Histogram<u64>; 4] {
        [
            &mut self.connect,
            &mut self.initialize,
            &mut self.request,
            &mut self.request_uncorrected,
        ]
    }
}

/// Cumulative counts of one worker (or, summed, of the run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Sessions whose first connection was attempted.
    pub attempted: u64,
    /// Sessions whose transport was established at least once.
    pub established: u64,
    /// Sessions initialized at least once.
    pub initialized: u64,
    /// Sessions that ended without being initialized when the hold ended.
    pub failed: u64,
    /// Sessions initialized right now.
    pub open: u64,
    pub peak_open: u64,
    /// Successful `initialize` exchanges, re-initializations included.
    pub initializations: u64,
    pub reinitializations: u64,
    pub reconnects: u64,
    pub requests_ok: u64,
    pub requests_failed: u64,
    /// Open-model sends that could not go at their intended time.
    pub late: u64,
    /// Open-model sends that found no open session to carry them.
    pub dropped: u64,
    /// Sessions whose clean close completed.
    pub closed_clean: u64,
}

impl Counters {
    /// Sum over workers; `peak_open` sums too, which is exact only if peaks coincide, so the
    /// supervisor tracks the run's peak from the summed `open` instead.
    pub fn add(&mut self, o: &Counters) {
        self.attempted += o.attempted;
        self.established += o.established;
        self.initialized += o.initialized;
        self.failed += o.failed;
        self.open += o.open;
        self.peak_open += o.peak_open;
        self.initializations += o.initializations;
        self.reinitializations += o.reinitializations;
        self.reconnects += o.reconnects;
        self.requests_ok += o.requests_ok;
        self.requests_failed += o.requests_failed;
        self.late += o.late;
        self.dropped += o.dropped;
        self.closed_clean += o.closed_clean;
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaTally {
    pub sessions: u64,
    pub requests: u64,
}

/// Figures of the process a worker runs in, filled by whoever forwards the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStats {
    pub pid: u32,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
    pub cpu_us: u64,
}

/// What a worker ships each interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub worker: u32,
    /// The worker has finished; this is its last snapshot.
    pub done: bool,
    pub counters: Counters,
    pub errors: BTreeMap<String, u64>,
    pub replicas: BTreeMap<String, ReplicaTally>,
    pub delta: Histos,
    pub process: Option<ProcessStats>,
    /// How late the worker ran its most overdue timer during this interval.
    pub max_loop_lag_us: u64,
    /// CPU time the worker thread has used so far.
    pub thread_cpu_us: u64,
    /// Where the worker stood when the hold began and when it ended (hold-phase figures).
    pub at_hold_start: Option<Mark>,
    pub at_hold_end: Option<Mark>,
    /// When (µs after the run's start) the last of the worker's sessions first initialized.
    pub all_initialized_us: Option<u64>,
}

/// Counters and CPU use at one instant of a worker's run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub counters: Counters,
    pub thread_cpu_us: u64,
}

/// The live measurements of one worker.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    pub counters: Counters,
    pub histos: Histos,
    errors: HashMap<ErrorKind, u64>,
    replica_names: Vec<String>,
    replica_index: HashMap<String, u16>,
    replica_tallies: Vec<ReplicaTally>,
    pub max_loop_lag_us: u64,
    pub at_hold_start: Option<Mark>,
    pub at_hold_end: Option<Mark>,
    pub all_initialized_us: Option<u64>,
}

/// Index of a replica in a worker's tallies; `UNKNOWN_REPLICA` until one is seen.
pub const UNKNOWN_REPLICA: u16 = u16::MAX;

impl WorkerMetrics {
    pub fn connected(&mut self, took: Duration) {
        record(&mut self.histos.connect, took);
    }

    pub fn initialized(&mut self, took: Duration, replica: u16) {
        record(&mut self.histos.initialize, took);
        self.counters.initializations += 1;
        if let Some(t) = self.replica_tallies.get_mut(replica as usize) {
            t.sessions += 1;
        }
    }

    pub fn response(&mut self, latency: Duration, uncorrected: Duration, ok: bool, replica: u16) {
        record(&mut self.histos.request, latency);
        record(&mut self.histos.request_uncorrected, uncorrected);
        if ok {
            self.counters.requests_ok += 1;
        } else {
            self.counters.requests_failed += 1;
        }
        if let Some(t) = self.replica_tallies.get_mut(replica as usize) {
            t.requests += 1;
        }
    }

    pub fn error(&mut self, kind: ErrorKind) {
        *self.errors.entry(kind).or_default() += 1;
    }

    pub fn mark(&self) -> Mark {
        Mark {
            counters: self.counters,
            thread_cpu_us: thread_cpu_us(),
        }
    }

    /// One session opened (initialized) or stopped being open.
    pub fn open_changed(&mut self, opened: bool) {
        if opened {
            self.counters.open += 1;
            self.counters.peak_open = self.counters.peak_open.max(self.counters.open);
        } else {
            self.counters.open -= 1;
        }
    }

    /// The index for a replica name, interning it on first sight (names beyond 65,534 distinct
    /// replicas share the unknown slot).
    pub fn replica(&mut self, name: &str) -> u16 {
        if let Some(&i) = self.replica_index.get(name) {
            return i;
        }
        let i = self.replica_names.len();
        if i >= UNKNOWN_REPLICA as usize {
            return UNKNOWN_REPLICA;
        }
        self.replica_names.push(name.to_string());
        self.replica_index.insert(name.to_string(), i as u16);
        self.replica_tallies.push(ReplicaTally::default());
        i as u16
    }

    /// A snapshot carrying the histogram deltas since the previous one (which are then reset).
    pub fn snapshot(&mut self, worker: u32, done: bool) -> Snapshot {
        let snap = Snapshot {
            worker,
            done,
            counters: self.counters,
            errors: self.errors.iter().map(|(k, v)| (k.key(), *v)).collect(),
            replicas: self
                .replica_names
                .iter()
                .cloned()
                .zip(self.replica_tallies.iter().copied())
                .collect(),
            delta: self.histos.clone(),
            process: None,
            max_loop_lag_us: self.max_loop_lag_us,
            thread_cpu_us: thread_cpu_us(),
            at_hold_start: self.at_hold_start,
            at_hold_end: self.at_hold_end,
            all_initialized_us: self.all_initialized_us,
        };
        self.histos.reset();
        self.max_loop_lag_us = 0;
        snap
    }
}

/// CPU time of the calling thread.
pub fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is valid for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Latency figures of one histogram, as summary.json reports them (microseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            min: h.min(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

mod hist_b64 {
    use base64::Engine as _;
    use hdrhistogram::Histogram;
    use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
    use serde::de::Error as _;

    pub fn serialize<S: serde::Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(h, &mut bytes)
            .map_err(serde::ser::Error::custom)?;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(D::Error::custom)?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| D::Error::custom(format!("{e:?}")))?;
        // Serialized histograms come back auto-resizing with their own bounds; give them ours
        // so `add` stays exact.
        let mut ours = super::new_histogram();
        ours.add(&h)
            .map_err(|e| D::Error::custom(format!("{e:?}")))?;
        h.reset();
        Ok(ours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_snapshots_equal_one_histogram_of_everything() {
        let mut a = WorkerMetrics::default();
        let mut b = WorkerMetrics::default();
        let mut all = new_histogram();
        for i in 1..=1000u64 {
            let d = Duration::from_micros(i * 37);
            let m = if i % 3 == 0 { &mut a } else { &mut b };
            m.response(d, d, true, UNKNOWN_REPLICA);
            all.record(i * 37).unwrap();
        }
        let mut total = Histos::default();
        for snap in [a.snapshot(0, false), b.snapshot(1, false)] {
            let wire = serde_json::to_string(&snap).unwrap();
            let back: Snapshot = serde_json::from_str(&wire).unwrap();
            total.add(&back.delta);
        }
        assert_eq!(LatencySummary::of(&total.request), LatencySummary::of(&all));
        assert_eq!(total.request.len(), 1000);
        assert!(a.histos.request.is_empty(), "deltas reset after a snapshot");
        assert_eq!(a.counters.requests_ok + b.counters.requests_ok, 1000);
    }

    #[test]
    fn replicas_are_interned_and_tallied() {
        let mut m = WorkerMetrics::default();
        let r1 = m.replica("r1");
        let r2 = m.replica("r2");
        assert_eq!(m.replica("r1"), r1);
        m.initialized(Duration::from_millis(1), r1);
        m.response(
            Duration::from_millis(1),
            Duration::from_millis(1),
            false,
            r2,
        );
        m.error(ErrorKind::Http(503));
        let s = m.snapshot(3, true);
        assert_eq!(
            s.replicas["r1"],
            ReplicaTally {
                sessions: 1,
                requests: 0
            }
        );
        assert_eq!(
            s.replicas["r2"],
            ReplicaTally {
                sessions: 0,
                requests: 1
            }
        );
        assert_eq!(s.errors["http-503"], 1);
        assert_eq!(s.counters.requests_failed, 1);
    }
}
