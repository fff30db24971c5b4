//! Closed-loop `ping` load against one replica: C connections, each holding an initialized
//! session and keeping `depth` pings in flight, for a fixed time. Prints requests per second.
//! One thread (pin it with taskset to keep it off the replica's core).
//!
//! target/release/examples/ping_load --transport tcp|http|ws --addr 127.0.0.1:5555
//!     [--conns 64] [--depth 1] [--duration 10s]
//!
//! `--depth` above 1 pipelines on TCP and WebSocket (HTTP stays at one request in flight).

use std::cell::Cell;
use std::error::Error;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Res<T> = Result<T, Box<dyn Error>>;

mod support;
use support::{
    INIT, INITIALIZED, PING, WS_UPGRADE, header, http_end, http_post, line_end, ws_end, ws_frame,
};

#[derive(Clone)]
struct Args {
    transport: String,
    addr: SocketAddr,
    conns: usize,
    depth: usize,
    duration: Duration,
}

fn args() -> Res<Args> {
    let mut a = Args {
        transport: "tcp".into(),
        addr: "127.0.0.1:5555".parse()?,
        conns: 64,
        depth: 1,
        duration: Duration::from_secs(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--transport" => a.transport = value,
            "--addr" => a.addr = value.parse()?,
            "--conns" => a.conns = value.parse()?,
            "--depth" => a.depth = value.parse::<usize>()?.max(1),
            "--duration" => a.duration = humantime::parse_duration(&value)?,
            other => return Err(format!("unknown flag {other}; see the file's header").into()),
        }
    }
    if a.duration > Duration::from_secs(600) {
        return Err("--duration is capped at 10m".into());
    }
    Ok(a)
}

/// A connection with buffered input.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads until `complete(buf)` gives the length of the next reply; removes it.
    async fn next(&mut self, complete: impl Fn(&[u8]) -> Option<usize>) -> Res<Vec<u8>> {
        loop {
            if let Some(n) = complete(&self.buf) {
                return Ok(self.buf.drain(..n).collect());
            }
            let mut chunk = [0u8; 16384];
            let n = self.s.read(&mut chunk).await?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Opens a session; returns the connection, the bytes of one ping and how replies end.
async fn open(a: &Args) -> Res<(Conn, Vec<u8>, fn(&[u8]) -> Option<usize>)> {
    let s = TcpStream::connect(a.addr).await?;
    s.set_nodelay(true)?;
    let mut c = Conn { s, buf: Vec::new() };
    Ok(match a.transport.as_str() {
        "tcp" => {
            c.s.write_all(format!("{INIT}\n{INITIALIZED}\n").as_bytes())
                .await?;
            c.next(line_end).await?;
            (c, format!("{PING}\n").into_bytes(), line_end)
        }
        "http" => {
            c.s.write_all(&http_post(INIT, None)).await?;
            let reply = c.next(http_end).await?;
            let sid = header(&reply, "mcp-session-id")
                .ok_or("initialize minted no session")?
                .to_string();
            c.s.write_all(&http_post(INITIALIZED, Some(&sid))).await?;
            c.next(http_end).await?;
            (c, http_post(PING, Some(&sid)), http_end)
        }
        "ws" => {
            c.s.write_all(WS_UPGRADE).await?;
            c.next(http_end).await?;
            c.s.write_all(&ws_frame(INIT)).await?;
            c.next(ws_end).await?;
            c.s.write_all(&ws_frame(INITIALIZED)).await?;
            (c, ws_frame(PING), ws_end)
        }
        other => return Err(format!("unknown transport {other} (tcp, http, ws)").into()),
    })
}

async fn drive(a: Args, done: Rc<Cell<u64>>, start: Instant) -> Res<()> {
    let (mut c, ping, end) = open(&a).await?;
    let depth = if a.transport == "http" { 1 } else { a.depth };
    let batch: Vec<u8> = ping.repeat(depth);
    let deadline = start + a.duration;
    while Instant::now() < deadline {
        c.s.write_all(&batch).await?;
        for _ in 0..depth {
            let reply = c.next(end).await?;
            if !reply.windows(8).any(|w| w == br#""result""#) {
                return Err(format!("not a result: {}", String::from_utf8_lossy(&reply)).into());
            }
        }
        done.set(done.get() + depth as u64);
    }
    Ok(())
}

fn main() {
    let run = || -> Res<()> {
        let a = args()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let local = tokio::task::LocalSet::new();
        let done = Rc::new(Cell::new(0u64));
        let start = Instant::now();
        let results = local.block_on(&rt, async {
            let tasks: Vec<_> = (0..a.conns)
                .map(|_| tokio::task::spawn_local(drive(a.clone(), done.clone(), start)))
                .collect();
            let mut errors = Vec::new();
            for t in tasks {
                if let Err(e) = t.await.expect("task") {
                    errors.push(e.to_string());
                }
            }
            errors
        });
        let secs = start.elapsed().as_secs_f64();
        if let Some(e) = results.first() {
            return Err(format!(
                "{} of {} connections failed, first: {e}",
                results.len(),
                a.conns
            )
            .into());
        }
        println!(
            "ping_load {} {}: {} conns, depth {}, {:.1} s: {} requests, {:.0} req/s",
            a.transport,
            a.addr,
            a.conns,
            a.depth,
            secs,
            done.get(),
            done.get() as f64 / secs
        );
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("ping_load: error: {e}");
        std::process::exit(1);
    }
}
