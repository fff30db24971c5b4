//! The files in stack/, checked without an engine: Prometheus config and rules with promtool
//! (Debian package `prometheus`), Traefik flags and labels against the v3 names, Grafana
//! provisioning, the production defaults and the replica override.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use bollard::models::{EndpointPortConfigPublishModeEnum, ServiceSpec, TaskSpecContainerSpec};
use deployer::compose::load_stack;
use deployer::plan::{StackPlan, plan_stack};
use serde_json::Value as Json;
use serde_norway::Value as Yaml;

fn stack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack")
}

fn plan(overrides: &[&str], env: &[(&str, &str)]) -> StackPlan {
    let mut files = vec![stack_dir().join("docker-compose.swarm.yml")];
    files.extend(overrides.iter().map(|f| stack_dir().join(f)));
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let vars = move |name: &str| {
        if name == "STACK_NAME" {
            Some("erlmcp".to_string())
        } else {
            env.get(name).cloned()
        }
    };
    let loaded = load_stack(&files, &vars).unwrap_or_else(|e| panic!("{e}"));
    plan_stack("erlmcp", &loaded, None).unwrap_or_else(|e| panic!("{e}"))
}

fn service<'a>(plan: &'a StackPlan, key: &str) -> &'a ServiceSpec {
    &plan
        .services
        .iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| panic!("no service {key}"))
        .spec
}

fn container(spec: &ServiceSpec) -> &TaskSpecContainerSpec {
    spec.task_template
        .as_ref()
        .unwrap()
        .container_spec
        .as_ref()
        .unwrap()
}

fn replicas(spec: &ServiceSpec) -> Option<i64> {
    spec.mode.as_ref()?.replicated.as_ref()?.replicas
}

fn labels(spec: &ServiceSpec) -> &std::collections::HashMap<String, String> {
    spec.labels.as_ref().unwrap()
}

fn env_of(spec: &ServiceSpec) -> BTreeMap<String, String> {
    container(spec)
        .env
        .iter()
        .flatten()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn yaml(path: &Path) -> Yaml {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn promtool(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("promtool")
        .args(args)
        .current_dir(stack_dir())
        .output()
    {
        Ok(out) => Some(out),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and promtool is missing: apt-get install -y prometheus")
        }
        Err(_) => {
            eprintln!("SKIP: promtool not installed (apt-get install -y prometheus)");
            None
        }
    }
}

#[test]
fn promtool_accepts_config_and_rules_and_the_rule_tests_pass() {
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["check", "rules", "alerts.yml"],
        &["test", "rules", "alerts.test.yml"],
    ] {
        let Some(out) = promtool(args) else { return };
        assert!(
            out.status.success(),
            "promtool {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn production_stack_defaults() {
    let p = plan(&[], &[]);
    let names: BTreeSet<_> = p.services.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["erlmcp", "grafana", "prometheus", "traefik"])
    );

    let erlmcp = service(&p, "erlmcp");
    let c = container(erlmcp);
    assert_eq!(c.image.as_deref(), Some("erlmcp/erlmcp:latest"));
    assert_eq!(replicas(erlmcp), Some(12));
    assert_eq!(env_of(erlmcp)["REPLICA_ID"], "r{{.Task.Slot}}");
    let health = c.health_check.as_ref().unwrap().test.clone().unwrap();
    assert!(
        health.iter().any(|a| a.ends_with(":8080/health")),
        "{health:?}"
    );

    // Rolling updates roll back by themselves; restarts and resources are set.
    let update = erlmcp.update_config.as_ref().unwrap();
    assert_eq!(update.failure_action.unwrap().to_string(), "rollback");
    assert!(erlmcp.rollback_config.is_some());
    let task = erlmcp.task_template.as_ref().unwrap();
    assert_eq!(
        task.restart_policy
            .as_ref()
            .unwrap()
            .condition
            .unwrap()
            .to_string(),
        "any"
    );
    let limits = task.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert!(limits.nano_cpus.is_some() && limits.memory_bytes.is_some());
    // No placement that a one-node swarm cannot satisfy.
    assert!(
        task.placement.is_none(),
        "erlmcp must be schedulable on a single manager"
    );

    // Per-container tuning defaults are the server profile's values.
    let profile =
        std::fs::read_to_string(stack_dir().join("../sysctl/profiles/server.conf")).unwrap();
    let profile_value = |key: &str| {
        profile
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|r| r.trim_start().strip_prefix('='))
            })
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("server.conf has no {key}"))
    };
    let sysctls = c.sysctls.as_ref().unwrap();
    assert_eq!(
        sysctls["net.core.somaxconn"],
        profile_value("net.core.somaxconn")
    );
    assert_eq!(
        sysctls["net.ipv4.ip_local_port_range"],
        profile_value("net.ipv4.ip_local_port_range")
    );
    let nofile = c
        .ulimits
        .as_ref()
        .unwrap()
        .iter()
        .find(|u| u.name.as_deref() == Some("nofile"))
        .unwrap();
    assert_eq!(nofile.hard.unwrap().to_string(), profile_value("#% nofile"));

    // Every object carries the namespace label, so `docker stack` sees the stack.
    for s in &p.services {
        assert_eq!(labels(&s.spec)["com.docker.stack.namespace"], "erlmcp");
    }
}

