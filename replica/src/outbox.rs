//! Where a connection's replies go: straight to the send buffer, or into a queue of replies held
//! back by `--delay` / the `sleep` tool until their time comes.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::state::{Buffers, Worker};

#[derive(Debug)]
struct Held {
    due: Instant,
    seq: u64,
    bytes: Vec<u8>,
    started: Option<Instant>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// Replies waiting for their send time. Empty (and unallocated) unless delays are in use.
#[derive(Debug, Default)]
pub struct Delayed {
    heap: BinaryHeap<Reverse<Held>>,
    /// HTTP/1.1 answers in request order: a later reply never overtakes an earlier one.
    ordered: bool,
    seq: u64,
    bytes: usize,
    last_due: Option<Instant>,
}

impl Delayed {
    pub fn new(ordered: bool) -> Self {
        Delayed {
            ordered,
            ..Delayed::default()
        }
    }

    pub fn set_ordered(&mut self, ordered: bool) {
        self.ordered = ordered;
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Bytes held, counted against the connection's output cap.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(h)| h.due)
    }

    fn push(&mut self, mut due: Instant, bytes: &[u8], started: Option<Instant>) {
        if self.ordered
            && let Some(last) = self.last_due
        {
            due = due.max(last);
        }
        self.last_due = Some(due);
        self.seq += 1;
        self.bytes += bytes.len();
        self.heap.push(Reverse(Held {
            due,
            seq: self.seq,
            bytes: bytes.to_vec(),
            started,
        }));
    }

    /// Moves every reply due by `now` to `out`, recording request durations.
    pub fn release(&mut self, now: Instant, out: &mut Vec<u8>, w: &Worker) {
        while self.next_due().is_some_and(|due| due <= now) {
            let Reverse(held) = self.heap.pop().expect("peeked");
            self.bytes -= held.bytes.len();
            out.extend_from_slice(&held.bytes);
            if let Some(started) = held.started {
                w.metrics.duration(now.saturating_duration_since(started));
            }
        }
        if self.heap.is_empty() {
            self.heap = BinaryHeap::new();
            self.last_due = None;
        }
    }
}

/// What a protocol handler writes to while it processes input.
pub struct Io<'a> {
    pub w: &'a Worker,
    pub now: Instant,
    pub bufs: &'a mut Buffers,
    pub delayed: &'a mut Delayed,
}

impl Io<'_> {
    /// Sends the rendered JSON-RPC message (`bufs.json`) after `delay`.
    pub fn send_json(&mut self, delay: Duration, started: Option<Instant>) {
        send(
            self.w,
            self.now,
            &mut self.bufs.out,
            self.delayed,
            &self.bufs.json,
            delay,
            started,
        );
    }

    /// Sends the rendered frame (`bufs.frame`) after `delay`.
    pub fn send_frame(&mut self, delay: Duration, started: Option<Instant>) {
        send(
            self.w,
            self.now,
            &mut self.bufs.out,
            self.delayed,
            &self.bufs.frame,
            delay,
            started,
        );
    }
}

fn send(
    w: &Worker,
    now: Instant,
    out: &mut Vec<u8>,
    delayed: &mut Delayed,
    bytes: &[u8],
    delay: Duration,
    started: Option<Instant>,
) {
    let must_queue_behind = delayed.ordered && !delayed.is_empty();
    if delay.is_zero() && !must_queue_behind {
        out.extend_from_slice(bytes);
        if let Some(started) = started {
            w.metrics.duration(started.elapsed());
        }
    } else {
        delayed.push(now + delay, bytes, started);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::worker;

    #[test]
    fn unordered_replies_leave_when_due() {
        let w = worker(&[]);
        let t0 = Instant::now();
        let mut d = Delayed::new(false);
        d.push(t0 + Duration::from_millis(20), b"slow", None);
        d.push(t0 + Duration::from_millis(5), b"fast", None);
        assert_eq!(d.bytes(), 8);
        let mut out = Vec::new();
        d.release(t0 + Duration::from_millis(10), &mut out, &w);
        assert_eq!(out, b"fast");
        d.release(t0 + Duration::from_millis(20), &mut out, &w);
        assert_eq!(out, b"fastslow");
        assert!(d.is_empty());
        assert_eq!(d.bytes(), 0);
    }

    #[test]
    fn ordered_replies_keep_request_order() {
        let w = worker(&[]);
        let t0 = Instant::now();
        let mut d = Delayed::new(true);
        d.push(t0 + Duration::from_millis(20), b"1", None);
        d.push(t0 + Duration::from_millis(5), b"2", None);
        d.push(t0, b"3", None);
        let mut out = Vec::new();
        d.release(t0 + Duration::from_millis(10), &mut out, &w);
        assert!(
            out.is_empty(),
            "the second reply may not overtake the first"
        );
        d.release(t0 + Duration::from_millis(20), &mut out, &w);
        assert_eq!(out, b"123");
    }
}
