//! What a service's tasks are doing right now: running, healthy, failing and why.

use std::collections::{HashMap, HashSet};

use bollard::Docker;
use bollard::models::{HealthStatusEnum, Service, ServiceUpdateStatusStateEnum, Task, TaskState};
use bollard::query_parameters::{InspectServiceOptions, ListTasksOptionsBuilder};
use serde::Serialize;

use crate::engine::{EngineContext, is_not_found};
use crate::error::Result;

/// One service's state at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    pub name: String,
    pub image: String,
    pub version: u64,
    pub desired: u64,
    pub running: u64,
    pub healthy: u64,
    /// Running tasks still on a previous spec (a rolling update or rollback is under way).
    pub outdated: u64,
    /// Tasks meant to run that are not running yet, with the Engine's word on why.
    pub waiting: Vec<TaskProblem>,
    /// Tasks that failed or were rejected (newest first).
    pub failed: Vec<TaskProblem>,
    pub update_state: Option<String>,
    pub update_message: Option<String>,
    #[serde(skip)]
    pub update_started_at: Option<String>,
    #[serde(skip)]
    pub running_tasks: Vec<RunningTask>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskProblem {
    pub task_id: String,
    /// `<service>.<slot>`, as `docker service ps` shows it.
    pub task: String,
    pub state: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct RunningTask {
    pub task_id: String,
    pub slot: Option<i64>,
    pub container_id: Option<String>,
}

impl ServiceState {
    pub fn is_converged(&self) -> bool {
        let settled = !matches!(
            self.update_state.as_deref(),
            Some("updating" | "rollback_started" | "paused" | "rollback_paused")
        );
        settled
            && self.running == self.desired
            && self.healthy == self.desired
            && self.outdated == 0
            && self.waiting.is_empty()
    }

    pub fn update_state_is(&self, state: ServiceUpdateStatusStateEnum) -> bool {
        self.update_state.as_deref() == Some(state.as_ref())
    }

    /// The most telling reason the service is not whole: a failed task's error, or why a task waits.
    pub fn reason(&self) -> Option<String> {
        self.failed
            .first()
            .or_else(|| self.waiting.first())
            .map(|p| {
                format!(
                    "task {} ({}) {}: {}",
                    p.task,
                    short(&p.task_id),
                    p.state,
                    p.reason
                )
            })
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub async fn inspect_service(docker: &Docker, name: &str) -> Result<Option<Service>> {
    match docker
        .inspect_service(name, None::<InspectServiceOptions>)
        .await
    {
        Ok(s) => Ok(Some(s)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e).engine(|| format!("inspecting service {name}")),
    }
}

pub async fn service_tasks(docker: &Docker, name: &str) -> Result<Vec<Task>> {
    let filters = HashMap::from([("service", vec![name])]);
    docker
        .list_tasks(Some(
            ListTasksOptionsBuilder::default().filters(&filters).build(),
        ))
        .await
        .engine(|| format!("listing tasks of {name}"))
}

/// Ids of the service's tasks that have already failed, so later observations report only new failures.
pub async fn failed_task_ids(docker: &Docker, name: &str) -> Result<HashSet<String>> {
    if inspect_service(docker, name).await?.is_none() {
        return Ok(HashSet::new());
    }
    Ok(service_tasks(docker, name)
        .await?
        .into_iter()
        .filter(is_failure)
        .filter_map(|t| t.id)
        .collect())
}

fn is_failure(t: &Task) -> bool {
    matches!(
        t.status.as_ref().and_then(|s| s.state),
        Some(TaskState::FAILED | TaskState::REJECTED)
    )
}

/// Observes `name`; failures in `known_failed` are old news and left out.
pub async fn observe(
    docker: &Docker,
    name: &str,
    known_failed: &HashSet<String>,
) -> Result<Option<ServiceState>> {
    let Some(service) = inspect_service(docker, name).await? else {
        return Ok(None);
    };
    let spec = service.spec.clone().unwrap_or_default();
    let image = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let tasks = service_tasks(docker, name).await?;
    let current: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .collect();
    let desired = match spec.mode.as_ref().and_then(|m| m.replicated.as_ref()) {
        Some(r) => r.replicas.unwrap_or(1).max(0) as u64,
        None => current.len() as u64,
    };
    let short_name = |t: &Task| match t.slot {
        Some(slot) => format!("{name}.{slot}"),
        None => format!("{name}.{}", t.node_id.as_deref().map(short).unwrap_or("?")),
    };
    let problem = |t: &Task| {
        let status = t.status.clone().unwrap_or_default();
        let reason = status
            .err
            .filter(|e| !e.is_empty())
            .or(status.message)
            .unwrap_or_default();
        TaskProblem {
            task_id: t.id.clone().unwrap_or_default(),
            task: short_name(t),
            state: status.state.map(|s| s.to_string()).unwrap_or_default(),
            reason,
        }
    };

    let wanted_spec = spec.task_template.as_ref().map(comparable);
    let mut running_tasks = Vec::new();
    let mut waiting = Vec::new();
    let mut outdated = 0;
    for t in &current {
        if t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING) {
            if t.spec.as_ref().map(comparable) != wanted_spec {
                outdated += 1;
            }
            running_tasks.push(RunningTask {
                task_id: t.id.clone().unwrap_or_default(),
                slot: t.slot,
                container_id: t
                    .status
                    .as_ref()
                    .and_then(|s| s.container_status.as_ref())
                    .and_then(|c| c.container_id.clone()),
            });
        } else {
            waiting.push(problem(t));
        }
    }
    let mut healthy = 0;
    for t in &running_tasks {
        if container_is_healthy(docker, t.container_id.as_deref()).await? {
            healthy += 1;
        }
    }

    let mut failed_tasks: Vec<&Task> = tasks
        .iter()
        .filter(|t| is_failure(t))
        .filter(|t| !known_failed.contains(t.id.as_deref().unwrap_or_default()))
        .collect();
    failed_tasks.sort_by(|a, b| {
        let ts = |t: &Task| {
            t.status
                .as_ref()
                .and_then(|s| s.timestamp.clone())
                .unwrap_or_default()
        };
        ts(b).cmp(&ts(a))
    });
    let update = service.update_status.clone().unwrap_or_default();
    Ok(Some(ServiceState {
        name: name.to_string(),
        image,
        version: service.version.and_then(|v| v.index).unwrap_or(0),
        desired,
        running: running_tasks.len() as u64,
        healthy,
        outdated,
        waiting,
        failed: failed_tasks.into_iter().map(problem).collect(),
        update_state: update
            .state
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty()),
        update_message: update.message,
        update_started_at: update.started_at.map(|d| format!("{d:?}")),
        running_tasks,
    }))
}

/// A task spec in a form that compares equal to the service's task template when they are the
/// same: the Engine fills empty defaults (`Placement: {}`, `Runtime: "container"`) on one side only.
fn comparable(spec: &bollard::models::TaskSpec) -> String {
    let mut value = serde_json::to_value(spec).unwrap_or_default();
    if let Some(map) = value.as_object_mut()
        && map.get("Runtime").and_then(|r| r.as_str()) == Some("container")
    {
        map.remove("Runtime");
    }
    crate::plan::canonical_json(&prune_empty(value))
}

fn prune_empty(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, prune_empty(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(prune_empty).collect()),
        other => other,
    }
}

