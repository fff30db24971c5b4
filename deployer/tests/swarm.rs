//! The deployer against this machine's real Docker engine, driven through the `deployer` binary.
//!
//! One test function runs the whole scenario in order, because every step changes global Docker
//! state (the swarm, services, networks). It uses a stack name unique to the run and a guard that
//! removes everything it created, even when an assertion fails.
//!
//! Services left out: `traefik` (its image cannot be obtained here, and it needs the Docker socket
//! and host ports 80/5555). `prometheus` and `grafana` run as stand-ins (the replica image with
//! another command), so their configs and the generated Grafana secret are created and mounted by
//! the real engine. The `docker` CLI appears only as an independent witness.
//!
//! Without a reachable engine the test skips with a message, except under CI=true, where that is
//! a failure. The replica binary comes from DEPLOYER_TEST_REPLICA_BINARY, or is built with
//! `cargo build -p replica --release` into `<target>/deployer-it`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HostConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    TaskSpec, TaskSpecContainerSpec,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListConfigsOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, ListSecretsOptionsBuilder, ListServicesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;
use serde_json::Value;

const REPLICAS: usize = 12;
const FETCH_ENV: &str = "DEPLOYER_IT_FETCH";

/// Runs inside a container on the stack's overlay network (see `replicas_reachable_on_overlay`):
/// asks every address of `tasks.erlmcp` for /health and prints what each replica says it is.
/// Outside that container it has nothing to do.
#[test]
fn overlay_fetch_helper() {
    let Ok(target) = std::env::var(FETCH_ENV) else {
        return;
    };
    let addrs: BTreeSet<_> = target
        .to_socket_addrs()
        .expect("resolve tasks.<service>")
        .collect();
    for addr in addrs {
        let mut stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(3)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        write!(
            stream,
            "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("read reply");
        let header = reply
            .lines()
            .find_map(|l| {
                l.strip_prefix("X-Replica: ")
                    .or_else(|| l.strip_prefix("x-replica: "))
            })
            .unwrap_or("-")
            .trim()
            .to_string();
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
        let node = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["node"].as_str().map(String::from))
            .unwrap_or_else(|| "-".into());
        let status = reply.split(' ').nth(1).unwrap_or("-");
        println!("ADDR {} {status} {header} {node}", addr.ip());
    }
}

