//! Turns a loaded stack into the Engine objects it stands for: names `<stack>_<x>`, the
//! namespace label on everything, and one content hash per service so `up` can tell whether a
//! service needs an update.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard::models::{ConfigSpec, NetworkCreateRequest, ServiceSpec};
use sha1::{Digest, Sha1};

use crate::compose::LoadedStack;
use crate::compose::model;
use crate::engine::NAMESPACE_LABEL;
use crate::error::{DeployError, Result};

mod service;

pub use service::restore_healthcheck;
use service::{service_networks, service_plan};

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

pub(crate) fn labels_with_namespace(
    stack: &str,
    labels: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = labels.clone().into_iter().collect();
    out.insert(NAMESPACE_LABEL.to_string(), stack.to_string());
    out
}

/// A hash of the spec that does not depend on map iteration order.
pub(crate) fn spec_hash(spec: &ServiceSpec) -> String {
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
