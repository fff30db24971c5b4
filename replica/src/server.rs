//! Listening and threads: N threads, each a current-thread tokio runtime with one task per
//! connection, all accepting from the same listeners (or from their own SO_REUSEPORT sockets).

use std::io::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::driver;
use crate::metrics::Transport;
use crate::state::{Shared, Worker};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "cannot listen on {addr} ({source}); choose a free port, or turn that listener off with --tcp off / --http off"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start worker thread {index}: {source}")]
    Thread {
        index: usize,
        source: std::io::Error,
    },
}

/// Listen backlog; the kernel caps it at net.core.somaxconn.
const BACKLOG: i32 = 65_535;
const SWEEP_EVERY: Duration = Duration::from_secs(30);

fn bind(addr: SocketAddr, reuseport: bool) -> Result<std::net::TcpListener, ServeError> {
    let fail = |source| ServeError::Bind { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    if reuseport {
        socket.set_reuse_port(true).map_err(fail)?;
    }
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(BACKLOG).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    Ok(socket.into())
}

struct Listeners {
    /// One list per thread of (listener, transport).
    per_thread: Vec<Vec<(std::net::TcpListener, Transport)>>,
    tcp: Option<SocketAddr>,
    http: Option<SocketAddr>,
}

/// Binds every listener for every thread. With `--reuseport` each thread gets its own socket
/// (the kernel spreads connections); otherwise threads share one.
fn bind_all(config: &Config) -> Result<Listeners, ServeError> {
    let threads = config.threads.max(1);
    let mut per_thread: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
    let mut bound = [None, None];
    let wanted = [(config.tcp, Transport::Tcp), (config.http, Transport::Http)];
    for (slot, (addr, transport)) in wanted.into_iter().enumerate() {
        let Some(addr) = addr else { continue };
        let first = bind(addr, config.reuseport)?;
        let local = first
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        bound[slot] = Some(local);
        for list in per_thread.iter_mut().skip(1) {
            let listener = if config.reuseport {
                bind(local, true)?
            } else {
                first
                    .try_clone()
                    .map_err(|source| ServeError::Bind { addr, source })?
            };
            list.push((listener, transport));
        }
        per_thread[0].push((first, transport));
    }
    Ok(Listeners {
        per_thread,
        tcp: bound[0],
        http: bound[1],
    })
}

/// The line a parent process waits for: `replica <id> listening tcp://.. http://..`.
pub fn ready_line(id: &str, tcp: Option<SocketAddr>, http: Option<SocketAddr>) -> String {
    let mut line = format!("replica {id} listening");
    if let Some(a) = tcp {
        line.push_str(&format!(" tcp://{a}"));
    }
    if let Some(a) = http {
        line.push_str(&format!(" http://{a}"));
    }
    line
}

/// Raises the soft open-file limit to the hard one: each connection is a descriptor.
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Serves until the process is killed. Prints the ready line once every listener is bound.
pub fn serve(config: Config) -> Result<(), ServeError> {
    if config.tcp.is_none() && config.http.is_none() {
        return Err(ServeError::Bind {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            source: std::io::Error::other("both listeners are off; keep --tcp or --http on"),
        });
    }
    raise_nofile_limit();
    let listeners = bind_all(&config)?;
    let line = ready_line(&config.id, listeners.tcp, listeners.http);
    let shared = Shared::new(config);
    let mut lists = listeners.per_thread.into_iter().enumerate();
    let (_, main_list) = lists.next().expect("at least one thread");
    for (index, list) in lists {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("replica-{index}"))
            .spawn(move || run_thread(shared, index, list))
            .map_err(|source| ServeError::Thread { index, source })?;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
    drop(stdout);
    run_thread(shared, 0, main_list);
    Ok(())
}

fn run_thread(
    shared: Arc<Shared>,
    index: usize,
    listeners: Vec<(std::net::TcpListener, Transport)>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("a current-thread runtime starts");
    let local = tokio::task::LocalSet::new();
    let w = Rc::new(shared.worker(index as u64));
    local.block_on(&runtime, async move {
        for (listener, transport) in listeners {
            let listener = TcpListener::from_std(listener).expect("a bound listener registers");
            tokio::task::spawn_local(accept_loop(listener, transport, w.clone()));
        }
        if index == 0
            && let Some(ttl) = w.behaviour().session_ttl
        {
            tokio::task::spawn_local(sweep_sessions(w.clone(), ttl));
        }
        std::future::pending::<()>().await;
    });
}

async fn accept_loop(listener: TcpListener, transport: Transport, w: Rc<Worker>) {
    let gauges = &w.shared.gauges;
    let max = w.behaviour().max_conns;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning on the error.
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        let open = gauges.open_connections.fetch_add(1, Relaxed) + 1;
        if max.is_some_and(|max| open > max as i64) {
            gauges.open_connections.fetch_sub(1, Relaxed);
            gauges.refused.fetch_add(1, Relaxed);
            drop(stream);
            continue;
        }
        gauges.accepted[transport as usize].fetch_add(1, Relaxed);
        let _ = stream.set_nodelay(true);
        tokio::task::spawn_local(driver::serve(stream, transport, w.clone()));
    }
}

async fn sweep_sessions(w: Rc<Worker>, ttl: Duration) {
    let mut tick = tokio::time::interval(SWEEP_EVERY.min(ttl));
    loop {
        tick.tick().await;
        w.shared.sessions.sweep(ttl, std::time::Instant::now());
    }
}
