//! verify / apply / revert against a temporary fake /proc/sys tree.

mod common;

use common::{FakeTree, Faulty, ROOMY, STUCK_AT_20K};
use tuning::apply::{Action, SnapshotStatus};
use tuning::revert::{RevertAction, RevertError};
use tuning::snapshot::{Snapshot, SnapshotError};
use tuning::store::Failure;
use tuning::{ApplyOptions, NofileLimits, Profile, apply, revert, verify};

fn load(name: &str) -> Profile {
    Profile::load(name).unwrap()
}

#[test]
fn verify_reports_current_wanted_and_why_not() {
    let tree = FakeTree::with_defaults();
    let report = verify(&load("100k"), &tree.root, &ROOMY);
    let get = |key: &str| report.row(key).unwrap();

    let somaxconn = get("net.core.somaxconn");
    assert_eq!(somaxconn.current.as_deref(), Some("4096"));
    assert_eq!(somaxconn.wanted, ">= 65535");
    assert!(!somaxconn.ok);
    assert_eq!(somaxconn.note, "4096 is below 65535");

    let file_max = get("fs.file-max");
    assert!(
        file_max.ok,
        "a larger file-max than wanted is fine: {file_max:?}"
    );
    let range = get("net.ipv4.ip_local_port_range");
    assert_eq!(range.current.as_deref(), Some("32768 60999"));
    assert!(!range.ok);

    let soft = get("RLIMIT_NOFILE soft");
    assert!(
        soft.ok,
        "soft can be raised to a hard limit above the wanted one"
    );
    assert!(
        soft.note.contains("raises soft to the hard limit (524288)"),
        "{}",
        soft.note
    );
    assert!(get("RLIMIT_NOFILE hard").ok);
    assert!(!report.all_ok());
    let text = report.render();
    assert!(text.starts_with("key "), "{text}");
    assert!(
        text.contains("not ok for profile 100k; fix sysctls: `deployer tune apply --profile 100k`"),
        "{text}"
    );
}

#[test]
fn verify_says_whether_the_hard_limit_can_be_raised() {
    let tree = FakeTree::with_defaults();
    let report = verify(&load("100k"), &tree.root, &STUCK_AT_20K);
    let hard = report.row("RLIMIT_NOFILE hard").unwrap();
    assert!(!hard.ok);
    assert!(
        hard.note
            .starts_with("cannot be raised without CAP_SYS_RESOURCE: set LimitNOFILE=262144"),
        "{}",
        hard.note
    );

    let capable = NofileLimits {
        can_raise_hard: true,
        ..STUCK_AT_20K
    };
    let report = verify(&load("100k"), &tree.root, &capable);
    let hard = report.row("RLIMIT_NOFILE hard").unwrap();
    assert!(!hard.ok);
    assert!(
        hard.note
            .starts_with("can be raised (CAP_SYS_RESOURCE held)"),
        "{}",
        hard.note
    );
}

#[test]
fn apply_sets_every_value_then_revert_restores_every_byte() {
    let tree = FakeTree::with_defaults();
    let before = tree.contents();
    let profile = load("100k");

    let report = apply(&profile, &tree.root, &ApplyOptions::new(tree.state())).unwrap();
    assert!(!report.partial(), "{}", report.render());
    assert_eq!(
        report.snapshot,
        SnapshotStatus::Taken { path: tree.state() }
    );
    assert!(verify(&profile, &tree.root, &ROOMY).all_ok());
    assert_eq!(tree.get("net.core.somaxconn"), "65535\n");
    assert_eq!(tree.get("net.ipv4.ip_local_port_range"), "10240\t65535\n");
    assert_eq!(tree.get("net.ipv4.tcp_fin_timeout"), "15\n");
    // At-least keys are never lowered: the larger default field of tcp_rmem stays.
    assert_eq!(tree.get("net.ipv4.tcp_rmem"), "4096\t131072\t16777216\n");
    assert_eq!(tree.get("fs.file-max"), "2466186\n");
    assert_eq!(report.row("fs.file-max").unwrap().action, Action::Keep);
    assert_eq!(
        report.row("net.core.somaxconn").unwrap().action,
        Action::Written
    );

    let snapshot = Snapshot::load(&tree.state()).unwrap().unwrap();
    assert_eq!(
        snapshot.values.len(),
        profile.entries.len(),
        "every touched key is saved"
    );

    let reverted = revert(&tree.root, &tree.state()).unwrap();
    assert!(reverted.snapshot_removed, "{}", reverted.render());
    assert_eq!(
        tree.contents(),
        before,
        "revert restores every file byte for byte"
    );
    assert!(!tree.state().exists());
    let restored = reverted
        .rows
        .iter()
        .filter(|r| r.action == RevertAction::Restored)
        .count();
    let written = report
        .rows
        .iter()
        .filter(|r| r.action == Action::Written)
        .count();
    assert_eq!(restored, written);
}

