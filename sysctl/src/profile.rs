//! Tuning profiles in sysctl.d format, with two extra directives hidden in comments.
//!
//! ```text
//! # why this key (comment lines just above a key are kept as its explanation)
//! net.core.somaxconn = 65535
//! -net.netfilter.nf_conntrack_max = 262144   <- leading '-': optional, skipped where the key is missing
//! #% nofile = 262144                          <- wanted RLIMIT_NOFILE (not a sysctl)
//! #% compare net.ipv4.tcp_tw_reuse exact      <- override the built-in comparison rule
//! ```
//!
//! systemd-sysctl and `sysctl -p` read `#%` lines as comments, so a profile stays a valid sysctl.d file.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::key::Key;
use crate::rule::{Rule, normalize};

/// Profiles compiled into the binary, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("100k", include_str!("../profiles/100k.conf")),
    ("server", include_str!("../profiles/server.conf")),
];

/// Keys that are per network namespace on Linux >= 4.15, so a container may set them through
/// its service spec `sysctls`. Host-wide keys (fs.*, netdev_max_backlog, conntrack) belong on nodes.
pub const NETNS_KEYS: &[&str] = &[
    "net.core.somaxconn",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Where a profile came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Compiled in ([`BUILTIN`]).
    Builtin,
    /// Read from a file.
    File(PathBuf),
}

/// One `key = value` line of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub key: Key,
    /// The wanted value, fields separated by one space.
    pub value: String,
    /// Written with a leading `-`: a missing key is skipped instead of reported.
    pub optional: bool,
    pub rule: Rule,
    /// The comment lines just above the key (without the leading `#`): why it is set.
    pub why: Vec<String>,
    /// 1-based line number in the profile text.
    pub line: usize,
}

/// A parsed tuning profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub name: String,
    pub origin: Origin,
    pub entries: Vec<Entry>,
    /// The wanted RLIMIT_NOFILE (`#% nofile = N`).
    pub nofile: Option<u64>,
}

/// A profile that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "unknown profile {0:?}: use one of {names} or a path to a sysctl.d file",
        names = builtin_names()
    )]
    Unknown(String),
    #[error("cannot read profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("profile {origin} line {line}: {message}")]
    Syntax {
        origin: String,
        line: usize,
        message: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin => f.write_str("(built in)"),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

fn builtin_names() -> String {
    let names: Vec<&str> = BUILTIN.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

impl Profile {
    /// Loads a built-in profile by name (`100k`, `server`) or a profile file by path.
    pub fn load(spec: &str) -> Result<Profile, ProfileError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(name, _)| *name == spec) {
            return Profile::parse(name, Origin::Builtin, text);
        }
        let path = Path::new(spec);
        if !spec.contains('/') && !spec.ends_with(".conf") && !path.exists() {
            return Err(ProfileError::Unknown(spec.to_owned()));
        }
        Profile::from_file(path)
    }

    /// Reads a profile file; its name is the file stem.
    pub fn from_file(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "custom".to_owned());
        Profile::parse(&name, Origin::File(path.to_owned()), &text)
    }

    /// Parses profile text.
    pub fn parse(name: &str, origin: Origin, text: &str) -> Result<Profile, ProfileError> {
        Parser::new(origin.to_string()).run(name, origin, text)
    }

    /// Finds the entry for a key.
    pub fn entry(&self, key: &Key) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.key == key)
    }

    /// The wanted value of a key, if the profile sets it.
    pub fn value(&self, key: &str) -> Option<&str> {
        let key = Key::parse(key)?;
        self.entry(&key).map(|e| e.value.as_str())
    }

    /// The per-network-namespace keys of this profile ([`NETNS_KEYS`]), for a container's `sysctls`.
    pub fn container_sysctls(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter(|e| NETNS_KEYS.contains(&e.key.to_string().as_str()))
            .map(|e| (e.key.to_string(), e.value.clone()))
            .collect()
    }

    /// Renders the profile as a sysctl.d file, each key with its comments; `value_of` may replace
    /// a wanted value (apply persists the values it left in place, which may be wider).
    pub fn render(&self, header: &str, value_of: impl Fn(&Entry) -> Option<String>) -> String {
        let mut out = String::new();
        for line in header.lines() {
            out.push_str(&format!("# {line}\n"));
        }
        if let Some(nofile) = self.nofile {
            out.push_str(&format!("#% nofile = {nofile}\n"));
        }
        for entry in &self.entries {
            out.push('\n');
            for why in &entry.why {
                out.push_str(&format!("#{why}\n"));
            }
            if entry.rule != Rule::default_for(&entry.key) {
                out.push_str(&format!("#% compare {} {}\n", entry.key, entry.rule.name()));
            }
            let value = value_of(entry).unwrap_or_else(|| entry.value.clone());
            let dash = if entry.optional { "-" } else { "" };
            out.push_str(&format!("{dash}{} = {}\n", entry.key, normalize(&value)));
        }
        out
    }
}

