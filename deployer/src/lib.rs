//! Deploys the MCP cluster on Docker Swarm through the Docker Engine API (bollard): a typed
//! stack file, idempotent `up` with rolling updates and automatic rollback, convergence waits
//! that name the failing task, `scale`, `failover` with measured recovery, `logs` and `down`.

pub mod compose;
pub mod converge;
pub mod down;
pub mod engine;
pub mod error;
pub mod failover;
pub mod image;
pub mod logs;
pub mod observe;
pub mod plan;
pub mod scale;
pub mod status;
pub mod swarm;
pub mod up;

pub use error::{DeployError, Result};
