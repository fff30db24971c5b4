//! Every way a deployer operation can fail, each with a message that says what to do next.

use crate::compose::ComposeError;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Compose(#[from] ComposeError),

    #[error(
        "cannot reach the Docker engine at {endpoint}: {detail}; start dockerd or point DOCKER_HOST at a running engine"
    )]
    Unreachable { endpoint: String, detail: String },

    #[error(
        "permission denied talking to the Docker engine at {endpoint}: run as root or as a member of the `docker` group"
    )]
    PermissionDenied { endpoint: String },

    #[error("Docker engine: {what}: {source}")]
    Engine {
        what: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error("swarm: {0}")]
    Swarm(String),

    #[error("stack `{stack}`: {message}")]
    Invalid { stack: String, message: String },

    #[error("{}", missing_images(.0))]
    ImagesMissing(Vec<MissingImage>),

    #[error("not whole within {waited_s:.0}s: {detail}")]
    NotConverged {
        service: String,
        waited_s: f64,
        detail: String,
    },

    #[error("`down` of stack {stack} did not finish within {waited_s:.0}s: {detail}")]
    DownTimeout {
        stack: String,
        waited_s: f64,
        detail: String,
    },

    #[error("update of service {service} failed and was rolled back by Swarm: {reason}")]
    RolledBack { service: String, reason: String },

    #[error("no service {service} in stack {stack}: `deployer status --name {stack}` lists them")]
    NoSuchService { stack: String, service: String },

    #[error("failover: {0}")]
    Failover(String),

    #[error("image build: {0}")]
    Build(String),

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct MissingImage {
    pub service: String,
    pub image: String,
}

fn missing_images(missing: &[MissingImage]) -> String {
    let list = missing
        .iter()
        .map(|m| format!("{} (service {})", m.image, m.service))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "image(s) not present on this node: {list}. No registry is reachable from this engine, so \
         nothing can be pulled: build the replica image with `deployer image replica`, or load an \
         image saved elsewhere with `docker load -i IMAGE.tar` on every node that runs the service \
         (or deploy only the services whose images exist with `--services`)"
    )
}

pub type Result<T, E = DeployError> = std::result::Result<T, E>;

impl DeployError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        DeployError::Io {
            what: what.into(),
            source,
        }
    }
}
