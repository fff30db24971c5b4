//! Sysctl key names and their file paths under a sysctl root.

use std::fmt;
use std::path::PathBuf;

/// A sysctl key such as `net.core.somaxconn`, kept as its path segments.
///
/// Written with dots (`net.core.somaxconn`) or, as sysctl.d allows, with slashes
/// (`net/ipv4/conf/eth0.100/forwarding`), in which case dots stay part of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    segments: Vec<String>,
}

impl Key {
    /// Parses a key; returns `None` for an empty key, an empty segment, a glob or `..`.
    pub fn parse(text: &str) -> Option<Key> {
        let text = text.trim();
        let separator = if text.contains('/') { '/' } else { '.' };
        let segments: Vec<String> = text.split(separator).map(str::to_owned).collect();
        let valid = |s: &String| {
            !s.is_empty() && s != ".." && s != "." && !s.contains(['*', '?', '[', ' ', '\t'])
        };
        if text.is_empty() || !segments.iter().all(valid) {
            return None;
        }
        Some(Key { segments })
    }

    /// The file path relative to the sysctl root, e.g. `net/core/somaxconn`.
    pub fn relative_path(&self) -> PathBuf {
        self.segments.iter().collect()
    }

    /// True when this key lives in the network namespace tree (`net.*`).
    pub fn is_net(&self) -> bool {
        self.segments.first().is_some_and(|s| s == "net")
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let separator = if self.segments.iter().any(|s| s.contains('.')) {
            "/"
        } else {
            "."
        };
        f.write_str(&self.segments.join(separator))
    }
}

impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Key::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid sysctl key {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_and_slashed_keys_map_to_the_same_path() {
        let dotted = Key::parse("net.core.somaxconn").unwrap();
        let slashed = Key::parse("net/core/somaxconn").unwrap();
        assert_eq!(dotted, slashed);
        assert_eq!(dotted.relative_path(), PathBuf::from("net/core/somaxconn"));
        assert_eq!(dotted.to_string(), "net.core.somaxconn");
    }

    #[test]
    fn slashed_key_keeps_dots_inside_a_segment() {
        let key = Key::parse("net/ipv4/conf/eth0.100/forwarding").unwrap();
        assert_eq!(
            key.relative_path(),
            PathBuf::from("net/ipv4/conf/eth0.100/forwarding")
        );
        assert_eq!(key.to_string(), "net/ipv4/conf/eth0.100/forwarding");
    }

    #[test]
    fn rejects_globs_traversal_and_empty_segments() {
        for bad in [
            "",
            "net..core",
            "net.ipv4.conf.*.rp_filter",
            "net/../etc",
            "a b",
        ] {
            assert!(Key::parse(bad).is_none(), "{bad:?} should be rejected");
        }
    }
}
