//! One compose service -> one Swarm service spec.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit, Mount, MountType,
    NetworkAttachmentConfig, ResourceObject, ResourcesUlimits, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1,
    TaskSpecContainerSpecSecrets, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};

use super::{
    HEALTHCHECK_LABEL, SPEC_HASH_LABEL, ServicePlan, labels_with_namespace, scoped, spec_hash,
};
use crate::compose::model::{
    self, DeployMode, EndpointMode, FailureAction, HealthTest, Protocol, PublishMode,
    RestartCondition, UpdateConfig, UpdateOrder,
};

pub(super) fn service_networks(svc: &model::Service) -> BTreeMap<String, model::NetworkAttachment> {
    if svc.networks.0.is_empty() {
        BTreeMap::from([("default".to_string(), model::NetworkAttachment::default())])
    } else {
        svc.networks.0.clone()
    }
}

pub(super) fn service_plan(
    stack: &str,
    key: &str,
    svc: &model::Service,
    config_names: &BTreeMap<String, String>,
) -> std::result::Result<ServicePlan, String> {
    let here = |field: &str| format!("service `{key}`: field `{field}`");
    let image = svc
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| format!("{}: every service needs an image", here("image")))?;
    let deploy = svc.deploy.clone().unwrap_or_default();
    let mode = deploy.mode.unwrap_or(DeployMode::Replicated);
    if mode == DeployMode::Global && deploy.replicas.is_some() {
        return Err(format!(
            "{}: `replicas` applies to replicated services only",
            here("deploy.mode")
        ));
    }
    let replicas = (mode == DeployMode::Replicated).then(|| deploy.replicas.unwrap_or(1));

    let spec_container_health = svc
        .healthcheck
        .as_ref()
        .map(health_config)
        .transpose()
        .map_err(|m| format!("{}: {m}", here("healthcheck.test")))?;
    let container = TaskSpecContainerSpec {
        image: Some(image.clone()),
        labels: Some(labels_with_namespace(stack, &svc.labels.0)),
        command: svc.entrypoint.as_ref().map(|c| c.0.clone()),
        args: svc.command.as_ref().map(|c| c.0.clone()),
        hostname: svc.hostname.clone(),
        env: (!svc.environment.0.is_empty()).then(|| {
            svc.environment
                .0
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        }),
        dir: svc.working_dir.clone(),
        user: svc.user.clone(),
        mounts: (!svc.volumes.is_empty()).then(|| {
            svc.volumes
                .iter()
                .map(|v| Mount {
                    target: Some(v.target.clone()),
                    source: Some(v.source.clone()),
                    typ: Some(MountType::BIND),
                    read_only: Some(v.read_only),
                    ..Default::default()
                })
                .collect()
        }),
        stop_grace_period: svc.stop_grace_period.map(|d| d.0),
        health_check: spec_container_health.clone(),
        secrets: (!svc.secrets.is_empty()).then(|| {
            svc.secrets
                .iter()
                .map(|r| TaskSpecContainerSpecSecrets {
                    file: Some(TaskSpecContainerSpecFile {
                        name: Some(r.target.clone().unwrap_or_else(|| r.source.clone())),
                        uid: Some(r.uid.clone().unwrap_or_else(|| "0".into())),
                        gid: Some(r.gid.clone().unwrap_or_else(|| "0".into())),
                        mode: Some(r.mode.unwrap_or(0o444)),
                    }),
                    secret_id: None,
                    secret_name: Some(scoped(stack, &r.source)),
                })
                .collect()
        }),
        configs: (!svc.configs.is_empty()).then(|| {
            svc.configs
                .iter()
                .map(|r| TaskSpecContainerSpecConfigs {
                    file: Some(TaskSpecContainerSpecFile1 {
                        name: Some(r.target.clone().unwrap_or_else(|| format!("/{}", r.source))),
                        uid: Some(r.uid.clone().unwrap_or_else(|| "0".into())),
                        gid: Some(r.gid.clone().unwrap_or_else(|| "0".into())),
                        mode: Some(r.mode.unwrap_or(0o444)),
                    }),
                    runtime: None,
                    config_id: None,
                    config_name: Some(config_names[&r.source].clone()),
                })
                .collect()
        }),
        init: svc.init,
        sysctls: (!svc.sysctls.0.is_empty()).then(|| svc.sysctls.0.clone().into_iter().collect()),
        ulimits: (!svc.ulimits.is_empty()).then(|| {
            svc.ulimits
                .iter()
                .map(|(name, u)| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        ..Default::default()
    };

    let resources = deploy.resources.as_ref().map(|r| TaskSpecResources {
        limits: r.limits.as_ref().map(|l| Limit {
            nano_cpus: l.cpus.map(|c| c.0),
            memory_bytes: l.memory.map(|b| b.0),
            pids: l.pids,
        }),
        reservations: r.reservations.as_ref().map(|l| ResourceObject {
            nano_cpus: l.cpus.map(|c| c.0),
            memory_bytes: l.memory.map(|b| b.0),
            generic_resources: None,
        }),
        ..Default::default()
    });

    let restart_policy = deploy
        .restart_policy
        .as_ref()
        .map(|p| TaskSpecRestartPolicy {
            condition: p.condition.map(|c| match c {
                RestartCondition::None => TaskSpecRestartPolicyConditionEnum::NONE,
                RestartCondition::OnFailure => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
                RestartCondition::Any => TaskSpecRestartPolicyConditionEnum::ANY,
            }),
            delay: p.delay.map(|d| d.0),
            max_attempts: p.max_attempts.map(|n| n as i64),
            window: p.window.map(|d| d.0),
        });

    let placement = deploy.placement.as_ref().map(|p| TaskSpecPlacement {
        constraints: (!p.constraints.is_empty()).then(|| p.constraints.clone()),
        max_replicas: p.max_replicas_per_node.map(|n| n as i64),
        ..Default::default()
    });

    let networks = service_networks(svc)
        .into_iter()
        .map(|(net, attach)| {
            let mut aliases = vec![key.to_string()];
            aliases.extend(attach.aliases);
            NetworkAttachmentConfig {
                target: Some(scoped(stack, &net)),
                aliases: Some(aliases),
                driver_opts: None,
            }
        })
        .collect();

    let ports: Vec<EndpointPortConfig> = svc
        .ports
        .iter()
        .map(|p| EndpointPortConfig {
            name: None,
            protocol: Some(match p.protocol {
                Protocol::Tcp => EndpointPortConfigProtocolEnum::TCP,
                Protocol::Udp => EndpointPortConfigProtocolEnum::UDP,
            }),
            target_port: Some(i64::from(p.target)),
            published_port: p.published.map(i64::from),
            publish_mode: Some(match p.mode {
                PublishMode::Ingress => EndpointPortConfigPublishModeEnum::INGRESS,
                PublishMode::Host => EndpointPortConfigPublishModeEnum::HOST,
            }),
        })
        .collect();
    let endpoint_mode = deploy.endpoint_mode.unwrap_or(EndpointMode::Vip);
    if endpoint_mode == EndpointMode::Dnsrr
        && svc.ports.iter().any(|p| p.mode == PublishMode::Ingress)
    {
        return Err(format!(
            "{}: `dnsrr` services cannot publish ports through the ingress mesh; use `mode: host`",
            here("ports")
        ));
    }

    let mut labels = labels_with_namespace(stack, &deploy.labels.0);
    if let Some(health) = container_health(&spec_container_health) {
        labels.insert(HEALTHCHECK_LABEL.to_string(), health);
    }
    let mut spec = ServiceSpec {
        name: Some(scoped(stack, key)),
        labels: None,
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources,
            restart_policy,
            placement,
            networks: Some(networks),
            ..Default::default()
        }),
        mode: Some(match replicas {
            Some(n) => ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(n as i64),
                }),
                ..Default::default()
            },
            None => ServiceSpecMode {
                global: Some(HashMap::new()),
                ..Default::default()
            },
        }),
        update_config: deploy.update_config.as_ref().map(update_config),
        rollback_config: deploy
            .rollback_config
            .as_ref()
            .map(rollback_config)
            .transpose()
            .map_err(|m| format!("{}: {m}", here("deploy.rollback_config.failure_action")))?,
        endpoint_spec: Some(EndpointSpec {
            mode: Some(match endpoint_mode {
                EndpointMode::Vip => EndpointSpecModeEnum::VIP,
                EndpointMode::Dnsrr => EndpointSpecModeEnum::DNSRR,
            }),
            ports: (!ports.is_empty()).then_some(ports),
        }),
        ..Default::default()
    };
    spec.labels = Some(labels.clone());
    let spec_hash = spec_hash(&spec);
    labels.insert(SPEC_HASH_LABEL.to_string(), spec_hash.clone());
    spec.labels = Some(labels);

    Ok(ServicePlan {
        key: key.to_string(),
        name: scoped(stack, key),
        image,
        spec,
        spec_hash,
        replicas,
    })
}