#[test]
fn dry_run_writes_nothing_and_takes_no_snapshot() {
    let tree = FakeTree::with_defaults();
    let before = tree.contents();
    let mut opts = ApplyOptions::new(tree.state());
    opts.dry_run = true;
    opts.persist = Some(tree.dir.path().join("sysctl.d/mcp-load-100k.conf"));
    let report = apply(&load("100k"), &tree.root, &opts).unwrap();
    assert_eq!(tree.contents(), before);
    assert!(!tree.state().exists());
    assert!(!opts.persist.as_ref().unwrap().exists());
    assert_eq!(report.snapshot, SnapshotStatus::NotTaken);
    let somaxconn = report.row("net.core.somaxconn").unwrap();
    assert_eq!(somaxconn.action, Action::WouldWrite);
    assert_eq!(
        (somaxconn.before.as_deref(), somaxconn.after.as_deref()),
        (Some("4096"), Some("65535"))
    );
    assert!(
        report
            .render()
            .contains("dry run: nothing written, no snapshot taken")
    );
}

#[test]
fn second_apply_keeps_the_first_snapshot() {
    let tree = FakeTree::with_defaults();
    let before = tree.contents();
    apply(&load("100k"), &tree.root, &ApplyOptions::new(tree.state())).unwrap();
    let first = Snapshot::load(&tree.state()).unwrap().unwrap();

    // Someone changes a value between the applies; a custom profile adds a key.
    tree.set("net.core.somaxconn", "1234\n");
    tree.set("net.ipv4.tcp_max_tw_buckets", "262144\n");
    let custom = tree.dir.path().join("extra.conf");
    std::fs::write(
        &custom,
        "# why\nnet.core.somaxconn = 65535\n# why\nnet.ipv4.tcp_max_tw_buckets = 2000000\n",
    )
    .unwrap();
    let report = apply(
        &Profile::from_file(&custom).unwrap(),
        &tree.root,
        &ApplyOptions::new(tree.state()),
    )
    .unwrap();
    match &report.snapshot {
        SnapshotStatus::Kept {
            taken_at_unix,
            added,
            ..
        } => {
            assert_eq!((*taken_at_unix, *added), (first.taken_at_unix, 1));
        }
        other => panic!("expected the snapshot kept, got {other:?}"),
    }
    assert!(report.render().contains("snapshot kept"));
    let second = Snapshot::load(&tree.state()).unwrap().unwrap();
    assert_eq!(
        second.values[..first.values.len()],
        first.values[..],
        "first values untouched"
    );
    assert_eq!(second.profiles, vec!["100k", "extra"]);

    revert(&tree.root, &tree.state()).unwrap();
    let mut expected = before;
    expected.insert("net/ipv4/tcp_max_tw_buckets".into(), b"262144\n".to_vec());
    assert_eq!(
        tree.contents(),
        expected,
        "values from before the FIRST apply"
    );
}

#[test]
fn unwritable_keys_are_reported_and_the_rest_applied() {
    let tree = FakeTree::with_defaults();
    tree.remove("net.core.netdev_max_backlog");
    std::fs::create_dir(tree.path("net.core.netdev_max_backlog")).unwrap();
    let faulty = Faulty::new(
        &tree.root,
        &[
            ("net.ipv4.tcp_fin_timeout", libc::EINVAL),
            ("net.ipv4.ip_local_port_range", libc::EROFS),
            ("net.ipv4.tcp_tw_reuse", libc::EPERM),
        ],
    );
    let report = apply(&load("100k"), &faulty, &ApplyOptions::new(tree.state())).unwrap();
    assert!(report.partial());
    let expect_failed = [
        ("net.core.netdev_max_backlog", Failure::NotAValue),
        ("net.ipv4.tcp_fin_timeout", Failure::Rejected),
        ("net.ipv4.ip_local_port_range", Failure::ReadOnly),
        ("net.ipv4.tcp_tw_reuse", Failure::PermissionDenied),
    ];
    for (key, failure) in &expect_failed {
        let r = report.row(key).unwrap();
        assert_eq!(r.action, Action::Failed, "{key}");
        assert!(r.note.contains(&failure.to_string()), "{key}: {}", r.note);
    }
    assert_eq!(
        tree.get("net.ipv4.tcp_fin_timeout"),
        "60\n",
        "a rejected key is left as it was"
    );
    assert_eq!(
        tree.get("net.core.somaxconn"),
        "65535\n",
        "the rest is applied"
    );
    assert_eq!(tree.get("net.core.wmem_max"), "16777216\n");
    assert!(
        report
            .render()
            .contains("result: partial: 4 key(s) not applied")
    );

    let reverted = revert(&faulty, &tree.state()).unwrap();
    assert!(reverted.snapshot_removed, "{}", reverted.render());
    assert_eq!(tree.get("net.core.somaxconn"), "4096\n");
}

