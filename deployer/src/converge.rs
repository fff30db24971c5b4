//! Waiting until services are whole (every desired task running and healthy), with a deadline,
//! a progress callback, and the Engine's reason when they are not.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ServiceUpdateStatusStateEnum;

use crate::error::{DeployError, Result};
use crate::observe::{ServiceState, failed_task_ids, observe};

/// One service to wait for.
#[derive(Debug, Clone)]
pub struct Watch {
    pub name: String,
    /// Failed tasks seen before the operation: not this operation's failures.
    pub known_failed: HashSet<String>,
    /// Set when this operation changed the spec: a rollback then means the change failed.
    pub updated: Option<UpdateMark>,
    /// Tasks that must be gone (killed by a failover) before the service counts as whole again.
    pub replaced: HashSet<String>,
}

/// The service's update status before this operation, to tell a new rollback from an old one.
#[derive(Debug, Clone)]
pub struct UpdateMark {
    pub started_before: Option<String>,
}

impl Watch {
    pub async fn new(docker: &Docker, name: &str) -> Result<Watch> {
        Ok(Watch {
            name: name.to_string(),
            known_failed: failed_task_ids(docker, name).await?,
            updated: None,
            replaced: HashSet::new(),
        })
    }
}

/// A snapshot handed to the progress callback.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub elapsed: Duration,
    pub services: &'a [ServiceState],
}

impl Progress<'_> {
    /// `erlmcp 8/12 running, 6 healthy | traefik 1/1 running, 1 healthy`
    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .services
            .iter()
            .map(|s| {
                let mut part = format!(
                    "{} {}/{} running, {} healthy",
                    s.name, s.running, s.desired, s.healthy
                );
                if s.outdated > 0 {
                    part.push_str(&format!(", {} on the previous spec", s.outdated));
                }
                if let Some(state) = &s.update_state
                    && state != "completed"
                {
                    part.push_str(&format!(", update {state}"));
                }
                if !s.is_converged()
                    && let Some(reason) = s.reason()
                {
                    part.push_str(&format!(" [{reason}]"));
                }
                part
            })
            .collect();
        format!(
            "[{:6.1}s] {}",
            self.elapsed.as_secs_f64(),
            parts.join(" | ")
        )
    }
}

/// What came of a wait: services that converged, and those whose update Swarm rolled back.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub elapsed: Duration,
    pub services: Vec<ServiceState>,
    pub rolled_back: Vec<(String, String)>,
}

pub const POLL: Duration = Duration::from_millis(500);

pub async fn wait_converged(
    docker: &Docker,
    watches: &[Watch],
    deadline: Duration,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Outcome> {
    let start = Instant::now();
    let whole = |w: &Watch, s: &ServiceState| {
        s.is_converged()
            && !s
                .running_tasks
                .iter()
                .any(|t| w.replaced.contains(&t.task_id))
    };
    loop {
        let mut states = Vec::with_capacity(watches.len());
        for w in watches {
            match observe(docker, &w.name, &w.known_failed).await? {
                Some(state) => states.push(state),
                None => {
                    return Err(DeployError::NotConverged {
                        service: w.name.clone(),
                        waited_s: start.elapsed().as_secs_f64(),
                        detail: format!("{}: the service disappeared while waiting for it", w.name),
                    });
                }
            }
        }
        let elapsed = start.elapsed();
        progress(&Progress {
            elapsed,
            services: &states,
        });

        let mut rolled_back = Vec::new();
        let mut all_done = true;
        for (w, s) in watches.iter().zip(&states) {
            let new_rollback = w.updated.as_ref().is_some_and(|mark| {
                s.update_state
                    .as_deref()
                    .is_some_and(|st| st.starts_with("rollback"))
                    && s.update_started_at != mark.started_before
            });
            if new_rollback && s.update_state_is(ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED) {
                return Err(DeployError::RolledBack {
                    service: s.name.clone(),
                    reason: format!(
                        "{}; the rollback itself paused, so the service needs attention",
                        rollback_reason(s)
                    ),
                });
            }
            if s.update_state_is(ServiceUpdateStatusStateEnum::PAUSED) && w.updated.is_some() {
                return Err(DeployError::NotConverged {
                    service: s.name.clone(),
                    waited_s: elapsed.as_secs_f64(),
                    detail: format!(
                        "{}: the update paused: {}",
                        s.name,
                        s.reason().or(s.update_message.clone()).unwrap_or_default()
                    ),
                });
            }
            if !whole(w, s) {
                all_done = false;
            } else if new_rollback {
                rolled_back.push((s.name.clone(), rollback_reason(s)));
            }
        }
        if all_done {
            return Ok(Outcome {
                elapsed,
                services: states,
                rolled_back,
            });
        }
        if elapsed >= deadline {
            let stuck: Vec<&ServiceState> = watches
                .iter()
                .zip(&states)
                .filter(|(w, s)| !whole(w, s))
                .map(|(_, s)| s)
                .collect();
            return Err(DeployError::NotConverged {
                service: stuck
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                waited_s: elapsed.as_secs_f64(),
                detail: stuck
                    .iter()
                    .map(|s| {
                        format!(
                            "{}: {}/{} running, {} healthy; {}",
                            s.name,
                            s.running,
                            s.desired,
                            s.healthy,
                            s.reason()
                                .unwrap_or_else(|| "no task reported an error".into())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" | "),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn rollback_reason(s: &ServiceState) -> String {
    let message = s.update_message.clone().unwrap_or_default();
    match s.failed.first() {
        Some(p) => format!("task {} {}: {} ({message})", p.task, p.state, p.reason),
        None => message,
    }
}

/// A progress callback that prints a line whenever the picture changes.
pub fn print_changes(out: impl Fn(&str)) -> impl FnMut(&Progress) {
    let mut last = String::new();
    move |p: &Progress| {
        let line = p.line();
        let picture = line
            .split_once("] ")
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default();
        if picture != last {
            out(&line);
            last = picture;
        }
    }
}
