//! One pinned worker: its share of the sessions, one reactor, one timer heap, its own metrics.
//! Nothing here is shared with other workers; snapshots leave through `sink`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::flags::Flags;
use crate::metrics::{Snapshot, UNKNOWN_REPLICA, WorkerMetrics};
use crate::plan::Plan;
use crate::proto::{Action, Context, ErrorKind, Event, Outcome, Session};
use crate::reactor::{GENERATION_MASK, Io, Outbox, Reactor, Token};

/// Set (by a signal handler or the supervisor) to end the hold early: sessions close cleanly.
pub static STOP: AtomicBool = AtomicBool::new(false);

const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// A worker never sleeps longer than this, so it notices STOP promptly.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// Tokens the ramp bucket may save up: a short burst at most.
const RAMP_BURST: f64 = 64.0;
const NO_DEADLINE: u64 = u64::MAX;
/// Timer resolution. Session deadlines (the next ping, timeouts, reconnects) need no finer
/// grain, and latencies are measured from the actual send, so coarser ticks only batch work.
const TIMER_TICK_NS: u128 = 1_000_000;

/// Which global connections a worker owns: `first, first + stride, ...`, `count` of them.
#[derive(Debug, Clone, Copy)]
pub struct Share {
    pub worker: u32,
    pub stride: u32,
    pub count: u64,
}

impl Share {
    fn global(&self, slot: u32) -> u64 {
        u64::from(self.worker) + u64::from(slot) * u64::from(self.stride)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Ramp,
    Hold,
    Drain,
}

struct Conn {
    session: Session,
    generation: u32,
    /// Earliest time a timer entry for this slot sits in the heap (µs since the epoch).
    armed: u64,
    replica: u16,
    flags: Flags,
}

const HAS_SOCKET: u8 = 1;
const ATTEMPTED: u8 = 1 << 1;
const ESTABLISHED: u8 = 1 << 2;
const INITIALIZED: u8 = 1 << 3;
const OPEN: u8 = 1 << 4;
const QUEUED: u8 = 1 << 5;
const FINISHED: u8 = 1 << 6;

impl Conn {
    fn token(&self, slot: u32) -> Token {
        Token {
            slot,
            generation: self.generation,
        }
    }
}

/// Everything but the reactor and its outbox, so completions can be handled while the
/// reactor is borrowed.
struct State<'p> {
    plan: &'p Plan,
    cx: Context,
    share: Share,
    conns: Vec<Conn>,
    timers: BinaryHeap<Reverse<(u64, u32)>>,
    connect_queue: VecDeque<u32>,
    metrics: WorkerMetrics,
    events: Vec<Event>,
    epoch: Instant,
    phase: Phase,
    finished: u64,
    fire_cursor: u32,
    due_scratch: Vec<u32>,
    /// The run's common start.
    start: Instant,
}

pub struct Worker<'p, R: Reactor> {
    reactor: R,
    outbox: Outbox,
    state: State<'p>,
}

impl<'p, R: Reactor> Worker<'p, R> {
    pub fn new(plan: &'p Plan, share: Share, reactor: R) -> Self {
        let cx = plan.context();
        let conns = (0..share.count as u32)
            .map(|slot| {
                let global = share.global(slot);
                Conn {
                    session: Session::new(&cx, plan.target_of(global), global),
                    generation: 0,
                    armed: NO_DEADLINE,
                    replica: UNKNOWN_REPLICA,
                    flags: Flags::default(),
                }
            })
            .collect();
        Worker {
            reactor,
            outbox: Outbox::default(),
            state: State {
                plan,
                cx,
                share,
                conns,
                timers: BinaryHeap::new(),
                connect_queue: (0..share.count as u32).collect(),
                metrics: WorkerMetrics::default(),
                events: Vec::new(),
                epoch: Instant::now(),
                phase: Phase::Ramp,
                finished: 0,
                fire_cursor: 0,
                due_scratch: Vec::new(),
                start: Instant::now(),
            },
        }
    }

