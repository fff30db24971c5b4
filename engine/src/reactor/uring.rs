//! The io_uring reactor (tokio-rs `io-uring`, one ring per worker).
//!
//! - Connects are submitted as SQEs, batched with everything else of a turn.
//! - Each open connection has one multishot receive drawing from a provided buffer ring, so an
//!   idle connection owns no receive buffer; a buffer goes back to the ring as soon as the
//!   worker has seen its bytes.
//! - A connection has at most one send in flight (ordering); bytes queued meanwhile wait in a
//!   per-connection vector that exists only while they wait.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::types::{BufRingEntry, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use socket2::SockAddr;

use super::socket;
use super::{Cmd, Io, Outbox, Reactor, SocketOptions, Token};

const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_CONNECT: u64 = 3;
const OP_CANCEL: u64 = 4;
const OP_SHIFT: u32 = 56;
const PAYLOAD_MASK: u64 = (1 << OP_SHIFT) - 1;

const RING_ENTRIES: u32 = 4096;
const CQ_ENTRIES: u32 = 16384;
const BUF_GROUP: u16 = 0;
/// Provided receive buffers: how many, and how large. Replies here are small; a larger
/// message simply arrives in several buffers.
const RECV_BUFS: u16 = 512;
const RECV_BUF_SIZE: usize = 2048;
/// Send buffers kept for reuse, and the largest one kept.
const SPARE_SENDS: usize = 1024;
const SPARE_SEND_CAPACITY: usize = 64 * 1024;

fn user_data(op: u64, payload: u64) -> u64 {
    op << OP_SHIFT | (payload & PAYLOAD_MASK)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Connecting { op: u32 },
    Open,
}

#[derive(Debug)]
struct Conn {
    fd: Option<RawFd>,
    generation: u32,
    state: State,
    sending: bool,
    /// Bytes waiting for the send in flight to finish.
    queued: Vec<u8>,
}

struct SendOp {
    token: Token,
    fd: RawFd,
    buf: Vec<u8>,
    sent: usize,
}

struct ConnectOp {
    token: Token,
    /// Must stay put until the connect completes: the kernel reads it asynchronously.
    _addr: Box<SockAddr>,
}

/// A vector with stable indices and a free list.
struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Slab<T> {
    fn new() -> Self {
        Slab {
            items: Vec::new(),
            free: Vec::new(),
        }
    }

    fn insert(&mut self, item: T) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.items[i as usize] = Some(item);
                i
            }
            None => {
                self.items.push(Some(item));
                (self.items.len() - 1) as u32
            }
        }
    }

    fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.items.get_mut(i as usize)?.as_mut()
    }

    fn remove(&mut self, i: u32) -> Option<T> {
        let item = self.items.get_mut(i as usize)?.take();
        if item.is_some() {
            self.free.push(i);
        }
        item
    }
}

/// The provided buffer ring shared by every connection of the worker.
struct BufRing {
    entries: *mut BufRingEntry,
    entries_len: usize,
    mask: u16,
    tail: u16,
    memory: Box<[u8]>,
}

