//! Replica conformance against the official MCP Python SDK (PyPI `mcp`) as a client over
//! Streamable HTTP, JSON and SSE replies, through `tests/peers/python_client.py`.

use std::process::Command;
use std::time::Duration;

use e2e::{bin, python_with_mcp};
use replica::fleet::{Fleet, FleetSpec};
use serde_json::{Value, json};

fn run_python_client(args: &[&str], mode: &str) -> Option<Value> {
    let python = python_with_mcp()?;
    let mut spec = FleetSpec::new(bin("replica"), 1);
    spec.extra_args = ["--threads", "1"]
        .iter()
        .chain(args)
        .map(Into::into)
        .collect();
    let fleet = Fleet::start(spec, Duration::from_secs(10)).expect("replica starts");
    let url = format!("http://{}/mcp", fleet.members()[0].http.unwrap());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/python_client.py");
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
