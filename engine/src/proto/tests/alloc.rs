//! Memory: the size of a session, no heap held while idle, and no allocation per request on
//! the steady path (counted by a test-only allocator, per thread).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use wire::ws::{Opcode, accept_key};

use super::harness::*;
use crate::proto::{Event, Outcome, Scenario, Session, Transport};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// 100,000 sessions in about 150 MiB leaves ~1.5 KiB each for everything: kernel socket,
/// reactor slot, metrics share. The session itself stays at 200 bytes: receive state 72
/// (the WebSocket decoder is the largest variant), identifiers 24, queued replies 16, base
/// instant 16, five times and a PRNG state 48, counters and state bytes 24.
#[test]
fn a_session_is_at_most_200_bytes() {
    assert!(
        size_of::<Session>() <= 200,
        "Session grew to {} bytes",
        size_of::<Session>()
    );
}

/// Runs `rounds` request/reply exchanges where each reply arrives whole, and returns the
/// allocations they made. `reply(id)` builds the server's answer to request `id`.
fn steady_allocations(h: &mut Harness, first_id: u64, reply: impl Fn(u64) -> Vec<u8>) -> u64 {
    let replies: Vec<Vec<u8>> = (first_id..first_id + 200).map(&reply).collect();
    let mut out = Vec::with_capacity(4096);
    h.ev.clear();
    h.ev.reserve(64);
    let before = allocations();
    for bytes in &replies {
        h.s.on_bytes(&h.cx, bytes, h.now, &mut h.ev);
        out.clear();
        while h.s.poll_transmit(&h.cx, h.now, &mut out) {}
        assert!(!out.is_empty(), "a request follows each reply");
        assert!(
            matches!(
                h.ev[..],
                [Event::Response {
                    outcome: Outcome::Ok,
                    ..
                }]
            ),
            "{:?}",
            h.ev
        );
        h.ev.clear();
    }
    allocations() - before
}

#[test]
fn a_reply_split_over_reads_is_kept_then_freed() {
    let mut h = Harness::new(context(Transport::Http, Scenario::Ping, closed(0)));
    h.connect();
    h.sent();
    let reply = sse_chunked(
        &[("Mcp-Session-Id", "s")],
        &sse_event(&init_result(0, "r")),
        7,
    );
    let (a, b) = reply.split_at(reply.len() / 2);
    h.feed(a);
    assert!(h.s.rx_heap() > 0);
    h.feed(b);
    assert_eq!(h.s.rx_heap(), 0);
    assert!(h.events().contains(&Event::Initialized {
        took: std::time::Duration::ZERO
    }));
}

#[test]
fn tcp_steady_state_allocates_nothing() {
    let mut h = Harness::new(context(Transport::Tcp, Scenario::ToolsList, closed(0)));
    h.connect();
    h.sent();
    h.feed(format!("{}\n", init_result(0, "r")).as_bytes());
    h.sent();
    let n = steady_allocations(&mut h, 1, |id| {
        format!("{}\n", result(id, "{}")).into_bytes()
    });
    assert_eq!(n, 0);
    assert_eq!(h.s.buffered(), 0);
}

#[test]
fn websocket_steady_state_allocates_nothing() {
    let mut h = Harness::new(context(Transport::WebSocket, Scenario::Ping, closed(0)));
    h.connect();
    let request = h.sent_str();
    let key = request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .to_string();
    h.feed(
        format!(
            "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key.as_bytes())
        )
        .as_bytes(),
    );
    h.sent();
    h.feed(&server_frame(Opcode::Text, init_result(0, "r").as_bytes()));
    h.sent();
    let n = steady_allocations(&mut h, 1, |id| {
        server_frame(Opcode::Text, result(id, "{}").as_bytes())
    });
    assert_eq!(n, 0);
}

#[test]
fn http_steady_state_allocates_nothing_for_json_and_sse_replies() {
    let mut h = Harness::new(context(Transport::Http, Scenario::Ping, closed(0)));
    h.connect();
    h.sent();
    h.feed(&json_response(
        &[
            ("Mcp-Session-Id", "abc"),
            ("Set-Cookie", "lb=1; Path=/"),
            ("X-Replica", "r1"),
        ],
        &init_result(0, "r"),
    ));
    h.sent();
    h.feed(&response(202, &[], ""));
    h.sent();
    h.events();
    let n = steady_allocations(&mut h, 1, |id| {
        let headers = [("Set-Cookie", "lb=1; Path=/"), ("X-Replica", "r1")];
        if id % 2 == 0 {
            json_response(&headers, &result(id, "{}"))
        } else {
            sse_chunked(
                &headers,
                &format!("id: 1\ndata:\n\n{}", sse_event(&result(id, "{}"))),
                1000,
            )
        }
    });
    assert_eq!(n, 0, "unchanged identifiers are not rewritten");
    assert_eq!(h.s.rx_heap(), 0, "an idle session owns no receive buffer");
}
