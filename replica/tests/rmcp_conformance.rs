//! Conformance against the official Rust SDK (`rmcp`) as a client: Streamable HTTP with JSON
//! replies, with SSE replies (also chunked), and TCP newline-delimited JSON-RPC.

mod common;

use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, ClientConfig, ProtocolVersion, ReadResourceRequestParams,
};
use rmcp::service::{RoleClient, ServiceError};
use rmcp::transport::{IntoTransport, StreamableHttpClientTransport};
use serde_json::json;

fn arguments(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().expect("an object").clone()
}

/// rmcp's default offer is its newest revision (2026-07-28, which has no `initialize`); erlmcp and
/// replica speak the handshake era, so the client offers the newest handshake version.
fn handshake_client() -> ClientConfig {
    let mut config = ClientConfig::default();
    config.protocol_version = ProtocolVersion::LATEST_WITH_INITIALIZE;
    config
}

/// initialize, tools/list, tools/call echo and add, an unknown tool, the resource; then close.
async fn converse<T, E, A>(transport: T)
where
    T: IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let client = handshake_client()
        .serve(transport)
        .await
        .expect("rmcp initializes against replica");
    let info = client.peer_info().expect("server info after initialize");
    assert_eq!(info.server_info.as_ref().expect("serverInfo").name, "r1");
    assert_eq!(info.protocol_version.to_string(), "2025-11-25");
    assert!(info.capabilities.tools.is_some());

    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["echo", "add", "sleep"]);

    let echoed = client
        .call_tool(
            CallToolRequestParams::new("echo")
                .with_arguments(arguments(json!({"text": "héllo rmcp"}))),
        )
        .await
        .expect("tools/call echo");
    assert_eq!(
        echoed.content[0].as_text().expect("text content").text,
        "héllo rmcp"
    );
    assert_eq!(echoed.is_error, Some(false));

    let sum = client
        .call_tool(
            CallToolRequestParams::new("add").with_arguments(arguments(json!({"a": 40, "b": 2}))),
        )
        .await
        .expect("tools/call add");
    assert_eq!(sum.content[0].as_text().unwrap().text, "42");

    match client
        .call_tool(CallToolRequestParams::new("no-such-tool"))
        .await
    {
        Err(ServiceError::McpError(e)) => assert_eq!(e.code.0, -32602),
        other => panic!("an unknown tool must be a JSON-RPC error, got {other:?}"),
    }

    let resources = client.list_all_resources().await.expect("resources/list");
    assert_eq!(resources[0].uri, "replica://identity");
    let read = client
        .read_resource(ReadResourceRequestParams::new("replica://identity"))
        .await
        .expect("resources/read");
    let text = serde_json::to_value(&read.contents[0]).unwrap();
    assert_eq!(text["text"], "replica r1");

    client.cancel().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_over_streamable_http_json() {
    let (_fleet, m) = common::start(&[]);
    let url = format!("http://{}/mcp", m.http.unwrap());
    converse(StreamableHttpClientTransport::from_uri(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_over_streamable_http_sse() {
    let (_fleet, m) = common::start(&["--sse"]);
    let url = format!("http://{}/mcp", m.http.unwrap());
    converse(StreamableHttpClientTransport::from_uri(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_over_streamable_http_sse_chunked() {
    let (_fleet, m) = common::start(&["--sse", "--chunked"]);
    let url = format!("http://{}/mcp", m.http.unwrap());
    converse(StreamableHttpClientTransport::from_uri(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_over_tcp() {
    let (_fleet, m) = common::start(&[]);
    let stream = tokio::net::TcpStream::connect(m.tcp.unwrap())
        .await
        .unwrap();
    converse(stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_default_offer_is_refused_like_erlmcp_refuses_it() {
    let (_fleet, m) = common::start(&["--accept-versions", "all"]);
    let stream = tokio::net::TcpStream::connect(m.tcp.unwrap())
        .await
        .unwrap();
    let Err(err) = ().serve(stream).await else {
        panic!("2026-07-28 is not a handshake version: initialize must fail");
    };
    let text = err.to_string();
    assert!(
        text.contains("-32061") && text.contains("2025-11-25"),
        "{text}"
    );
}
