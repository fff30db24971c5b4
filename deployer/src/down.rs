//! `down`: removes every object carrying the stack's namespace label, and nothing else, then
//! waits until they are gone.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{
    ListConfigsOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListSecretsOptionsBuilder,
};
use serde::Serialize;

use crate::converge::POLL;
use crate::engine::{EngineContext, is_not_found, namespace_filter};
use crate::error::{DeployError, Result};
use crate::status::stack_services;
use crate::up::Say;

#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    pub services: Vec<String>,
    pub networks: Vec<String>,
    pub configs: Vec<String>,
    pub secrets: Vec<String>,
    pub elapsed_s: f64,
}

pub async fn down(
    docker: &Docker,
    stack: &str,
    deadline: Duration,
    say: Say<'_>,
) -> Result<DownReport> {
    let start = Instant::now();
    let mut report = DownReport::default();
    let filters = namespace_filter(stack);
    let timed_out = |what: String| DeployError::DownTimeout {
        stack: stack.to_string(),
        waited_s: start.elapsed().as_secs_f64(),
        detail: what,
    };

    for svc in stack_services(docker, stack).await? {
        let (Some(id), Some(name)) = (svc.id, svc.spec.and_then(|s| s.name)) else {
            continue;
        };
        match docker.delete_service(&id).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e).engine(|| format!("removing service {name}")),
        }
        say(&format!("removed service {name}"));
        report.services.push(name);
    }

    // Task containers must be gone before their networks can be removed.
    loop {
        let containers = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .engine(|| "listing the stack's containers".into())?;
        if containers.is_empty() {
            break;
        }
        if start.elapsed() >= deadline {
            return Err(timed_out(format!(
                "{} task container(s) still present",
                containers.len()
            )));
        }
        tokio::time::sleep(POLL).await;
    }

    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .engine(|| "listing the stack's networks".into())?;
    for net in networks {
        let (Some(id), Some(name)) = (net.id, net.name) else {
            continue;
        };
        // Endpoints of removed tasks detach asynchronously: retry until the deadline.
        loop {
            match docker.remove_network(&id).await {
                Ok(()) => break,
                Err(e) if is_not_found(&e) => break,
                Err(_) if start.elapsed() < deadline => {
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => return Err(e).engine(|| format!("removing network {name}")),
            }
        }
        say(&format!("removed network {name}"));
        report.networks.push(name);
    }

    for cfg in docker
        .list_configs(Some(
            ListConfigsOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .engine(|| "listing the stack's configs".into())?
    {
        let (Some(id), Some(name)) = (cfg.id, cfg.spec.and_then(|s| s.name)) else {
            continue;
        };
        remove_tolerating_absence(docker.delete_config(&id).await, || {
            format!("removing config {name}")
        })?;
        say(&format!("removed config {name}"));
        report.configs.push(name);
    }
    for sec in docker
        .list_secrets(Some(
            ListSecretsOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .engine(|| "listing the stack's secrets".into())?
    {
        let (Some(id), Some(name)) = (sec.id, sec.spec.and_then(|s| s.name)) else {
            continue;
        };
        remove_tolerating_absence(docker.delete_secret(&id).await, || {
            format!("removing secret {name}")
        })?;
        say(&format!("removed secret {name}"));
        report.secrets.push(name);
    }
    report.elapsed_s = start.elapsed().as_secs_f64();
    Ok(report)
}

fn remove_tolerating_absence(
    result: std::result::Result<(), bollard::errors::Error>,
    what: impl FnOnce() -> String,
) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e).engine(what),
    }
}
