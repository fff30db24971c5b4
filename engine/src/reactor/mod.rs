//! Reactors: the only code that touches sockets. Both hand the worker the same completions
//! ([`Io`]) and take the same commands ([`Outbox`]); the protocol stays in `proto`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub mod epoll;
pub mod socket;
pub mod uring;

/// One connection of a worker: its slot, and a generation bumped on every new socket, so a
/// completion for a socket that was since closed is recognised and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub slot: u32,
    pub generation: u32,
}

/// Generations wrap at 24 bits (what fits beside an op code in io_uring's user data).
pub const GENERATION_MASK: u32 = 0x00FF_FFFF;

impl Token {
    pub fn pack(self) -> u64 {
        u64::from(self.slot) | u64::from(self.generation & GENERATION_MASK) << 32
    }

    pub fn unpack(v: u64) -> Token {
        Token {
            slot: v as u32,
            generation: (v >> 32) as u32 & GENERATION_MASK,
        }
    }
}

/// A completion handed to the worker.
#[derive(Debug)]
pub enum Io<'a> {
    Connected(Token),
    ConnectFailed(Token, i32),
    Data(Token, &'a [u8]),
    /// The peer closed its side.
    Eof(Token),
    /// A send or receive failed with this errno.
    Failed(Token, i32),
}

#[derive(Debug, Clone, Copy)]
pub enum Cmd {
    Connect {
        token: Token,
        addr: SocketAddr,
        source: Option<IpAddr>,
    },
    /// Send `bytes[start..end]` of the outbox.
    Send {
        token: Token,
        start: usize,
        end: usize,
    },
    Close {
        token: Token,
    },
}

/// Commands queued by the worker, applied by the reactor at its next turn; bytes to send are
/// written straight into one shared arena.
#[derive(Debug, Default)]
pub struct Outbox {
    cmds: Vec<Cmd>,
    bytes: Vec<u8>,
}

impl Outbox {
    pub fn connect(&mut self, token: Token, addr: SocketAddr, source: Option<IpAddr>) {
        self.cmds.push(Cmd::Connect {
            token,
            addr,
            source,
        });
    }

    pub fn close(&mut self, token: Token) {
        self.cmds.push(Cmd::Close { token });
    }

    /// Lets `write` append bytes for `token`; queues a send if it wrote any.
    pub fn send_with(&mut self, token: Token, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.bytes.len();
        write(&mut self.bytes);
        let end = self.bytes.len();
        if end > start {
            self.cmds.push(Cmd::Send { token, start, end });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// Hands every queued command (with the arena) to `apply`, then empties the outbox,
    /// keeping its capacity.
    pub fn drain(&mut self, mut apply: impl FnMut(Cmd, &[u8])) {
        for cmd in self.cmds.drain(..) {
            apply(cmd, &self.bytes);
        }
        self.bytes.clear();
    }
}

/// Socket options every connection gets.
#[derive(Debug, Clone, Copy)]
pub struct SocketOptions {
    /// Keepalive probes start after this much idleness (kept under the 900 s after which
    /// Swarm's IPVS forgets idle flows).
    pub keepalive_idle: Duration,
    /// SO_RCVBUF / SO_SNDBUF, when set.
    pub buffer_size: Option<usize>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            keepalive_idle: Duration::from_secs(300),
            buffer_size: None,
        }
    }
}

pub trait Reactor {
    /// Applies queued commands, waits up to `timeout` for I/O (not at all if something is
    /// already complete), and hands every completion to `on`, which may queue more commands.
    fn turn<F: FnMut(Io<'_>, &mut Outbox)>(
        &mut self,
        outbox: &mut Outbox,
        timeout: Duration,
        on: F,
    ) -> std::io::Result<()>;
}

/// Which reactor runs, and why (for the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Uring,
    Epoll,
}

#[cfg(test)]
mod tests;
