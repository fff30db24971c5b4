//! The subset of the Compose file format this deployer understands. Every struct rejects
//! keys it does not know, so an unsupported setting is an error naming it, never silently dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::units::{Bytes, Duration, NanoCpus};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    /// Obsolete in the Compose specification; accepted and ignored.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub networks: BTreeMap<String, Option<Network>>,
    #[serde(default)]
    pub configs: BTreeMap<String, Config>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub image: Option<String>,
    pub command: Option<StringOrList>,
    pub entrypoint: Option<StringOrList>,
    #[serde(default)]
    pub environment: MapOrList,
    pub hostname: Option<String>,
    #[serde(default)]
    pub labels: MapOrList,
    pub healthcheck: Option<Healthcheck>,
    pub deploy: Option<Deploy>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub networks: ServiceNetworks,
    #[serde(default)]
    pub configs: Vec<FileRef>,
    #[serde(default)]
    pub secrets: Vec<FileRef>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub sysctls: MapOrList,
    #[serde(default)]
    pub ulimits: BTreeMap<String, Ulimit>,
    pub stop_grace_period: Option<Duration>,
    pub init: Option<bool>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    pub test: Option<HealthTest>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<Duration>,
    #[serde(default)]
    pub disable: bool,
}

/// `test:` as a shell string (run with CMD-SHELL) or a list starting with NONE, CMD or CMD-SHELL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum HealthTest {
    Shell(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    pub mode: Option<DeployMode>,
    pub replicas: Option<u64>,
    #[serde(default)]
    pub labels: MapOrList,
    pub resources: Option<Resources>,
    pub update_config: Option<UpdateConfig>,
    pub rollback_config: Option<UpdateConfig>,
    pub restart_policy: Option<RestartPolicy>,
    pub placement: Option<Placement>,
    pub endpoint_mode: Option<EndpointMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployMode {
    Replicated,
    Global,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    Vip,
    Dnsrr,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub limits: Option<ResourceAmounts>,
    pub reservations: Option<ResourceAmounts>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceAmounts {
    pub cpus: Option<NanoCpus>,
    pub memory: Option<Bytes>,
    pub pids: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    pub parallelism: Option<u64>,
    pub delay: Option<Duration>,
    pub failure_action: Option<FailureAction>,
    pub monitor: Option<Duration>,
    pub max_failure_ratio: Option<f64>,
    pub order: Option<UpdateOrder>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    Continue,
    Pause,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    StopFirst,
    StartFirst,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    pub condition: Option<RestartCondition>,
    pub delay: Option<Duration>,
    pub max_attempts: Option<u64>,
    pub window: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    None,
    OnFailure,
    Any,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    #[serde(default)]
    pub constraints: Vec<String>,
    pub max_replicas_per_node: Option<u64>,
}

/// `ports:` entries, long syntax only: `published`/`target` are unambiguous, and `mode`
/// decides between the ingress routing mesh and host publishing, which matters on this engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub target: u16,
    pub published: Option<u16>,
    #[serde(default)]
    pub protocol: Protocol,
    #[serde(default)]
    pub mode: PublishMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    #[default]
    Ingress,
    Host,
}

/// A service's `networks:` as a list of names or a map of name -> { aliases }.
#[derive(Debug, Clone, Default)]
pub struct ServiceNetworks(pub BTreeMap<String, NetworkAttachment>);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkAttachment {
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl<'de> Deserialize<'de> for ServiceNetworks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            Map(BTreeMap<String, Option<NetworkAttachment>>),
        }
        Ok(match Form::deserialize(d)? {
            Form::List(names) => ServiceNetworks(
                names
                    .into_iter()
                    .map(|n| (n, NetworkAttachment::default()))
                    .collect(),
            ),
            Form::Map(map) => ServiceNetworks(
                map.into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect(),
            ),
        })
    }
}

/// A service's reference to a config or secret: `- name` or `- { source, target, mode, uid, gid }`.
#[derive(Debug, Clone, Default)]
pub struct FileRef {
    pub source: String,
    pub target: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub mode: Option<u32>,
}