impl BufRing {
    fn new(ring: &IoUring) -> io::Result<BufRing> {
        let entries_len = usize::from(RECV_BUFS) * std::mem::size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping; checked for failure below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                entries_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_ANONYMOUS | libc::MAP_PRIVATE,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut br = BufRing {
            entries: addr.cast(),
            entries_len,
            mask: RECV_BUFS - 1,
            tail: 0,
            memory: vec![0u8; usize::from(RECV_BUFS) * RECV_BUF_SIZE].into_boxed_slice(),
        };
        // SAFETY: the mapping lives as long as `br`, which outlives the ring's use of it (the
        // reactor drops the ring first).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(addr as u64, RECV_BUFS, BUF_GROUP, 0)?;
        }
        for bid in 0..RECV_BUFS {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    fn push(&mut self, bid: u16) {
        // SAFETY: the index is masked into the mapping.
        let entry = unsafe { &mut *self.entries.add(usize::from(self.tail & self.mask)) };
        let offset = usize::from(bid) * RECV_BUF_SIZE;
        entry.set_addr(self.memory[offset..].as_ptr() as u64);
        entry.set_len(RECV_BUF_SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved field, per the ABI.
        let tail = unsafe { &*(BufRingEntry::tail(self.entries) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }

    fn recycle(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }

    fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        let offset = usize::from(bid) * RECV_BUF_SIZE;
        &self.memory[offset..offset + len.min(RECV_BUF_SIZE)]
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(self.entries.cast(), self.entries_len) };
    }
}

pub struct Uring {
    // Field order matters: the ring is dropped before the buffers it references.
    ring: IoUring,
    bufs: BufRing,
    conns: Vec<Conn>,
    sends: Slab<SendOp>,
    connects: Slab<ConnectOp>,
    spare: Vec<Vec<u8>>,
    cqes: Vec<cqueue::Entry>,
    /// Outcomes known at submission time (e.g. socket() failed), delivered next turn.
    ready: Vec<(Token, i32)>,
    opts: SocketOptions,
}

/// Whether this kernel and process can run the io_uring reactor; the error says why not.
pub fn probe() -> Result<(), String> {
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        && v.trim() == "2"
    {
        return Err("io_uring is disabled by the kernel.io_uring_disabled sysctl".into());
    }
    let ring = IoUring::new(8).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::ENOSYS) => {
                " (blocked: Docker's default seccomp profile forbids io_uring; run with seccomp=unconfined or use --io epoll)"
            }
            _ => "",
        };
        format!("io_uring_setup failed: {e}{hint}")
    })?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("io_uring probe failed: {e}"))?;
    for (code, name) in [
        (opcode::Connect::CODE, "connect"),
        (opcode::Send::CODE, "send"),
        (opcode::RecvMulti::CODE, "recv"),
        (opcode::AsyncCancel::CODE, "async-cancel"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!(
                "io_uring lacks the {name} operation on this kernel"
            ));
        }
    }
    BufRing::new(&ring).map_err(|e| format!("io_uring provided buffer rings unavailable: {e}"))?;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if major < 6 {
        return Err(format!(
            "kernel {} predates multishot receive (6.0)",
            release.trim()
        ));
    }
    Ok(())
}

impl Uring {
    pub fn new(slots: usize, opts: SocketOptions) -> io::Result<Uring> {
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_coop_taskrun()
            .setup_single_issuer()
            .build(RING_ENTRIES)?;
        let bufs = BufRing::new(&ring)?;
        Ok(Uring {
            ring,
            bufs,
            conns: (0..slots)
                .map(|_| Conn {
                    fd: None,
                    generation: 0,
                    state: State::Idle,
                    sending: false,
                    queued: Vec::new(),
                })
                .collect(),
            sends: Slab::new(),
            connects: Slab::new(),
            spare: Vec::new(),
            cqes: Vec::with_capacity(CQ_ENTRIES as usize),
            ready: Vec::new(),
            opts,
        })
    }

    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every buffer an entry points at (send buffers, socket addresses, the
            // buffer ring) is owned by `self` until the entry's completion is reaped.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    fn current(&self, token: Token) -> Option<&Conn> {
        let c = self.conns.get(token.slot as usize)?;
        (c.generation == token.generation && c.fd.is_some()).then_some(c)
    }

