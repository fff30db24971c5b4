//! The I/O loop of one connection: readiness, one read into the thread's scratch buffer, the
//! protocol state machine, writes, timers. An idle connection owns no buffer: only its protocol
//! state (a few dozen bytes) and the socket.

use std::future::poll_fn;
use std::io::ErrorKind;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::{Duration, Instant};

use std::os::fd::AsRawFd as _;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::metrics::Transport;
use crate::outbox::{Delayed, Io};
use crate::proto::{Flow, Proto};
use crate::state::Worker;

/// How long a closing connection keeps reading (and discarding) so its last reply is not lost
/// to a reset, and how much it reads at most.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_MAX_BYTES: usize = 64 * 1024 * 1024;

/// The peer vanished or broke the rules badly enough to drop it without further ado.
struct Gone;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Everything was sent: half-close and linger.
    Graceful,
    Abort,
}

enum Event {
    Readable,
    Writable,
    Timer,
    Failed,
}

/// Keeps `replica_open_connections` right however the task ends.
struct OpenGuard(Rc<Worker>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.shared.gauges.open_connections.fetch_sub(1, Relaxed);
    }
}

/// Serves one accepted connection until it closes. The caller counted it open.
pub async fn serve(stream: TcpStream, transport: Transport, w: Rc<Worker>) {
    let guard = OpenGuard(w);
    let w = &*guard.0;
    let proto = Proto::new(transport);
    let mut conn = Conn {
        delayed: Delayed::new(proto.ordered()),
        proto,
        pending: Vec::new(),
        closing: false,
        stalled_since: None,
    };
    let ending = conn.drive(&stream, w).await;
    conn.proto.on_close(w);
    drop(conn);
    if ending == Ending::Graceful {
        Box::pin(linger(&stream, w)).await;
    }
}

struct Conn {
    proto: Proto,
    delayed: Delayed,
    /// Output the socket did not take yet.
    pending: Vec<u8>,
    closing: bool,
    /// Since when `pending` has waited without any write progress.
    stalled_since: Option<Instant>,
}

impl Conn {
    async fn drive(&mut self, stream: &TcpStream, w: &Worker) -> Ending {
        let b = w.behaviour();
        let mut timer: Option<Pin<Box<Sleep>>> = None;
        loop {
            if self.closing && self.pending.is_empty() && self.delayed.is_empty() {
                return Ending::Graceful;
            }
            let want_read =
                !self.closing && self.pending.len() + self.delayed.bytes() < b.output_cap;
            let want_write = !self.pending.is_empty();
            let deadline = [
                self.proto.deadline(w),
                self.delayed.next_due(),
                self.stalled_since.map(|s| s + b.write_timeout),
            ]
            .into_iter()
            .flatten()
            .min();
            arm(&mut timer, deadline);
            let event = poll_fn(|cx| {
                if want_write {
                    match stream.poll_write_ready(cx) {
                        Poll::Ready(Ok(())) => return Poll::Ready(Event::Writable),
                        Poll::Ready(Err(_)) => return Poll::Ready(Event::Failed),
                        Poll::Pending => {}
                    }
                }
                if want_read {
                    match stream.poll_read_ready(cx) {
                        Poll::Ready(Ok(())) => return Poll::Ready(Event::Readable),
                        Poll::Ready(Err(_)) => return Poll::Ready(Event::Failed),
                        Poll::Pending => {}
                    }
                }
                if let Some(t) = timer.as_mut()
                    && t.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Event::Timer);
                }
                Poll::Pending
            })
            .await;
            let now = Instant::now();
            let step = match event {
                Event::Failed => Err(Gone),
                Event::Readable => self.on_readable(stream, w, now),
                Event::Writable => self.flush_pending(stream, now).map(|()| Flow::Continue),
                Event::Timer
                    if self
                        .stalled_since
                        .is_some_and(|s| now >= s + b.write_timeout) =>
                {
                    Err(Gone)
                }
                Event::Timer => self.with_io(stream, w, now, |proto, io| {
                    io.delayed.release(io.now, &mut io.bufs.out, io.w);
                    proto.on_timer(io)
                }),
            };
            match step {
                Err(Gone) | Ok(Flow::CloseNow) => return Ending::Abort,
                Ok(Flow::CloseAfterFlush) => self.closing = true,
                Ok(Flow::Continue) => {}
            }
        }
    }

    fn on_readable(&mut self, stream: &TcpStream, w: &Worker, now: Instant) -> Result<Flow, Gone> {
        let mut input = w.input.borrow_mut();
        match read_once(stream, &mut input) {
            Ok(0) => Ok(self.proto.on_eof()),
            Ok(n) => self.with_io(stream, w, now, |proto, io| proto.on_bytes(&input[..n], io)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(Flow::Continue),
            Err(_) => Err(Gone),
        }
    }

    /// Runs `f` with the thread's buffers, then sends what it produced.
    fn with_io(
        &mut self,
        stream: &TcpStream,
        w: &Worker,
        now: Instant,
        f: impl FnOnce(&mut Proto, &mut Io<'_>) -> Flow,
    ) -> Result<Flow, Gone> {
        let mut bufs = w.buffers.borrow_mut();
        bufs.out.clear();
        let flow = f(
            &mut self.proto,
            &mut Io {
                w,
                now,
                bufs: &mut bufs,
                delayed: &mut self.delayed,
            },
        );
        if flow != Flow::CloseNow {
            self.send(stream, &bufs.out, now)?;
        }
        Ok(flow)
    }

    fn send(&mut self, stream: &TcpStream, out: &[u8], now: Instant) -> Result<(), Gone> {
        if out.is_empty() {
            return Ok(());
        }
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(out);
            return self.flush_pending(stream, now);
        }
        let written = write_some(stream, out)?;
        if written < out.len() {
            self.pending.extend_from_slice(&out[written..]);
            self.stalled_since = Some(now);
        }
        Ok(())
    }

    fn flush_pending(&mut self, stream: &TcpStream, now: Instant) -> Result<(), Gone> {
        let written = write_some(stream, &self.pending)?;
        if written == self.pending.len() {
            self.pending = Vec::new();
            self.stalled_since = None;
        } else if written > 0 {
            self.pending.drain(..written);
            self.stalled_since = Some(now);
        }
        Ok(())
    }
}

