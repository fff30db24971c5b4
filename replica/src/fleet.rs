//! Several replica processes on one host: the server side of the engine's embedded default.
//!
//! Each child runs `program leading_args.. --id rK --tcp HOST:PORT --http HOST:PORT
//! [--reuseport] extra_args..` (later flags override earlier ones, so `extra_args` may turn a
//! listener off with `--tcp off`). A child prints its ready line once it listens; port 0 lets it
//! pick a free port and report it there. Every child gets `PR_SET_PDEATHSIG` = SIGTERM, so none
//! outlives the thread that started it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long children get between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Lines of a child's stderr kept for error messages.
const STDERR_TAIL: usize = 20;

/// What to start.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    /// The executable: the `replica` binary, or a program embedding `replica::run_cli`.
    pub program: PathBuf,
    /// Arguments before the replica flags (e.g. a subcommand that reaches `run_cli`).
    pub leading_args: Vec<OsString>,
    pub count: usize,
    pub host: IpAddr,
    /// Port of r1's TCP listener (rK gets base + K - 1); `None`: each child picks a free port.
    pub base_tcp: Option<u16>,
    pub base_http: Option<u16>,
    /// Every child listens on the same ports with SO_REUSEPORT.
    pub reuseport: bool,
    /// Further replica flags for every child, e.g. `--threads 1`, `--delay 5ms`.
    pub extra_args: Vec<OsString>,
}

impl FleetSpec {
    /// `count` replicas of `program` on 127.0.0.1, free ports, no extra flags.
    pub fn new(program: impl Into<PathBuf>, count: usize) -> FleetSpec {
        FleetSpec {
            program: program.into(),
            leading_args: Vec::new(),
            count,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            base_tcp: None,
            base_http: None,
            reuseport: false,
            extra_args: Vec::new(),
        }
    }
}

/// One running replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub pid: u32,
    pub tcp: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("bad fleet spec: {0}")]
    Spec(String),
    #[error(
        "cannot start replica {id} with {program:?}: {source}; check that the program exists and is executable"
    )]
    Spawn {
        id: String,
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("replica {id} exited before it listened ({status}); its stderr: {stderr}")]
    EarlyExit {
        id: String,
        status: String,
        stderr: String,
    },
    #[error("replica {id} did not report listening within {timeout:?}; its stderr: {stderr}")]
    NotReady {
        id: String,
        timeout: Duration,
        stderr: String,
    },
    #[error(
        "replica {id} printed a ready line that does not parse: {line:?} (expected: replica ID listening tcp://IP:PORT http://IP:PORT)"
    )]
    BadReadyLine { id: String, line: String },
    #[error("replica {id} (pid {pid}) exited ({status}); its stderr: {stderr}")]
    Exited {
        id: String,
        pid: u32,
        status: ExitStatus,
        stderr: String,
    },
}

/// Running replicas. Dropping it stops them all (SIGTERM, then SIGKILL) and reaps them.
#[derive(Debug)]
pub struct Fleet {
    members: Vec<Member>,
    children: Vec<Child>,
    tails: Vec<Arc<Mutex<VecDeque<String>>>>,
}

/// A message from a child's stdout reader.
enum Said {
    Line(usize, String),
    Closed(usize),
}

impl Fleet {
    /// Starts every replica and waits until each one listens.
    pub fn start(spec: FleetSpec, ready_timeout: Duration) -> Result<Fleet, FleetError> {
        check(&spec)?;
        let deadline = Instant::now() + ready_timeout;
        let (tx, rx) = mpsc::channel();
        let mut fleet = Fleet {
            members: Vec::with_capacity(spec.count),
            children: Vec::with_capacity(spec.count),
            tails: Vec::with_capacity(spec.count),
        };
        let mut ports = (spec.base_tcp, spec.base_http);
        let mut first = 0;
        if spec.reuseport && (ports.0.is_none() || ports.1.is_none()) {
            // The first child picks the free ports the others then share.
            fleet.spawn(&spec, 0, ports, &tx)?;
            fleet.wait_ready(&rx, 1, deadline, ready_timeout)?;
            let m = &fleet.members[0];
            ports = (m.tcp.map(|a| a.port()), m.http.map(|a| a.port()));
            first = 1;
        }
        for index in first..spec.count {
            fleet.spawn(&spec, index, ports, &tx)?;
        }
        fleet.wait_ready(&rx, spec.count, deadline, ready_timeout)?;
        Ok(fleet)
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Target URLs: `tcp://A`, `ws://A/mcp/ws` or `http://A/mcp`, in member order, each distinct
    /// URL once (members sharing a port share a URL). Another scheme gives none.
    pub fn urls(&self, scheme: &str) -> Vec<String> {
        let mut urls: Vec<String> = Vec::new();
        for m in &self.members {
            let url = match scheme {
                "tcp" => m.tcp.map(|a| format!("tcp://{a}")),
                "ws" => m.http.map(|a| format!("ws://{a}/mcp/ws")),
                "http" => m.http.map(|a| format!("http://{a}/mcp")),
                _ => None,
            };
            if let Some(url) = url
                && !urls.contains(&url)
            {
                urls.push(url);
            }
        }
        urls
    }

    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(|m| m.pid).collect()
    }

