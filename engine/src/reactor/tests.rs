//! Both reactors against real loopback sockets: connect, send, receive, EOF, refusal, close.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use super::epoll::Epoll;
use super::uring::{self, Uring};
use super::{Io, Outbox, Reactor, SocketOptions, Token};

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Connected(Token),
    ConnectFailed(Token, i32),
    Data(Token, Vec<u8>),
    Eof(Token),
    Failed(Token, i32),
}

/// Turns the reactor until `done` says so (bounded: 5 s), collecting what it hands out.
fn pump<R: Reactor>(
    r: &mut R,
    outbox: &mut Outbox,
    seen: &mut Vec<Seen>,
    done: impl Fn(&[Seen]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(seen) {
        assert!(Instant::now() < deadline, "reactor stalled; saw {seen:?}");
        r.turn(outbox, Duration::from_millis(50), |io, _| {
            seen.push(match io {
                Io::Connected(t) => Seen::Connected(t),
                Io::ConnectFailed(t, e) => Seen::ConnectFailed(t, e),
                Io::Data(t, d) => Seen::Data(t, d.to_vec()),
                Io::Eof(t) => Seen::Eof(t),
                Io::Failed(t, e) => Seen::Failed(t, e),
            })
        })
        .unwrap();
    }
}

fn received(seen: &[Seen], token: Token) -> Vec<u8> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Data(t, d) if *t == token => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn exercise<R: Reactor>(mut r: R) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = [0u8; 5];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        let big = vec![b'x'; 100_000];
        s.write_all(&big).unwrap();
        drop(s);
    });
    let mut outbox = Outbox::default();
    let mut seen = Vec::new();
    let t = Token {
        slot: 1,
        generation: 7,
    };
    outbox.connect(t, addr, None);
    pump(&mut r, &mut outbox, &mut seen, |s| {
        s.contains(&Seen::Connected(t))
    });
    outbox.send_with(t, |b| b.extend_from_slice(b"hel"));
    outbox.send_with(t, |b| b.extend_from_slice(b"lo"));
    pump(&mut r, &mut outbox, &mut seen, |s| {
        s.contains(&Seen::Eof(t))
    });
    assert_eq!(
        received(&seen, t).len(),
        100_000,
        "every byte arrives, in order, before EOF"
    );
    server.join().unwrap();
    outbox.close(t);

    // A refused connect names ECONNREFUSED; a stale token's close is ignored.
    let closed: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let t2 = Token {
        slot: 1,
        generation: 8,
    };
    outbox.connect(t2, closed, None);
    outbox.close(t);
    pump(&mut r, &mut outbox, &mut seen, |s| {
        s.iter()
            .any(|x| matches!(x, Seen::ConnectFailed(tt, _) if *tt == t2))
    });
    assert!(seen.contains(&Seen::ConnectFailed(t2, libc::ECONNREFUSED)));
}

fn exercise_source_bind<R: Reactor>(mut r: R) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut outbox = Outbox::default();
    let mut seen = Vec::new();
    let t = Token {
        slot: 0,
        generation: 1,
    };
    outbox.connect(t, addr, Some("127.0.0.9".parse().unwrap()));
    pump(&mut r, &mut outbox, &mut seen, |s| {
        s.contains(&Seen::Connected(t))
    });
    let (_s, peer) = listener.accept().unwrap();
    assert_eq!(
        peer.ip().to_string(),
        "127.0.0.9",
        "bound to the pool address"
    );
}

#[test]
fn epoll_reactor_moves_bytes() {
    exercise(Epoll::new(4, SocketOptions::default()).unwrap());
    exercise_source_bind(Epoll::new(1, SocketOptions::default()).unwrap());
}

#[test]
fn uring_reactor_moves_bytes() {
    if let Err(why) = uring::probe() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "io_uring unavailable in CI: {why}"
        );
        eprintln!("skipping: {why}");
        return;
    }
    exercise(Uring::new(4, SocketOptions::default()).unwrap());
    exercise_source_bind(Uring::new(1, SocketOptions::default()).unwrap());
}
