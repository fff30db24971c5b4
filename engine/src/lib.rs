//! The load engine: plan, shards, reactors, metrics and reports around a sans-IO protocol core.

pub mod cli;
pub mod flags;
pub mod fleet;
pub mod layout;
pub mod metrics;
pub mod plan;
pub mod proto;
pub mod reactor;
pub mod run;
pub mod shard;
pub mod source_ips;
pub mod summary;
pub mod supervisor;
pub mod sys;
pub mod target;
pub mod worker;