#[test]
fn variables_change_the_defaults() {
    let p = plan(
        &[],
        &[
            ("ERLMCP_IMAGE", "registry.local/erlmcp:3.0.0"),
            ("ERLMCP_REPLICAS", "4"),
            ("MCP_NOFILE", "16384"),
        ],
    );
    let erlmcp = service(&p, "erlmcp");
    assert_eq!(
        container(erlmcp).image.as_deref(),
        Some("registry.local/erlmcp:3.0.0")
    );
    assert_eq!(replicas(erlmcp), Some(4));
    assert_eq!(
        container(erlmcp).ulimits.as_ref().unwrap()[0].soft,
        Some(16384)
    );
}

#[test]
fn replica_override_runs_the_same_stack_with_the_replica_image() {
    let p = plan(&["replica.override.yml"], &[]);
    let erlmcp = service(&p, "erlmcp");
    let c = container(erlmcp);
    assert_eq!(
        c.image.as_deref(),
        Some(deployer::image::DEFAULT_REPLICA_TAG)
    );
    assert_eq!(
        c.args.as_ref().unwrap(),
        &["--tcp", "0.0.0.0:5555", "--http", "0.0.0.0:8080"]
    );
    assert_eq!(
        c.health_check.as_ref().unwrap().test.as_ref().unwrap(),
        &["CMD", "/replica", "probe", "http://127.0.0.1:8080/health"]
    );
    assert_eq!(
        c.ulimits.as_ref().unwrap()[0].hard,
        Some(20000),
        "above the daemon's 20000 tasks cannot start"
    );
    assert_eq!(replicas(erlmcp), Some(12));
    // Everything else is the production stack's.
    assert_eq!(labels(erlmcp)["traefik.enable"], "true");
    assert_eq!(env_of(erlmcp)["REPLICA_ID"], "r{{.Task.Slot}}");
}

