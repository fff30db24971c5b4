//! Byte-level codecs shared by the load engine (client side) and `replica` (server side).
//!
//! Everything here is sans-IO: decoders are fed byte slices as they arrive and hand back complete
//! units (a line, a WebSocket message, a piece of a chunked body). A decoder keeps bytes only while
//! a unit is incomplete, and frees them as soon as it is complete, so an idle connection owns no
//! buffer. Every decoder takes a size cap and fails instead of growing past it.
//!
//! All decoders use the same pull shape: `next(&mut self, &mut input) -> Result<Option<Unit>>`,
//! advancing `input` past what they consumed. `Ok(None)` means "need more bytes" and that
//! `input` was fully consumed.

pub mod chunked;
pub mod lines;
pub mod ws;

/// A unit grew past the cap the caller set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "message exceeds the {} byte limit", self.limit)
    }
}

impl std::error::Error for TooLarge {}

/// Bytes kept between feeds: empty (and unallocated) unless a unit is split across feeds.
///
/// `consumed` marks that the previous `next` handed out the buffered unit; the buffer is
/// released at the start of the following call, once that borrow has ended.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    consumed: bool,
}

impl Pending {
    fn release_consumed(&mut self) {
        if self.consumed {
            self.buf = Vec::new();
            self.consumed = false;
        }
    }

    fn extend(&mut self, bytes: &[u8], limit: usize) -> Result<(), TooLarge> {
        if self.buf.len() + bytes.len() > limit {
            self.buf = Vec::new();
            return Err(TooLarge { limit });
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod split {
    /// Every way of cutting `bytes` into two pieces, plus byte-at-a-time: the feeds a decoder
    /// must handle identically.
    pub fn feeds(bytes: &[u8]) -> Vec<Vec<&[u8]>> {
        let mut all: Vec<Vec<&[u8]>> = (0..=bytes.len())
            .map(|cut| vec![&bytes[..cut], &bytes[cut..]])
            .collect();
        all.push(bytes.chunks(1).collect());
        all
    }
}