struct Parser {
    origin: String,
    pending_why: Vec<String>,
    entries: Vec<Entry>,
    nofile: Option<u64>,
    overrides: Vec<(usize, Key, Rule)>,
}

impl Parser {
    fn new(origin: String) -> Parser {
        Parser {
            origin,
            pending_why: Vec::new(),
            entries: Vec::new(),
            nofile: None,
            overrides: Vec::new(),
        }
    }

    fn error(&self, line: usize, message: impl Into<String>) -> ProfileError {
        ProfileError::Syntax {
            origin: self.origin.clone(),
            line,
            message: message.into(),
        }
    }

    fn run(mut self, name: &str, origin: Origin, text: &str) -> Result<Profile, ProfileError> {
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() {
                self.pending_why.clear();
            } else if let Some(directive) = line.strip_prefix("#%") {
                self.directive(line_no, directive.trim())?;
            } else if let Some(comment) = line.strip_prefix('#').or_else(|| line.strip_prefix(';'))
            {
                self.pending_why.push(comment.to_owned());
            } else {
                self.assignment(line_no, line)?;
            }
        }
        for (line_no, key, rule) in std::mem::take(&mut self.overrides) {
            match self.entries.iter_mut().find(|e| e.key == key) {
                Some(entry) => entry.rule = rule,
                None => {
                    return Err(self.error(
                        line_no,
                        format!("compare names {key}, which the profile does not set"),
                    ));
                }
            }
        }
        Ok(Profile {
            name: name.to_owned(),
            origin,
            entries: self.entries,
            nofile: self.nofile,
        })
    }

    fn directive(&mut self, line_no: usize, directive: &str) -> Result<(), ProfileError> {
        let words: Vec<&str> = directive
            .split(|c: char| c.is_whitespace() || c == '=')
            .filter(|w| !w.is_empty())
            .collect();
        match words[..] {
            ["nofile", n] => {
                let n = n.parse::<u64>().ok().filter(|n| *n > 0);
                self.nofile = Some(n.ok_or_else(|| {
                    self.error(
                        line_no,
                        "nofile needs a positive number, e.g. `#% nofile = 262144`",
                    )
                })?);
            }
            ["compare", key, rule] => {
                let key = Key::parse(key)
                    .ok_or_else(|| self.error(line_no, format!("invalid key {key:?}")))?;
                let rule = Rule::parse(rule).ok_or_else(|| {
                    self.error(
                        line_no,
                        format!("unknown rule {rule:?}: use exact, at-least, at-most or covers"),
                    )
                })?;
                self.overrides.push((line_no, key, rule));
            }
            _ => {
                return Err(self.error(line_no, format!(
                    "unknown directive `#%{directive}`: use `#% nofile = N` or `#% compare KEY exact|at-least|at-most|covers`"
                )));
            }
        }
        Ok(())
    }

    fn assignment(&mut self, line_no: usize, line: &str) -> Result<(), ProfileError> {
        let (optional, line) = match line.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let Some((key_text, value)) = line.split_once('=') else {
            return Err(self.error(line_no, format!("expected `key = value`, found {line:?}")));
        };
        let key = Key::parse(key_text).ok_or_else(|| {
            self.error(
                line_no,
                format!(
                    "invalid key {:?} (globs are not supported)",
                    key_text.trim()
                ),
            )
        })?;
        let value = normalize(value);
        if value.is_empty() {
            return Err(self.error(line_no, format!("{key} has no value")));
        }
        if let Some(first) = self.entries.iter().find(|e| e.key == key) {
            return Err(self.error(
                line_no,
                format!("{key} is already set on line {}", first.line),
            ));
        }
        self.entries.push(Entry {
            rule: Rule::default_for(&key),
            key,
            value,
            optional,
            why: std::mem::take(&mut self.pending_why),
            line: line_no,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Profile, ProfileError> {
        Profile::parse("t", Origin::Builtin, text)
    }

    #[test]
    fn builtin_profiles_parse_and_set_every_required_key() {
        let required = [
            "net.core.somaxconn",
            "net.ipv4.tcp_max_syn_backlog",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.tcp_tw_reuse",
            "net.ipv4.tcp_fin_timeout",
            "net.core.netdev_max_backlog",
            "fs.file-max",
            "fs.nr_open",
            "net.ipv4.tcp_rmem",
            "net.ipv4.tcp_wmem",
            "net.netfilter.nf_conntrack_max",
        ];
        for (name, _) in BUILTIN {
            let profile = Profile::load(name).unwrap();
            for key in required {
                assert!(profile.value(key).is_some(), "{name} lacks {key}");
            }
            assert!(profile.nofile.is_some(), "{name} lacks `#% nofile`");
            for entry in &profile.entries {
                assert!(
                    !entry.why.is_empty(),
                    "{name}: {} has no why-comment",
                    entry.key
                );
            }
            let conntrack = Key::parse("net.netfilter.nf_conntrack_max").unwrap();
            assert!(profile.entry(&conntrack).unwrap().optional);
        }
    }

    #[test]
    fn parses_optional_keys_comments_and_directives() {
        let p = parse(
            "# header\n\n# why one\n# why two\nnet.core.somaxconn=1024\n\
             -net.netfilter.nf_conntrack_max = 7\n#% nofile = 4096\n\
             #% compare net.core.somaxconn exact\nnet.ipv4.tcp_rmem = 1  2\t3\n",
        )
        .unwrap();
        assert_eq!(p.nofile, Some(4096));
        assert_eq!(p.entries.len(), 3);
        let e = &p.entries[0];
        assert_eq!(e.why, vec![" why one", " why two"]);
        assert_eq!(
            (e.value.as_str(), e.optional, e.rule),
            ("1024", false, Rule::Exact)
        );
        assert!(p.entries[1].optional);
        assert!(p.entries[1].why.is_empty());
        assert_eq!(p.entries[1].rule, Rule::AtLeast);
        assert_eq!(p.entries[2].value, "1 2 3");
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let cases = [
            ("net.core.somaxconn\n", "line 1: expected `key = value`"),
            ("a.b = 1\na.b = 2\n", "line 2: a.b is already set on line 1"),
            ("a.b =  \n", "line 1: a.b has no value"),
            ("net.ipv4.conf.*.rp_filter = 1\n", "globs are not supported"),
            ("#% nofile = lots\n", "nofile needs a positive number"),
            ("#% compare a.b fuzzy\na.b = 1\n", "unknown rule \"fuzzy\""),
            (
                "#% compare a.c exact\na.b = 1\n",
                "line 1: compare names a.c",
            ),
            ("#% frobnicate\n", "unknown directive"),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn unknown_name_is_a_clear_error_and_paths_are_read() {
        let err = Profile::load("200k").unwrap_err().to_string();
        assert!(
            err.contains("unknown profile \"200k\": use one of 100k, server"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.conf");
        std::fs::write(&path, "# why\nnet.core.somaxconn = 8192\n").unwrap();
        let p = Profile::load(path.to_str().unwrap()).unwrap();
        assert_eq!(
            (p.name.as_str(), p.value("net.core.somaxconn")),
            ("mine", Some("8192"))
        );
        let missing = Profile::load("/nonexistent/x.conf")
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("cannot read profile /nonexistent/x.conf"),
            "{missing}"
        );
    }

    #[test]
    fn render_round_trips_through_the_parser() {
        let p = Profile::load("100k").unwrap();
        let text = p.render("generated", |_| None);
        let again = parse(&text).unwrap();
        assert_eq!(again.entries.len(), p.entries.len());
        for (a, b) in again.entries.iter().zip(&p.entries) {
            assert_eq!(
                (&a.key, &a.value, a.optional, a.rule, &a.why),
                (&b.key, &b.value, b.optional, b.rule, &b.why)
            );
        }
        assert_eq!(again.nofile, p.nofile);
    }

    #[test]
    fn container_sysctls_are_only_per_namespace_keys() {
        let p = Profile::load("server").unwrap();
        let keys: Vec<String> = p.container_sysctls().into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"net.core.somaxconn".to_owned()));
        assert!(keys.contains(&"net.ipv4.ip_local_port_range".to_owned()));
        assert!(keys.iter().all(|k| NETNS_KEYS.contains(&k.as_str())));
        assert!(!keys.iter().any(|k| k.starts_with("fs.")));
    }
}
