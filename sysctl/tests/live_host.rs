//! Applies the 100k profile to this machine's real /proc/sys and reverts it.
//!
//! Needs root and a writable /proc/sys. It holds the host sysctl lock ([`tuning::lock`]) and a
//! guard that reverts on any exit, so the host is restored even when an assertion fails. The 100k
//! profile only widens limits, so tests of other crates running meanwhile are not hurt.

use std::path::PathBuf;

use tuning::apply::Action;
use tuning::{
    ApplyOptions, Key, NofileLimits, Profile, SysRoot, SysctlStore, apply, revert, verify,
};

/// Reverts the snapshot when dropped, unless the test already did.
struct RevertGuard {
    sys: SysRoot,
    state: PathBuf,
}

impl Drop for RevertGuard {
    fn drop(&mut self) {
        if self.state.exists() {
            match revert(&self.sys, &self.state) {
                Ok(report) => eprintln!("guard reverted the host:\n{}", report.render()),
                Err(err) => eprintln!("guard could not revert the host: {err}"),
            }
        }
    }
}

fn writable_proc_sys() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not running as root".into());
    }
    let key = Key::parse("net.core.somaxconn").unwrap();
    let sys = SysRoot::proc_sys();
    let value = sys
        .read(&key)
        .map_err(|e| format!("cannot read net.core.somaxconn: {e}"))?;
    sys.write(&key, &value)
        .map_err(|e| format!("/proc/sys is not writable: {e}"))
}

fn read_all(sys: &SysRoot, profile: &Profile) -> Vec<(String, Option<String>)> {
    profile
        .entries
        .iter()
        .map(|e| (e.key.to_string(), sys.read(&e.key).ok()))
        .collect()
}

#[test]
fn apply_100k_on_this_host_then_revert_restores_every_byte() {
    if let Err(why) = writable_proc_sys() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run this test: {why}"
        );
        eprintln!("SKIPPED live_host: {why} (run as root with a writable /proc/sys)");
        return;
    }
    let _lock = tuning::lock::host_sysctls().expect("host sysctl lock");
    let profile = Profile::load("100k").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let guard = RevertGuard {
        sys: SysRoot::proc_sys(),
        state: dir.path().join("tuning-snapshot.json"),
    };
    let before = read_all(&guard.sys, &profile);

    let applied = apply(&profile, &guard.sys, &ApplyOptions::new(&guard.state)).unwrap();
    let limits = NofileLimits::current().unwrap();
    let verified = verify(&profile, &guard.sys, &limits);

    let reverted = revert(&guard.sys, &guard.state).unwrap();
    let after = read_all(&guard.sys, &profile);
    drop(guard);

    println!(
        "{}\n{}\n{}",
        applied.render(),
        verified.render(),
        reverted.render()
    );
    assert!(!applied.partial(), "{}", applied.render());
    for row in verified
        .rows
        .iter()
        .filter(|r| !r.key.starts_with("RLIMIT_"))
    {
        assert!(
            row.ok,
            "{} not as wanted after apply: {}",
            row.key, row.note
        );
    }
    let written = applied
        .rows
        .iter()
        .filter(|r| r.action == Action::Written)
        .count();
    assert!(reverted.snapshot_removed, "{}", reverted.render());
    assert_eq!(
        after, before,
        "every touched key byte-identical after revert"
    );
    eprintln!("live_host: {written} key(s) written and restored");
}