#[test]
fn traefik_uses_v3_swarm_provider_flags_and_labels() {
    let p = plan(&[], &[]);
    let traefik = service(&p, "traefik");
    let args: BTreeSet<&str> = container(traefik)
        .args
        .as_ref()
        .unwrap()
        .iter()
        .map(String::as_str)
        .collect();
    for flag in [
        "--providers.swarm.endpoint=unix:///var/run/docker.sock",
        "--providers.swarm.exposedByDefault=false",
        "--providers.swarm.network=erlmcp_mcp",
        "--entrypoints.web.address=:80",
        "--entrypoints.mcp-tcp.address=:5555",
        "--entrypoints.metrics.address=:8082",
        "--metrics.prometheus.entryPoint=metrics",
    ] {
        assert!(args.contains(flag), "traefik lacks {flag}");
    }
    assert!(
        !args
            .iter()
            .any(|a| a.contains("providers.docker") || a.contains("swarmMode")),
        "v2 flags stop v3: {args:?}"
    );

    // Published: 80 and 5555 only (host mode); the dashboard (:8080) is not.
    let ports = traefik
        .endpoint_spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap();
    let published: BTreeSet<i64> = ports.iter().filter_map(|p| p.published_port).collect();
    assert_eq!(published, BTreeSet::from([80, 5555]));
    assert!(
        ports
            .iter()
            .all(|p| p.publish_mode == Some(EndpointPortConfigPublishModeEnum::HOST))
    );
    let mounts = container(traefik).mounts.as_ref().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m.target.as_deref() == Some("/var/run/docker.sock")
                && m.read_only == Some(true))
    );

    let l = labels(service(&p, "erlmcp"));
    assert_eq!(l["traefik.swarm.network"], "erlmcp_mcp");
    assert_eq!(
        l["traefik.http.routers.mcp.rule"],
        "Path(`/mcp`) || Path(`/mcp/ws`)"
    );
    assert_eq!(l["traefik.http.routers.mcp.entrypoints"], "web");
    assert_eq!(
        l["traefik.http.services.mcp.loadbalancer.server.port"],
        "8080"
    );
    assert_eq!(
        l["traefik.http.services.mcp.loadbalancer.sticky.cookie"],
        "true"
    );
    assert_eq!(l["traefik.tcp.routers.mcp-tcp.rule"], "HostSNI(`*`)");
    assert_eq!(l["traefik.tcp.routers.mcp-tcp.entrypoints"], "mcp-tcp");
    assert_eq!(
        l["traefik.tcp.services.mcp-tcp.loadbalancer.server.port"],
        "5555"
    );
    let allowed = [
        "traefik.enable",
        "traefik.swarm.",
        "traefik.http.routers.",
        "traefik.http.services.",
        "traefik.tcp.routers.",
        "traefik.tcp.services.",
    ];
    for key in l.keys().filter(|k| k.starts_with("traefik.")) {
        assert!(
            allowed.iter().any(|a| key.starts_with(a)),
            "label {key} is not a Traefik v3 swarm label"
        );
    }
    // Routers point at entrypoints that exist.
    for (key, value) in l.iter().filter(|(k, _)| k.ends_with(".entrypoints")) {
        assert!(
            args.contains(
                format!(
                    "--entrypoints.{value}.address=:{}",
                    if value == "web" { 80 } else { 5555 }
                )
                .as_str()
            ),
            "{key}={value}"
        );
    }
}

