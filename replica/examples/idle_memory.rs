//! Idle memory per connection: for each transport, starts a fresh replica, opens N connections
//! that each hold an initialized MCP session (TCP ndjson, HTTP keep-alive with an
//! `Mcp-Session-Id`, WebSocket), and prints the replica's RSS growth divided by N.
//!
//! cargo build --release -p replica --bin replica --example idle_memory
//! target/release/examples/idle_memory [--conns 9000] [--transport all|tcp|http|ws]
//!     [--threads 1] [--replica target/release/replica]
//!
//! RSS is user memory only (kernel socket buffers are not in it). The client runs in this
//! process, the server in the child, so the figures are the server's alone.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use replica::fleet::{Fleet, FleetSpec};

type Res<T> = Result<T, Box<dyn Error>>;

mod support;
use support::{
    INIT, INITIALIZED, WS_UPGRADE, header, http_end, http_post, line_end, ws_end, ws_frame,
};

struct Args {
    conns: usize,
    transports: Vec<String>,
    threads: String,
    replica: PathBuf,
}

fn args() -> Res<Args> {
    let mut a = Args {
        conns: 9000,
        transports: vec!["tcp".into(), "http".into(), "ws".into()],
        threads: "1".into(),
        replica: std::env::current_exe()?
            .parent()
            .and_then(|p| p.parent())
            .ok_or("cannot locate the target directory")?
            .join("replica"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--conns" => a.conns = value()?.parse()?,
            "--threads" => a.threads = value()?,
            "--replica" => a.replica = value()?.into(),
            "--transport" => {
                let t = value()?;
                if t != "all" {
                    a.transports = vec![t];
                }
            }
            other => return Err(format!("unknown flag {other}; see the file's header").into()),
        }
    }
    if !a.replica.exists() {
        return Err(format!(
            "{} not found: build it with cargo build --release -p replica --bin replica, or pass --replica",
            a.replica.display()
        )
        .into());
    }
    Ok(a)
}

/// (VmRSS, RssAnon) of `pid` in KiB.
fn rss_kib(pid: u32) -> Res<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Res<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or(format!("no {name} in /proc/{pid}/status"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .ok_or("bad status line")?
            .parse()?)
    };
    Ok((field("VmRSS:")?, field("RssAnon:")?))
}

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain get/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Reads until `done(buffer)` says how many bytes make the reply.
fn read_reply(s: &mut TcpStream, done: impl Fn(&[u8]) -> Option<usize>) -> Res<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(n) = done(&buf) {
            buf.truncate(n);
            return Ok(buf);
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err("the replica closed a connection during the handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn post(s: &mut TcpStream, body: &str, session: Option<&str>) -> Res<Vec<u8>> {
    s.write_all(&http_post(body, session))?;
    read_reply(s, http_end)
}

/// One connection holding an initialized session.
fn open(transport: &str, tcp: SocketAddr, http: SocketAddr) -> Res<TcpStream> {
    let addr = if transport == "tcp" { tcp } else { http };
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    match transport {
        "tcp" => {
            s.write_all(format!("{INIT}\n").as_bytes())?;
            let reply = read_reply(&mut s, line_end)?;
            if !reply.starts_with(br#"{"jsonrpc":"2.0","id":1,"result""#) {
                return Err(
                    format!("initialize failed: {}", String::from_utf8_lossy(&reply)).into(),
                );
            }
            s.write_all(format!("{INITIALIZED}\n").as_bytes())?;
        }
        "http" => {
            let reply = post(&mut s, INIT, None)?;
            let sid = header(&reply, "mcp-session-id")
                .ok_or("initialize over HTTP minted no session")?
                .to_string();
            let ack = post(&mut s, INITIALIZED, Some(&sid))?;
            if !ack.starts_with(b"HTTP/1.1 202") {
                return Err("notifications/initialized was not accepted".into());
            }
        }
        "ws" => {
            s.write_all(WS_UPGRADE)?;
            let head = read_reply(&mut s, http_end)?;
            if !head.starts_with(b"HTTP/1.1 101") {
                return Err("the WebSocket upgrade was refused".into());
            }
            s.write_all(&ws_frame(INIT))?;
            read_reply(&mut s, ws_end)?;
            s.write_all(&ws_frame(INITIALIZED))?;
        }
        other => return Err(format!("unknown transport {other} (tcp, http, ws)").into()),
    }
    Ok(s)
}

fn metric(http: SocketAddr, name: &str) -> Res<f64> {
    let mut s = TcpStream::connect(http)?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .ok_or(format!("{name} missing from /metrics"))?;
    Ok(value.parse()?)
}

fn measure(a: &Args, transport: &str) -> Res<()> {
    let mut spec = FleetSpec::new(&a.replica, 1);
    spec.extra_args = ["--threads", &a.threads].map(Into::into).to_vec();
    let fleet = Fleet::start(spec, Duration::from_secs(10))?;
    let m = fleet.members()[0].clone();
    let (tcp, http) = (
        m.tcp.ok_or("no tcp listener")?,
        m.http.ok_or("no http listener")?,
    );
    // Warm up: one full session, so thread buffers and runtime structures exist before the baseline.
    drop(open(transport, tcp, http)?);
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(m.pid)?;
    let t0 = Instant::now();
    let mut held = Vec::with_capacity(a.conns);
    for i in 0..a.conns {
        held.push(open(transport, tcp, http).map_err(|e| format!("connection {i}: {e}"))?);
    }
    let opened = t0.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(m.pid)?;
    let open_conns = metric(http, "replica_open_connections")?;
    let sessions = metric(http, "replica_sessions")?;
    // The /metrics connection itself is open while it is counted, and the warm-up's HTTP session
    // outlives its connection (sessions end by DELETE or TTL).
    let expected_sessions = a.conns + usize::from(transport == "http");
    if open_conns as usize != a.conns + 1 || sessions as usize != expected_sessions {
        return Err(format!(
            "the replica reports {open_conns} open connections and {sessions} sessions, expected {} and {expected_sessions}",
            a.conns + 1,
        )
        .into());
    }
    let per = |kib_before: u64, kib_after: u64| {
        (kib_after as f64 - kib_before as f64) * 1024.0 / a.conns as f64
    };
    println!(
        "{transport:<9} {:>6} {:>10} {:>10} {:>12.0} {:>12.0} {:>9.2}",
        a.conns,
        before.0,
        after.0,
        per(before.0, after.0),
        per(before.1, after.1),
        opened.as_secs_f64()
    );
    drop(held);
    Ok(())
}

fn main() {
    let run = || -> Res<()> {
        let a = args()?;
        raise_nofile();
        println!(
            "replica idle memory: {} held sessions per transport, replica --threads {} ({})",
            a.conns,
            a.threads,
            a.replica.display()
        );
        println!(
            "{:<9} {:>6} {:>10} {:>10} {:>12} {:>12} {:>9}",
            "transport", "conns", "rss0_KiB", "rss1_KiB", "rss_B/conn", "anon_B/conn", "open_s"
        );
        for t in &a.transports {
            measure(&a, t)?;
        }
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("idle_memory: error: {e}");
        std::process::exit(1);
    }
}