impl<'de> Deserialize<'de> for FileRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            source: String,
            target: Option<String>,
            uid: Option<String>,
            gid: Option<String>,
            mode: Option<u32>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Short(String),
            Long(Long),
        }
        Ok(
            match Form::deserialize(d).map_err(|_| {
                serde::de::Error::custom(
                    "expected a name or { source, target, uid, gid, mode } (no other keys)",
                )
            })? {
                Form::Short(source) => FileRef {
                    source,
                    ..FileRef::default()
                },
                Form::Long(l) => FileRef {
                    source: l.source,
                    target: l.target,
                    uid: l.uid,
                    gid: l.gid,
                    mode: l.mode,
                },
            },
        )
    }
}

/// Bind mounts only, short syntax `/host/path:/container/path[:ro]`: named volumes would
/// outlive `down` and need a volume driver decision this stack does not make.
#[derive(Debug, Clone)]
pub struct Volume {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

impl<'de> Deserialize<'de> for Volume {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_volume(&text).map_err(serde::de::Error::custom)
    }
}

fn parse_volume(text: &str) -> Result<Volume, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, read_only) = match parts.as_slice() {
        [s, t] => (*s, *t, false),
        [s, t, "ro"] => (*s, *t, true),
        [s, t, "rw"] => (*s, *t, false),
        _ => {
            return Err(format!(
                "volume `{text}`: expected `/host/path:/container/path[:ro|:rw]`"
            ));
        }
    };
    if !source.starts_with('/') {
        return Err(format!(
            "volume `{text}`: only bind mounts of absolute host paths are supported (named volumes are not)"
        ));
    }
    Ok(Volume {
        source: source.to_string(),
        target: target.to_string(),
        read_only,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

impl<'de> Deserialize<'de> for Ulimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Pair {
            soft: i64,
            hard: i64,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Single(i64),
            Pair(Pair),
        }
        Ok(
            match Form::deserialize(d)
                .map_err(|_| serde::de::Error::custom("expected a number or { soft, hard }"))?
            {
                Form::Single(n) => Ulimit { soft: n, hard: n },
                Form::Pair(p) => Ulimit {
                    soft: p.soft,
                    hard: p.hard,
                },
            },
        )
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub driver: Option<String>,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: MapOrList,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub file: String,
    #[serde(default)]
    pub labels: MapOrList,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    pub file: Option<String>,
    /// Deployer extension: a random value created once and then kept in Swarm only.
    #[serde(default, rename = "x-generate")]
    pub generate: bool,
    #[serde(default)]
    pub labels: MapOrList,
}

/// `command:`/`entrypoint:`/`test:` as a list, or a string split on whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringOrList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<Scalar>),
        }
        Ok(
            match Form::deserialize(d)
                .map_err(|_| serde::de::Error::custom("expected a string or a list of strings"))?
            {
                Form::One(s) => StringOrList(s.split_whitespace().map(String::from).collect()),
                Form::Many(v) => StringOrList(v.into_iter().map(|s| s.0).collect()),
            },
        )
    }
}

/// `environment:`/`labels:`/`sysctls:` as a map or a list of `KEY=VALUE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapOrList(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for MapOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Map(BTreeMap<String, Option<Scalar>>),
            List(Vec<String>),
        }
        let form = Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a map of KEY: value or a list of KEY=VALUE")
        })?;
        Ok(match form {
            Form::Map(m) => MapOrList(
                m.into_iter()
                    .map(|(k, v)| (k, v.map(|s| s.0).unwrap_or_default()))
                    .collect(),
            ),
            Form::List(items) => MapOrList(
                items
                    .into_iter()
                    .map(|item| match item.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (item, String::new()),
                    })
                    .collect(),
            ),
        })
    }
}

/// A YAML scalar (string, number or bool) kept as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            S(String),
            I(i64),
            F(f64),
            B(bool),
        }
        Ok(Scalar(match Form::deserialize(d)? {
            Form::S(s) => s,
            Form::I(i) => i.to_string(),
            Form::F(f) => f.to_string(),
            Form::B(b) => b.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_short_syntax_accepts_bind_mounts_only() {
        let v = parse_volume("/var/run/docker.sock:/var/run/docker.sock:ro").unwrap();
        assert_eq!(v.target, "/var/run/docker.sock");
        assert!(v.read_only);
        assert!(
            parse_volume("data:/data")
                .unwrap_err()
                .contains("named volumes")
        );
        assert!(parse_volume("/a").unwrap_err().contains("expected"));
    }
}
