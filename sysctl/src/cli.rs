//! `tune verify|apply|revert`: clap arguments and the runner the deployer binary calls.
//!
//! Exit codes: 0 all ok, 1 not all ok / partial / nothing to revert, 2 usage error (bad profile,
//! snapshot from another root). clap itself exits 2 on malformed arguments.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::apply::{ApplyOptions, SYSCTL_D, apply, persist_path};
use crate::profile::{Profile, ProfileError};
use crate::revert::{RevertError, revert};
use crate::rlimit::NofileLimits;
use crate::snapshot::{DEFAULT_STATE, SnapshotError};
use crate::store::{PROC_SYS, SysRoot};
use crate::verify::verify;

/// Exit code: everything ok.
pub const EXIT_OK: i32 = 0;
/// Exit code: some setting not ok, applied partially, or nothing to revert.
pub const EXIT_NOT_OK: i32 = 1;
/// Exit code: the command line or its inputs are wrong.
pub const EXIT_USAGE: i32 = 2;

/// Host tuning commands.
#[derive(Debug, Clone, Subcommand)]
pub enum TuneCommand {
    /// Compare the host with a profile: key / current / wanted / ok, plus RLIMIT_NOFILE. Exit 0 only when all ok.
    Verify {
        #[command(flatten)]
        profile: ProfileArg,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Snapshot the current values (kept if one exists), then write the profile to /proc/sys.
    Apply {
        #[command(flatten)]
        profile: ProfileArg,
        /// Print what would change; write nothing, take no snapshot.
        #[arg(long)]
        dry_run: bool,
        /// Also write the profile to <persist-dir>/mcp-load-<profile>.conf so it is applied at boot.
        #[arg(long)]
        persist: bool,
        /// Directory for --persist.
        #[arg(long, default_value = SYSCTL_D, value_name = "DIR")]
        persist_dir: PathBuf,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        state: StateArg,
    },
    /// Restore exactly the values saved by the first apply, then delete the snapshot.
    Revert {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        state: StateArg,
    },
}

/// Which profile.
#[derive(Debug, Clone, Args)]
pub struct ProfileArg {
    /// A built-in profile (100k: load host, server: replica/proxy nodes) or a path to a sysctl.d file.
    #[arg(long, default_value = "100k", value_name = "100k|server|PATH")]
    pub profile: String,
}

/// Where and how.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The sysctl tree (a fake one for tests).
    #[arg(long, default_value = PROC_SYS, value_name = "DIR")]
    pub root: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The snapshot state file.
#[derive(Debug, Clone, Args)]
pub struct StateArg {
    /// Where apply saves the previous values and revert reads them.
    #[arg(long, default_value = DEFAULT_STATE, value_name = "FILE")]
    pub state: PathBuf,
}

/// Runs one command, printing its table (or JSON) to stdout; returns the exit code.
/// Usage errors are printed to stderr and return [`EXIT_USAGE`]; I/O failures are errors.
pub fn run(command: TuneCommand) -> anyhow::Result<i32> {
    match execute(command) {
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            Ok(EXIT_USAGE)
        }
        Err(Failure::NotOk(message)) => {
            eprintln!("{message}");
            Ok(EXIT_NOT_OK)
        }
        Err(Failure::Fatal(err)) => Err(err),
        Ok(code) => Ok(code),
    }
}

enum Failure {
    Usage(String),
    NotOk(String),
    Fatal(anyhow::Error),
}

impl From<ProfileError> for Failure {
    fn from(err: ProfileError) -> Failure {
        Failure::Usage(err.to_string())
    }
}

impl From<SnapshotError> for Failure {
    fn from(err: SnapshotError) -> Failure {
        match err {
            SnapshotError::OtherRoot { .. } | SnapshotError::Corrupt { .. } => {
                Failure::Usage(err.to_string())
            }
            other => Failure::Fatal(other.into()),
        }
    }
}

fn execute(command: TuneCommand) -> Result<i32, Failure> {
    match command {
        TuneCommand::Verify { profile, target } => {
            let profile = Profile::load(&profile.profile)?;
            let limits = NofileLimits::current()
                .context("cannot read RLIMIT_NOFILE")
                .map_err(Failure::Fatal)?;
            let report = verify(&profile, &SysRoot::new(&target.root), &limits);
            print(&report, target.json, || report.render())?;
            Ok(exit_code(report.all_ok()))
        }
        TuneCommand::Apply {
            profile,
            dry_run,
            persist,
            persist_dir,
            target,
            state,
        } => {
            let profile = Profile::load(&profile.profile)?;
            let options = ApplyOptions {
                dry_run,
                state: state.state,
                persist: persist.then(|| persist_path(&persist_dir, &profile.name)),
            };
            let report = match apply(&profile, &SysRoot::new(&target.root), &options) {
                Ok(report) => report,
                Err(crate::apply::ApplyError::Snapshot(err)) => return Err(err.into()),
                Err(err) => return Err(Failure::Fatal(err.into())),
            };
            print(&report, target.json, || report.render())?;
            Ok(exit_code(!report.partial()))
        }
        TuneCommand::Revert { target, state } => {
            let report = match revert(&SysRoot::new(&target.root), &state.state) {
                Ok(report) => report,
                Err(err @ RevertError::NoSnapshot(_)) => {
                    return Err(Failure::NotOk(err.to_string()));
                }
                Err(RevertError::Snapshot(err)) => return Err(err.into()),
                Err(err) => return Err(Failure::Fatal(err.into())),
            };
            print(&report, target.json, || report.render())?;
            Ok(exit_code(!report.partial()))
        }
    }
}

fn exit_code(ok: bool) -> i32 {
    if ok { EXIT_OK } else { EXIT_NOT_OK }
}

fn print<T: Serialize>(
    value: &T,
    json: bool,
    table: impl FnOnce() -> String,
) -> Result<(), Failure> {
    let text = if json {
        serde_json::to_string_pretty(value).map_err(|e| Failure::Fatal(e.into()))? + "\n"
    } else {
        table()
    };
    print!("{text}");
    Ok(())
}
