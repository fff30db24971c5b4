//! Conformance against the official MCP Python SDK (PyPI `mcp`) as a client over Streamable
//! HTTP, JSON and SSE replies, through `tests/peers/python_client.py`.
//!
//! Python is `$MCP_PYTHON`, else `<workspace>/.venv/bin/python3`. Without it (or without `mcp`
//! installed there) the tests skip with a message, except under `CI=true`, where they fail.

mod common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("MCP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3"));
    let has_mcp = Command::new(&candidate)
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_mcp {
        return Some(candidate);
    }
    let why = format!(
        "no Python with the `mcp` package at {} (set MCP_PYTHON, or run: python3 -m venv .venv && .venv/bin/pip install -r tests/peers/requirements.txt)",
        candidate.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}");
    }
    eprintln!("skipping the Python SDK conformance test: {why}");
    None
}

fn run_python_client(args: &[&str], mode: &str) -> Option<Value> {
    let python = python()?;
    let (_fleet, m) = common::start(args);
    let url = format!("http://{}/mcp", m.http.unwrap());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/python_client.py");
    let out = Command::new(python)
        .args([script, &url, mode])
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the Python SDK failed against replica {args:?} ({mode}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("the script prints one JSON object"))
}

fn check(seen: &Value) {
    assert_eq!(
        seen,
        &json!({
            "server_name": "r1",
            "protocol_version": "2025-11-25",
            "tools": ["echo", "add", "sleep"],
            "echo": "hello from python",
            "echo_is_error": false,
            "add": "5.5",
            "unknown_tool_code": -32602,
            "resources": ["replica://identity"],
            "resource_text": "replica r1",
            "ping": true,
        })
    );
}

#[test]
fn python_sdk_over_streamable_http_json() {
    if let Some(seen) = run_python_client(&[], "auto") {
        check(&seen);
    }
}

#[test]
fn python_sdk_over_streamable_http_sse() {
    if let Some(seen) = run_python_client(&["--sse"], "auto") {
        check(&seen);
    }
}

#[test]
fn python_sdk_legacy_mode_over_chunked_sse() {
    if let Some(seen) = run_python_client(&["--sse", "--chunked"], "legacy") {
        check(&seen);
    }
}
