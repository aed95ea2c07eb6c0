//! examples/checkpoints.rs: the checkpoint service's JSON-RPC-style API, its auth, its bound on
//! connections and its append-only file.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::common::eventually;
use super::{Ws, parse, refused, start, str_of};
use weir::json::Value;

/// A fresh path for a checkpoint file (removed when dropped).
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("weir-cp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        Self(p)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Sends `{id, method, params}` and reads frames up to its answer (events before it are
/// returned too).
fn call(ws: &mut Ws, id: &str, method: &str, params: &str) -> (Value, Vec<Value>) {
    ws.send(&format!(r#"{{"id":"{id}","method":"{method}","params":{params}}}"#));
    let mut events = Vec::new();
    for _ in 0..100 {
        let v = ws.next();
        if v.get("event_type").is_some() {
            events.push(v);
            continue;
        }
        assert_eq!(str_of(&v, "id"), id, "{v}");
        return (v, events);
    }
    panic!("no answer to {id}");
}

/// A call that must succeed: its `result`.
fn ok(ws: &mut Ws, id: &str, method: &str, params: &str) -> Value {
    let (a, _) = call(ws, id, method, params);
    assert_eq!(a.get("success"), Some(&Value::Bool(true)), "{method} {params}: {a}");
    assert!(a.get("error").is_none(), "{a}");
    a.get("result").cloned().unwrap_or_else(|| panic!("no result: {a}"))
}

/// A call that must fail: its `error`.
fn err(ws: &mut Ws, id: &str, method: &str, params: &str) -> String {
    let (a, _) = call(ws, id, method, params);
    assert_eq!(a.get("success"), Some(&Value::Bool(false)), "{method} {params}: {a}");
    assert!(a.get("result").is_none(), "{a}");
    str_of(&a, "error").to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    let cps = list.get("checkpoints").and_then(Value::as_array).expect("checkpoints");
    cps.iter().map(|c| str_of(c, "checkpoint_id").to_owned()).collect()
}

#[test]
fn sessions_checkpoints_subscriptions_and_metrics() {
    let file = TempFile::new("api");
    let server = start("checkpoints", &[file.arg()], &[]);
    let mut a = Ws::open(server.addr, "/");
    let mut b = Ws::open(server.addr, "/");

    let s = ok(&mut a, "1", "create_session", r#"{"name":"debug-session"}"#);
    let sid = str_of(&s, "session_id").to_owned();
    assert_eq!(ok(&mut b, "b1", "subscribe", &format!(r#"{{"session_id":"{sid}"}}"#)), s_sub(&sid));

    let params = format!(r#"{{"session_id":"{sid}","label":"before","data":{{"step":1}}}}"#);
    let cp = ok(&mut a, "2", "checkpoint", &params);
    let cp_id = str_of(&cp, "checkpoint_id").to_owned();
    assert!(str_of(&cp, "timestamp").ends_with('Z'), "{cp}");

    // The subscriber gets the event; the creator, not subscribed, does not.
    let ev = b.next();
    assert_eq!(str_of(&ev, "event_type"), "checkpoint_created", "{ev}");
    let data = ev.get("data").unwrap();
    assert_eq!(str_of(data, "checkpoint_id"), cp_id);
    assert_eq!(str_of(data, "session_id"), sid);
    assert_eq!(str_of(data, "timestamp"), str_of(&cp, "timestamp"));

    let list = ok(&mut a, "3", "list_checkpoints", &format!(r#"{{"session_id":"{sid}"}}"#));
    assert_eq!(ids(&list), std::slice::from_ref(&cp_id));
    let first = &list.get("checkpoints").and_then(Value::as_array).unwrap()[0];
    assert_eq!(first.get("data"), Some(&parse(r#"{"step":1}"#)));
    assert_eq!(str_of(first, "label"), "before");

    let m = ok(&mut a, "4", "metrics", "{}");
    for (k, want) in [("connections", 2), ("sessions", 1), ("checkpoints", 1)] {
        assert_eq!(m.get(k).and_then(Value::as_u64), Some(want), "{k}: {m}");
    }

    assert!(err(&mut a, "5", "checkpoint", r#"{"session_id":"nope"}"#).contains("no session"));
    assert!(err(&mut a, "6", "frobnicate", "{}").contains("unknown method"));
    assert!(err(&mut a, "7", "create_session", r#"{"name":5}"#).contains("name"));
    let big = format!(r#"{{"session_id":"{sid}","data":"{}"}}"#, "d".repeat(17_000));
    assert!(err(&mut a, "8", "checkpoint", &big).contains("16 KiB"));
    // A frame that is not a command: answered, with a null id.
    a.send("{oops");
    let bad = a.next();
    assert_eq!(bad.get("id"), Some(&Value::Null), "{bad}");
    assert_eq!(bad.get("success"), Some(&Value::Bool(false)), "{bad}");
}

fn s_sub(sid: &str) -> Value {
    parse(&format!(r#"{{"subscribed":"{sid}"}}"#))
}

#[test]
fn with_a_token_nothing_but_authenticate_is_served_until_it_succeeds() {
    let file = TempFile::new("auth");
    let server = start("checkpoints", &[file.arg()], &[("CHECKPOINT_TOKEN", "s3cret")]);
    let mut ws = Ws::open(server.addr, "/");
    assert!(err(&mut ws, "1", "create_session", r#"{"name":"x"}"#).contains("authenticate"));
    assert!(err(&mut ws, "2", "metrics", "{}").contains("authenticate"));
    assert!(err(&mut ws, "3", "authenticate", r#"{"token":"guess"}"#).contains("token"));
    let r = ok(&mut ws, "4", "authenticate", r#"{"token":"s3cret"}"#);
    assert_eq!(r.get("authenticated"), Some(&Value::Bool(true)));
    ok(&mut ws, "5", "create_session", r#"{"name":"x"}"#);
}

#[test]
fn past_max_connections_an_upgrade_gets_503() {
    let file = TempFile::new("max");
    let server = start("checkpoints", &[file.arg()], &[("CHECKPOINT_MAX_CONNECTIONS", "2")]);
    let _a = Ws::open(server.addr, "/");
    let _b = Ws::open(server.addr, "/");
    assert_eq!(refused(Ws::connect(server.addr, "/", &[])), 503);
}

#[test]
fn checkpoints_survive_a_kill_and_a_torn_last_record_is_ignored() {
    let file = TempFile::new("restart");
    let (sid, first) = {
        let server = start("checkpoints", &[file.arg()], &[]);
        let mut ws = Ws::open(server.addr, "/");
        let s = ok(&mut ws, "1", "create_session", r#"{"name":"durable"}"#);
        let sid = str_of(&s, "session_id").to_owned();
        let mut made = Vec::new();
        for i in 0..2 {
            let p = format!(r#"{{"session_id":"{sid}","data":{{"i":{i}}}}}"#);
            made.push(str_of(&ok(&mut ws, "c", "checkpoint", &p), "checkpoint_id").to_owned());
        }
        // Dropping the Binary kills it with SIGKILL: nothing is flushed on the way out.
        (sid, made)
    };
    // A crash in the middle of an append leaves half a record.
    let mut f = OpenOptions::new().append(true).open(&file.0).unwrap();
    f.write_all(br#"{"checkpoint":"cp-99","session":"#).unwrap();
    drop(f);

    let list_params = format!(r#"{{"session_id":"{sid}"}}"#);
    let third = {
        let server = start("checkpoints", &[file.arg()], &[]);
        let mut ws = Ws::open(server.addr, "/");
        assert_eq!(ids(&ok(&mut ws, "l", "list_checkpoints", &list_params)), first);
        let p = format!(r#"{{"session_id":"{sid}","data":3}}"#);
        let third = str_of(&ok(&mut ws, "c", "checkpoint", &p), "checkpoint_id").to_owned();
        assert!(!first.contains(&third), "{third} reused");
        assert!(server.log().contains("torn"), "{}", server.log());
        third
    };
    // The record written after the torn one is whole and found again.
    let server = start("checkpoints", &[file.arg()], &[]);
    let mut ws = Ws::open(server.addr, "/");
    let mut all = first.clone();
    all.push(third);
    assert_eq!(ids(&ok(&mut ws, "l", "list_checkpoints", &list_params)), all);
}

#[test]
fn a_damaged_record_before_the_last_one_refuses_to_start() {
    let file = TempFile::new("damaged");
    std::fs::write(
        &file.0,
        "{\"session\":\"s-1\",\"name\":\"x\"}\n{garbage}\n{\"session\":\"s-2\",\"name\":\"y\"}\n",
    )
    .unwrap();
    let mut child = Command::new(super::common::example::example("checkpoints"))
        .args(["127.0.0.1:0", file.arg()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = eventually(Duration::from_secs(10), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("it started on a damaged file");
    };
    assert!(!status.success());
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(log.contains("line 2"), "{log}");
}

#[test]
fn a_session_holds_at_most_1000_checkpoints_so_a_list_fits_in_one_answer() {
    let file = TempFile::new("full");
    let server = start("checkpoints", &[file.arg()], &[]);
    let mut ws = Ws::open(server.addr, "/");
    let sid =
        str_of(&ok(&mut ws, "s", "create_session", r#"{"name":"big"}"#), "session_id").to_owned();
    // Pipelined: 1,000 commands sent, then their answers read.
    let cmd = format!(r#"{{"id":"c","method":"checkpoint","params":{{"session_id":"{sid}"}}}}"#);
    for _ in 0..1000 {
        ws.send(&cmd);
    }
    for i in 0..1000 {
        let a = ws.next();
        assert_eq!(a.get("success"), Some(&Value::Bool(true)), "answer {i}: {a}");
    }
    let p = format!(r#"{{"session_id":"{sid}"}}"#);
    assert!(err(&mut ws, "x", "checkpoint", &p).contains("full"));
    assert_eq!(ids(&ok(&mut ws, "l", "list_checkpoints", &p)).len(), 1000);
}
