//! The epoll fallback: level-triggered readiness, reads into one per-worker scratch buffer, so
//! an idle connection owns no buffer here either; unsent bytes are kept only while the socket
//! cannot take them.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::socket::{self, last_errno};
use super::{Cmd, Io, Outbox, Reactor, SocketOptions, Token};

const SCRATCH: usize = 64 * 1024;
const EVENTS: usize = 1024;

#[derive(Debug, Default)]
struct Conn {
    fd: Option<RawFd>,
    generation: u32,
    connecting: bool,
    /// Bytes the socket did not take yet.
    unsent: Vec<u8>,
}

pub struct Epoll {
    epfd: RawFd,
    conns: Vec<Conn>,
    scratch: Box<[u8]>,
    events: Vec<libc::epoll_event>,
    /// Outcomes known at once (a failed socket(), an immediate connect), delivered next turn.
    ready: Vec<Ready>,
    opts: SocketOptions,
}

#[derive(Debug, Clone, Copy)]
enum Ready {
    Connected(Token),
    ConnectFailed(Token, i32),
    Failed(Token, i32),
}

impl Epoll {
    pub fn new(slots: usize, opts: SocketOptions) -> io::Result<Epoll> {
        // SAFETY: plain syscall.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll {
            epfd,
            conns: (0..slots).map(|_| Conn::default()).collect(),
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS],
            ready: Vec::new(),
            opts,
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: Token) -> Result<(), i32> {
        let mut ev = libc::epoll_event {
            events,
            u64: token.pack(),
        };
        // SAFETY: valid epoll and socket descriptors; `ev` lives across the call.
        let rc = unsafe { libc::epoll_ctl(self.epfd, op, fd, &mut ev) };
        if rc == 0 { Ok(()) } else { Err(last_errno()) }
    }

    fn current(&self, token: Token) -> Option<RawFd> {
        let c = self.conns.get(token.slot as usize)?;
        (c.generation == token.generation).then_some(c.fd).flatten()
    }

    fn apply(&mut self, cmd: Cmd, bytes: &[u8]) {
        match cmd {
            Cmd::Connect {
                token,
                addr,
                source,
            } => {
                self.close_slot(token.slot);
                let conn = &mut self.conns[token.slot as usize];
                conn.generation = token.generation;
                let fd = match socket::open(&addr, source, &self.opts) {
                    Ok(fd) => fd,
                    Err(e) => return self.ready.push(Ready::ConnectFailed(token, e)),
                };
                conn.fd = Some(fd);
                let sa = socket2::SockAddr::from(addr);
                // SAFETY: `sa` is a valid socket address for the call's duration.
                let rc = unsafe { libc::connect(fd, sa.as_ptr().cast(), sa.len()) };
                let err = if rc == 0 { 0 } else { last_errno() };
                match err {
                    0 => {
                        self.conns[token.slot as usize].connecting = false;
                        match self.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, token) {
                            Ok(()) => self.ready.push(Ready::Connected(token)),
                            Err(e) => self.ready.push(Ready::ConnectFailed(token, e)),
                        }
                    }
                    libc::EINPROGRESS => {
                        self.conns[token.slot as usize].connecting = true;
                        if let Err(e) =
                            self.ctl(libc::EPOLL_CTL_ADD, fd, libc::EPOLLOUT as u32, token)
                        {
                            self.ready.push(Ready::ConnectFailed(token, e));
                        }
                    }
                    e => self.ready.push(Ready::ConnectFailed(token, e)),
                }
            }
            Cmd::Send { token, start, end } => {
                let Some(fd) = self.current(token) else {
                    return;
                };
                let conn = &mut self.conns[token.slot as usize];
                if conn.connecting {
                    conn.unsent.extend_from_slice(&bytes[start..end]);
                    return;
                }
                if !conn.unsent.is_empty() {
                    conn.unsent.extend_from_slice(&bytes[start..end]);
                    return;
                }
                match write_some(fd, &bytes[start..end]) {
                    Ok(n) if n == end - start => {}
                    Ok(n) => {
                        conn.unsent.extend_from_slice(&bytes[start + n..end]);
                        let interest = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
                        if let Err(e) = self.ctl(libc::EPOLL_CTL_MOD, fd, interest, token) {
                            self.ready.push(Ready::Failed(token, e));
                        }
                    }
                    Err(e) => self.ready.push(Ready::Failed(token, e)),
                }
            }
            Cmd::Close { token } => {
                if self.current(token).is_some() {
                    self.close_slot(token.slot);
                }
            }
        }
    }

    fn close_slot(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        if let Some(fd) = conn.fd.take() {
            socket::shutdown_and_close(fd);
        }
        conn.connecting = false;
        conn.unsent = Vec::new();
    }

    /// Handles one readiness event; returns the completion to hand out, if any.
    fn on_ready(&mut self, token: Token, events: u32) -> Option<Io<'_>> {
        let fd = self.current(token)?;
        let conn = &mut self.conns[token.slot as usize];
        if conn.connecting {
            let err = socket_error(fd);
            if err != 0 {
                return Some(Io::ConnectFailed(token, err));
            }
            conn.connecting = false;
            let interest = if conn.unsent.is_empty() {
                libc::EPOLLIN
            } else {
                libc::EPOLLIN | libc::EPOLLOUT
            };
            if let Err(e) = self.ctl(libc::EPOLL_CTL_MOD, fd, interest as u32, token) {
                return Some(Io::ConnectFailed(token, e));
            }
            return Some(Io::Connected(token));
        }
        if events & libc::EPOLLOUT as u32 != 0 && !conn.unsent.is_empty() {
            match write_some(fd, &conn.unsent) {
                Ok(n) => {
                    conn.unsent.drain(..n);
                    if conn.unsent.is_empty() {
                        conn.unsent = Vec::new();
                        if let Err(e) =
                            self.ctl(libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32, token)
                        {
                            return Some(Io::Failed(token, e));
                        }
                    }
                }
                Err(e) => return Some(Io::Failed(token, e)),
            }
        }
        if events & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 == 0 {
            return None;
        }
        // SAFETY: reading into our own scratch buffer.
        let n = unsafe { libc::read(fd, self.scratch.as_mut_ptr().cast(), self.scratch.len()) };
        match n {
            0 => Some(Io::Eof(token)),
            n if n > 0 => Some(Io::Data(token, &self.scratch[..n as usize])),
            _ => match last_errno() {
                libc::EAGAIN | libc::EINTR => None,
                e => Some(Io::Failed(token, e)),
            },
        }
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        for slot in 0..self.conns.len() {
            self.close_slot(slot as u32);
        }
        // SAFETY: we own the epoll descriptor.
        unsafe { libc::close(self.epfd) };
    }
}

