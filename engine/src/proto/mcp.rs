//! JSON-RPC messages the client sends, written straight into the caller's buffer.

use super::{Context, Scenario};

/// Appends the decimal form of `n` (no allocation).
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `s` as a JSON string literal, quotes included.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1F => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xF)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn request_start(out: &mut Vec<u8>, id: u32, method: &str) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    write_u64(out, u64::from(id));
    out.extend_from_slice(b",\"method\":\"");
    out.extend_from_slice(method.as_bytes());
    out.push(b'"');
}

/// `initialize` with the client's name and version and the protocol version to ask for.
pub fn write_initialize(out: &mut Vec<u8>, id: u32, cx: &Context) {
    request_start(out, id, "initialize");
    out.extend_from_slice(b",\"params\":{\"protocolVersion\":");
    write_json_str(out, &cx.mcp_version);
    out.extend_from_slice(b",\"capabilities\":{},\"clientInfo\":{\"name\":");
    write_json_str(out, &cx.client_name);
    out.extend_from_slice(b",\"version\":");
    write_json_str(out, &cx.client_version);
    out.extend_from_slice(b"}}}");
}

pub fn write_initialized(out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
}

/// The scenario's request. `Health` and `Idle` send no JSON-RPC request; asked anyway, a
/// `ping` is written.
pub fn write_scenario(out: &mut Vec<u8>, id: u32, scenario: &Scenario) {
    match scenario {
        Scenario::ToolsList => request_start(out, id, "tools/list"),
        Scenario::ToolsCall { tool, arguments } => {
            request_start(out, id, "tools/call");
            out.extend_from_slice(b",\"params\":{\"name\":");
            write_json_str(out, tool);
            out.extend_from_slice(b",\"arguments\":");
            let arguments = arguments.trim();
            out.extend_from_slice(if arguments.is_empty() {
                b"{}"
            } else {
                arguments.as_bytes()
            });
            out.push(b'}');
        }
        Scenario::Ping | Scenario::Health | Scenario::Idle => request_start(out, id, "ping"),
    }
    out.push(b'}');
}

/// The reply to a server's request: an empty result for `ping`, "method not found" for
/// anything else (this client offers no capabilities). `raw_id` is the id's JSON text.
pub fn write_server_reply(out: &mut Vec<u8>, raw_id: &[u8], is_ping: bool) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(raw_id);
    if is_ping {
        out.extend_from_slice(b",\"result\":{}}");
    } else {
        out.extend_from_slice(br#","error":{"code":-32601,"message":"Method not found"}}"#);
    }
}

#[cfg(test)]
mod tests {
    use super::super::json;
    use super::*;
    use crate::proto::Transport;
    use crate::proto::tests::harness;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = b"prefix".to_vec();
        f(&mut out);
        assert!(out.starts_with(b"prefix"), "writers only append");
        String::from_utf8(out[6..].to_vec()).unwrap()
    }

    fn context(scenario: Scenario) -> Context {
        harness::context(Transport::Tcp, scenario, harness::closed(0))
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 99, 100, 4_294_967_295, u64::MAX] {
            assert_eq!(text(|o| write_u64(o, n)), n.to_string());
        }
    }

    #[test]
    fn strings_are_escaped_and_read_back() {
        let s = "a\"b\\c\nd\re\tf\u{1}g\u{1f}é😀";
        let written = text(|o| write_json_str(o, s));
        assert_eq!(written, r#""a\"b\\c\nd\re\tf\u0001g\u001fé😀""#);
        let mut sc = json::Scanner::new(written.as_bytes());
        assert_eq!(sc.string().unwrap().decode(), s);
    }

    #[test]
    fn initialize_is_exact_json() {
        let mut cx = context(Scenario::Ping);
        cx.client_name = "mcp-load \"engine\"".into();
        assert_eq!(
            text(|o| write_initialize(o, 0, &cx)),
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcp-load \"engine\"","version":"0.1.0"}}}"#
        );
        assert_eq!(
            text(write_initialized),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
        );
    }

    #[test]
    fn scenario_requests_are_exact_json() {
        assert_eq!(
            text(|o| write_scenario(o, 12, &Scenario::Ping)),
            r#"{"jsonrpc":"2.0","id":12,"method":"ping"}"#
        );
        assert_eq!(
            text(|o| write_scenario(o, 3, &Scenario::ToolsList)),
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#
        );
        let call = Scenario::ToolsCall {
            tool: "echo".into(),
            arguments: r#" {"text":"hi"} "#.into(),
        };
        assert_eq!(
            text(|o| write_scenario(o, 4, &call)),
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#
        );
        let no_args = Scenario::ToolsCall {
            tool: "now".into(),
            arguments: String::new(),
        };
        let written = text(|o| write_scenario(o, 5, &no_args));
        assert!(written.ends_with(r#""arguments":{}}}"#), "{written}");
        assert!(json::each_message(written.as_bytes(), false, |_| true).is_ok());
    }

    #[test]
    fn server_requests_get_replies_with_their_own_id() {
        assert_eq!(
            text(|o| write_server_reply(o, br#""srv-1""#, true)),
            r#"{"jsonrpc":"2.0","id":"srv-1","result":{}}"#
        );
        assert_eq!(
            text(|o| write_server_reply(o, b"9", false)),
            r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32601,"message":"Method not found"}}"#
        );
    }
}
