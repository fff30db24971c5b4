//! The engine against MCP servers nobody here wrote: the official Rust SDK (`rmcp`) and the
//! official Python SDK (`mcp`), over Streamable HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use e2e::{assert_clean, engine, heavy, python_with_mcp};

/// An rmcp server with default handlers (initialize, ping) on a free port, in its own runtime.
fn start_rmcp_server() -> (u16, tokio::runtime::Runtime) {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

    #[derive(Clone)]
    struct Peer;
    impl rmcp::ServerHandler for Peer {}

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let service = StreamableHttpService::new(
        || Ok(Peer),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    rt.spawn(async move { axum::serve(listener, router).await });
    (port, rt)
}

#[test]
fn engine_against_the_rust_sdk_server() {
    let _one_at_a_time = heavy();
    let (port, _server) = start_rmcp_server();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let r = engine(&[
        "--conns",
        "200",
        "--hold",
        "5s",
        "--interval",
        "1s",
        "--target",
        &url,
    ]);
    let s = r.summary();
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_clean(s, 200);
    assert_eq!(
        s["sessions"]["closed_clean"], 200,
        "every session DELETEd cleanly: {s:#}"
    );
}

struct PythonServer(Child);

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_python_server(python: &std::path::Path, mode: &str) -> (PythonServer, u16) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/python_server.py");
    let mut child = Command::new(python)
        .args([script, mode])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the Python MCP server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .strip_prefix("listening ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("the Python server said {line:?}"));
    (PythonServer(child), port)
}

/// 100 sessions held 8 s with a ping every 6 s: uvicorn closes keep-alive connections idle for
/// 5 s, so every session also shows that a closed connection is not a closed session.
fn engine_against_python(mode: &str) {
    let Some(python) = python_with_mcp() else {
        return;
    };
    let _one_at_a_time = heavy();
    let (_server, port) = start_python_server(&python, mode);
    let url = format!("http://127.0.0.1:{port}/mcp");
    let r = engine(&[
        "--conns",
        "100",
        "--hold",
        "8s",
        "--interval",
        "6s",
        "--ramp",
        "200/s",
        "--target",
        &url,
    ]);
    let s = r.summary();
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_clean(s, 100);
    assert!(
        s["requests"]["ok"].as_u64().unwrap() >= 200,
        "two pings per session: {s:#}"
    );
    assert!(
        s["sessions"]["reconnects"].as_u64().unwrap() >= 100,
        "uvicorn's idle close was met by reconnects keeping the session: {s:#}"
    );
    assert_eq!(s["sessions"]["reinitializations"], 0, "{s:#}");
}

#[test]
fn engine_against_the_python_sdk_server_json() {
    engine_against_python("json");
}

#[test]
fn engine_against_the_python_sdk_server_sse() {
    engine_against_python("sse");
}
