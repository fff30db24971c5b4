//! Host tuning for 100K-connection load tests.
//!
//! - [`profile`]: sysctl.d profiles (`100k`, `server`, or a file) with per-key comparison rules.
//! - [`verify()`], [`apply()`], [`revert()`]: check, change (after a snapshot) and restore a sysctl tree.
//! - [`rlimit`]: RLIMIT_NOFILE helpers and the per-process fd budget.
//! - [`preflight`]: the engine's check of a plan against the live limits.
//! - [`cli`]: `tune verify|apply|revert`, for `deployer tune`.

pub mod apply;
pub mod cli;
pub mod key;
pub mod lock;
pub mod preflight;
pub mod profile;
pub mod revert;
pub mod rlimit;
pub mod rule;
pub mod snapshot;
pub mod store;
mod table;
pub mod verify;

pub use apply::{ApplyOptions, ApplyReport, apply};
pub use key::Key;
pub use preflight::{Finding, PlanFacts, Report, Severity, preflight, preflight_live};
pub use profile::Profile;
pub use revert::{RevertReport, revert};
pub use rlimit::NofileLimits;
pub use rule::Rule;
pub use store::{SysRoot, SysctlStore};
pub use verify::{VerifyReport, verify};
