//! The command line's contract: bad input gets exit code 2 and a one-line error naming the fix;
//! an unreachable target gets exit code 3 naming the target and the errno.

use std::process::{Command, Output};

fn engine(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(args)
        .output()
        .expect("run engine")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn usage_errors_exit_2_with_the_fix() {
    for (args, needle) in [
        (
            &["--conns", "0", "--target", "tcp://127.0.0.1:1"][..],
            "at least one session",
        ),
        (&["--conns", "99999999999"][..], "not a plan"),
        (&["--target", "127.0.0.1:5555"][..], "missing scheme"),
        (&["--target", "https://127.0.0.1/mcp"][..], "TLS"),
        (&["--scenario", "pong"][..], "invalid value 'pong'"),
        (&["--hold", "5 parsecs"][..], "use e.g. 30s"),
        (&["--ramp", "fast"][..], "2000/s"),
        (
            &[
                "--source-ips",
                "127.0.0.9-127.0.0.2",
                "--target",
                "tcp://127.0.0.1:1",
            ][..],
            "ends before",
        ),
        (
            &["--targets-file", "/nonexistent/targets.txt"][..],
            "--targets-file",
        ),
    ] {
        let out = engine(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn unreachable_targets_exit_3_naming_target_and_errno() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("tcp://127.0.0.1:{port}");
    let out = engine(&["--conns", "10", "--hold", "1s", "--target", &url, "--quiet"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&url) && err.contains("refused"), "{err}");
}

#[test]
fn preflight_only_prints_the_table_and_exits() {
    let out = engine(&[
        "--conns",
        "1000",
        "--preflight-only",
        "--target",
        "tcp://127.0.0.1:5555",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("ip_local_port_range"), "{table}");
}
