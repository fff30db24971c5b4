//! Turns a loaded stack into the Engine objects it stands for: names `<stack>_<x>`, the
//! namespace label on everything, and one content hash per service so `up` can tell whether a
//! service needs an update.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard::models::{
    ConfigSpec, EndpointPortConfig, EndpointPortConfigProtocolEnum,
    EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit,
    Mount, MountType, NetworkAttachmentConfig, NetworkCreateRequest, ResourceObject,
    ResourcesUlimits, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile,
    TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets, TaskSpecPlacement, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use sha1::{Digest, Sha1};

use crate::compose::LoadedStack;
use crate::compose::model::{
    self, DeployMode, EndpointMode, FailureAction, HealthTest, Protocol, PublishMode,
    RestartCondition, UpdateConfig, UpdateOrder,
};
use crate::engine::NAMESPACE_LABEL;
use crate::error::{DeployError, Result};

/// The label holding the hash of the spec the deployer last applied to a service.
pub const SPEC_HASH_LABEL: &str = "io.mcp-load.deployer.spec-hash";

/// The label keeping a copy of the service's healthcheck. bollard (0.21) names the ContainerSpec
/// field `HealthCheck` while the Engine answers `Healthcheck`, so a spec read back from the Engine
/// has lost its healthcheck; `scale` restores it from here instead of silently dropping it.
pub const HEALTHCHECK_LABEL: &str = "io.mcp-load.deployer.healthcheck";

#[derive(Debug, Clone)]
pub struct StackPlan {
    pub stack: String,
    pub networks: Vec<NetworkPlan>,
    pub configs: Vec<ConfigPlan>,
    pub secrets: Vec<SecretPlan>,
    pub services: Vec<ServicePlan>,
}

#[derive(Debug, Clone)]
pub struct NetworkPlan {
    pub request: NetworkCreateRequest,
}

#[derive(Debug, Clone)]
pub struct ConfigPlan {
    /// `<stack>_<key>-<content hash>`: Swarm configs are immutable, so new content gets a new name.
    pub name: String,
    pub spec: ConfigSpec,
}

#[derive(Debug, Clone)]
pub struct SecretPlan {
    pub name: String,
    pub labels: HashMap<String, String>,
    pub source: SecretSource,
}

#[derive(Clone)]
pub enum SecretSource {
    File(String),
    Generate,
}

