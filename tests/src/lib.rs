//! Helpers for end-to-end tests: find the workspace's binaries, run the engine, read its
//! summary, find the Python peers.
//!
//! The binaries are the ones `cargo test --workspace` builds next to the test executables
//! (`engine` and `replica` have integration tests of their own, so cargo builds them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The directory holding the workspace's binaries for this build profile.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // <target>/<profile>/deps/<test> -> <target>/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so cargo builds it",
        path.display()
    );
    path
}

pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Load tests share two cores: one at a time per test binary.
pub fn heavy() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A finished engine run.
pub struct Run {
    pub code: Option<i32>,
    pub stderr: String,
    pub summary: Option<Value>,
    pub took: Duration,
}

impl Run {
    /// The summary, or a panic that shows what the engine said.
    pub fn summary(&self) -> &Value {
        self.summary.as_ref().unwrap_or_else(|| {
            panic!(
                "engine exited with {:?} and no summary; stderr:\n{}",
                self.code, self.stderr
            )
        })
    }
}

/// Runs `engine ARGS --quiet --json` and parses the summary it prints.
pub fn engine(args: &[&str]) -> Run {
    let started = Instant::now();
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out: Output = Command::new(bin("engine"))
        .args(args)
        .args(["--quiet", "--json", "--out"])
        .arg(out_dir.path())
        .output()
        .expect("run engine");
    let summary = serde_json::from_slice(&out.stdout).ok();
    Run {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        summary,
        took: started.elapsed(),
    }
}

/// Asserts the figures every clean run must show: all sessions initialized and held, no
/// failure of any kind.
pub fn assert_clean(s: &Value, conns: u64) {
    let sessions = &s["sessions"];
    assert_eq!(sessions["initialized"], conns, "initialized: {s:#}");
    assert_eq!(sessions["failed"], 0, "failed sessions: {s:#}");
    assert_eq!(
        sessions["open_at_hold_end"], conns,
        "held at the end: {s:#}"
    );
    assert_eq!(s["requests"]["failed"], 0, "failed requests: {s:#}");
    assert!(
        s["requests"]["ok"].as_u64().unwrap() > 0,
        "no request answered: {s:#}"
    );
    assert_eq!(s["errors"], serde_json::json!({}), "errors: {s:#}");
}

/// Per-replica session counts.
pub fn sessions_per_replica(s: &Value) -> Vec<(String, u64)> {
    s["replicas"]
        .as_object()
        .expect("replicas")
        .iter()
        .map(|(k, v)| (k.clone(), v["sessions"].as_u64().unwrap()))
        .collect()
}

/// The Python interpreter with the official `mcp` SDK: `MCP_PYTHON`, else the workspace's
/// `.venv`. `None` (with the reason) when absent; absent in CI is a failure.
pub fn python_with_mcp() -> Option<PathBuf> {
    let candidate = std::env::var_os("MCP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3"));
    let ok = Command::new(&candidate)
        .args(["-c", "import mcp"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(candidate);
    }
    let why = format!(
        "no Python with the `mcp` package at {} (set MCP_PYTHON, or: python3 -m venv .venv && .venv/bin/pip install -r tests/peers/requirements.txt)",
        candidate.display()
    );
    assert!(!in_ci(), "{why}");
    eprintln!("skipping: {why}");
    None
}
