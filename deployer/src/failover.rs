//! `failover`: kill running task containers and measure how long Swarm takes to make the
//! service whole (full strength, every task healthy) again.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::KillContainerOptionsBuilder;
use serde::Serialize;

use crate::converge::{Progress, Watch, wait_converged};
use crate::engine::{EngineContext, is_not_found};
use crate::error::{DeployError, Result};
use crate::observe::observe;
use crate::status::{resolve_service, stack_services};

#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    pub service: String,
    /// `<service>.<slot>` of every killed task.
    pub killed: Vec<String>,
    pub desired: u64,
    pub healthy_after: u64,
    /// From the first kill until the service was whole again.
    pub recovery_s: f64,
}

pub async fn failover(
    docker: &Docker,
    stack: &str,
    service: Option<&str>,
    kill: usize,
    deadline: Duration,
    progress: &mut dyn FnMut(&Progress),
) -> Result<FailoverReport> {
    let name = match service {
        Some(s) => resolve_service(docker, stack, s).await?,
        None => largest_replicated(docker, stack).await?,
    };
    let mut watch = Watch::new(docker, &name).await?;
    let before = observe(docker, &name, &watch.known_failed)
        .await?
        .ok_or_else(|| DeployError::NoSuchService {
            stack: stack.into(),
            service: name.clone(),
        })?;
    if !before.is_converged() {
        return Err(DeployError::Failover(format!(
            "{name} is not whole before the test ({}/{} running, {} healthy): wait or fix it first",
            before.running, before.desired, before.healthy
        )));
    }
    if kill == 0 || kill as u64 > before.running {
        return Err(DeployError::Failover(format!(
            "--kill {kill}: {name} has {} running tasks; kill between 1 and that many",
            before.running
        )));
    }
    let mut victims = before.running_tasks.clone();
    victims.sort_by_key(|t| t.slot);
    victims.truncate(kill);

    let start = Instant::now();
    let mut killed = Vec::new();
    for v in &victims {
        let container = v.container_id.as_deref().ok_or_else(|| {
            DeployError::Failover(format!("task {} reports no container yet", v.task_id))
        })?;
        match docker
            .kill_container(
                container,
                Some(
                    KillContainerOptionsBuilder::default()
                        .signal("SIGKILL")
                        .build(),
                ),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {
                return Err(DeployError::Failover(format!(
                    "the container of task {} is not on this node: run failover on the node that hosts it",
                    v.task_id
                )));
            }
            Err(e) => return Err(e).engine(|| format!("killing container {container}")),
        }
        watch.replaced.insert(v.task_id.clone());
        killed.push(match v.slot {
            Some(slot) => format!("{name}.{slot}"),
            None => v.task_id.clone(),
        });
    }
    let outcome = wait_converged(docker, &[watch], deadline, progress).await?;
    let recovery = start.elapsed();
    let after = &outcome.services[0];
    Ok(FailoverReport {
        service: name,
        killed,
        desired: after.desired,
        healthy_after: after.healthy,
        recovery_s: recovery.as_secs_f64(),
    })
}

async fn largest_replicated(docker: &Docker, stack: &str) -> Result<String> {
    stack_services(docker, stack)
        .await?
        .into_iter()
        .filter_map(|s| {
            let spec = s.spec?;
            let replicas = spec.mode?.replicated?.replicas?;
            Some((replicas, spec.name?))
        })
        .max()
        .map(|(_, name)| name)
        .ok_or_else(|| {
            DeployError::Failover(format!(
                "stack {stack} has no replicated service; pass --service"
            ))
        })
}