impl std::fmt::Debug for SecretSource {
    // Secret values never reach a log, not even a debug one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(_) => f.write_str("File(<redacted>)"),
            SecretSource::Generate => f.write_str("Generate"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServicePlan {
    /// The name in the stack file (`erlmcp`).
    pub key: String,
    /// The Swarm service name (`<stack>_erlmcp`).
    pub name: String,
    pub image: String,
    /// Config and secret references carry names only; ids are filled in at apply time.
    pub spec: ServiceSpec,
    pub spec_hash: String,
    pub replicas: Option<u64>,
}

pub fn scoped(stack: &str, key: &str) -> String {
    format!("{stack}_{key}")
}

/// Plans the whole stack, or only `only` (and the networks, configs and secrets they use).
pub fn plan_stack(stack: &str, loaded: &LoadedStack, only: Option<&[String]>) -> Result<StackPlan> {
    let invalid = |message: String| DeployError::Invalid {
        stack: stack.to_string(),
        message: format!("{}: {message}", loaded.describe_files()),
    };
    validate_stack_name(stack).map_err(|m| DeployError::Invalid {
        stack: stack.to_string(),
        message: m,
    })?;
    let m = &loaded.model;
    if let Some(only) = only
        && let Some(unknown) = only.iter().find(|s| !m.services.contains_key(*s))
    {
        return Err(invalid(format!(
            "--services names `{unknown}`, which the stack does not define (it has: {})",
            m.services.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let selected: Vec<(&String, &model::Service)> = m
        .services
        .iter()
        .filter(|(k, _)| only.is_none_or(|o| o.contains(k)))
        .collect();

    let mut used_networks = BTreeSet::new();
    let mut used_configs = BTreeSet::new();
    let mut used_secrets = BTreeSet::new();
    for (key, svc) in &selected {
        for net in service_networks(svc).keys() {
            if net != "default" && !m.networks.contains_key(net) {
                return Err(invalid(format!(
                    "service `{key}`: field `networks`: network `{net}` is not declared under top-level `networks`"
                )));
            }
            used_networks.insert(net.clone());
        }
        for (kind, refs, declared, used) in [
            (
                "configs",
                &svc.configs,
                m.configs.keys().collect::<BTreeSet<_>>(),
                &mut used_configs,
            ),
            (
                "secrets",
                &svc.secrets,
                m.secrets.keys().collect(),
                &mut used_secrets,
            ),
        ] {
            for r in refs {
                if !declared.contains(&r.source) {
                    return Err(invalid(format!(
                        "service `{key}`: field `{kind}`: `{}` is not declared under top-level `{kind}`",
                        r.source
                    )));
                }
                used.insert(r.source.clone());
            }
        }
    }

    let networks = used_networks
        .iter()
        .map(|key| {
            let declared = m.networks.get(key).cloned().flatten().unwrap_or_default();
            network_plan(stack, key, &declared)
        })
        .collect();

    let mut configs = Vec::new();
    let mut config_names = BTreeMap::new();
    for key in &used_configs {
        let cfg = &m.configs[key];
        let data = std::fs::read_to_string(&cfg.file).map_err(|e| {
            invalid(format!(
                "configs `{key}`: field `file`: cannot read {}: {e}",
                cfg.file
            ))
        })?;
        let name = format!("{}-{}", scoped(stack, key), short_hash(data.as_bytes(), 10));
        config_names.insert(key.clone(), name.clone());
        configs.push(ConfigPlan {
            name: name.clone(),
            spec: ConfigSpec {
                name: Some(name),
                labels: Some(labels_with_namespace(stack, &cfg.labels.0)),
                data: Some(base64_encode(data.as_bytes())),
                templating: None,
            },
        });
    }

    let mut secrets = Vec::new();
    for key in &used_secrets {
        let sec = &m.secrets[key];
        let source = match (&sec.file, sec.generate) {
            (Some(_), true) | (None, false) => {
                return Err(invalid(format!(
                    "secrets `{key}`: give exactly one of `file` or `x-generate: true`"
                )));
            }
            (Some(file), false) => {
                SecretSource::File(std::fs::read_to_string(file).map_err(|e| {
                    invalid(format!(
                        "secrets `{key}`: field `file`: cannot read {file}: {e}"
                    ))
                })?)
            }
            (None, true) => SecretSource::Generate,
        };
        secrets.push(SecretPlan {
            name: scoped(stack, key),
            labels: labels_with_namespace(stack, &sec.labels.0),
            source,
        });
    }

    let services = selected
        .into_iter()
        .map(|(key, svc)| service_plan(stack, key, svc, &config_names).map_err(invalid))
        .collect::<Result<Vec<_>>>()?;

    Ok(StackPlan {
        stack: stack.to_string(),
        networks,
        configs,
        secrets,
        services,
    })
}

fn validate_stack_name(stack: &str) -> std::result::Result<(), String> {
    let ok = !stack.is_empty()
        && stack.len() <= 40
        && stack
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && stack
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("a stack name is 1-40 characters of a-z, 0-9, `-` or `_`, starting with a letter or digit".into())
    }
}

fn service_networks(svc: &model::Service) -> BTreeMap<String, model::NetworkAttachment> {
    if svc.networks.0.is_empty() {
        BTreeMap::from([("default".to_string(), model::NetworkAttachment::default())])
    } else {
        svc.networks.0.clone()
    }
}

fn network_plan(stack: &str, key: &str, net: &model::Network) -> NetworkPlan {
    NetworkPlan {
        request: NetworkCreateRequest {
            name: scoped(stack, key),
            driver: Some(net.driver.clone().unwrap_or_else(|| "overlay".into())),
            scope: Some("swarm".into()),
            attachable: Some(net.attachable),
            internal: Some(net.internal),
            options: (!net.driver_opts.is_empty())
                .then(|| net.driver_opts.clone().into_iter().collect()),
            labels: Some(labels_with_namespace(stack, &net.labels.0)),
            ..Default::default()
        },
    }
}

fn labels_with_namespace(
    stack: &str,
    labels: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = labels.clone().into_iter().collect();
    out.insert(NAMESPACE_LABEL.to_string(), stack.to_string());
    out
}

fn service_plan(
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

/// A hash of the spec that does not depend on map iteration order.
fn spec_hash(spec: &ServiceSpec) -> String {
    let value = serde_json::to_value(spec).expect("a service spec serializes");
    short_hash(canonical_json(&value).as_bytes(), 16)
}

pub(crate) fn canonical_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical_json(v))).collect();
            let body: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::String(k.clone())))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items
                    .iter()
                    .map(canonical_json)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
        other => other.to_string(),
    }
}

