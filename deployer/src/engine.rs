//! The connection to the Docker Engine: version negotiation and error classification.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{Service, ServiceSpec};
use bollard::query_parameters::UpdateServiceOptionsBuilder;

use crate::error::{DeployError, Result};

/// The label `docker stack` uses to group a stack's objects.
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

/// Connects using DOCKER_HOST or the local socket, and negotiates the API version down to the
/// server's (the client's default is newer than a 20.10 engine accepts).
pub async fn connect() -> Result<Docker> {
    let endpoint =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let docker = Docker::connect_with_defaults().map_err(|e| classify(&endpoint, e))?;
    docker
        .negotiate_version()
        .await
        .map_err(|e| classify(&endpoint, e))
}

fn classify(endpoint: &str, err: bollard::errors::Error) -> DeployError {
    let detail = error_chain(&err);
    let lower = detail.to_ascii_lowercase();
    if lower.contains("permission denied") || lower.contains("os error 13") {
        DeployError::PermissionDenied {
            endpoint: endpoint.to_string(),
        }
    } else {
        DeployError::Unreachable {
            endpoint: endpoint.to_string(),
            detail,
        }
    }
}

/// An error and its sources on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Adds what was being done to an Engine API error.
pub trait EngineContext<T> {
    fn engine(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> EngineContext<T> for std::result::Result<T, bollard::errors::Error> {
    fn engine(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| DeployError::Engine {
            what: what(),
            source,
        })
    }
}

pub fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A filter map `{label: ["com.docker.stack.namespace=<stack>"]}`.
pub fn namespace_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{NAMESPACE_LABEL}={stack}")],
    )])
}

/// Replaces `existing`'s spec, guarded by its version so a concurrent change is not overwritten.
pub async fn replace_service_spec(
    docker: &Docker,
    existing: &Service,
    spec: ServiceSpec,
    what: &str,
) -> Result<()> {
    let name = spec.name.clone().unwrap_or_default();
    let version = existing.version.as_ref().and_then(|v| v.index).unwrap_or(0);
    docker
        .update_service(
            &name,
            spec,
            UpdateServiceOptionsBuilder::default()
                .version(version as i32)
                .build(),
            None,
        )
        .await
        .engine(|| format!("{what} {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_errors_become_unreachable_or_permission_denied() {
        let denied = bollard::errors::Error::IOError {
            err: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(matches!(
            classify("unix:///var/run/docker.sock", denied),
            DeployError::PermissionDenied { .. }
        ));
        let refused = bollard::errors::Error::IOError {
            err: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        let err = classify("unix:///x.sock", refused);
        assert!(matches!(err, DeployError::Unreachable { .. }));
        assert!(err.to_string().contains("DOCKER_HOST"), "{err}");
    }
}