    /// Runs ramp, hold and drain, shipping a snapshot every second and a final one.
    pub fn run(mut self, start: Instant, mut sink: impl FnMut(Snapshot)) -> std::io::Result<()> {
        self.state.start = start;
        if self.state.share.count == 0 {
            self.state.metrics.all_initialized_us = Some(0);
        }
        let plan = self.state.plan;
        let share = self.state.share;
        let my_rate = plan.ramp_per_s * share.count as f64 / plan.conns as f64;
        let hold_start = start + plan.ramp_duration();
        let mut hold_end = hold_start + plan.hold;
        let mut drain_end = hold_end + plan.drain_timeout;
        let fire_every = plan
            .rate
            .map(|r| Duration::from_secs_f64(f64::from(share.stride) / r));
        let mut next_fire = hold_start;
        let mut tokens = 1.0f64;
        let mut last = start;
        let mut next_snapshot = start + SNAPSHOT_EVERY;
        loop {
            let now = Instant::now();
            if STOP.load(Ordering::Relaxed) && now < hold_end {
                hold_end = now;
                drain_end = now + plan.drain_timeout;
            }
            let st = &mut self.state;
            if st.phase == Phase::Ramp && now >= hold_start {
                st.phase = Phase::Hold;
                st.metrics.at_hold_start = Some(st.metrics.mark());
            }
            if st.phase < Phase::Drain && now >= hold_end {
                st.begin_drain(now, &mut self.outbox);
            }
            if st.phase == Phase::Drain && (st.finished == share.count || now >= drain_end) {
                break;
            }
            tokens = (tokens + now.duration_since(last).as_secs_f64() * my_rate).min(RAMP_BURST);
            last = now;
            while tokens >= 1.0 && st.phase < Phase::Drain {
                let Some(slot) = st.connect_queue.pop_front() else {
                    break;
                };
                tokens -= 1.0;
                st.start_connect(slot, now, &mut self.outbox);
            }
            st.run_timers(now, &mut self.outbox);
            if let Some(every) = fire_every {
                while st.phase == Phase::Hold && next_fire <= now {
                    st.fire(now, next_fire, &mut self.outbox);
                    next_fire += every;
                }
            }
            if now >= next_snapshot {
                sink(st.metrics.snapshot(share.worker, false));
                next_snapshot += SNAPSHOT_EVERY;
            }
            let mut wake = next_snapshot.min(now + MAX_WAIT);
            if let Some(&Reverse((at, _))) = st.timers.peek() {
                wake = wake.min(st.epoch + Duration::from_micros(at));
            }
            if !st.connect_queue.is_empty() && st.phase < Phase::Drain {
                wake = wake.min(now + Duration::from_secs_f64(((1.0 - tokens) / my_rate).max(0.0)));
            }
            if fire_every.is_some() && st.phase == Phase::Hold {
                wake = wake.min(next_fire);
            }
            wake = wake.min(if st.phase < Phase::Drain {
                hold_end
            } else {
                drain_end
            });
            let timeout = wake.saturating_duration_since(Instant::now());
            let Worker {
                reactor,
                outbox,
                state,
            } = &mut self;
            reactor.turn(outbox, timeout, |io, outbox| state.on_io(io, outbox))?;
        }
        self.state.abandon(&mut self.outbox);
        // Let the reactor apply the final closes.
        let Worker {
            reactor,
            outbox,
            state,
        } = &mut self;
        reactor.turn(outbox, Duration::ZERO, |io, outbox| state.on_io(io, outbox))?;
        sink(self.state.metrics.snapshot(share.worker, true));
        Ok(())
    }
}