#[test]
fn swarm_stack_lifecycle() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let docker = match rt.block_on(deployer::engine::connect()) {
        Ok(d) => d,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and the Docker engine is not usable: {e}")
        }
        Err(e) => {
            eprintln!("SKIP swarm_stack_lifecycle: Docker engine not usable here ({e})");
            return;
        }
    };
    let stack = format!("it{}", std::process::id());
    let good_image = format!("mcp-load/replica:{stack}");
    let helper_image = format!("deployer-it/fetch:{stack}");
    let outsider = format!("{stack}_outsider");
    let stuck_stack = format!("{stack}stuck");
    let prod_stack = format!("{stack}prod");
    let _guard = Cleanup {
        stacks: vec![stack.clone(), stuck_stack.clone(), prod_stack.clone()],
        images: vec![good_image.clone(), helper_image.clone()],
        outsider: outsider.clone(),
    };
    let ws = workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let standins = dir.path().join("standins.yml");
    std::fs::write(&standins, STANDINS).unwrap();
    let files = [
        "--override".to_string(),
        "stack/replica.override.yml".into(),
        "--override".into(),
        standins.display().to_string(),
    ];

    // The image, built by `deployer image replica` from the real replica binary.
    let binary = replica_binary(&ws);
    let help = Command::new(&binary).arg("--help").output().unwrap();
    assert!(
        help.status.success(),
        "{} is not a working replica (still the placeholder?)",
        binary.display()
    );
    let built = deployer(
        &ws,
        &stack,
        &[
            "image",
            "replica",
            "--binary",
            binary.to_str().unwrap(),
            "--tag",
            &good_image,
        ],
        &[],
    );
    assert_ok(&built, "deployer image replica");
    assert!(
        rt.block_on(docker.inspect_image(&good_image)).is_ok(),
        "image {good_image} missing after build"
    );

    // up: 12 replicas running and healthy, stand-ins with their configs and secret.
    let env = [("REPLICA_IMAGE", good_image.as_str())];
    let mut up_args = vec!["up"];
    up_args.extend(files.iter().map(String::as_str));
    up_args.extend([
        "--services",
        "erlmcp,prometheus,grafana",
        "--timeout",
        "240s",
    ]);
    let up = deployer(&ws, &stack, &up_args, &env);
    assert_ok(&up, "first up");
    let all_output = format!("{}{}", String::from_utf8_lossy(&up.stdout), stderr(&up));
    assert!(
        !all_output.contains("SWMTKN"),
        "a swarm join token was printed"
    );
    eprintln!("first up: {}", last_line(&up.stderr));
    assert!(stderr(&up).contains("3 created"), "{}", stderr(&up));
    let erlmcp = format!("{stack}_erlmcp");
    assert_whole(&ws, &stack, &erlmcp, REPLICAS);
    for svc in ["prometheus", "grafana"] {
        assert_whole(&ws, &stack, &format!("{stack}_{svc}"), 1);
    }

    // Independent witness: the docker CLI sees the stack and its 12 running replica tasks.
    let ls = docker_cli(&["stack", "ls", "--format", "{{.Name}} {{.Services}}"]);
    assert!(
        ls.lines().any(|l| l == format!("{stack} 3")),
        "docker stack ls: {ls}"
    );
    assert_eq!(running_in_stack_ps(&stack, &erlmcp), REPLICAS);

    // Every replica answers on the overlay network and reports its own id.
    // Swarm's DNS learns a new task's address shortly after the task runs: ask a few times.
    let mut seen = BTreeMap::new();
    for attempt in 1..=10 {
        seen = rt.block_on(replicas_reachable_on_overlay(
            &docker,
            &stack,
            &helper_image,
        ));
        if seen.len() == REPLICAS {
            eprintln!("overlay: {REPLICAS} replicas answered (attempt {attempt})");
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    if seen.len() != REPLICAS {
        let net = rt
            .block_on(docker.inspect_network(
                &format!("{stack}_mcp"),
                None::<bollard::query_parameters::InspectNetworkOptions>,
            ))
            .unwrap();
        let members: BTreeMap<_, _> = net
            .containers
            .unwrap_or_default()
            .into_values()
            .map(|c| {
                (
                    c.ipv4_address.unwrap_or_default(),
                    c.name.unwrap_or_default(),
                )
            })
            .collect();
        eprintln!("network {stack}_mcp members: {members:#?}");
    }
    let expected: BTreeSet<String> = (1..=REPLICAS).map(|i| format!("r{i}")).collect();
    assert_eq!(
        seen.len(),
        REPLICAS,
        "one answer per task address: {seen:?}"
    );
    assert_eq!(
        seen.values().cloned().collect::<BTreeSet<_>>(),
        expected,
        "{seen:?}"
    );

    // Configs hold the stack files and are mounted where the services expect them; the secret
    // exists, is mounted into grafana, and the Engine never hands its value back. (The archive
    // API shows config/secret mounts as empty files on this engine, so they are checked here.)
    let prom_cfg = rt.block_on(mounted_config(
        &docker,
        &format!("{stack}_prometheus"),
        "/etc/prometheus/prometheus.yml",
    ));
    assert_eq!(
        prom_cfg,
        std::fs::read_to_string(ws.join("stack/prometheus.yml")).unwrap()
    );
    let alerts = rt.block_on(mounted_config(
        &docker,
        &format!("{stack}_prometheus"),
        "/etc/prometheus/alerts.yml",
    ));
    assert_eq!(
        alerts,
        std::fs::read_to_string(ws.join("stack/alerts.yml")).unwrap()
    );
    rt.block_on(assert_secret_mounted(
        &docker,
        &stack,
        &format!("{stack}_grafana"),
        "grafana_admin_password",
    ));

    // A service outside the stack, named like one of its services: `down` must leave it alone.
    rt.block_on(create_outsider(&docker, &outsider, &good_image));

    // up again: nothing changes.
    let before = versions(&stack);
    let again = deployer(&ws, &stack, &up_args, &env);
    assert_ok(&again, "second up");
    assert!(
        stderr(&again).contains("0 created, 0 updated, 3 unchanged"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        versions(&stack),
        before,
        "a second up changed service versions"
    );

    // scale 12 -> 16 -> 8 (-> 12 again for what follows), each converging. Scaling adds or
    // removes tasks only: the ones already running stay (no rolling restart).
    for n in [16, 8, REPLICAS] {
        let before = running_task_ids(&erlmcp);
        let out = deployer(
            &ws,
            &stack,
            &["scale", "erlmcp", &n.to_string(), "--timeout", "240s"],
            &[],
        );
        assert_ok(&out, &format!("scale to {n}"));
        eprintln!("scale to {n}: {}", last_line(&out.stdout));
        assert_whole(&ws, &stack, &erlmcp, n);
        assert_eq!(running_in_stack_ps(&stack, &erlmcp), n);
        let after = running_task_ids(&erlmcp);
        let kept = before.intersection(&after).count();
        assert_eq!(
            kept,
            before.len().min(n),
            "scaling to {n} restarted running tasks"
        );
    }

    // failover: 3 replicas killed, recovery measured, back to 12 healthy.
    let out = deployer(
        &ws,
        &stack,
        &["failover", "--service", "erlmcp", "--kill", "3", "--json"],
        &[],
    );
    assert_ok(&out, "failover");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!(
        "failover --kill 3: recovery {:.2}s",
        report["recovery_s"].as_f64().unwrap()
    );
    assert_eq!(report["killed"].as_array().unwrap().len(), 3);
    assert!(report["recovery_s"].as_f64().unwrap() > 0.0);
    assert_eq!(report["healthy_after"], REPLICAS as u64);
    assert_whole(&ws, &stack, &erlmcp, REPLICAS);

    // A bad image tag: refused before anything changes, then (image check skipped, as on a
    // multi-node swarm) rolled back by Swarm, and `up` says so.
    let before = versions(&stack);
    let bad = [("REPLICA_IMAGE", "mcp-load/replica:does-not-exist")];
    let mut bad_args = vec!["up"];
    bad_args.extend(files.iter().map(String::as_str));
    bad_args.extend(["--services", "erlmcp", "--timeout", "240s"]);
    let refused = deployer(&ws, &stack, &bad_args, &bad);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not present on this node")
            && stderr(&refused).contains("deployer image replica"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(versions(&stack), before, "a refused up changed something");
    bad_args.push("--skip-image-check");
    let rolled = deployer(&ws, &stack, &bad_args, &bad);
    assert_eq!(rolled.status.code(), Some(3), "{}", stderr(&rolled));
    let text = stderr(&rolled);
    assert!(
        text.contains("rolled back")
            && text.contains("No such image: mcp-load/replica:does-not-exist"),
        "{text}"
    );
    eprintln!("broken update: {}", last_line(&rolled.stderr));
    let state = service_status(&ws, &stack, &erlmcp);
    assert_eq!(state["image"], good_image.as_str());
    assert_whole(&ws, &stack, &erlmcp, REPLICAS);

    // logs: every replica id's start line is there (tasks killed earlier add lines of their own).
    let out = deployer(&ws, &stack, &["logs", "erlmcp", "--tail", "1"], &[]);
    assert_ok(&out, "logs");
    let text = String::from_utf8_lossy(&out.stdout);
    let ids: BTreeSet<String> = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("replica ")?
                .split_once(" listening")
                .map(|(id, _)| id.to_string())
        })
        .collect();
    assert_eq!(ids, expected, "start lines:\n{text}");

    // Services that cannot become whole: the deadline error names each one, its task and the
    // Engine's reason.
    let stuck_file = dir.path().join("stuck.yml");
    std::fs::write(&stuck_file, STUCK).unwrap();
    let out = deployer(
        &ws,
        &stuck_stack,
        &[
            "up",
            "--file",
            stuck_file.to_str().unwrap(),
            "--timeout",
            "30s",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    let verdict = last_line(&out.stderr);
    assert!(verdict.contains("not whole within 30s"), "{text}");
    assert!(
        verdict.contains(&format!("task {stuck_stack}_pending.1"))
            && verdict.contains("no suitable node"),
        "{verdict}"
    );
    assert!(
        verdict.contains(&format!("task {stuck_stack}_unhealthy.1"))
            && verdict.contains("unhealthy container"),
        "{verdict}"
    );
    // `docker stack rm` (the CLI, as a witness) finds and removes what the deployer created.
    docker_cli(&["stack", "rm", &stuck_stack]);
    let mut left = Vec::new();
    for _ in 0..60 {
        left = rt.block_on(labelled_objects(&docker, &stuck_stack));
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(left.is_empty(), "docker stack rm left: {left:?}");

    // The production stack as written: the Engine accepts every service spec (host-mode ports,
    // sysctls, ulimits, bind mount, configs, secret, placement); only the images are missing,
    // which each task reports. Host ports are moved off the usual ones for this check.
    let prod_env = [
        ("MCP_HTTP_PORT", "18480"),
        ("MCP_TCP_PORT", "18455"),
        ("GRAFANA_PORT", "18430"),
    ];
    let out = deployer(
        &ws,
        &prod_stack,
        &["up", "--skip-image-check", "--timeout", "10s"],
        &prod_env,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let verdict = last_line(&out.stderr);
    for image in [
        "erlmcp/erlmcp:latest",
        "traefik:v3.3",
        "prom/prometheus:v3.1.0",
        "grafana/grafana:11.4.0",
    ] {
        assert!(
            verdict.contains(&format!("No such image: {image}")),
            "{image} not named: {verdict}"
        );
    }
    let listed = docker_cli(&["stack", "services", &prod_stack, "--format", "{{.Name}}"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");
    assert_ok(
        &deployer(&ws, &prod_stack, &["down"], &[]),
        "down of the production stack",
    );

    // down: everything labelled with the namespace goes, the outsider stays.
    let out = deployer(&ws, &stack, &["down"], &[]);
    assert_ok(&out, "down");
    eprintln!("down: {}", last_line(&out.stdout));
    let left = rt.block_on(labelled_objects(&docker, &stack));
    assert!(left.is_empty(), "left behind by down: {left:?}");
    let services = docker_cli(&["service", "ls", "--format", "{{.Name}}"]);
    assert!(
        services.lines().any(|l| l == outsider),
        "down removed {outsider}: {services}"
    );
    let ls = docker_cli(&["stack", "ls", "--format", "{{.Name}}"]);
    assert!(
        !ls.lines().any(|l| l == stack),
        "docker stack ls still lists {stack}"
    );
}

const STANDINS: &str = r#"
services:
  prometheus:
    image: ${REPLICA_IMAGE}
    command: ["--tcp", "off", "--http", "0.0.0.0:9090"]
    healthcheck:
      test: ["CMD", "/replica", "probe", "http://127.0.0.1:9090/health"]
      interval: 2s
      timeout: 2s
      retries: 3
  grafana:
    image: ${REPLICA_IMAGE}
    command: ["--tcp", "off", "--http", "0.0.0.0:3000"]
    healthcheck:
      test: ["CMD", "/replica", "probe", "http://127.0.0.1:3000/health"]
      interval: 2s
      timeout: 2s
      retries: 3
    ports: []
"#;

/// One service no node can take (a one-node swarm has no worker) and one that never turns healthy.
const STUCK: &str = r#"
services:
  pending:
    image: ${REPLICA_IMAGE}
    command: ["--tcp", "off", "--http", "0.0.0.0:8080"]
    deploy:
      placement:
        constraints: [node.role != manager]
  unhealthy:
    image: ${REPLICA_IMAGE}
    command: ["--tcp", "off", "--http", "0.0.0.0:8080"]
    init: true
    healthcheck:
      test: ["CMD", "/replica", "probe", "http://127.0.0.1:9/health"]
      interval: 1s
      timeout: 1s
      retries: 2
"#;

struct Cleanup {
    stacks: Vec<String>,
    images: Vec<String>,
    outsider: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ws = workspace_root();
        for stack in &self.stacks {
            let down = deployer(&ws, stack, &["down"], &[]);
            if !down.status.success() {
                eprintln!("cleanup: deployer down {stack} failed: {}", stderr(&down));
            }
        }
        let (outsider, images) = (self.outsider.clone(), self.images.clone());
        // Drop may run inside the test's runtime: do the async work on a thread of its own.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let Ok(docker) = deployer::engine::connect().await else {
                    return;
                };
                let _ = docker.delete_service(&outsider).await;
                for _ in 0..60 {
                    let gone = docker.inspect_service(&outsider, None).await.is_err();
                    let containers = docker
                        .list_containers(Some(
                            ListContainersOptionsBuilder::default()
                                .all(true)
                                .filters(&std::collections::HashMap::from([(
                                    "label",
                                    vec![format!("com.docker.swarm.service.name={outsider}")],
                                )]))
                                .build(),
                        ))
                        .await
                        .unwrap_or_default();
                    if gone && containers.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                for image in images {
                    let _ = docker
                        .remove_image(
                            &image,
                            Some(RemoveImageOptionsBuilder::default().force(true).build()),
                            None,
                        )
                        .await;
                }
            });
        })
        .join()
        .ok();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn replica_binary(ws: &Path) -> PathBuf {
    if let Ok(path) = std::env::var("DEPLOYER_TEST_REPLICA_BINARY") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| ws.join("target"));
    // A target dir of its own: the outer `cargo test` may hold the lock on the usual one.
    let dir = target.join("deployer-it");
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "replica", "--release"])
        .env("CARGO_TARGET_DIR", &dir)
        .current_dir(ws)
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build -p replica --release failed");
    dir.join("release/replica")
}

fn deployer(ws: &Path, stack: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .arg("--name")
        .arg(stack)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(ws)
        .output()
        .expect("run deployer")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

fn docker_cli(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI (witness) is installed");
    assert!(out.status.success(), "docker {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Tasks of `service` that `docker stack ps` shows as running.
fn running_in_stack_ps(stack: &str, service: &str) -> usize {
    let ps = docker_cli(&[
        "stack",
        "ps",
        stack,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Name}} {{.CurrentState}}",
    ]);
    ps.lines()
        .filter(|l| l.starts_with(&format!("{service}.")) && l.contains(" Running "))
        .count()
}

fn running_task_ids(service: &str) -> BTreeSet<String> {
    docker_cli(&[
        "service",
        "ps",
        service,
        "-q",
        "--filter",
        "desired-state=running",
    ])
    .lines()
    .map(String::from)
    .collect()
}

fn service_status(ws: &Path, stack: &str, service: &str) -> Value {
    let out = deployer(ws, stack, &["status", "--json"], &[]);
    assert_ok(&out, "status");
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service)
        .unwrap_or_else(|| panic!("{service} not in status: {all}"))
        .clone()
}

fn assert_whole(ws: &Path, stack: &str, service: &str, n: usize) {
    let s = service_status(ws, stack, service);
    for key in ["desired", "running", "healthy"] {
        assert_eq!(s[key], n as u64, "{service} {key}: {s}");
    }
}

/// Service name -> version index, as the docker CLI reports it.
fn versions(stack: &str) -> BTreeMap<String, String> {
    let names = docker_cli(&[
        "service",
        "ls",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
        "--format",
        "{{.Name}}",
    ]);
    names
        .lines()
        .map(|n| {
            let v = docker_cli(&["service", "inspect", n, "--format", "{{.Version.Index}}"]);
            (n.to_string(), v.trim().to_string())
        })
        .collect()
}

/// Runs this test binary's `overlay_fetch_helper` in a container attached to the stack's overlay
/// network and returns task address -> the id the replica reported (header and body agreeing).
async fn replicas_reachable_on_overlay(
    docker: &Docker,
    stack: &str,
    helper_image: &str,
) -> BTreeMap<String, String> {
    if docker.inspect_image(helper_image).await.is_err() {
        let me = std::env::current_exe().unwrap();
        deployer::image::build_replica_image(docker, &me, helper_image, &|_| {})
            .await
            .expect("build helper image");
    }
    let name = format!("{stack}-fetch");
    let body = ContainerCreateBody {
        image: Some(helper_image.to_string()),
        entrypoint: Some(vec!["/replica".into()]),
        cmd: Some(vec![
            "--exact".into(),
            "overlay_fetch_helper".into(),
            "--nocapture".into(),
            "--test-threads=1".into(),
        ]),
        env: Some(vec![format!("{FETCH_ENV}=tasks.erlmcp:8080")]),
        host_config: Some(HostConfig {
            network_mode: Some(format!("{stack}_mcp")),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await
        .expect("create helper container");
    docker
        .start_container(&name, None)
        .await
        .expect("start helper");
    let exit = docker.wait_container(&name, None).next().await;
    let mut logs = docker.logs(
        &name,
        Some(
            LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .build(),
        ),
    );
    let mut text = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        text.push_str(&chunk.to_string());
    }
    let _ = docker
        .remove_container(
            &name,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await;
    assert!(
        matches!(exit, Some(Ok(ref r)) if r.status_code == 0),
        "helper failed ({exit:?}):\n{text}"
    );
    text.lines()
        // libtest prints `test overlay_fetch_helper ... ` before the output, on the same line.
        .filter_map(|l| l.split_once("ADDR ").map(|(_, rest)| rest))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "{l}");
            assert_eq!(f[1], "200", "{l}");
            assert_eq!(f[2], f[3], "X-Replica and /health node disagree: {l}");
            (f[0].to_string(), f[2].to_string())
        })
        .collect()
}

/// The content of the config a service mounts at `target`.
async fn mounted_config(docker: &Docker, service: &str, target: &str) -> String {
    use base64::Engine as _;
    let svc = docker.inspect_service(service, None).await.unwrap();
    let configs = svc
        .spec
        .unwrap()
        .task_template
        .unwrap()
        .container_spec
        .unwrap()
        .configs
        .unwrap_or_default();
    let cfg = configs
        .iter()
        .find(|c| c.file.as_ref().and_then(|f| f.name.as_deref()) == Some(target))
        .unwrap_or_else(|| panic!("{service} mounts no config at {target}"));
    let config = docker
        .inspect_config(cfg.config_id.as_deref().unwrap())
        .await
        .unwrap();
    let data = config.spec.unwrap().data.unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
    )
    .unwrap()
}

