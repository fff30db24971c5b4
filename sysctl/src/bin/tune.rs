//! `tune verify|apply|revert`: the tuning CLI on its own (the deployer exposes it as `deployer tune`).

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Host tuning profiles: verify, apply (with snapshot), revert")]
struct Cli {
    #[command(subcommand)]
    command: tuning::cli::TuneCommand,
}

fn main() -> ExitCode {
    match tuning::cli::run(Cli::parse().command) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
