//! The binary's answers to bad input and to a missing engine: one line that names the problem.

use std::process::{Command, Output};

fn deployer(args: &[&str], docker_host: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .env("DOCKER_HOST", docker_host)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap()
}

fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "expected one line, got:\n{err}");
    assert!(err.starts_with("deployer: "), "{err}");
    err
}

const NO_ENGINE: &str = "unix:///nonexistent/docker.sock";

#[test]
fn unreachable_engine_is_one_clear_line() {
    let err = one_line_error(&deployer(&["status"], NO_ENGINE));
    assert!(
        err.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"),
        "{err}"
    );
    assert!(err.contains("start dockerd or point DOCKER_HOST"), "{err}");
}

#[test]
fn stack_file_errors_name_file_service_and_field_before_any_engine_call() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yml");
    std::fs::write(
        &file,
        "services:\n  erlmcp:\n    image: x\n    deploy:\n      replicas: 2\n      placment: {}\n",
    )
    .unwrap();
    let err = one_line_error(&deployer(
        &["up", "--file", file.to_str().unwrap()],
        NO_ENGINE,
    ));
    assert!(err.contains("bad.yml"), "{err}");
    assert!(err.contains("service `erlmcp`"), "{err}");
    assert!(err.contains("unknown field `placment`"), "{err}");
    assert!(
        !err.contains("Docker engine"),
        "the file is checked first: {err}"
    );
}

#[test]
fn unset_variable_and_unknown_service_selection_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yml");
    std::fs::write(
        &file,
        "services:\n  web:\n    image: ${WEB_IMAGE_NOT_SET_ANYWHERE}\n",
    )
    .unwrap();
    let err = one_line_error(&deployer(
        &["up", "--file", file.to_str().unwrap()],
        NO_ENGINE,
    ));
    assert!(
        err.contains("WEB_IMAGE_NOT_SET_ANYWHERE is not set") && err.contains("service `web`"),
        "{err}"
    );

    let err = one_line_error(&deployer(
        &[
            "up",
            "--override",
            "stack/replica.override.yml",
            "--services",
            "erlmcp,nginx",
        ],
        NO_ENGINE,
    ));
    assert!(
        err.contains("`nginx`") && err.contains("erlmcp, grafana, prometheus, traefik"),
        "{err}"
    );
}

#[test]
fn missing_replica_binary_says_how_to_build_it() {
    let err = one_line_error(&deployer(
        &["image", "replica", "--binary", "/nonexistent/replica"],
        NO_ENGINE,
    ));
    assert!(err.contains("cargo build -p replica --release"), "{err}");
}

/// As an unprivileged user (root drops to `nobody` with setpriv), the engine's socket refuses.
#[test]
fn permission_denied_on_the_socket_is_one_clear_line() {
    use std::os::unix::fs::PermissionsExt;
    let socket = std::path::Path::new("/var/run/docker.sock");
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    let world_open = socket
        .metadata()
        .map(|m| m.permissions().mode() & 0o002 != 0)
        .unwrap_or(true);
    if !is_root || !setpriv.exists() || !socket.exists() || world_open {
        eprintln!("SKIP: needs root, /usr/bin/setpriv and a docker socket closed to others");
        return;
    }
    // A copy `nobody` can reach: the target directory may not be open to it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("deployer");
    std::fs::copy(env!("CARGO_BIN_EXE_deployer"), &bin).unwrap();
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .arg("status")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(
        err.contains("permission denied") && err.contains("`docker` group"),
        "{err}"
    );
}

/// `deployer tune` is the tuning crate's CLI: against a fake /proc/sys tree, verify reports what
/// is off and a dry run changes nothing.
#[test]
fn tune_verifies_and_dry_runs_against_a_tree() {
    let root = tempfile::tempdir().unwrap();
    let key = root.path().join("net/core/somaxconn");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, "128\n").unwrap();
    let r = root.path().to_str().unwrap();
    let verify = deployer(
        &["tune", "verify", "--profile", "100k", "--root", r],
        NO_ENGINE,
    );
    assert_eq!(verify.status.code(), Some(1), "{verify:?}");
    let table = String::from_utf8_lossy(&verify.stdout);
    assert!(
        table.contains("net.core.somaxconn") && table.contains("128"),
        "{table}"
    );
    let state = root.path().join("snapshot.json");
    let dry = deployer(
        &[
            "tune",
            "apply",
            "--dry-run",
            "--profile",
            "100k",
            "--root",
            r,
            "--state",
            state.to_str().unwrap(),
        ],
        NO_ENGINE,
    );
    assert!(dry.status.code().is_some(), "{dry:?}");
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        "128\n",
        "dry run wrote nothing"
    );
    assert!(!state.exists(), "dry run took no snapshot");
}