#[test]
fn missing_optional_key_is_skipped_and_missing_required_key_reported() {
    let tree = FakeTree::with_defaults();
    tree.remove("net.netfilter.nf_conntrack_max");
    tree.remove("fs.nr_open");
    let profile = load("100k");
    let report = apply(&profile, &tree.root, &ApplyOptions::new(tree.state())).unwrap();
    let conntrack = report.row("net.netfilter.nf_conntrack_max").unwrap();
    assert_eq!(conntrack.action, Action::Skip);
    let nr_open = report.row("fs.nr_open").unwrap();
    assert_eq!(nr_open.action, Action::Failed);
    assert!(
        nr_open.note.starts_with("cannot read: missing key"),
        "{}",
        nr_open.note
    );
    assert!(report.partial());
    assert!(
        !tree.path("net.netfilter.nf_conntrack_max").exists(),
        "apply never creates a key"
    );

    let verified = verify(&profile, &tree.root, &ROOMY);
    let get = |key: &str| verified.row(key).unwrap();
    assert!(get("net.netfilter.nf_conntrack_max").ok);
    assert!(
        get("net.netfilter.nf_conntrack_max")
            .note
            .contains("skipped")
    );
    assert!(!get("fs.nr_open").ok);
}

#[test]
fn persist_writes_a_sysctl_d_file_and_revert_removes_or_restores_it() {
    let tree = FakeTree::with_defaults();
    let persisted = tree.dir.path().join("sysctl.d/mcp-load-100k.conf");
    let mut opts = ApplyOptions::new(tree.state());
    opts.persist = Some(persisted.clone());
    let report = apply(&load("100k"), &tree.root, &opts).unwrap();
    assert_eq!(report.persisted.as_deref(), Some(persisted.as_path()));
    let written = Profile::from_file(&persisted).unwrap();
    assert_eq!(
        written.value("fs.file-max"),
        Some("2466186"),
        "persists the value in force"
    );
    assert_eq!(written.value("net.core.somaxconn"), Some("65535"));
    assert!(
        written
            .entries
            .iter()
            .find(|e| e.key.to_string() == "net.netfilter.nf_conntrack_max")
            .unwrap()
            .optional
    );
    assert_eq!(written.nofile, Some(262_144));
    revert(&tree.root, &tree.state()).unwrap();
    assert!(!persisted.exists(), "a file apply created is removed");

    std::fs::write(&persisted, "# mine\nvm.swappiness = 10\n").unwrap();
    apply(&load("100k"), &tree.root, &opts).unwrap();
    apply(&load("100k"), &tree.root, &opts).unwrap();
    revert(&tree.root, &tree.state()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&persisted).unwrap(),
        "# mine\nvm.swappiness = 10\n"
    );
}

#[test]
fn revert_keeps_the_snapshot_when_a_value_cannot_be_restored() {
    let tree = FakeTree::with_defaults();
    let before = tree.contents();
    apply(&load("100k"), &tree.root, &ApplyOptions::new(tree.state())).unwrap();
    let faulty = Faulty::new(&tree.root, &[("net.core.somaxconn", libc::EROFS)]);
    let partial = revert(&faulty, &tree.state()).unwrap();
    assert!(partial.partial());
    assert!(tree.state().exists(), "snapshot kept for another try");
    let failed = partial.row("net.core.somaxconn").unwrap();
    assert_eq!(failed.action, RevertAction::Failed);
    assert!(partial.render().contains("snapshot kept at"));

    let done = revert(&tree.root, &tree.state()).unwrap();
    assert!(done.snapshot_removed);
    assert_eq!(tree.contents(), before);
}

#[test]
fn revert_without_snapshot_or_from_another_root_is_a_clear_error() {
    let tree = FakeTree::with_defaults();
    let err = revert(&tree.root, &tree.state()).unwrap_err();
    assert!(matches!(err, RevertError::NoSnapshot(_)));
    assert!(err.to_string().contains("nothing to revert"));

    apply(&load("100k"), &tree.root, &ApplyOptions::new(tree.state())).unwrap();
    let other = FakeTree::with_defaults();
    let err = revert(&other.root, &tree.state()).unwrap_err();
    assert!(
        matches!(err, RevertError::Snapshot(SnapshotError::OtherRoot { .. })),
        "{err}"
    );
    let err = apply(&load("100k"), &other.root, &ApplyOptions::new(tree.state())).unwrap_err();
    assert!(err.to_string().contains("holds values read under"), "{err}");
    assert_eq!(
        other.contents(),
        FakeTree::with_defaults().contents(),
        "nothing written on refusal"
    );
}
