use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::metrics::Totals;
use crate::testing::worker;

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn call(w: &Worker, life: &mut Lifecycle, msg: &str) -> (Reply, Option<Value>) {
    let mut out = Vec::new();
    let reply = handle(msg.as_bytes(), life, w, &mut out);
    let value = (!out.is_empty()).then(|| serde_json::from_slice(&out).expect("replies are JSON"));
    (reply, value)
}

fn error_code(v: &Option<Value>) -> i64 {
    v.as_ref().unwrap()["error"]["code"]
        .as_i64()
        .expect("an error reply")
}

fn initialized(w: &Worker) -> Lifecycle {
    let mut life = Lifecycle::default();
    let (_, v) = call(w, &mut life, INIT);
    assert!(v.unwrap()["result"].is_object());
    life
}

#[test]
fn lifecycle_follows_erlmcp() {
    let w = worker(&[]);
    let mut life = Lifecycle::default();
    let (_, v) = call(&w, &mut life, r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#);
    assert_eq!(error_code(&v), -32005, "ping before initialize");
    assert_eq!(v.unwrap()["id"], 7);
    let (_, v) = call(&w, &mut life, INIT);
    let result = &v.as_ref().unwrap()["result"];
    assert_eq!(result["protocolVersion"], "2025-11-25");
    assert_eq!(result["serverInfo"]["name"], "r-test");
    assert_eq!(life.version, Some(Version::V2025_11_25));
    let (_, v) = call(&w, &mut life, INIT);
    assert_eq!(error_code(&v), -32005, "second initialize");
    let (reply, v) = call(
        &w,
        &mut life,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!((reply, v), (Reply::Nothing, None));
    let (_, v) = call(
        &w,
        &mut life,
        r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#,
    );
    assert_eq!(v.unwrap(), json!({"jsonrpc":"2.0","id":"p","result":{}}));
}

#[test]
fn initialize_checks_client_info_and_version() {
    let w = worker(&[]);
    let cases = [
        (r#"{"protocolVersion":"2025-11-25"}"#, -32602),
        (r#"{"clientInfo":{"name":"x","version":"1"}}"#, -32602),
        (
            r#"{"protocolVersion":"2025-06-18","clientInfo":{"name":"x","version":"1"}}"#,
            -32061,
        ),
        (
            r#"{"protocolVersion":"1999-01-01","clientInfo":{"name":"x","version":"1"}}"#,
            -32061,
        ),
        (r#"{"protocolVersion":7,"clientInfo":{"name":"x"}}"#, -32602),
    ];
    for (params, code) in cases {
        let mut life = Lifecycle::default();
        let msg = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{params}}}"#);
        let (_, v) = call(&w, &mut life, &msg);
        assert_eq!(error_code(&v), code, "{params}");
        assert_eq!(
            life.version, None,
            "a failed initialize leaves the session fresh"
        );
    }
    let mut life = Lifecycle::default();
    let (_, v) = call(
        &w,
        &mut life,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#,
    );
    assert_eq!(error_code(&v), -32602, "no params at all");
    let mut life = Lifecycle::default();
    let msg = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","clientInfo":{"name":"x","version":"1"}}}"#;
    let (_, v) = call(&w, &mut life, msg);
    assert_eq!(v.unwrap()["result"]["protocolVersion"], "2024-11-05");
    let data = {
        let mut life = Lifecycle::default();
        let msg = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","clientInfo":{"name":"x","version":"1"}}}"#;
        call(&w, &mut life, msg).1.unwrap()["error"]["data"].clone()
    };
    assert_eq!(
        data,
        json!({"supported":["2024-11-05","2025-11-25"],"requested":"2025-03-26"})
    );
}

#[test]
fn accept_all_answers_with_the_clients_version() {
    let w = worker(&["--accept-versions", "all"]);
    for v in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let mut life = Lifecycle::default();
        let msg = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{v}","clientInfo":{{"name":"x","version":"1"}}}}}}"#
        );
        let (_, r) = call(&w, &mut life, &msg);
        assert_eq!(r.unwrap()["result"]["protocolVersion"], v);
    }
}

#[test]
fn envelope_errors_have_the_right_codes() {
    let w = worker(&[]);
    let mut life = initialized(&w);
    let cases: [(&[u8], i64, Value); 11] = [
        (b"{not json", -32700, Value::Null),
        (b"", -32700, Value::Null),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"",
            -32700,
            Value::Null,
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
            -32700,
            Value::Null,
        ),
        (b"[1,2]", -32600, Value::Null),
        (b"42", -32600, Value::Null),
        (br#"{"id":3,"method":"ping"}"#, -32600, json!(3)),
        (
            br#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#,
            -32600,
            json!(3),
        ),
        (
            br#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
            -32600,
            Value::Null,
        ),
        (br#"{"jsonrpc":"2.0","id":4,"method":5}"#, -32600, json!(4)),
        (
            br#"{"jsonrpc":"2.0","id":5,"method":"ping","params":"x"}"#,
            -32600,
            json!(5),
        ),
    ];
    for (msg, code, id) in cases {
        let mut out = Vec::new();
        handle(msg, &mut life, &w, &mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["code"], code, "{}", String::from_utf8_lossy(msg));
        assert_eq!(v["id"], id, "{}", String::from_utf8_lossy(msg));
    }
    let (_, v) = call(
        &w,
        &mut life,
        r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
    );
    assert_eq!(error_code(&v), -32600, "null ids are refused");
    let (_, v) = call(
        &w,
        &mut life,
        r#"{"jsonrpc":"2.0","id":9,"method":"nope/nothing"}"#,
    );
    assert_eq!(error_code(&v), -32601);
    let (reply, v) = call(&w, &mut life, r#"{"jsonrpc":"2.0","id":9,"result":{}}"#);
    assert_eq!(
        (reply, v),
        (Reply::Nothing, None),
        "client responses are ignored"
    );
    let (reply, _) = call(
        &w,
        &mut life,
        r#"{"jsonrpc":"2.0","method":"notifications/whatever"}"#,
    );
    assert_eq!(reply, Reply::Nothing);
}

#[test]
fn ids_are_echoed_byte_for_byte() {
    let w = worker(&[]);
    let mut life = initialized(&w);
    for id in [r#""a\"b""#, "12345678901234567890123", "-1.5e3", r#""""#] {
        let mut out = Vec::new();
        let msg = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        handle(msg.as_bytes(), &mut life, &w, &mut out);
        let expected = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}

fn tool(w: &Worker, life: &mut Lifecycle, name: &str, args: Value) -> (Reply, Value) {
    let msg = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":name,"arguments":args}});
    let (reply, v) = call(w, life, &msg.to_string());
    (reply, v.unwrap())
}

#[test]
fn tools_answer_from_their_arguments() {
    let w = worker(&[]);
    let mut life = initialized(&w);
    let (_, v) = tool(&w, &mut life, "echo", json!({"text":"hé \"quoted\"\n"}));
    assert_eq!(
        v["result"],
        json!({"content":[{"type":"text","text":"hé \"quoted\"\n"}],"isError":false})
    );
    let sum = |a: Value, b: Value, life: &mut Lifecycle| {
        tool(&w, life, "add", json!({"a":a,"b":b})).1["result"]["content"][0]["text"].clone()
    };
    assert_eq!(sum(json!(2), json!(3), &mut life), "5");
    assert_eq!(sum(json!(-7), json!(2), &mut life), "-5");
    assert_eq!(sum(json!(1.5), json!(2.25), &mut life), "3.75");
    assert_eq!(
        sum(json!(i64::MAX), json!(1), &mut life),
        "9.223372036854776e+18"
    );
    let (reply, v) = tool(&w, &mut life, "sleep", json!({"ms":25}));
    assert_eq!(
        reply,
        Reply::Send {
            delay: Duration::from_millis(25)
        }
    );
    assert_eq!(v["result"]["content"][0]["text"], "slept 25 ms");
    for (name, args) in [
        ("nope", json!({})),
        ("echo", json!({})),
        ("echo", json!({"text":5})),
        ("add", json!({"a":1})),
        ("add", json!({"a":"1","b":2})),
        ("sleep", json!({"ms":60001})),
        ("sleep", json!({"ms":-1})),
    ] {
        let (_, v) = tool(&w, &mut life, name, args.clone());
        assert_eq!(v["error"]["code"], -32602, "{name} {args}");
    }
    let (_, v) = tool(&w, &mut life, "nope", json!({}));
    assert_eq!(v["error"]["message"], "Unknown tool: nope");
}

#[test]
fn lists_and_the_resource() {
    let w = worker(&[]);
    let mut life = initialized(&w);
    let (_, v) = call(
        &w,
        &mut life,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    );
    let names: Vec<_> = v.unwrap()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["echo", "add", "sleep"]);
    let (_, v) = call(
        &w,
        &mut life,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/list"}"#,
    );
    assert_eq!(
        v.unwrap()["result"]["resources"][0]["uri"],
        "replica://identity"
    );
    let (_, v) = call(
        &w,
        &mut life,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"replica://identity"}}"#,
    );
    assert_eq!(
        v.unwrap()["result"]["contents"][0]["text"],
        "replica r-test"
    );
    let (_, v) = call(
        &w,
        &mut life,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///etc/passwd"}}"#,
    );
    assert_eq!(error_code(&v), -32002);
}

#[test]
fn delays_apply_to_every_reply() {
    let w = worker(&["--delay", "7ms"]);
    let mut life = Lifecycle::default();
    let (reply, _) = call(&w, &mut life, INIT);
    assert_eq!(
        reply,
        Reply::Send {
            delay: Duration::from_millis(7)
        }
    );
    let (reply, _) = call(&w, &mut life, "garbage");
    assert_eq!(
        reply,
        Reply::Send {
            delay: Duration::from_millis(7)
        }
    );
}

/// Counts replies of each kind over `n` pings after initialize.
fn fault_counts(args: &[&str], n: usize) -> (usize, usize, usize, Totals) {
    let w = worker(args);
    let (mut ok, mut errors, mut drops) = (0, 0, 0);
    for _ in 0..n {
        let mut life = initialized(&w);
        match call(&w, &mut life, r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#) {
            (Reply::Drop, None) => drops += 1,
            (Reply::Send { .. }, Some(v)) if v["error"]["code"] == -32000 => {
                assert_eq!(v["error"]["message"], "injected fault");
                errors += 1;
            }
            (Reply::Send { .. }, Some(v)) if v["result"] == json!({}) => ok += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    (ok, errors, drops, w.shared.totals())
}

/// |x - n p| within 4.5 standard deviations: a false failure about once in 150,000 runs.
fn within_binomial_bound(x: usize, n: usize, p: f64) -> bool {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (x as f64 - mean).abs() <= 4.5 * sd
}

#[test]
fn injected_faults_follow_their_rates_and_are_counted() {
    let n = 2000;
    for seed in ["1", "2", "3"] {
        let (ok, errors, drops, totals) = fault_counts(
            &["--error-rate", "0.1", "--drop-rate", "0.05", "--seed", seed],
            n,
        );
        assert_eq!(ok + errors + drops, n);
        assert!(
            within_binomial_bound(drops, n, 0.05),
            "drops {drops} of {n}"
        );
        // An error is drawn only for requests that were not dropped.
        assert!(
            within_binomial_bound(errors, n - drops, 0.1),
            "errors {errors} of {}",
            n - drops
        );
        assert_eq!(totals.injected, [errors as u64, drops as u64]);
        let initialize_never_faulted = totals.requests[0] == n as u64;
        assert!(initialize_never_faulted);
    }
    let (ok, errors, drops, _) = fault_counts(&[], n);
    assert_eq!((ok, errors, drops), (n, 0, 0), "no faults unless asked");
}

#[test]
fn a_seed_makes_fault_runs_repeatable() {
    let a = fault_counts(&["--error-rate", "0.3", "--seed", "42"], 300);
    let b = fault_counts(&["--error-rate", "0.3", "--seed", "42"], 300);
    assert_eq!((a.0, a.1), (b.0, b.1));
}