fn is_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Object(m) => m.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// A running task counts as healthy when its container reports `healthy` or has no healthcheck.
/// Swarm itself only marks a task running once its first healthcheck passed; this also catches
/// a container that turned unhealthy since. Containers on other nodes cannot be inspected from
/// here and count on Swarm's word.
async fn container_is_healthy(docker: &Docker, container_id: Option<&str>) -> Result<bool> {
    let Some(id) = container_id else {
        return Ok(true);
    };
    match docker.inspect_container(id, None).await {
        Ok(c) => {
            let health = c.state.and_then(|s| s.health).and_then(|h| h.status);
            Ok(matches!(
                health,
                None | Some(
                    HealthStatusEnum::HEALTHY | HealthStatusEnum::NONE | HealthStatusEnum::EMPTY
                )
            ))
        }
        Err(e) if is_not_found(&e) => Ok(true),
        Err(e) => Err(e).engine(|| format!("inspecting container {id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(n: u64) -> ServiceState {
        ServiceState {
            name: "s_web".into(),
            image: "img".into(),
            version: 1,
            desired: n,
            running: n,
            healthy: n,
            outdated: 0,
            waiting: Vec::new(),
            failed: Vec::new(),
            update_state: None,
            update_message: None,
            update_started_at: None,
            running_tasks: Vec::new(),
        }
    }

    #[test]
    fn converged_means_every_task_running_healthy_and_on_the_current_spec() {
        assert!(whole(12).is_converged());
        // Right after an update call the old tasks still run: not done yet.
        assert!(
            !ServiceState {
                outdated: 12,
                ..whole(12)
            }
            .is_converged()
        );
        assert!(
            !ServiceState {
                healthy: 11,
                ..whole(12)
            }
            .is_converged()
        );
        assert!(
            !ServiceState {
                running: 11,
                healthy: 11,
                ..whole(12)
            }
            .is_converged()
        );
        assert!(
            !ServiceState {
                update_state: Some("updating".into()),
                ..whole(12)
            }
            .is_converged()
        );
        assert!(
            !ServiceState {
                update_state: Some("rollback_started".into()),
                ..whole(12)
            }
            .is_converged()
        );
        assert!(
            ServiceState {
                update_state: Some("rollback_completed".into()),
                ..whole(12)
            }
            .is_converged()
        );
        let waiting = TaskProblem {
            task_id: "t".into(),
            task: "s_web.3".into(),
            state: "pending".into(),
            reason: "no suitable node".into(),
        };
        let pending = ServiceState {
            waiting: vec![waiting],
            ..whole(12)
        };
        assert!(!pending.is_converged());
        assert!(pending.reason().unwrap().contains("s_web.3"));
    }
}