fn short_hash(data: &[u8], hex_len: usize) -> String {
    let digest = Sha1::digest(data);
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..hex_len]
        .to_string()
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub(crate) fn encode_secret(data: &str) -> String {
    base64_encode(data.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::load_stack;

    fn plan_of(yaml: &str, only: Option<&[String]>) -> Result<StackPlan> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.yml");
        std::fs::write(&path, yaml).unwrap();
        std::fs::write(dir.path().join("p.yml"), "global: {}\n").unwrap();
        let loaded = load_stack(&[path], &|_: &str| None).unwrap();
        plan_stack("demo", &loaded, only)
    }

    const STACK: &str = r#"
services:
  web:
    image: mcp/replica:dev
    environment: {REPLICA_ID: "r{{.Task.Slot}}"}
    configs: [prom]
    networks: [mcp]
    sysctls: {net.core.somaxconn: 8192}
    ulimits: {nofile: 16384}
    deploy:
      replicas: 3
      update_config: {failure_action: rollback, monitor: 10s}
  other:
    image: other:1
networks:
  mcp: {attachable: true}
configs:
  prom: {file: ./p.yml}
"#;

    #[test]
    fn every_object_is_scoped_and_labelled() {
        let plan = plan_of(STACK, None).unwrap();
        let web = plan.services.iter().find(|s| s.key == "web").unwrap();
        assert_eq!(web.name, "demo_web");
        assert_eq!(web.spec.labels.as_ref().unwrap()[NAMESPACE_LABEL], "demo");
        let task = web.spec.task_template.as_ref().unwrap();
        let net = &task.networks.as_ref().unwrap()[0];
        assert_eq!(net.target.as_deref(), Some("demo_mcp"));
        assert_eq!(net.aliases.as_ref().unwrap()[0], "web");
        let c = task.container_spec.as_ref().unwrap();
        assert_eq!(c.env.as_ref().unwrap()[0], "REPLICA_ID=r{{.Task.Slot}}");
        assert_eq!(c.ulimits.as_ref().unwrap()[0].hard, Some(16384));
        assert_eq!(c.sysctls.as_ref().unwrap()["net.core.somaxconn"], "8192");
        let cfg = &plan.configs[0];
        assert!(cfg.name.starts_with("demo_prom-"), "{}", cfg.name);
        assert_eq!(cfg.spec.labels.as_ref().unwrap()[NAMESPACE_LABEL], "demo");
        // `other` has no networks: it joins the stack's default network, which is planned.
        let names: Vec<_> = plan
            .networks
            .iter()
            .map(|n| n.request.name.as_str())
            .collect();
        assert_eq!(names, vec!["demo_default", "demo_mcp"]);
    }

    #[test]
    fn healthcheck_lost_in_a_round_trip_is_restored_from_its_label() {
        let yaml = STACK.replace(
            "    configs: [prom]\n",
            "    configs: [prom]\n    healthcheck: {test: [CMD, /replica, probe, 'http://127.0.0.1:8080/health'], interval: 2s}\n",
        );
        let plan = plan_of(&yaml, None).unwrap();
        let web = plan.services.iter().find(|s| s.key == "web").unwrap();
        let wanted = web
            .spec
            .task_template
            .as_ref()
            .unwrap()
            .container_spec
            .as_ref()
            .unwrap()
            .health_check
            .clone();
        assert_eq!(wanted.as_ref().unwrap().interval, Some(2_000_000_000));
        let mut read_back = web.spec.clone();
        read_back
            .task_template
            .as_mut()
            .unwrap()
            .container_spec
            .as_mut()
            .unwrap()
            .health_check = None;
        restore_healthcheck(&mut read_back);
        assert_eq!(
            read_back
                .task_template
                .unwrap()
                .container_spec
                .unwrap()
                .health_check,
            wanted
        );
    }

    #[test]
    fn hash_is_stable_and_changes_with_the_spec() {
        let a = plan_of(STACK, None).unwrap();
        let b = plan_of(STACK, None).unwrap();
        assert_eq!(a.services[1].spec_hash, b.services[1].spec_hash);
        let c = plan_of(&STACK.replace("replicas: 3", "replicas: 4"), None).unwrap();
        assert_ne!(a.services[1].spec_hash, c.services[1].spec_hash);
    }

    #[test]
    fn service_selection_plans_only_what_they_use() {
        let plan = plan_of(STACK, Some(&["other".to_string()])).unwrap();
        assert_eq!(plan.services.len(), 1);
        assert!(plan.configs.is_empty());
        let err = plan_of(STACK, Some(&["nope".to_string()])).unwrap_err();
        assert!(err.to_string().contains("`nope`"), "{err}");
    }

    #[test]
    fn undeclared_references_are_named() {
        let err = plan_of(&STACK.replace("configs: [prom]", "configs: [graf]"), None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("service `web`") && text.contains("`graf`"),
            "{text}"
        );
    }
}
