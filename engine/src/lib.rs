//! The load engine: plan, shards, reactors, metrics and reports around a sans-IO protocol core.

pub mod proto;
