//! Seeded random driving: a plausible server whose replies get cut, corrupted and mixed with
//! junk, random timer runs, EOFs, errors, fires and shutdowns. The session must never panic,
//! never keep more than a message's worth of bytes, never leave a timer that is already due
//! after running it, and stay silent once closed.

use std::time::Duration;

use wire::ws::{Opcode, accept_key};

use super::harness::*;
use crate::proto::{Action, ErrorKind, Event, Pacing, Scenario, Transport};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A plausible reply to everything the client just sent.
fn reply(transport: Transport, sent: &[u8], rng: &mut Rng) -> Vec<u8> {
    match transport {
        Transport::Tcp => {
            let text = String::from_utf8_lossy(sent);
            text.lines()
                .flat_map(|l| format!("{}\n", answer(l, rng)).into_bytes())
                .collect()
        }
        Transport::WebSocket => {
            if sent.starts_with(b"GET ") {
                let text = String::from_utf8_lossy(sent);
                let key = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                    .unwrap_or("bad");
                return format!(
                    "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    accept_key(key.as_bytes())
                )
                .into_bytes();
            }
            let mut out = Vec::new();
            for (op, payload) in client_frames(sent) {
                match op {
                    Opcode::Text => {
                        let json = answer(&String::from_utf8_lossy(&payload), rng);
                        out.extend(server_frame(Opcode::Text, json.as_bytes()));
                    }
                    Opcode::Close => out.extend(server_frame(Opcode::Close, &payload)),
                    _ => {}
                }
                if rng.chance(10) {
                    out.extend(server_frame(Opcode::Ping, b"p"));
                }
            }
            out
        }
        Transport::Http => requests(sent)
            .iter()
            .flat_map(|r| http_answer(r, rng))
            .collect(),
    }
}

fn answer(json: &str, rng: &mut Rng) -> String {
    let (method, id) = method_and_id(json);
    let Some(id) = id else {
        return NOTIFICATION.to_string();
    };
    match (method.as_str(), rng.below(6)) {
        ("initialize", 0) => error(&id.to_string(), -32005),
        ("initialize", _) => init_result(id, &format!("r{}", rng.below(3))),
        (_, 0) => error(&format!("\"{id}\""), -32601),
        (_, 1) => format!("{NOTIFICATION}\n{}", result(id, "{}")),
        (_, 2) => result(id + 1, "{}"),
        _ => result(id, r#"{"content":[{"type":"text","text":"ok"}]}"#),
    }
}

fn http_answer(r: &Request, rng: &mut Rng) -> Vec<u8> {
    let replica = format!("r{}", rng.below(3));
    match r.method.as_str() {
        "DELETE" => return response([200, 405, 500][rng.below(3) as usize], &[], ""),
        "GET" => return response(200, &[("X-Replica", &replica)], "{}"),
        _ => {}
    }
    if method_and_id(&r.body).1.is_none() {
        return response(202, &[], "");
    }
    let body = answer(&r.body, rng);
    let body = body.lines().last().unwrap_or("").to_string();
    let sid = format!("s{}", rng.below(2));
    let headers = [("Mcp-Session-Id", sid.as_str()), ("X-Replica", &replica)];
    match rng.below(8) {
        0 => response(404, &[("Content-Type", "text/plain")], "Not Found"),
        1 => response(500, &[], "oops"),
        2 => sse_chunked(
            &headers,
            &format!("id: 1\ndata:\n\n{}", sse_event(&body)),
            1 + rng.below(20) as usize,
        ),
        3 => response(
            200,
            &[("Content-Type", "text/event-stream")],
            &sse_event(&body),
        ),
        4 => json_response(
            &[("Connection", "close"), ("Set-Cookie", "lb=1; Path=/")],
            &body,
        ),
        _ => json_response(&headers, &body),
    }
}

/// Cuts, corrupts, or pads a reply.
fn mangle(mut bytes: Vec<u8>, rng: &mut Rng) -> Vec<u8> {
    match rng.below(10) {
        0 if !bytes.is_empty() => {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] = rng.next() as u8;
        }
        1 => bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize),
        2 => bytes.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
        3 => bytes = (0..rng.below(256)).map(|_| rng.next() as u8).collect(),
        _ => {}
    }
    bytes
}

fn drive(transport: Transport, scenario: Scenario, pacing: Pacing, seed: u64) {
    let mut cx = context(transport, scenario, pacing);
    cx.max_message = 512;
    let mut h = Harness::new(cx);
    let mut rng = Rng(seed | 1);
    let mut closed_drained = false;
    for _ in 0..600 {
        if h.s.action() == Action::Connect && h.s.next_deadline().is_none() {
            h.s.on_connect_start(&h.cx, h.now);
            match rng.below(10) {
                0 => h.s.on_io_error(&h.cx, ErrorKind::Refused, h.now, &mut h.ev),
                1 => h.advance(CONNECT_TIMEOUT),
                _ => h.s.on_connected(&h.cx, h.now, &mut h.ev),
            }
        }
        let sent = h.sent();
        if closed_drained {
            assert!(sent.is_empty(), "a closed session sent {sent:?}");
        }
        let mut incoming = mangle(reply(transport, &sent, &mut rng), &mut rng);
        while !incoming.is_empty() {
            let cut = 1 + rng.below(incoming.len() as u64) as usize;
            let rest = incoming.split_off(cut);
            h.feed(&incoming);
            incoming = rest;
        }
        assert!(
            h.s.buffered() <= h.cx.max_message + 14,
            "{} bytes held",
            h.s.buffered()
        );
        match rng.below(40) {
            0 => h.eof(),
            1 => h.s.on_io_error(&h.cx, ErrorKind::Reset, h.now, &mut h.ev),
            2 if rng.chance(20) => h.shutdown(),
            3..=8 => {
                let intended = h.now;
                h.fire(intended);
            }
            _ => {}
        }
        h.advance(Duration::from_millis(rng.below(3000)));
        if h.s.action() == Action::Close && !closed_drained {
            h.sent();
            closed_drained = true;
        }
        for e in h.events() {
            if let Event::Connected { took } | Event::Initialized { took } = e {
                assert!(took <= Duration::from_secs(3600));
            }
        }
    }
}

#[test]
fn random_driving_never_panics_or_spins() {
    let combos = [
        (Transport::Tcp, Scenario::Ping, closed(0)),
        (Transport::Tcp, Scenario::ToolsList, Pacing::Open),
        (Transport::WebSocket, Scenario::Ping, closed(0)),
        (Transport::WebSocket, Scenario::Idle, closed(0)),
        (Transport::Http, Scenario::Ping, closed(0)),
        (Transport::Http, Scenario::ToolsList, Pacing::Open),
        (Transport::Http, Scenario::Health, closed(10)),
    ];
    for (i, (transport, scenario, pacing)) in combos.into_iter().enumerate() {
        for seed in 0..12u64 {
            drive(transport, scenario.clone(), pacing, seed * 7919 + i as u64);
        }
    }
}

#[test]
fn pure_noise_never_panics() {
    let mut rng = Rng(0xDEAD_BEEF);
    for transport in [Transport::Tcp, Transport::WebSocket, Transport::Http] {
        for _ in 0..200 {
            let mut h = Harness::new(context(transport, Scenario::Ping, closed(0)));
            h.connect();
            for _ in 0..20 {
                let noise: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
                h.feed(&noise);
                h.sent();
                if h.s.action() != Action::Keep {
                    break;
                }
            }
            h.eof();
            h.sent();
        }
    }
}
