//! `up`: swarm, networks, configs, secrets and services of a stack, applied idempotently, then a
//! wait until every service is whole.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{SecretSpec, ServiceSpec};
use bollard::query_parameters::{
    ListConfigsOptionsBuilder, ListNetworksOptionsBuilder, ListSecretsOptionsBuilder,
};
use rand::Rng;
use serde::Serialize;

use crate::converge::{Outcome, Progress, UpdateMark, Watch, wait_converged};
use crate::engine::{
    EngineContext, NAMESPACE_LABEL, is_not_found, namespace_filter, replace_service_spec,
};
use crate::error::{DeployError, MissingImage, Result};
use crate::observe::inspect_service;
use crate::plan::{SPEC_HASH_LABEL, ServicePlan, StackPlan, encode_secret};
use crate::swarm::{SwarmOutcome, ensure_manager};

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub advertise_addr: Option<String>,
    pub skip_image_check: bool,
    pub deadline: Duration,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct UpReport {
    pub swarm_initialized: Option<String>,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub converged_in_s: f64,
    /// Services whose update failed and which Swarm rolled back, with the reason.
    pub rolled_back: Vec<(String, String)>,
}

/// Events worth a line on the console.
pub type Say<'a> = &'a dyn Fn(&str);

pub async fn up(
    docker: &Docker,
    plan: &StackPlan,
    opts: &UpOptions,
    say: Say<'_>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<UpReport> {
    let mut report = UpReport::default();
    // Before anything changes, the swarm included.
    if !opts.skip_image_check {
        check_images(docker, plan).await?;
    }
    if let SwarmOutcome::Initialized { advertise_addr } =
        ensure_manager(docker, opts.advertise_addr.as_deref()).await?
    {
        say(&format!(
            "initialized a single-node swarm advertising {advertise_addr}"
        ));
        report.swarm_initialized = Some(advertise_addr);
    }
    ensure_networks(docker, plan, say).await?;
    let config_ids = ensure_configs(docker, plan, say).await?;
    let secret_ids = ensure_secrets(docker, plan, say).await?;

    let mut watches = Vec::new();
    for svc in &plan.services {
        let spec = with_ids(&svc.spec, &config_ids, &secret_ids);
        let mut watch = Watch::new(docker, &svc.name).await?;
        match inspect_service(docker, &svc.name).await? {
            None => {
                docker
                    .create_service(spec, None)
                    .await
                    .engine(|| format!("creating service {}", svc.name))?;
                say(&format!("created service {}", svc.name));
                report.created.push(svc.name.clone());
            }
            Some(existing) => {
                let current = existing.spec.clone().unwrap_or_default();
                let labels = current.labels.clone().unwrap_or_default();
                if labels.get(NAMESPACE_LABEL) != Some(&plan.stack) {
                    return Err(DeployError::Invalid {
                        stack: plan.stack.clone(),
                        message: format!(
                            "a service named {} exists but is not part of this stack (no {NAMESPACE_LABEL}={} label); remove or rename it",
                            svc.name, plan.stack
                        ),
                    });
                }
                if is_unchanged(svc, &current) {
                    report.unchanged.push(svc.name.clone());
                } else {
                    watch.updated = Some(UpdateMark {
                        started_before: existing
                            .update_status
                            .clone()
                            .and_then(|u| u.started_at)
                            .map(|d| format!("{d:?}")),
                    });
                    replace_service_spec(docker, &existing, spec, "updating service").await?;
                    say(&format!(
                        "updating service {} (rolling, with automatic rollback)",
                        svc.name
                    ));
                    report.updated.push(svc.name.clone());
                }
            }
        }
        watches.push(watch);
    }

    let Outcome {
        elapsed,
        rolled_back,
        ..
    } = wait_converged(docker, &watches, opts.deadline, progress).await?;
    report.converged_in_s = elapsed.as_secs_f64();
    report.rolled_back = rolled_back;
    prune_unused_configs(docker, plan, say).await?;
    Ok(report)
}

/// The file's spec is what runs: same hash label, and nobody scaled the service since.
fn is_unchanged(svc: &ServicePlan, current: &ServiceSpec) -> bool {
    let hash = current.labels.as_ref().and_then(|l| l.get(SPEC_HASH_LABEL));
    let replicas = current
        .mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .map(|n| n as u64);
    hash == Some(&svc.spec_hash) && replicas == svc.replicas
}

pub async fn check_images(docker: &Docker, plan: &StackPlan) -> Result<()> {
    let mut missing = Vec::new();
    for svc in &plan.services {
        match docker.inspect_image(&svc.image).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => missing.push(MissingImage {
                service: svc.name.clone(),
                image: svc.image.clone(),
            }),
            Err(e) => return Err(e).engine(|| format!("inspecting image {}", svc.image)),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DeployError::ImagesMissing(missing))
    }
}