impl State<'_> {
    fn now_us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_micros() as u64
    }

    fn start_connect(&mut self, slot: u32, now: Instant, outbox: &mut Outbox) {
        let global = self.share.global(slot);
        let conn = &mut self.conns[slot as usize];
        conn.flags.set(QUEUED, false);
        if conn.flags.has(FINISHED) {
            return;
        }
        if !conn.flags.has(ATTEMPTED) {
            conn.flags.set(ATTEMPTED, true);
            self.metrics.counters.attempted += 1;
        }
        conn.generation = (conn.generation + 1) & GENERATION_MASK;
        conn.flags.set(HAS_SOCKET, true);
        conn.session.on_connect_start(&self.cx, now);
        let target = &self.cx.targets[conn.session.target() as usize];
        outbox.connect(conn.token(slot), target.addr, self.plan.source_of(global));
        self.settle(slot, now, outbox);
    }

    fn on_io(&mut self, io: Io<'_>, outbox: &mut Outbox) {
        let now = Instant::now();
        let token = match &io {
            Io::Connected(t)
            | Io::ConnectFailed(t, _)
            | Io::Data(t, _)
            | Io::Eof(t)
            | Io::Failed(t, _) => *t,
        };
        let Some(conn) = self.conns.get_mut(token.slot as usize) else {
            return;
        };
        if conn.generation != token.generation || !conn.flags.has(HAS_SOCKET) {
            return;
        }
        let (cx, ev) = (&self.cx, &mut self.events);
        match io {
            Io::Connected(_) => conn.session.on_connected(cx, now, ev),
            Io::ConnectFailed(_, e) | Io::Failed(_, e) => {
                conn.session
                    .on_io_error(cx, ErrorKind::from_errno(e), now, ev)
            }
            Io::Data(_, bytes) => conn.session.on_bytes(cx, bytes, now, ev),
            Io::Eof(_) => conn.session.on_eof(cx, now, ev),
        }
        self.settle(token.slot, now, outbox);
    }

    /// After any call into a session: count its events, send its bytes, act on what it
    /// wants, re-arm its timer.
    fn settle(&mut self, slot: u32, now: Instant, outbox: &mut Outbox) {
        let conn = &mut self.conns[slot as usize];
        for ev in self.events.drain(..) {
            match ev {
                Event::Connected { took } => {
                    self.metrics.connected(took);
                    if !conn.flags.has(ESTABLISHED) {
                        conn.flags.set(ESTABLISHED, true);
                        self.metrics.counters.established += 1;
                    }
                }
                Event::Initialized { took } => {
                    self.metrics.initialized(took, conn.replica);
                    if !conn.flags.has(INITIALIZED) {
                        conn.flags.set(INITIALIZED, true);
                        self.metrics.counters.initialized += 1;
                        if self.metrics.counters.initialized == self.share.count {
                            let after = now.saturating_duration_since(self.start);
                            self.metrics.all_initialized_us = Some(after.as_micros() as u64);
                        }
                    }
                }
                Event::Response {
                    latency,
                    uncorrected,
                    outcome,
                } => {
                    let ok = outcome == Outcome::Ok;
                    self.metrics
                        .response(latency, uncorrected, ok, conn.replica);
                    if let Outcome::Error(kind) = outcome {
                        self.metrics.error(kind);
                    }
                }
                Event::ReplicaChanged => {
                    conn.replica = self
                        .metrics
                        .replica(conn.session.replica().unwrap_or("unknown"));
                }
                Event::Error(kind) => self.metrics.error(kind),
                Event::Reinitializing => self.metrics.counters.reinitializations += 1,
                Event::Reconnecting => self.metrics.counters.reconnects += 1,
                Event::Late => self.metrics.counters.late += 1,
                Event::Closed => self.metrics.counters.closed_clean += 1,
            }
        }
        let open = conn.session.is_initialized();
        if open != conn.flags.has(OPEN) {
            conn.flags.set(OPEN, open);
            self.metrics.open_changed(open);
        }
        let token = conn.token(slot);
        if conn.flags.has(HAS_SOCKET) {
            let (session, cx) = (&mut conn.session, &self.cx);
            outbox.send_with(token, |buf| while session.poll_transmit(cx, now, buf) {});
        }
        match conn.session.action() {
            Action::Keep => {}
            Action::Connect => {
                if conn.flags.has(HAS_SOCKET) {
                    outbox.close(token);
                    conn.flags.set(HAS_SOCKET, false);
                }
                if self.phase == Phase::Drain {
                    self.finish(slot);
                    return;
                }
                let due = conn.session.next_deadline().is_none_or(|d| d <= now);
                if due && !conn.flags.has(QUEUED) {
                    conn.flags.set(QUEUED, true);
                    self.connect_queue.push_back(slot);
                }
            }
            Action::Close => {
                if conn.flags.has(HAS_SOCKET) {
                    outbox.close(token);
                    conn.flags.set(HAS_SOCKET, false);
                }
                self.finish(slot);
                return;
            }
        }
        self.arm(slot);
    }

    fn arm(&mut self, slot: u32) {
        let conn = &self.conns[slot as usize];
        let Some(at) = conn.session.next_deadline() else {
            return;
        };
        // Rounded up to the next tick, so a timer never fires early and the timers due within
        // one tick share a wake-up.
        let ticks = at
            .saturating_duration_since(self.epoch)
            .as_nanos()
            .div_ceil(TIMER_TICK_NS);
        let at = (ticks * (TIMER_TICK_NS / 1000)) as u64;
        if at < conn.armed {
            self.conns[slot as usize].armed = at;
            self.timers.push(Reverse((at, slot)));
        }
    }

    /// Runs the timers due by `now`. Timers re-armed meanwhile wait for the next turn, so a
    /// session can never keep the worker from polling I/O.
    fn run_timers(&mut self, now: Instant, outbox: &mut Outbox) {
        let now_us = self.now_us(now);
        let mut due_slots = std::mem::take(&mut self.due_scratch);
        while let Some(&Reverse((at, slot))) = self.timers.peek() {
            if at > now_us {
                break;
            }
            self.timers.pop();
            let conn = &mut self.conns[slot as usize];
            if conn.armed != at || conn.flags.has(FINISHED) {
                continue;
            }
            conn.armed = NO_DEADLINE;
            if self.phase < Phase::Drain {
                // Lag while closing (every session at once) says nothing about the measured phases.
                self.metrics.max_loop_lag_us = self.metrics.max_loop_lag_us.max(now_us - at);
            }
            due_slots.push(slot);
        }
        for &slot in &due_slots {
            let conn = &mut self.conns[slot as usize];
            let due = conn.session.next_deadline().is_some_and(|d| d <= now);
            if !conn.flags.has(HAS_SOCKET) && conn.session.action() == Action::Connect {
                if !due {
                    self.arm(slot);
                } else if !conn.flags.has(QUEUED) && self.phase < Phase::Drain {
                    conn.flags.set(QUEUED, true);
                    self.connect_queue.push_back(slot);
                }
                continue;
            }
            if due {
                conn.session.on_timer(&self.cx, now, &mut self.events);
                self.settle(slot, now, outbox);
            } else {
                self.arm(slot);
            }
        }
        due_slots.clear();
        self.due_scratch = due_slots;
    }

    /// Open model: the next open session (round robin) gets the send due at `intended`.
    fn fire(&mut self, now: Instant, intended: Instant, outbox: &mut Outbox) {
        let n = self.conns.len() as u32;
        for _ in 0..n {
            let slot = self.fire_cursor;
            self.fire_cursor = (self.fire_cursor + 1) % n;
            let conn = &mut self.conns[slot as usize];
            if conn.flags.has(OPEN) {
                conn.session.fire(&self.cx, now, intended, &mut self.events);
                self.settle(slot, now, outbox);
                return;
            }
        }
        self.metrics.counters.dropped += 1;
    }

    fn begin_drain(&mut self, now: Instant, outbox: &mut Outbox) {
        self.phase = Phase::Drain;
        self.metrics.counters.failed = self.share.count - self.metrics.counters.open;
        let mark = self.metrics.mark();
        self.metrics.at_hold_start.get_or_insert(mark);
        self.metrics.at_hold_end = Some(mark);
        self.connect_queue.clear();
        for slot in 0..self.conns.len() as u32 {
            let conn = &mut self.conns[slot as usize];
            conn.flags.set(QUEUED, false);
            if conn.flags.has(FINISHED) {
                continue;
            }
            if conn.flags.has(HAS_SOCKET) {
                conn.session.shutdown(&self.cx, now, &mut self.events);
                self.settle(slot, now, outbox);
            } else {
                self.finish(slot);
            }
        }
    }

    /// The drain deadline passed: drop whatever is still open.
    fn abandon(&mut self, outbox: &mut Outbox) {
        for slot in 0..self.conns.len() as u32 {
            let conn = &mut self.conns[slot as usize];
            if conn.flags.has(HAS_SOCKET) {
                outbox.close(conn.token(slot));
                conn.flags.set(HAS_SOCKET, false);
            }
            if !conn.flags.has(FINISHED) {
                self.finish(slot);
            }
        }
    }

    fn finish(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        if !conn.flags.has(FINISHED) {
            conn.flags.set(FINISHED, true);
            self.finished += 1;
        }
        if conn.flags.has(OPEN) {
            conn.flags.set(OPEN, false);
            self.metrics.open_changed(false);
        }
    }
}
