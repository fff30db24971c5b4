//! Writing JSON-RPC replies straight into a byte buffer.

use serde_json::value::RawValue;

use super::Fault;
use super::methods::{Answer, RESOURCE_URI};
use crate::state::Worker;

const TOOLS: &str = concat!(
    r#"{"tools":["#,
    r#"{"name":"echo","description":"Returns its text argument.","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}},"#,
    r#"{"name":"add","description":"Returns a + b.","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}},"#,
    r#"{"name":"sleep","description":"Waits ms milliseconds, then answers.","inputSchema":{"type":"object","properties":{"ms":{"type":"integer","minimum":0,"maximum":60000}},"required":["ms"]}}"#,
    r#"]}"#
);

const RESOURCES: &str = concat!(
    r#"{"resources":[{"uri":"replica://identity","name":"identity","#,
    r#""description":"Which replica answered.","mimeType":"text/plain"}]}"#
);

fn open(out: &mut Vec<u8>, id: Option<&RawValue>) {
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.map_or("null", RawValue::get).as_bytes());
}

fn json_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
}

fn text_content(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(br#"{"content":[{"type":"text","text":"#);
    json_string(out, text);
    out.extend_from_slice(br#"}],"isError":false}"#);
}

pub fn write_result(out: &mut Vec<u8>, id: &RawValue, answer: &Answer<'_>, w: &Worker) {
    open(out, Some(id));
    out.extend_from_slice(br#","result":"#);
    let id_json = w.shared.id_json.as_bytes();
    match answer {
        Answer::Empty => out.extend_from_slice(b"{}"),
        Answer::Initialized(v) => {
            out.extend_from_slice(br#"{"protocolVersion":""#);
            out.extend_from_slice(v.as_str().as_bytes());
            out.extend_from_slice(
                br#"","capabilities":{"tools":{"listChanged":false},"resources":{"subscribe":false,"listChanged":false}},"serverInfo":{"name":"#,
            );
            out.extend_from_slice(id_json);
            out.extend_from_slice(br#","version":""#);
            out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
            out.extend_from_slice(br#""}}"#);
        }
        Answer::ToolsList => out.extend_from_slice(TOOLS.as_bytes()),
        Answer::ResourcesList => out.extend_from_slice(RESOURCES.as_bytes()),
        Answer::ResourceRead => {
            out.extend_from_slice(br#"{"contents":[{"uri":""#);
            out.extend_from_slice(RESOURCE_URI.as_bytes());
            out.extend_from_slice(br#"","mimeType":"text/plain","text":"#);
            json_string(out, &format!("replica {}", w.shared.config.id));
            out.extend_from_slice(b"}]}");
        }
        Answer::Text(text) => text_content(out, text),
        Answer::Slept(ms) => text_content(out, &format!("slept {ms} ms")),
    }
    out.push(b'}');
}

/// `{"jsonrpc":"2.0","id":<id or null>,"error":{"code":..,"message":..[,"data":..]}}`
pub fn write_error(out: &mut Vec<u8>, id: Option<&RawValue>, fault: &Fault) {
    open(out, id);
    out.extend_from_slice(br#","error":{"code":"#);
    out.extend_from_slice(itoa::Buffer::new().format(fault.code.code()).as_bytes());
    out.extend_from_slice(br#","message":"#);
    json_string(out, &fault.message);
    if let Some(data) = &fault.data {
        out.extend_from_slice(br#","data":"#);
        out.extend_from_slice(data.as_bytes());
    }
    out.extend_from_slice(b"}}");
}