async fn assert_secret_mounted(docker: &Docker, stack: &str, service: &str, key: &str) {
    let name = format!("{stack}_{key}");
    let svc = docker.inspect_service(service, None).await.unwrap();
    let secrets = svc
        .spec
        .unwrap()
        .task_template
        .unwrap()
        .container_spec
        .unwrap()
        .secrets
        .unwrap_or_default();
    let reference = secrets
        .iter()
        .find(|s| s.secret_name.as_deref() == Some(name.as_str()))
        .unwrap_or_else(|| panic!("{service} does not mount secret {name}"));
    assert_eq!(
        reference.file.as_ref().and_then(|f| f.name.as_deref()),
        Some(key)
    );
    let secret = docker
        .inspect_secret(reference.secret_id.as_deref().unwrap())
        .await
        .unwrap();
    let spec = secret.spec.unwrap();
    assert_eq!(spec.labels.unwrap()["com.docker.stack.namespace"], stack);
    assert!(spec.data.is_none(), "the Engine returned a secret's value");
}

async fn create_outsider(docker: &Docker, name: &str, image: &str) {
    let spec = ServiceSpec {
        name: Some(name.to_string()),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.to_string()),
                args: Some(vec![
                    "--tcp".into(),
                    "off".into(),
                    "--http".into(),
                    "0.0.0.0:8080".into(),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_service(spec, None)
        .await
        .expect("create the outsider service");
}

/// Everything still carrying the stack's namespace label.
async fn labelled_objects(docker: &Docker, stack: &str) -> Vec<String> {
    let filters = std::collections::HashMap::from([(
        "label",
        vec![format!("com.docker.stack.namespace={stack}")],
    )]);
    let mut left = Vec::new();
    for s in docker
        .list_services(Some(
            ListServicesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap()
    {
        left.push(format!("service {:?}", s.spec.and_then(|s| s.name)));
    }
    for n in docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap()
    {
        left.push(format!("network {:?}", n.name));
    }
    for c in docker
        .list_configs(Some(
            ListConfigsOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap()
    {
        left.push(format!("config {:?}", c.spec.and_then(|s| s.name)));
    }
    for s in docker
        .list_secrets(Some(
            ListSecretsOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap()
    {
        left.push(format!("secret {:?}", s.spec.and_then(|s| s.name)));
    }
    for c in docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap()
    {
        left.push(format!("container {:?}", c.names));
    }
    left
}
