//! The JSON-RPC envelope: which kind of message this is, its id (kept as raw JSON so replies echo
//! it byte for byte) and its method, without building a tree of the whole message.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::Fault;
use crate::metrics::ErrorCode;

/// A valid JSON-RPC message.
#[derive(Debug)]
pub enum Message<'a> {
    Request(Request<'a>),
    Notification {
        method: Cow<'a, str>,
    },
    /// A response or error sent by the client (to a server request we never make): ignored.
    Response,
}

impl Message<'_> {
    pub fn is_initialize(&self) -> bool {
        matches!(self, Message::Request(r) if r.method == "initialize")
    }

    /// The request id, for error replies about the message.
    pub fn id(&self) -> Option<&RawValue> {
        match self {
            Message::Request(r) => Some(r.id),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Request<'a> {
    pub id: &'a RawValue,
    pub method: Cow<'a, str>,
    pub params: Option<&'a RawValue>,
}

/// A message that gets an error reply without being dispatched.
#[derive(Debug)]
pub struct Rejection<'a> {
    /// The request's id when it could be read, else the reply carries `null`.
    pub id: Option<&'a RawValue>,
    pub fault: Fault,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// Keeps an explicit `"id": null` (plain `Option` would read it as absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

fn invalid<'a>(id: Option<&'a RawValue>, why: impl Into<String>) -> Rejection<'a> {
    Rejection {
        id,
        fault: Fault::new(ErrorCode::InvalidRequest, why),
    }
}

/// Reads one JSON-RPC message.
pub fn parse(raw: &[u8]) -> Result<Message<'_>, Rejection<'_>> {
    let text = std::str::from_utf8(raw).map_err(|e| Rejection {
        id: None,
        fault: Fault::new(
            ErrorCode::Parse,
            format!("Parse error: invalid UTF-8 at byte {}", e.valid_up_to()),
        ),
    })?;
    let syntax = |e: serde_json::Error| Rejection {
        id: None,
        fault: Fault::new(ErrorCode::Parse, format!("Parse error: {e}")),
    };
    if !text.trim_start().starts_with('{') {
        // Valid JSON that is no object (serde would read an array as a struct).
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(syntax)?;
        return Err(invalid(
            None,
            "Invalid Request: a message must be a JSON object (batches are not supported)",
        ));
    }
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => invalid(None, format!("Invalid Request: {e}")),
            Category::Syntax | Category::Eof | Category::Io => syntax(e),
        }
    })?;
    let id = match env.id {
        None => None,
        Some(id) if is_valid_id(id) => Some(id),
        Some(_) => {
            return Err(invalid(
                None,
                "Invalid Request: id must be a string or a number",
            ));
        }
    };
    if env.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
        return Err(invalid(id, "Invalid Request: jsonrpc must be \"2.0\""));
    }
    let Some(method) = env.method else {
        return match (id, env.result.is_some() || env.error.is_some()) {
            (Some(_), true) => Ok(Message::Response),
            _ => Err(invalid(id, "Invalid Request: no method")),
        };
    };
    let method: Cow<'_, str> = match serde_json::from_str(method.get()) {
        Ok(m) => m,
        Err(_) => return Err(invalid(id, "Invalid Request: method must be a string")),
    };
    if let Some(params) = env.params
        && !matches!(params.get().as_bytes().first(), Some(b'{' | b'['))
    {
        return Err(invalid(
            id,
            "Invalid Request: params must be an object or an array",
        ));
    }
    Ok(match id {
        Some(id) => Message::Request(Request {
            id,
            method,
            params: env.params,
        }),
        None => Message::Notification { method },
    })
}

fn is_valid_id(id: &RawValue) -> bool {
    matches!(id.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9'))
}
