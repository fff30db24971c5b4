//! The MCP methods this server offers: lifecycle, ping, three tools and one resource.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Number;
use serde_json::value::RawValue;

use super::{Fault, Lifecycle, Request, Version};
use crate::metrics::{ErrorCode, Method};
use crate::state::Worker;

/// The longest `sleep` a client may ask for.
pub const MAX_SLEEP_MS: u64 = 60_000;

pub const RESOURCE_URI: &str = "replica://identity";

/// A successful result, rendered by `render::write_result`.
#[derive(Debug, PartialEq)]
pub enum Answer<'a> {
    Empty,
    Initialized(Version),
    ToolsList,
    ResourcesList,
    ResourceRead,
    Text(Cow<'a, str>),
    Slept(u64),
}

impl Answer<'_> {
    pub fn extra_delay(&self) -> Duration {
        match self {
            Answer::Slept(ms) => Duration::from_millis(*ms),
            _ => Duration::ZERO,
        }
    }
}

fn invalid_params(why: impl Into<String>) -> Fault {
    Fault::new(ErrorCode::InvalidParams, why)
}

/// Parses `params` (absent counts as `{}`) into `T`, naming the method on failure.
fn params<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>, what: &str) -> Result<T, Fault> {
    let text = raw.map_or("{}", RawValue::get);
    serde_json::from_str(text)
        .map_err(|e| invalid_params(format!("Invalid params for {what}: {e}")))
}

#[derive(Deserialize)]
struct InitializeParams<'a> {
    #[serde(rename = "protocolVersion", borrow, default)]
    protocol_version: Option<Cow<'a, str>>,
    #[serde(rename = "clientInfo", borrow, default)]
    client_info: Option<ClientInfo<'a>>,
}

#[derive(Deserialize)]
struct ClientInfo<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    name: Cow<'a, str>,
}

pub fn initialize<'a>(
    raw: Option<&'a RawValue>,
    life: &mut Lifecycle,
    w: &Worker,
) -> Result<Answer<'a>, Fault> {
    if life.version.is_some() {
        return Err(Fault::new(
            ErrorCode::NotInitialized,
            "Already initialized: initialize may be sent once per session",
        ));
    }
    let p: InitializeParams<'_> = params(raw, "initialize")?;
    if p.client_info.is_none() {
        return Err(invalid_params("Invalid params: clientInfo is required"));
    }
    let Some(requested) = p.protocol_version else {
        return Err(invalid_params(
            "Invalid params: protocolVersion is required",
        ));
    };
    let accepted = w.behaviour().versions;
    match Version::parse(&requested).filter(|v| accepted.accepts(*v)) {
        Some(v) => {
            life.version = Some(v);
            Ok(Answer::Initialized(v))
        }
        None => {
            let supported: Vec<&str> = Version::ALL
                .into_iter()
                .filter(|v| accepted.accepts(*v))
                .map(Version::as_str)
                .collect();
            Err(Fault {
                code: ErrorCode::UnsupportedVersion,
                message: format!("Unsupported protocol version {requested:?}"),
                data: Some(
                    serde_json::json!({"supported": supported, "requested": requested}).to_string(),
                ),
            })
        }
    }
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EchoArgs<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

#[derive(Deserialize)]
struct AddArgs {
    a: Number,
    b: Number,
}

#[derive(Deserialize)]
struct SleepArgs {
    ms: u64,
}

#[derive(Deserialize)]
struct ReadParams<'a> {
    #[serde(borrow)]
    uri: Cow<'a, str>,
}

/// Every method after `initialize`.
pub fn call<'a>(method: Method, request: &Request<'a>) -> Result<Answer<'a>, Fault> {
    match method {
        Method::Ping => Ok(Answer::Empty),
        Method::ToolsList => Ok(Answer::ToolsList),
        Method::ToolsCall => call_tool(params(request.params, "tools/call")?),
        Method::ResourcesList => Ok(Answer::ResourcesList),
        Method::ResourcesRead => {
            let p: ReadParams<'_> = params(request.params, "resources/read")?;
            if p.uri == RESOURCE_URI {
                Ok(Answer::ResourceRead)
            } else {
                Err(Fault {
                    code: ErrorCode::ResourceNotFound,
                    message: format!("Resource not found: {}", p.uri),
                    data: Some(serde_json::json!({ "uri": p.uri }).to_string()),
                })
            }
        }
        Method::Initialize
        | Method::Initialized
        | Method::OtherRequest
        | Method::OtherNotification => Err(Fault::new(
            ErrorCode::MethodNotFound,
            format!("Method not found: {}", request.method),
        )),
    }
}

fn call_tool(p: CallParams<'_>) -> Result<Answer<'_>, Fault> {
    match &*p.name {
        "echo" => {
            let args: EchoArgs<'_> = params(p.arguments, "tool echo")?;
            Ok(Answer::Text(args.text))
        }
        "add" => {
            let args: AddArgs = params(p.arguments, "tool add")?;
            Ok(Answer::Text(Cow::Owned(add(&args.a, &args.b)?)))
        }
        "sleep" => {
            let args: SleepArgs = params(p.arguments, "tool sleep")?;
            if args.ms > MAX_SLEEP_MS {
                return Err(invalid_params(format!(
                    "Invalid params for tool sleep: ms must be at most {MAX_SLEEP_MS}"
                )));
            }
            Ok(Answer::Slept(args.ms))
        }
        other => Err(invalid_params(format!("Unknown tool: {other}"))),
    }
}

/// `a + b` as JSON number text: exact for integers, else floating point.
fn add(a: &Number, b: &Number) -> Result<String, Fault> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64())
        && let Some(sum) = x.checked_add(y)
    {
        return Ok(sum.to_string());
    }
    let sum = a.as_f64().unwrap_or(f64::NAN) + b.as_f64().unwrap_or(f64::NAN);
    Number::from_f64(sum).map(|n| n.to_string()).ok_or_else(|| {
        invalid_params("Invalid params for tool add: the sum is not a finite number")
    })
}
