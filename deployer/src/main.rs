//! `deployer`: the MCP cluster on Docker Swarm. Parses the command line and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use deployer::compose::{load_stack, units::parse_duration};
use deployer::converge::print_changes;
use deployer::{down, engine, failover, image, logs, plan, scale, status, up};

#[derive(Parser)]
#[command(
    name = "deployer",
    version,
    about = "Bring the MCP cluster up on Docker Swarm (Engine API only)"
)]
struct Cli {
    /// Stack name: services are `<name>_<service>`, every object carries
    /// `com.docker.stack.namespace=<name>`.
    #[arg(long, global = true, default_value = "erlmcp", env = "DEPLOYER_STACK")]
    name: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or update the stack (initializing a swarm if needed) and wait until it is whole.
    Up {
        #[arg(long, default_value = "stack/docker-compose.swarm.yml")]
        file: PathBuf,
        /// Files merged over --file, in order (e.g. stack/replica.override.yml).
        #[arg(long = "override")]
        overrides: Vec<PathBuf>,
        /// Deploy only these services (comma-separated), with the networks/configs/secrets they use.
        #[arg(long, value_delimiter = ',')]
        services: Option<Vec<String>>,
        /// Address to advertise if a swarm is initialized (default: the default route's interface).
        #[arg(long)]
        advertise_addr: Option<String>,
        /// Let the engine resolve images itself (multi-node swarms whose workers hold the images).
        #[arg(long)]
        skip_image_check: bool,
        #[arg(long, default_value = "300s", value_parser = duration)]
        timeout: Duration,
    },
    /// Services of the stack: desired/running/healthy, update state, failing tasks.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Set a service's replica count and wait until it holds.
    Scale {
        service: String,
        replicas: u64,
        #[arg(long, default_value = "300s", value_parser = duration)]
        timeout: Duration,
    },
    /// Kill running task containers and measure the time until the service is whole again.
    Failover {
        /// Service to hit (default: the replicated service with the most replicas).
        #[arg(long)]
        service: Option<String>,
        #[arg(long, default_value_t = 1)]
        kill: usize,
        #[arg(long, default_value = "300s", value_parser = duration)]
        timeout: Duration,
        #[arg(long)]
        json: bool,
    },
    /// A service's output.
    Logs {
        service: String,
        #[arg(long)]
        tail: Option<u64>,
    },
    /// Remove every object labelled with the stack's namespace, and wait until they are gone.
    Down {
        #[arg(long, default_value = "120s", value_parser = duration)]
        timeout: Duration,
    },
    /// Build images through the Engine API.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Host tuning: verify, apply (after a snapshot) or revert a sysctl profile (100k, server).
    #[command(subcommand)]
    Tune(tuning::cli::TuneCommand),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// A FROM-scratch image holding the workspace's `replica` binary.
    Replica {
        /// The binary (default: the newest target/release/replica under CARGO_TARGET_DIR or the workspace).
        #[arg(long)]
        binary: Option<PathBuf>,
        #[arg(long, default_value = image::DEFAULT_REPLICA_TAG)]
        tag: String,
    },
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).map(|ns| Duration::from_nanos(ns.max(0) as u64))
}

fn say(line: &str) {
    eprintln!("{line}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("deployer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct UpArgs {
    files: Vec<PathBuf>,
    services: Option<Vec<String>>,
    opts: up::UpOptions,
}

async fn run_up(stack: &str, args: UpArgs) -> Result<ExitCode> {
    // Read and check the stack before touching the engine.
    let loaded = load_stack(&args.files, &|name: &str| {
        if name == "STACK_NAME" {
            Some(stack.to_string())
        } else {
            std::env::var(name).ok()
        }
    })?;
    let planned = plan::plan_stack(stack, &loaded, args.services.as_deref())?;
    let docker = engine::connect().await?;
    let report = up::up(&docker, &planned, &args.opts, &say, &mut print_changes(say)).await?;
    eprintln!(
        "stack {stack}: {} created, {} updated, {} unchanged; whole after {:.1}s",
        report.created.len(),
        report.updated.len(),
        report.unchanged.len(),
        report.converged_in_s
    );
    if report.rolled_back.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for (service, reason) in &report.rolled_back {
        eprintln!("deployer: update of {service} failed and was rolled back by Swarm: {reason}");
    }
    Ok(ExitCode::from(3))
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let stack = cli.name.as_str();
    match cli.command {
        Command::Tune(cmd) => {
            let code = tuning::cli::run(cmd)?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Command::Up {
            file,
            overrides,
            services,
            advertise_addr,
            skip_image_check,
            timeout,
        } => {
            let files = std::iter::once(file).chain(overrides).collect();
            let opts = up::UpOptions {
                advertise_addr,
                skip_image_check,
                deadline: timeout,
            };
            run_up(
                stack,
                UpArgs {
                    files,
                    services,
                    opts,
                },
            )
            .await
        }
        Command::Image(ImageCommand::Replica { binary, tag }) => {
            let binary = image::locate_replica_binary(binary.as_deref())?;
            let docker = engine::connect().await?;
            let built = image::build_replica_image(&docker, &binary, &tag, &say)
                .await
                .with_context(|| format!("building {tag}"))?;
            println!("{} {}", built.tag, built.id);
            Ok(ExitCode::SUCCESS)
        }
        other => {
            let docker = engine::connect().await?;
            run_on_engine(&docker, stack, other).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_on_engine(docker: &bollard::Docker, stack: &str, command: Command) -> Result<()> {
    match command {
        Command::Status { json } => {
            let states = status::status(docker, stack).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&states)?);
            } else if states.is_empty() {
                println!("stack {stack} has no services");
            } else {
                print!("{}", status::render_table(&states));
            }
        }
        Command::Scale {
            service,
            replicas,
            timeout,
        } => {
            let outcome = scale::scale(
                docker,
                stack,
                &service,
                replicas,
                timeout,
                &mut print_changes(say),
            )
            .await?;
            println!(
                "{service}: {replicas} replicas, whole after {:.1}s",
                outcome.elapsed.as_secs_f64()
            );
        }
        Command::Failover {
            service,
            kill,
            timeout,
            json,
        } => {
            let report = failover::failover(
                docker,
                stack,
                service.as_deref(),
                kill,
                timeout,
                &mut print_changes(say),
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{}: killed {} ({}); back to {}/{} healthy after {:.2}s",
                    report.service,
                    report.killed.len(),
                    report.killed.join(", "),
                    report.healthy_after,
                    report.desired,
                    report.recovery_s
                );
            }
        }
        Command::Logs { service, tail } => {
            logs::logs(docker, stack, &service, tail, &mut std::io::stdout().lock()).await?;
        }
        Command::Down { timeout } => {
            let report = down::down(docker, stack, timeout, &say).await?;
            println!(
                "stack {stack} removed: {} services, {} networks, {} configs, {} secrets in {:.1}s",
                report.services.len(),
                report.networks.len(),
                report.configs.len(),
                report.secrets.len(),
                report.elapsed_s
            );
        }
        Command::Up { .. } | Command::Image(_) | Command::Tune(_) => {
            unreachable!("run() handles these")
        }
    }
    Ok(())
}
