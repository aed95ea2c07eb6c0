//! examples/agent_control.rs: the Go agent-control socket, its commands on real processes, its
//! stats and its heartbeat.

use std::time::{Duration, Instant};

use super::common::eventually;
use super::http::get;
use super::{Ws, parse, refused, start, str_of};
use weir::json::Value;

/// Connects to agent `name` and reads the `connected` message.
fn agent(addr: std::net::SocketAddr, name: &str) -> Ws {
    let mut ws = Ws::open(addr, &format!("/ws/agents/{name}"));
    let hello = ws.next();
    assert_eq!(str_of(&hello, "type"), "connected", "{hello}");
    assert_eq!(str_of(&hello, "agent"), name, "{hello}");
    ws
}

/// Sends a command and returns the next message that is not output or a status update.
fn command(ws: &mut Ws, command: &str, request_id: &str, data: &str) -> Value {
    ws.send(&format!(
        r#"{{"type":"command","command":"{command}","agent":"cat","request_id":"{request_id}","data":{data}}}"#
    ));
    loop {
        let v = ws.next();
        if !matches!(str_of(&v, "type"), "output" | "status") {
            assert_eq!(v.get("request_id").and_then(Value::as_str), Some(request_id), "{v}");
            return v;
        }
    }
}

/// The next message of `kind` (`output`, `status`), skipping others.
fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = ws.next();
        if str_of(&v, "type") == kind {
            return v;
        }
    }
}

/// The process state letter of `pid` (`T` when stopped), from /proc.
fn proc_state(pid: u64) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name is in parentheses and may hold spaces: the state follows the last `)`.
    stat.rsplit(')').next().unwrap().trim_start().chars().next().unwrap()
}

#[test]
fn commands_act_on_the_agent_process_and_are_answered_with_their_request_id() {
    let server = start("agent_control", &["cat=cat"], &[]);
    let mut a = agent(server.addr, "cat");
    let mut b = agent(server.addr, "cat");

    let state = command(&mut a, "get_state", "001", "{}");
    assert_eq!(str_of(&state, "type"), "response", "{state}");
    let data = state.get("data").unwrap();
    assert_eq!(str_of(data, "status"), "running", "{state}");
    let pid = data.get("pid").and_then(Value::as_u64).unwrap();
    assert!(str_of(data, "started_at").ends_with('Z'), "{state}");

    let r = command(&mut a, "send_input", "002", r#"{"input":"hello agent\n"}"#);
    assert_eq!(str_of(&r, "type"), "response", "{r}");
    // Both clients of the agent see its output.
    for ws in [&mut a, &mut b] {
        let out = next_of(ws, "output");
        assert!(str_of(out.get("data").unwrap(), "text").contains("hello agent"), "{out}");
    }

    assert_eq!(str_of(&command(&mut a, "pause", "003", "{}"), "type"), "response");
    // Signals are delivered asynchronously: wait (bounded) for the stop.
    let stopped = eventually(Duration::from_secs(5), || (proc_state(pid) == 'T').then_some(()));
    assert!(stopped.is_some(), "not stopped after pause");
    let st = next_of(&mut b, "status");
    assert_eq!(str_of(st.get("data").unwrap(), "status"), "paused", "{st}");
    assert_eq!(str_of(&command(&mut a, "resume", "004", "{}"), "type"), "response");
    let running = eventually(Duration::from_secs(5), || (proc_state(pid) != 'T').then_some(()));
    assert!(running.is_some(), "still stopped after resume");
    let st = next_of(&mut b, "status");
    assert_eq!(str_of(st.get("data").unwrap(), "status"), "running", "{st}");

    assert_eq!(str_of(&command(&mut a, "kill", "005", "{}"), "type"), "response");
    let st = next_of(&mut b, "status");
    assert_eq!(str_of(st.get("data").unwrap(), "status"), "exited", "{st}");
    let state = command(&mut b, "get_state", "006", "{}");
    assert_eq!(str_of(state.get("data").unwrap(), "status"), "exited", "{state}");
    let e = command(&mut b, "pause", "007", "{}");
    assert_eq!(str_of(&e, "type"), "error", "{e}");
    assert!(str_of(&e, "error").contains("not running"), "{e}");
}

#[test]
fn frames_that_are_not_commands_get_an_error_never_silence() {
    let server = start("agent_control", &["cat=cat"], &[]);
    assert_eq!(refused(Ws::connect(server.addr, "/ws/agents/nobody", &[])), 404);
    assert_eq!(refused(Ws::connect(server.addr, "/ws", &[])), 404);
    let mut ws = agent(server.addr, "cat");
    let e = command(&mut ws, "frobnicate", "r1", "{}");
    assert_eq!(str_of(&e, "type"), "error", "{e}");
    assert!(str_of(&e, "error").contains("unknown command"), "{e}");
    let e = command(&mut ws, "send_input", "r2", r#"{"input":5}"#);
    assert!(str_of(&e, "error").contains("data.input"), "{e}");
    for (text, why) in [("{oops", "invalid JSON"), (r#"{"type":"ping"}"#, "command")] {
        ws.send(text);
        let e = ws.next();
        assert_eq!(str_of(&e, "type"), "error", "{text}: {e}");
        assert_eq!(e.get("request_id"), Some(&Value::Null), "{e}");
        assert!(str_of(&e, "error").contains(why), "{text}: {e}");
    }
}

#[test]
fn stats_count_the_connections_of_each_agent() {
    let server = start("agent_control", &["cat=cat", "other=cat"], &[]);
    let _a = agent(server.addr, "cat");
    let _b = agent(server.addr, "cat");
    let _c = agent(server.addr, "other");
    let r = get(server.addr, "/api/ws/stats");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), parse(r#"{"total_connections":3,"agents":{"cat":2,"other":1}}"#));
}

#[test]
fn the_heartbeat_pings_and_drops_a_client_that_never_answers() {
    let env = [("AGENT_HEARTBEAT_MS", "300"), ("AGENT_PONG_WAIT_MS", "1500")];
    let server = start("agent_control", &["cat=cat"], &env);

    // A client that answers pings (tungstenite does, as it reads) stays through several.
    let mut ws = agent(server.addr, "cat");
    ws.ws.get_mut().set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        match ws.ws.read() {
            Ok(m) => assert!(m.is_ping(), "{m:?}"),
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("dropped while answering pings: {e}"),
        }
    }
    ws.ws.get_mut().set_read_timeout(Some(super::TIMEOUT)).unwrap();
    assert_eq!(str_of(&command(&mut ws, "get_state", "x", "{}"), "type"), "response");

    // One that never answers is pinged, then closed as gone (1001).
    super::silent_client_is_pinged_then_dropped(server.addr, "/ws/agents/cat", &[]);
}
