//! `logs SERVICE [--tail N]`: the service's task output through the Engine API.

use std::io::Write;

use bollard::Docker;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

use crate::engine::EngineContext;
use crate::error::{DeployError, Result};
use crate::status::resolve_service;

pub async fn logs(
    docker: &Docker,
    stack: &str,
    service: &str,
    tail: Option<u64>,
    out: &mut dyn Write,
) -> Result<()> {
    let name = resolve_service(docker, stack, service).await?;
    let tail = tail.map(|n| n.to_string()).unwrap_or_else(|| "all".into());
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&tail)
        .build();
    let mut stream = docker.service_logs(&name, Some(options));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.engine(|| format!("reading logs of {name}"))?;
        match out.write_all(&chunk.into_bytes()) {
            Ok(()) => {}
            // The reader went away (`deployer logs ... | head`): stop quietly.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(DeployError::io("writing logs", e)),
        }
    }
    Ok(())
}