async fn ensure_networks(docker: &Docker, plan: &StackPlan, say: Say<'_>) -> Result<()> {
    let existing = docker
        .list_networks(Some(ListNetworksOptionsBuilder::default().build()))
        .await
        .engine(|| "listing networks".into())?;
    for net in &plan.networks {
        let name = &net.request.name;
        match existing.iter().find(|n| n.name.as_deref() == Some(name)) {
            Some(found) => {
                let ours =
                    found.labels.as_ref().and_then(|l| l.get(NAMESPACE_LABEL)) == Some(&plan.stack);
                if !ours {
                    return Err(DeployError::Invalid {
                        stack: plan.stack.clone(),
                        message: format!(
                            "network {name} exists but is not part of this stack; remove or rename it"
                        ),
                    });
                }
            }
            None => {
                docker
                    .create_network(net.request.clone())
                    .await
                    .engine(|| format!("creating network {name}"))?;
                say(&format!("created network {name}"));
            }
        }
    }
    Ok(())
}

async fn ensure_configs(
    docker: &Docker,
    plan: &StackPlan,
    say: Say<'_>,
) -> Result<HashMap<String, String>> {
    let mut ids = stack_configs(docker, &plan.stack).await?;
    for cfg in &plan.configs {
        if !ids.contains_key(&cfg.name) {
            let created = docker
                .create_config(cfg.spec.clone())
                .await
                .engine(|| format!("creating config {}", cfg.name))?;
            say(&format!("created config {}", cfg.name));
            ids.insert(cfg.name.clone(), created.id);
        }
    }
    Ok(ids)
}

async fn stack_configs(docker: &Docker, stack: &str) -> Result<HashMap<String, String>> {
    let filters = namespace_filter(stack);
    Ok(docker
        .list_configs(Some(
            ListConfigsOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .engine(|| "listing configs".into())?
        .into_iter()
        .filter_map(|c| Some((c.spec?.name?, c.id?)))
        .collect())
}

/// Secrets are created once. A generated one gets 32 random characters that only Swarm keeps.
async fn ensure_secrets(
    docker: &Docker,
    plan: &StackPlan,
    say: Say<'_>,
) -> Result<HashMap<String, String>> {
    let filters = namespace_filter(&plan.stack);
    let mut ids: HashMap<String, String> = docker
        .list_secrets(Some(
            ListSecretsOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .engine(|| "listing secrets".into())?
        .into_iter()
        .filter_map(|s| Some((s.spec?.name?, s.id?)))
        .collect();
    for sec in &plan.secrets {
        if ids.contains_key(&sec.name) {
            continue;
        }
        let value = match &sec.source {
            crate::plan::SecretSource::File(data) => data.clone(),
            crate::plan::SecretSource::Generate => rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(32)
                .map(char::from)
                .collect(),
        };
        let created = docker
            .create_secret(SecretSpec {
                name: Some(sec.name.clone()),
                labels: Some(sec.labels.clone()),
                data: Some(encode_secret(&value)),
                ..Default::default()
            })
            .await
            .engine(|| format!("creating secret {}", sec.name))?;
        say(&format!(
            "created secret {} (value kept in Swarm only)",
            sec.name
        ));
        ids.insert(sec.name.clone(), created.id);
    }
    Ok(ids)
}

fn with_ids(
    spec: &ServiceSpec,
    config_ids: &HashMap<String, String>,
    secret_ids: &HashMap<String, String>,
) -> ServiceSpec {
    let mut spec = spec.clone();
    if let Some(c) = spec
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
    {
        for cfg in c.configs.iter_mut().flatten() {
            cfg.config_id = cfg
                .config_name
                .as_ref()
                .and_then(|n| config_ids.get(n))
                .cloned();
        }
        for sec in c.secrets.iter_mut().flatten() {
            sec.secret_id = sec
                .secret_name
                .as_ref()
                .and_then(|n| secret_ids.get(n))
                .cloned();
        }
    }
    spec
}

/// Configs of this stack that no service of the stack references any more (older contents).
async fn prune_unused_configs(docker: &Docker, plan: &StackPlan, say: Say<'_>) -> Result<()> {
    let configs = stack_configs(docker, &plan.stack).await?;
    let services = crate::status::stack_services(docker, &plan.stack).await?;
    let used: HashSet<String> = services
        .iter()
        .filter_map(|s| {
            s.spec
                .as_ref()?
                .task_template
                .as_ref()?
                .container_spec
                .as_ref()
        })
        .flat_map(|c| c.configs.iter().flatten())
        .filter_map(|c| c.config_id.clone())
        .collect();
    for (name, id) in configs {
        if !used.contains(&id) {
            match docker.delete_config(&id).await {
                Ok(()) => say(&format!("removed unused config {name}")),
                // Still referenced by a task that is shutting down: removed on a later `up`/`down`.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 400 | 409,
                    ..
                }) => {}
                Err(e) => return Err(e).engine(|| format!("removing config {name}")),
            }
        }
    }
    Ok(())
}