    fn apply(&mut self, cmd: Cmd, bytes: &[u8]) -> io::Result<()> {
        match cmd {
            Cmd::Connect {
                token,
                addr,
                source,
            } => {
                self.close_slot(token.slot)?;
                self.conns[token.slot as usize].generation = token.generation;
                let fd = match socket::open(&addr, source, &self.opts) {
                    Ok(fd) => fd,
                    Err(e) => {
                        self.ready.push((token, e));
                        return Ok(());
                    }
                };
                let addr = Box::new(SockAddr::from(addr));
                let entry = opcode::Connect::new(types::Fd(fd), addr.as_ptr().cast(), addr.len());
                let op = self.connects.insert(ConnectOp { token, _addr: addr });
                let conn = &mut self.conns[token.slot as usize];
                conn.fd = Some(fd);
                conn.state = State::Connecting { op };
                self.push(
                    entry
                        .build()
                        .user_data(user_data(OP_CONNECT, u64::from(op))),
                )?;
            }
            Cmd::Send { token, start, end } => {
                let Some(conn) = self.current(token) else {
                    return Ok(());
                };
                if conn.sending || conn.state != State::Open {
                    self.conns[token.slot as usize]
                        .queued
                        .extend_from_slice(&bytes[start..end]);
                    return Ok(());
                }
                let mut buf = self.spare.pop().unwrap_or_default();
                buf.extend_from_slice(&bytes[start..end]);
                self.start_send(token, buf)?;
            }
            Cmd::Close { token } => {
                if self.current(token).is_some() {
                    self.close_slot(token.slot)?;
                }
            }
        }
        Ok(())
    }