/// One read. A read that does not fill `buf` drained the socket, so it also clears the
/// readiness tokio holds for it (as `WouldBlock` would), saving the extra `read` that would only
/// say `EAGAIN`. Safe with tokio's edge-triggered epoll: data arriving later queues a new event,
/// and tokio ignores a clear when a newer event was seen since.
fn read_once(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    let res = stream.try_io(Interest::READABLE, || {
        // SAFETY: reads at most buf.len() bytes into buf from a socket this stream owns.
        let n = unsafe { libc::read(stream.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        got = n as usize;
        if got > 0 && got < buf.len() {
            Err(ErrorKind::WouldBlock.into())
        } else {
            Ok(got)
        }
    });
    match res {
        Err(e) if e.kind() == ErrorKind::WouldBlock && got > 0 => Ok(got),
        other => other,
    }
}

/// Writes as much of `bytes` as the socket takes now.
fn write_some(stream: &TcpStream, bytes: &[u8]) -> Result<usize, Gone> {
    let mut done = 0;
    while done < bytes.len() {
        match stream.try_write(&bytes[done..]) {
            Ok(0) => return Err(Gone),
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(Gone),
        }
    }
    Ok(done)
}

fn arm(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Option<Instant>) {
    let Some(deadline) = deadline else {
        *timer = None;
        return;
    };
    let deadline = tokio::time::Instant::from_std(deadline);
    match timer {
        Some(t) if t.deadline() == deadline => {}
        Some(t) => t.as_mut().reset(deadline),
        None => *timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
    }
}

/// Half-closes, then reads and discards until the peer closes too, so the last reply reaches
/// it instead of being destroyed by a reset.
async fn linger(stream: &TcpStream, w: &Worker) {
    let _ = socket2::SockRef::from(stream).shutdown(Shutdown::Write);
    let mut discarded = 0;
    let _ = tokio::time::timeout(LINGER, async {
        while discarded < LINGER_MAX_BYTES {
            if stream.readable().await.is_err() {
                return;
            }
            let mut input = w.input.borrow_mut();
            match stream.try_read(&mut input) {
                Ok(0) => return,
                Ok(n) => discarded += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}
