//! Streamable HTTP sessions: minted at `initialize`, looked up by `Mcp-Session-Id`, shared by
//! every thread of the process (a client may use several connections for one session).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng as _;

use crate::mcp::Version;

/// A session id: 128 random bits, written as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub u128);

impl SessionId {
    pub fn parse(text: &[u8]) -> Option<SessionId> {
        if text.len() != 32 {
            return None;
        }
        let text = std::str::from_utf8(text).ok()?;
        if !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        u128::from_str_radix(text, 16).ok().map(SessionId)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    version: Version,
    /// Seconds since the table was made.
    last_used: u32,
}

#[derive(Debug)]
pub struct SessionTable {
    entries: Mutex<HashMap<SessionId, Entry>>,
    epoch: Instant,
}

impl SessionTable {
    pub fn new(epoch: Instant) -> Self {
        SessionTable {
            entries: Mutex::new(HashMap::new()),
            epoch,
        }
    }

    fn stamp(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn create(&self, version: Version, now: Instant) -> SessionId {
        let entry = Entry {
            version,
            last_used: self.stamp(now),
        };
        let mut entries = self.lock();
        let mut rng = rand::rng();
        loop {
            let id = SessionId(rng.random());
            if let std::collections::hash_map::Entry::Vacant(v) = entries.entry(id) {
                v.insert(entry);
                return id;
            }
        }
    }

    /// The negotiated version of a live session, marking it used.
    pub fn touch(&self, id: SessionId, now: Instant) -> Option<Version> {
        let stamp = self.stamp(now);
        let mut entries = self.lock();
        let entry = entries.get_mut(&id)?;
        entry.last_used = stamp;
        Some(entry.version)
    }

    pub fn remove(&self, id: SessionId) -> bool {
        self.lock().remove(&id).is_some()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Forgets sessions unused for `ttl`; returns how many.
    pub fn sweep(&self, ttl: Duration, now: Instant) -> usize {
        let now = self.stamp(now);
        let ttl = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|_, e| now.saturating_sub(e.last_used) < ttl);
        let removed = before - entries.len();
        if entries.capacity() > 64 && entries.len() < entries.capacity() / 4 {
            entries.shrink_to_fit();
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_junk() {
        let id = SessionId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let text = id.to_string();
        assert_eq!(text, "0123456789abcdef0011223344556677");
        assert_eq!(SessionId::parse(text.as_bytes()), Some(id));
        assert_eq!(SessionId::parse(b"0123456789ABCDEF0011223344556677"), None);
        assert_eq!(SessionId::parse(b"+123456789abcdef0011223344556677"), None);
        assert_eq!(SessionId::parse(b"abc"), None);
    }

    #[test]
    fn sessions_live_until_removed_or_swept() {
        let t0 = Instant::now();
        let table = SessionTable::new(t0);
        let a = table.create(Version::V2025_11_25, t0);
        let b = table.create(Version::V2024_11_05, t0);
        assert_ne!(a, b);
        assert_eq!(table.touch(a, t0), Some(Version::V2025_11_25));
        assert!(table.remove(a));
        assert!(!table.remove(a));
        assert_eq!(table.touch(a, t0), None);
        let later = t0 + Duration::from_secs(100);
        assert_eq!(table.sweep(Duration::from_secs(200), later), 0);
        assert_eq!(table.sweep(Duration::from_secs(50), later), 1);
        assert_eq!(table.len(), 0);
    }
}
