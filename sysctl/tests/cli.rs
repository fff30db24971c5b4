//! The `tune` binary (what `deployer tune` runs): output and exit codes against a fake tree.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::FakeTree;
use tuning::SysctlStore;

/// A profile without `#% nofile`, so verify's result depends only on the fake tree.
const PROFILE: &str = "# why: accept queue\nnet.core.somaxconn = 65535\n\
                       # why: ports\nnet.ipv4.ip_local_port_range = 10240 65535\n\
                       # why: optional\n-net.netfilter.nf_conntrack_max = 262144\n";

fn tune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tune"))
        .args(args)
        .output()
        .unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Setup {
    tree: FakeTree,
    profile: String,
    root: String,
    state: String,
}

fn setup() -> Setup {
    let tree = FakeTree::with_defaults();
    let profile_path = tree.dir.path().join("p.conf");
    std::fs::write(&profile_path, PROFILE).unwrap();
    Setup {
        profile: profile_path.to_str().unwrap().to_owned(),
        root: tree.root.root().to_str().unwrap().to_owned(),
        state: tree.state().to_str().unwrap().to_owned(),
        tree,
    }
}

impl Setup {
    fn run(&self, verb: &str, extra: &[&str]) -> Output {
        let mut args = vec![verb, "--root", &self.root];
        if verb != "revert" {
            args.extend(["--profile", &self.profile]);
        }
        if verb != "verify" {
            args.extend(["--state", &self.state]);
        }
        args.extend(extra);
        tune(&args)
    }
}

#[test]
fn verify_apply_verify_revert_with_exit_codes() {
    let s = setup();
    let before = s.tree.contents();

    let verify = s.run("verify", &[]);
    assert_eq!(code(&verify), 1, "{}", text(&verify.stdout));
    assert!(text(&verify.stdout).contains("net.core.somaxconn"));

    let dry = s.run("apply", &["--dry-run"]);
    assert_eq!(code(&dry), 0);
    assert!(text(&dry.stdout).contains("would-write"));
    assert!(!Path::new(&s.state).exists());
    assert_eq!(s.tree.contents(), before);

    let applied = s.run("apply", &[]);
    assert_eq!(code(&applied), 0, "{}", text(&applied.stdout));
    assert!(text(&applied.stdout).contains("result: all applied"));
    assert_eq!(code(&s.run("verify", &[])), 0);

    let again = s.run("apply", &["--json"]);
    assert_eq!(code(&again), 0);
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json["snapshot"]["status"], "kept");

    let reverted = s.run("revert", &[]);
    assert_eq!(code(&reverted), 0, "{}", text(&reverted.stdout));
    assert_eq!(s.tree.contents(), before);

    let nothing = s.run("revert", &[]);
    assert_eq!(code(&nothing), 1);
    assert!(
        text(&nothing.stderr).contains("nothing to revert"),
        "{}",
        text(&nothing.stderr)
    );
}

#[test]
fn partial_apply_exits_1() {
    let s = setup();
    s.tree.remove("net.core.somaxconn");
    std::fs::create_dir(s.tree.path("net.core.somaxconn")).unwrap();
    let applied = s.run("apply", &[]);
    assert_eq!(code(&applied), 1);
    let out = text(&applied.stdout);
    assert!(
        out.contains("not a value (the key is a directory)"),
        "{out}"
    );
    assert!(
        out.contains("result: partial: 1 key(s) not applied"),
        "{out}"
    );
    assert_eq!(
        s.tree.get("net.ipv4.ip_local_port_range"),
        "10240\t65535\n",
        "the rest applied"
    );
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let s = setup();
    let unknown = tune(&["verify", "--profile", "huge", "--root", &s.root]);
    assert_eq!(code(&unknown), 2);
    assert_eq!(
        text(&unknown.stderr),
        "error: unknown profile \"huge\": use one of 100k, server or a path to a sysctl.d file\n"
    );
    assert_eq!(
        code(&tune(&["verify", "--frobnicate"])),
        2,
        "clap usage error"
    );

    assert_eq!(code(&s.run("apply", &[])), 0);
    let other = FakeTree::with_defaults();
    let wrong_root = tune(&[
        "revert",
        "--root",
        other.root.root().to_str().unwrap(),
        "--state",
        &s.state,
    ]);
    assert_eq!(code(&wrong_root), 2);
    assert!(text(&wrong_root.stderr).contains("holds values read under"));
    assert_eq!(code(&s.run("revert", &[])), 0);
}

#[test]
fn builtin_profiles_load_from_any_directory() {
    let s = setup();
    let elsewhere = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tune"))
        .args([
            "apply",
            "--dry-run",
            "--profile",
            "server",
            "--root",
            &s.root,
            "--state",
            &s.state,
        ])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("net.core.somaxconn"));
}