fn container_health(health: &Option<HealthConfig>) -> Option<String> {
    health
        .as_ref()
        .map(|h| serde_json::to_string(h).expect("a health config serializes"))
}

/// Puts back the healthcheck a spec read from the Engine lost (see [`HEALTHCHECK_LABEL`]).
pub fn restore_healthcheck(spec: &mut ServiceSpec) {
    let saved = spec
        .labels
        .as_ref()
        .and_then(|l| l.get(HEALTHCHECK_LABEL))
        .and_then(|json| serde_json::from_str::<HealthConfig>(json).ok());
    if let (Some(saved), Some(container)) = (
        saved,
        spec.task_template
            .as_mut()
            .and_then(|t| t.container_spec.as_mut()),
    ) && container.health_check.is_none()
    {
        container.health_check = Some(saved);
    }
}

fn health_config(h: &model::Healthcheck) -> std::result::Result<HealthConfig, String> {
    let test = if h.disable {
        Some(vec!["NONE".to_string()])
    } else {
        match &h.test {
            None => None,
            Some(HealthTest::Shell(s)) => Some(vec!["CMD-SHELL".to_string(), s.clone()]),
            Some(HealthTest::List(list)) => {
                match list.first().map(String::as_str) {
                    Some("NONE" | "CMD" | "CMD-SHELL") => {}
                    _ => return Err("a list must start with NONE, CMD or CMD-SHELL".into()),
                }
                Some(list.clone())
            }
        }
    };
    Ok(HealthConfig {
        test,
        interval: h.interval.map(|d| d.0),
        timeout: h.timeout.map(|d| d.0),
        retries: h.retries.map(i64::from),
        start_period: h.start_period.map(|d| d.0),
        start_interval: None,
    })
}