    /// Fails if a replica has exited since it started.
    pub fn check(&mut self) -> Result<(), FleetError> {
        for (i, child) in self.children.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                let m = &self.members[i];
                return Err(FleetError::Exited {
                    id: m.id.clone(),
                    pid: m.pid,
                    status,
                    stderr: tail_text(&self.tails[i]),
                });
            }
        }
        Ok(())
    }

    fn spawn(
        &mut self,
        spec: &FleetSpec,
        index: usize,
        ports: (Option<u16>, Option<u16>),
        tx: &Sender<Said>,
    ) -> Result<(), FleetError> {
        let id = format!("r{}", index + 1);
        let port = |base: Option<u16>| match base {
            Some(b) if spec.reuseport => b,
            Some(b) => b + index as u16,
            None => 0,
        };
        let addr = |base| SocketAddr::new(spec.host, port(base)).to_string();
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.leading_args)
            .args([
                "--id",
                &id,
                "--tcp",
                &addr(ports.0),
                "--http",
                &addr(ports.1),
            ])
            .args(spec.reuseport.then_some("--reuseport"))
            .args(&spec.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls.
        unsafe {
            cmd.pre_exec(move || {
                // Children inherit the signal mask; a parent that blocks SIGTERM to wait for it
                // would otherwise leave them deaf to both the death signal and our stop.
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                // Their own process group: a terminal's Ctrl-C goes to the parent, which stops
                // them itself (after its own clean close, in the engine's case).
                libc::setpgid(0, 0);
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| FleetError::Spawn {
            id: id.clone(),
            program: spec.program.clone(),
            source,
        })?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        spawn_stdout_reader(index, stdout, tx.clone());
        spawn_stderr_reader(id.clone(), stderr, tail.clone());
        self.members.push(Member {
            id,
            pid: child.id(),
            tcp: None,
            http: None,
        });
        self.children.push(child);
        self.tails.push(tail);
        Ok(())
    }

    /// Waits until members `..upto` all printed their ready lines.
    fn wait_ready(
        &mut self,
        rx: &Receiver<Said>,
        upto: usize,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), FleetError> {
        let ready = |m: &Member| m.tcp.is_some() || m.http.is_some();
        while let Some(waiting) = self.members[..upto].iter().position(|m| !ready(m)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Said::Line(i, line)) => {
                    let m = &mut self.members[i];
                    if ready(m) || !line.starts_with(&format!("replica {} listening", m.id)) {
                        // Anything else a wrapping program prints is passed on.
                        eprintln!("[{}] {line}", m.id);
                        continue;
                    }
                    let (tcp, http) =
                        parse_ready_line(&m.id, &line).ok_or_else(|| FleetError::BadReadyLine {
                            id: m.id.clone(),
                            line: line.clone(),
                        })?;
                    m.tcp = tcp;
                    m.http = http;
                }
                Ok(Said::Closed(i)) if !ready(&self.members[i]) => {
                    return Err(self.early_exit(i));
                }
                Ok(Said::Closed(_)) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    return Err(FleetError::NotReady {
                        id: self.members[waiting].id.clone(),
                        timeout,
                        stderr: tail_text(&self.tails[waiting]),
                    });
                }
            }
        }
        Ok(())
    }

    fn early_exit(&mut self, i: usize) -> FleetError {
        let deadline = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match self.children[i].try_wait() {
                Ok(Some(status)) => break status.to_string(),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => break "still running, but its stdout closed".to_string(),
            }
        };
        // Let the stderr reader catch the last lines.
        thread::sleep(Duration::from_millis(50));
        FleetError::EarlyExit {
            id: self.members[i].id.clone(),
            status,
            stderr: tail_text(&self.tails[i]),
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.children {
            if let Ok(None) = child.try_wait() {
                // SAFETY: plain kill(2) on a child we have not reaped yet.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for child in &mut self.children {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

fn check(spec: &FleetSpec) -> Result<(), FleetError> {
    if spec.count == 0 {
        return Err(FleetError::Spec("count must be at least 1".into()));
    }
    if !spec.reuseport {
        for (name, base) in [("base_tcp", spec.base_tcp), ("base_http", spec.base_http)] {
            if let Some(b) = base
                && usize::from(b) + spec.count - 1 > usize::from(u16::MAX)
            {
                return Err(FleetError::Spec(format!(
                    "{name} {b} + {} replicas runs past port 65535; choose a lower base port",
                    spec.count
                )));
            }
        }
    }
    if let (Some(t), Some(h)) = (spec.base_tcp, spec.base_http) {
        let span = if spec.reuseport { 1 } else { spec.count as u32 };
        let (t, h) = (u32::from(t), u32::from(h));
        if t < h + span && h < t + span {
            return Err(FleetError::Spec(format!(
                "the TCP ports ({t}..) and HTTP ports ({h}..) overlap; move one base port"
            )));
        }
    }
    Ok(())
}

/// `replica <id> listening [tcp://A] [http://B]` -> (A, B).
pub fn parse_ready_line(id: &str, line: &str) -> Option<(Option<SocketAddr>, Option<SocketAddr>)> {
    let mut words = line.split_whitespace();
    if words.next()? != "replica" || words.next()? != id || words.next()? != "listening" {
        return None;
    }
    let (mut tcp, mut http) = (None, None);
    for word in words {
        if let Some(a) = word.strip_prefix("tcp://") {
            tcp = Some(a.parse().ok()?);
        } else if let Some(a) = word.strip_prefix("http://") {
            http = Some(a.parse().ok()?);
        } else {
            return None;
        }
    }
    (tcp.is_some() || http.is_some()).then_some((tcp, http))
}

fn spawn_stdout_reader(index: usize, stdout: impl Read + Send + 'static, tx: Sender<Said>) {
    thread::Builder::new()
        .name(format!("fleet-out-{index}"))
        .stack_size(64 * 1024)
        .spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(Said::Line(index, line)).is_err() {
                    break;
                }
            }
            let _ = tx.send(Said::Closed(index));
        })
        .expect("a reader thread starts");
}

