//! `status`: every service of the stack with running/desired/healthy counts and update state.

use std::collections::HashSet;

use bollard::Docker;
use bollard::models::Service;
use bollard::query_parameters::ListServicesOptionsBuilder;

use crate::engine::{EngineContext, namespace_filter};
use crate::error::{DeployError, Result};
use crate::observe::{ServiceState, observe};
use crate::plan::scoped;

pub async fn stack_services(docker: &Docker, stack: &str) -> Result<Vec<Service>> {
    let filters = namespace_filter(stack);
    let mut services = docker
        .list_services(Some(
            ListServicesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .engine(|| format!("listing services of stack {stack}"))?;
    services.sort_by_key(|s| s.spec.as_ref().and_then(|s| s.name.clone()));
    Ok(services)
}

pub async fn status(docker: &Docker, stack: &str) -> Result<Vec<ServiceState>> {
    let mut out = Vec::new();
    for svc in stack_services(docker, stack).await? {
        let Some(name) = svc.spec.and_then(|s| s.name) else {
            continue;
        };
        // Failures older than the last hour's worth of tasks are still history: show them all.
        if let Some(state) = observe(docker, &name, &HashSet::new()).await? {
            out.push(state);
        }
    }
    Ok(out)
}

/// `erlmcp` or `<stack>_erlmcp` -> the Swarm name, checked to belong to the stack.
pub async fn resolve_service(docker: &Docker, stack: &str, service: &str) -> Result<String> {
    let prefix = format!("{stack}_");
    let name = if service.starts_with(&prefix) {
        service.to_string()
    } else {
        scoped(stack, service)
    };
    let known = stack_services(docker, stack).await?;
    if known
        .iter()
        .any(|s| s.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(&name))
    {
        Ok(name)
    } else {
        Err(DeployError::NoSuchService {
            stack: stack.to_string(),
            service: service.to_string(),
        })
    }
}

/// A table: one row per service.
pub fn render_table(states: &[ServiceState]) -> String {
    let mut out = format!(
        "{:<28} {:>7} {:>7} {:>7}  {:<20} {}\n",
        "SERVICE", "DESIRED", "RUNNING", "HEALTHY", "UPDATE", "IMAGE"
    );
    for s in states {
        out.push_str(&format!(
            "{:<28} {:>7} {:>7} {:>7}  {:<20} {}\n",
            s.name,
            s.desired,
            s.running,
            s.healthy,
            s.update_state.as_deref().unwrap_or("-"),
            s.image
        ));
        if !s.is_converged()
            && let Some(reason) = s.reason()
        {
            out.push_str(&format!("    ! {reason}\n"));
        }
    }
    out
}
