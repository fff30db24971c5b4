//! Session tests: bytes and time in, bytes and events out, per transport.

pub mod harness;

mod alloc;
mod fuzz;
mod http;
mod open;
mod tcp;
mod ws;