fn update_config(u: &UpdateConfig) -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
        parallelism: u.parallelism.map(|n| n as i64),
        delay: u.delay.map(|d| d.0),
        failure_action: u.failure_action.map(|a| match a {
            FailureAction::Continue => ServiceSpecUpdateConfigFailureActionEnum::CONTINUE,
            FailureAction::Pause => ServiceSpecUpdateConfigFailureActionEnum::PAUSE,
            FailureAction::Rollback => ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK,
        }),
        monitor: u.monitor.map(|d| d.0),
        max_failure_ratio: u.max_failure_ratio,
        order: u.order.map(|o| match o {
            UpdateOrder::StopFirst => ServiceSpecUpdateConfigOrderEnum::STOP_FIRST,
            UpdateOrder::StartFirst => ServiceSpecUpdateConfigOrderEnum::START_FIRST,
        }),
    }
}

fn rollback_config(u: &UpdateConfig) -> std::result::Result<ServiceSpecRollbackConfig, String> {
    Ok(ServiceSpecRollbackConfig {
        parallelism: u.parallelism.map(|n| n as i64),
        delay: u.delay.map(|d| d.0),
        failure_action: match u.failure_action {
            None => None,
            Some(FailureAction::Continue) => {
                Some(ServiceSpecRollbackConfigFailureActionEnum::CONTINUE)
            }
            Some(FailureAction::Pause) => Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            Some(FailureAction::Rollback) => {
                return Err("a rollback cannot itself roll back: use `pause` or `continue`".into());
            }
        },
        monitor: u.monitor.map(|d| d.0),
        max_failure_ratio: u.max_failure_ratio,
        order: u.order.map(|o| match o {
            UpdateOrder::StopFirst => ServiceSpecRollbackConfigOrderEnum::STOP_FIRST,
            UpdateOrder::StartFirst => ServiceSpecRollbackConfigOrderEnum::START_FIRST,
        }),
    })
}
