//! Helpers for the byte-level unit tests: a worker built from real command-line flags, a
//! harness feeding a protocol by hand, and (in `replies`, shared with the integration tests)
//! readers for what the server sent.

mod replies;
pub use self::replies::HttpReply;

use std::time::Instant;

pub use self::replies::{client_frame, parse_responses, server_frames};
use crate::outbox::{Delayed, Io};
use crate::proto::{Flow, Proto};
use crate::state::{Shared, Worker};

pub fn worker(args: &[&str]) -> Worker {
    Shared::new(crate::cli::config_from(args)).worker(0)
}

/// A protocol fed bytes by hand, collecting everything it would send.
pub struct Harness {
    pub w: Worker,
    pub proto: Proto,
    pub delayed: Delayed,
    pub sent: Vec<u8>,
    pub flow: Flow,
}

impl Harness {
    pub fn new(transport: crate::metrics::Transport, args: &[&str]) -> Harness {
        let proto = Proto::new(transport);
        Harness {
            w: worker(args),
            delayed: Delayed::new(proto.ordered()),
            proto,
            sent: Vec::new(),
            flow: Flow::Continue,
        }
    }

    /// A new connection of `transport` on the same worker (sessions and counters survive).
    pub fn reconnect(&mut self, transport: crate::metrics::Transport) {
        self.proto.on_close(&self.w);
        self.proto = Proto::new(transport);
        self.delayed = Delayed::new(self.proto.ordered());
        self.sent.clear();
        self.flow = Flow::Continue;
    }

    fn run(&mut self, now: Instant, f: impl FnOnce(&mut Proto, &mut Io<'_>) -> Flow) -> Flow {
        let mut bufs = self.w.buffers.borrow_mut();
        bufs.out.clear();
        let flow = f(
            &mut self.proto,
            &mut Io {
                w: &self.w,
                now,
                bufs: &mut bufs,
                delayed: &mut self.delayed,
            },
        );
        self.sent.extend_from_slice(&bufs.out);
        flow
    }

    /// Feeds `bytes`; returns the flow. After a close, further feeds are ignored.
    pub fn feed(&mut self, bytes: &[u8]) -> Flow {
        if self.flow != Flow::Continue {
            return self.flow;
        }
        self.flow = self.run(Instant::now(), |p, io| p.on_bytes(bytes, io));
        self.flow
    }

    /// Feeds `stream` cut at `cut`, then the rest.
    pub fn feed_split(&mut self, stream: &[u8], cut: usize) -> Flow {
        self.feed(&stream[..cut]);
        self.feed(&stream[cut..])
    }

    /// Moves time to `now`: releases due replies and runs protocol timers.
    pub fn tick(&mut self, now: Instant) -> Flow {
        let flow = self.run(now, |p, io| {
            io.delayed.release(now, &mut io.bufs.out, io.w);
            p.on_timer(io)
        });
        if self.flow == Flow::Continue {
            self.flow = flow;
        }
        flow
    }

    pub fn take_sent(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.sent)
    }

    pub fn sent_text(&self) -> String {
        String::from_utf8_lossy(&self.sent).into_owned()
    }
}