impl Reactor for Epoll {
    fn turn<F: FnMut(Io<'_>, &mut Outbox)>(
        &mut self,
        outbox: &mut Outbox,
        timeout: Duration,
        mut on: F,
    ) -> io::Result<()> {
        outbox.drain(|cmd, bytes| self.apply(cmd, bytes));
        let wait_ms = if self.ready.is_empty() {
            // Rounded up: a sub-millisecond wait must not become a busy poll.
            timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
        } else {
            0
        };
        for r in std::mem::take(&mut self.ready) {
            match r {
                Ready::Connected(t) => on(Io::Connected(t), outbox),
                Ready::ConnectFailed(t, e) => on(Io::ConnectFailed(t, e), outbox),
                Ready::Failed(t, e) => on(Io::Failed(t, e), outbox),
            }
        }
        // SAFETY: `events` has room for EVENTS entries.
        let n = unsafe {
            libc::epoll_wait(self.epfd, self.events.as_mut_ptr(), EVENTS as i32, wait_ms)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        for i in 0..n as usize {
            let ev = self.events[i];
            let token = Token::unpack(ev.u64);
            if let Some(io) = self.on_ready(token, ev.events) {
                on(io, outbox);
            }
        }
        Ok(())
    }
}

fn write_some(fd: RawFd, bytes: &[u8]) -> Result<usize, i32> {
    // SAFETY: writing from a live slice; MSG_NOSIGNAL turns a closed peer into EPIPE.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
    if n >= 0 {
        return Ok(n as usize);
    }
    match last_errno() {
        libc::EAGAIN | libc::EINTR => Ok(0),
        e => Err(e),
    }
}

fn socket_error(fd: RawFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 { last_errno() } else { err }
}