#[test]
fn prometheus_scrapes_every_replica_traefik_and_itself() {
    let p = plan(&[], &[]);
    let cfg = yaml(&stack_dir().join("prometheus.yml"));
    let jobs: BTreeMap<String, &Yaml> = cfg["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|j| (j["job_name"].as_str().unwrap().to_string(), j))
        .collect();
    assert_eq!(
        jobs.keys().map(String::as_str).collect::<Vec<_>>(),
        ["erlmcp", "prometheus", "traefik"]
    );
    let sd = |job: &str| {
        let d = &jobs[job]["dns_sd_configs"][0];
        (
            d["names"][0].as_str().unwrap().to_string(),
            d["port"].as_u64().unwrap(),
        )
    };
    // tasks.<service> lists every task; the service key is a network alias of each task.
    assert_eq!(sd("erlmcp"), ("tasks.erlmcp".to_string(), 8080));
    assert_eq!(sd("traefik"), ("tasks.traefik".to_string(), 8082));
    assert_eq!(cfg["rule_files"][0].as_str(), Some("alerts.yml"));

    let prom = container(service(&p, "prometheus"));
    let targets: BTreeSet<&str> = prom
        .configs
        .iter()
        .flatten()
        .filter_map(|c| c.file.as_ref()?.name.as_deref())
        .collect();
    assert_eq!(
        targets,
        BTreeSet::from([
            "/etc/prometheus/alerts.yml",
            "/etc/prometheus/prometheus.yml"
        ])
    );
    assert!(
        prom.args
            .as_ref()
            .unwrap()
            .contains(&"--config.file=/etc/prometheus/prometheus.yml".to_string())
    );
}

#[test]
fn grafana_is_provisioned_with_datasource_dashboard_and_a_secret_password() {
    let p = plan(&[], &[]);
    let grafana = service(&p, "grafana");
    let env = env_of(grafana);
    assert_eq!(
        env["GF_SECURITY_ADMIN_PASSWORD__FILE"],
        "/run/secrets/grafana_admin_password"
    );
    assert!(
        !env.contains_key("GF_SECURITY_ADMIN_PASSWORD"),
        "no password in the stack file"
    );
    let secrets = container(grafana).secrets.as_ref().unwrap();
    assert_eq!(
        secrets[0].file.as_ref().unwrap().name.as_deref(),
        Some("grafana_admin_password")
    );
    assert!(
        p.secrets
            .iter()
            .any(|s| s.name == "erlmcp_grafana_admin_password")
    );

    let ds = yaml(&stack_dir().join("grafana/provisioning/datasources/prometheus.yml"));
    assert_eq!(ds["apiVersion"].as_u64(), Some(1));
    let source = &ds["datasources"][0];
    assert_eq!(source["type"].as_str(), Some("prometheus"));
    assert_eq!(source["url"].as_str(), Some("http://prometheus:9090"));
    let uid = source["uid"].as_str().unwrap();

    let provider = yaml(&stack_dir().join("grafana/provisioning/dashboards/mcp.yml"));
    let dash_dir = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let mounted: BTreeSet<&str> = container(grafana)
        .configs
        .iter()
        .flatten()
        .filter_map(|c| c.file.as_ref()?.name.as_deref())
        .collect();
    assert!(
        mounted.contains(format!("{dash_dir}/mcp.json").as_str()),
        "dashboard not mounted under {dash_dir}: {mounted:?}"
    );

    let dash: Json = serde_json::from_str(
        &std::fs::read_to_string(stack_dir().join("grafana/dashboards/mcp.json")).unwrap(),
    )
    .unwrap();
    let panels = dash["panels"].as_array().unwrap();
    let titles: Vec<String> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_lowercase())
        .collect();
    for wanted in ["sessions", "requests/s", "errors", "p99"] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no panel for {wanted}: {titles:?}"
        );
    }
    // Panels query the recorded series defined in alerts.yml (or `up`), through the provisioned datasource.
    let recorded: BTreeSet<String> = yaml(&stack_dir().join("alerts.yml"))["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().iter())
        .filter_map(|r| r["record"].as_str().map(String::from))
        .collect();
    for panel in panels {
        assert_eq!(panel["datasource"]["uid"].as_str(), Some(uid));
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_alphanumeric() || c == ':' || c == '_')) {
                if word.starts_with("mcp:") {
                    assert!(
                        recorded.contains(word),
                        "{expr} uses {word}, which alerts.yml does not record"
                    );
                }
                assert!(
                    !word.starts_with("replica_"),
                    "raw metric names belong in alerts.yml only: {expr}"
                );
            }
        }
    }
}

#[test]
fn raw_metric_names_live_in_alerts_yml_only_and_no_credentials_anywhere() {
    let mut files = Vec::new();
    let mut stack = vec![stack_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 8, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        if !name.starts_with("alerts") {
            assert!(
                !text.contains("replica_requests") && !text.contains("replica_request_duration"),
                "{name} names raw metrics"
            );
        }
        for secret_like in [
            "SWMTKN-",
            "BEGIN PRIVATE KEY",
            "BEGIN RSA",
            "PASSWORD=",
            "password: ",
        ] {
            assert!(
                !text.contains(secret_like),
                "{name} contains `{secret_like}`"
            );
        }
    }
}