    fn start_send(&mut self, token: Token, buf: Vec<u8>) -> io::Result<()> {
        let conn = &mut self.conns[token.slot as usize];
        let fd = conn.fd.expect("sending on an open connection");
        conn.sending = true;
        let (ptr, len) = (buf.as_ptr(), buf.len() as u32);
        let op = self.sends.insert(SendOp {
            token,
            fd,
            buf,
            sent: 0,
        });
        self.push(
            opcode::Send::new(types::Fd(fd), ptr, len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(user_data(OP_SEND, u64::from(op))),
        )
    }

    fn arm_recv(&mut self, token: Token, fd: RawFd) -> io::Result<()> {
        self.push(
            opcode::RecvMulti::new(types::Fd(fd), BUF_GROUP)
                .build()
                .user_data(user_data(OP_RECV, token.pack())),
        )
    }

    fn close_slot(&mut self, slot: u32) -> io::Result<()> {
        let conn = &mut self.conns[slot as usize];
        let state = std::mem::replace(&mut conn.state, State::Idle);
        conn.sending = false;
        conn.queued = Vec::new();
        let Some(fd) = conn.fd.take() else {
            return Ok(());
        };
        if let State::Connecting { op } = state {
            self.push(
                opcode::AsyncCancel::new(user_data(OP_CONNECT, u64::from(op)))
                    .build()
                    .user_data(user_data(OP_CANCEL, 0)),
            )?;
        }
        socket::shutdown_and_close(fd);
        Ok(())
    }

    fn recycle_send_buffer(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < SPARE_SENDS && buf.capacity() <= SPARE_SEND_CAPACITY {
            buf.clear();
            self.spare.push(buf);
        }
    }

    fn complete<F: FnMut(Io<'_>, &mut Outbox)>(
        &mut self,
        cqe: &cqueue::Entry,
        outbox: &mut Outbox,
        on: &mut F,
    ) -> io::Result<()> {
        let (op, payload) = (cqe.user_data() >> OP_SHIFT, cqe.user_data() & PAYLOAD_MASK);
        let res = cqe.result();
        match op {
            OP_CONNECT => {
                let Some(c) = self.connects.remove(payload as u32) else {
                    return Ok(());
                };
                let token = c.token;
                let Some(conn) = self.current(token) else {
                    return Ok(());
                };
                if conn.state != (State::Connecting { op: payload as u32 }) {
                    return Ok(());
                }
                if res < 0 {
                    self.conns[token.slot as usize].state = State::Idle;
                    on(Io::ConnectFailed(token, -res), outbox);
                    return Ok(());
                }
                let conn = &mut self.conns[token.slot as usize];
                conn.state = State::Open;
                let fd = conn.fd.expect("open");
                self.arm_recv(token, fd)?;
                let queued = std::mem::take(&mut self.conns[token.slot as usize].queued);
                if !queued.is_empty() {
                    self.start_send(token, queued)?;
                }
                on(Io::Connected(token), outbox);
            }
            OP_RECV => {
                let token = Token::unpack(payload);
                let bid = cqueue::buffer_select(cqe.flags());
                let live = self
                    .current(token)
                    .filter(|c| c.state == State::Open)
                    .and_then(|c| c.fd);
                match (res, live) {
                    (n, Some(_)) if n > 0 => {
                        let bid = bid.expect("a receive with data names its buffer");
                        on(Io::Data(token, self.bufs.bytes(bid, n as usize)), outbox);
                    }
                    (0, Some(_)) => on(Io::Eof(token), outbox),
                    (e, Some(_)) if -e == libc::ENOBUFS => {}
                    (e, Some(_)) if e < 0 => on(Io::Failed(token, -e), outbox),
                    _ => {}
                }
                if let Some(bid) = bid {
                    self.bufs.recycle(bid);
                }
                let still_live = self
                    .current(token)
                    .filter(|c| c.state == State::Open)
                    .and_then(|c| c.fd);
                let ended = !cqueue::more(cqe.flags());
                if let Some(fd) = still_live
                    && ended
                    && (res > 0 || -res == libc::ENOBUFS)
                {
                    self.arm_recv(token, fd)?;
                }
            }
            OP_SEND => {
                let idx = payload as u32;
                let Some(&mut SendOp { token, fd, .. }) = self.sends.get_mut(idx) else {
                    return Ok(());
                };
                let live = self.current(token).is_some_and(|c| c.fd == Some(fd));
                let op = self.sends.get_mut(idx).expect("present");
                if res >= 0 {
                    op.sent += res as usize;
                    if live && op.sent < op.buf.len() && res > 0 {
                        let rest = &op.buf[op.sent..];
                        let entry =
                            opcode::Send::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
                                .flags(libc::MSG_NOSIGNAL)
                                .build()
                                .user_data(user_data(OP_SEND, u64::from(idx)));
                        return self.push(entry);
                    }
                }
                let op = self.sends.remove(idx).expect("present");
                self.recycle_send_buffer(op.buf);
                if !live {
                    return Ok(());
                }
                let conn = &mut self.conns[token.slot as usize];
                conn.sending = false;
                if res <= 0 {
                    on(
                        Io::Failed(token, if res < 0 { -res } else { libc::EPIPE }),
                        outbox,
                    );
                    return Ok(());
                }
                let queued = std::mem::take(&mut conn.queued);
                if !queued.is_empty() {
                    self.start_send(token, queued)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        for slot in 0..self.conns.len() {
            let _ = self.close_slot(slot as u32);
        }
    }
}

impl Reactor for Uring {
    fn turn<F: FnMut(Io<'_>, &mut Outbox)>(
        &mut self,
        outbox: &mut Outbox,
        timeout: Duration,
        mut on: F,
    ) -> io::Result<()> {
        let mut failed = Ok(());
        outbox.drain(|cmd, bytes| {
            if failed.is_ok() {
                failed = self.apply(cmd, bytes);
            }
        });
        failed?;
        let ready = std::mem::take(&mut self.ready);
        let want = if ready.is_empty() && self.ring.completion().is_empty() {
            1
        } else {
            0
        };
        let ts = Timespec::new()
            .sec(timeout.as_secs())
            .nsec(timeout.subsec_nanos());
        let args = SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        for (token, errno) in ready {
            on(Io::ConnectFailed(token, errno), outbox);
        }
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.extend(self.ring.completion());
        for cqe in &cqes {
            self.complete(cqe, outbox, &mut on)?;
        }
        cqes.clear();
        self.cqes = cqes;
        Ok(())
    }
}
