//! `replica`: a lean, fast MCP server that speaks what erlmcp speaks.
//!
//! TCP newline-delimited JSON-RPC, Streamable HTTP at `/mcp` (JSON or SSE replies), WebSocket at
//! `/mcp/ws`, health and Prometheus endpoints, erlmcp's lifecycle error codes, fault injection,
//! and [`fleet`] to run several replica processes. The load engine embeds it through
//! [`run_cli`] (re-executing its own binary as a replica) and [`fleet::Fleet`].

mod cli;
mod config;
mod driver;
pub mod fleet;
mod mcp;
mod metrics;
mod outbox;
mod probe;
mod proto;
mod server;
mod sessions;
mod state;

#[cfg(test)]
mod testing;

pub use cli::run_cli;
pub use probe::probe;
pub use server::ready_line;
