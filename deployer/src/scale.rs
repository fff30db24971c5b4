//! `scale SERVICE N`: change the replica count and wait until it holds.

use std::time::Duration;

use bollard::Docker;
use bollard::models::{ServiceSpecMode, ServiceSpecModeReplicated};

use crate::converge::{Outcome, Progress, Watch, wait_converged};
use crate::engine::replace_service_spec;
use crate::error::{DeployError, Result};
use crate::observe::inspect_service;
use crate::plan::restore_healthcheck;
use crate::status::resolve_service;

pub async fn scale(
    docker: &Docker,
    stack: &str,
    service: &str,
    replicas: u64,
    deadline: Duration,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Outcome> {
    let name = resolve_service(docker, stack, service).await?;
    let existing =
        inspect_service(docker, &name)
            .await?
            .ok_or_else(|| DeployError::NoSuchService {
                stack: stack.to_string(),
                service: service.to_string(),
            })?;
    let mut spec = existing.spec.clone().unwrap_or_default();
    if spec
        .mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .is_none()
    {
        return Err(DeployError::Invalid {
            stack: stack.to_string(),
            message: format!(
                "{name} is a global service: it runs one task per node and cannot be scaled"
            ),
        });
    }
    restore_healthcheck(&mut spec);
    spec.mode = Some(ServiceSpecMode {
        replicated: Some(ServiceSpecModeReplicated {
            replicas: Some(replicas as i64),
        }),
        ..Default::default()
    });
    let watch = Watch::new(docker, &name).await?;
    replace_service_spec(docker, &existing, spec, "scaling").await?;
    wait_converged(docker, &[watch], deadline, progress).await
}
