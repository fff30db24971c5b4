//! Process-wide state ([`Shared`]) and the per-thread view of it ([`Worker`]).

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

use crate::config::{Behaviour, Config};
use crate::metrics::{self, Gauges, ThreadMetrics, Totals};
use crate::sessions::SessionTable;

/// Everything the threads of one replica process share.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub started: Instant,
    pub sessions: SessionTable,
    pub gauges: Gauges,
    threads: Mutex<Vec<Arc<ThreadMetrics>>>,
    /// The replica id as a JSON string literal (quotes included).
    pub id_json: String,
    /// `X-Replica: <id>\r\n`, added to every HTTP response.
    pub x_replica: Vec<u8>,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        let started = Instant::now();
        Arc::new(Shared {
            id_json: serde_json::to_string(&config.id).expect("a string serializes"),
            x_replica: format!("X-Replica: {}\r\n", config.id).into_bytes(),
            config,
            started,
            sessions: SessionTable::new(started),
            gauges: Gauges::default(),
            threads: Mutex::new(Vec::new()),
        })
    }

    pub fn behaviour(&self) -> &Behaviour {
        &self.config.behaviour
    }

    /// A worker for thread number `index`, with its own counters and random stream.
    pub fn worker(self: &Arc<Self>, index: u64) -> Worker {
        let metrics = Arc::new(ThreadMetrics::default());
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(metrics.clone());
        let rng = match self.behaviour().seed {
            Some(seed) => SmallRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            None => SmallRng::from_os_rng(),
        };
        Worker {
            shared: self.clone(),
            metrics,
            rng: RefCell::new(rng),
            event_ids: Cell::new(0),
            buffers: RefCell::new(Buffers::default()),
            input: RefCell::new(vec![0; READ_CHUNK]),
        }
    }

    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for t in self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            totals.add(t);
        }
        totals
    }

    pub fn render_metrics(&self, out: &mut Vec<u8>) {
        let totals = self.totals();
        metrics::render(
            &metrics::Snapshot {
                id: &self.config.id,
                version: env!("CARGO_PKG_VERSION"),
                uptime: self.started.elapsed(),
                gauges: &self.gauges,
                http_sessions: self.sessions.len(),
                totals: &totals,
            },
            out,
        );
    }
}

/// Bytes read from a socket per call.
pub const READ_CHUNK: usize = 64 * 1024;

/// Scratch space one thread reuses for every connection, so idle connections own none.
#[derive(Debug, Default)]
pub struct Buffers {
    /// Bytes to send now, in order.
    pub out: Vec<u8>,
    /// A JSON-RPC message being rendered.
    pub json: Vec<u8>,
    /// A transport frame (HTTP response, WebSocket frame) being rendered.
    pub frame: Vec<u8>,
}

/// One thread's handle on the process: shared state, its counters, its random stream.
#[derive(Debug)]
pub struct Worker {
    pub shared: Arc<Shared>,
    pub metrics: Arc<ThreadMetrics>,
    rng: RefCell<SmallRng>,
    event_ids: Cell<u64>,
    pub buffers: RefCell<Buffers>,
    /// Every read of this thread lands here first.
    pub input: RefCell<Vec<u8>>,
}

impl Worker {
    pub fn behaviour(&self) -> &Behaviour {
        self.shared.behaviour()
    }

    /// True with probability `p` (draws nothing when `p` is zero, keeping seeded runs stable).
    pub fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.rng.borrow_mut().random::<f64>() < p
    }

    /// The `--delay` to add to one reply.
    pub fn sample_delay(&self) -> Duration {
        self.behaviour()
            .delay
            .sample(|| self.rng.borrow_mut().random::<f64>())
    }

    /// A fresh SSE event id.
    pub fn next_event_id(&self) -> u64 {
        let id = self.event_ids.get() + 1;
        self.event_ids.set(id);
        id
    }
}