/// Forwards a child's stderr to ours, prefixed with its id, keeping the last lines.
fn spawn_stderr_reader(
    id: String,
    stderr: impl Read + Send + 'static,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    thread::Builder::new()
        .name(format!("fleet-err-{id}"))
        .stack_size(64 * 1024)
        .spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{id}] {line}");
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        })
        .expect("a reader thread starts");
}

fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    let t = tail.lock().unwrap_or_else(|p| p.into_inner());
    if t.is_empty() {
        "(empty)".into()
    } else {
        t.iter().cloned().collect::<Vec<_>>().join(" | ")
    }
}

/// `replica fleet`: start, print the targets, wait for Ctrl-C / SIGTERM or a child's death.
pub fn run_until_signal(spec: FleetSpec, ready_timeout: Duration) -> Result<(), FleetError> {
    let signals = block_stop_signals();
    let count = spec.count;
    let mut fleet = Fleet::start(spec, ready_timeout)?;
    let ids: Vec<&str> = fleet.members.iter().map(|m| m.id.as_str()).collect();
    println!(
        "# replica fleet: {count} replicas ({}..{}), pids {:?}; Ctrl-C stops them all. Targets:",
        ids[0],
        ids[ids.len() - 1],
        fleet.pids()
    );
    for scheme in ["tcp", "ws", "http"] {
        for url in fleet.urls(scheme) {
            println!("{url}");
        }
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    loop {
        if let Some(signal) = wait_signal(&signals, Duration::from_millis(200)) {
            eprintln!("replica fleet: signal {signal}, stopping {count} replicas");
            return Ok(());
        }
        fleet.check()?;
    }
}

fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local set; pthread_sigmask on the calling thread. Children
    // get an empty mask again before exec (see `Fleet::spawn`).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: sigtimedwait reads the set and timespec; the info pointer may be null.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_parse() {
        assert_eq!(
            parse_ready_line(
                "r1",
                "replica r1 listening tcp://127.0.0.1:5555 http://127.0.0.1:8080"
            ),
            Some((
                Some("127.0.0.1:5555".parse().unwrap()),
                Some("127.0.0.1:8080".parse().unwrap())
            ))
        );
        assert_eq!(
            parse_ready_line("r2", "replica r2 listening http://[::1]:80"),
            Some((None, Some("[::1]:80".parse().unwrap())))
        );
        assert_eq!(
            parse_ready_line("r1", "replica r2 listening tcp://1.2.3.4:5"),
            None
        );
        assert_eq!(parse_ready_line("r1", "replica r1 listening"), None);
        assert_eq!(parse_ready_line("r1", "replica r1 listening ftp://x"), None);
    }

    #[test]
    fn specs_are_checked() {
        let mut s = FleetSpec::new("/bin/true", 0);
        assert!(check(&s).is_err());
        s.count = 3;
        s.base_tcp = Some(65534);
        assert!(check(&s).is_err());
        s.base_tcp = Some(5555);
        s.base_http = Some(5556);
        assert!(check(&s).is_err(), "overlapping port ranges");
        s.base_http = Some(8080);
        assert!(check(&s).is_ok());
    }
}
