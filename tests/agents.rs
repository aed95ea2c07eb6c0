//! `--agent`: supervised processes watched and steered over WebSocket, with real programs
//! (tests/scripts/).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "scripts/support.rs"]
mod support;

use std::time::Duration;

use support::{Client, TIMEOUT, Weir, alive, output_data, script, status_state, upgrade_status};
use weir::json::{self, Value};

fn agent(name: &str, script_name: &str) -> String {
    format!("{name}={}", script(script_name))
}

fn number(v: &Value) -> Option<u64> {
    output_data(v).and_then(|d| d.parse().ok())
}

/// `GET target` on a fresh connection: the response head and body.
fn http_get(addr: std::net::SocketAddr, target: &str) -> (String, String) {
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    common::request(addr, req.as_bytes())
}

fn pid_of(state: &Value) -> u32 {
    let pid = state.get("pid").and_then(Value::as_u64).unwrap();
    u32::try_from(pid).unwrap()
}

#[test]
fn pause_stops_the_counter_and_resume_continues_it() {
    let counter = agent("counter", "counter.sh");
    let weir = Weir::start(&["--agent", &counter]);
    let (mut c, hello) = Client::connect(weir.addr(), "counter");
    assert_eq!(
        hello.get("agent").and_then(|a| a.get("state")).and_then(Value::as_str),
        Some("running")
    );
    // It counts.
    let a = c.wait_for("output", |v| number(v).is_some());
    let b = c.wait_for("output", |v| number(v).is_some());
    assert!(number(&b) > number(&a));
    let paused = c.ok("pause", "{}");
    assert_eq!(paused.get("state").and_then(Value::as_str), Some("paused"));
    let st = c.wait_for("status", |_| true);
    assert_eq!(status_state(&st), Some("paused"));
    // Lines already in flight may still come for a moment; then nothing.
    let mut last = number(&b).unwrap();
    while let Some(v) = c.try_event(Duration::from_millis(300)) {
        if let Some(n) = number(&v) {
            last = n;
        }
    }
    assert_eq!(c.try_event(Duration::from_millis(500)), None, "output while paused");
    let state = c.ok("get_state", "{}");
    assert_eq!(state.get("state").and_then(Value::as_str), Some("paused"));
    c.ok("resume", "{}");
    assert_eq!(status_state(&c.wait_for("status", |_| true)), Some("running"));
    let next = c.wait_for("output", |v| number(v).is_some());
    assert_eq!(number(&next), Some(last + 1), "the count goes on where it stopped");
}

#[test]
fn send_input_round_trip_and_late_clients_see_the_log() {
    let echo = agent("echo", "echo.sh");
    let weir = Weir::start(&["--agent", &echo, "--agent-log-lines", "2"]);
    let (mut c, _) = Client::connect(weir.addr(), "echo");
    for word in ["one", "two", "three"] {
        let r = c.ok("send_input", &format!(r#"{{"data":"{word}\n"}}"#));
        assert_eq!(r.get("bytes").and_then(Value::as_u64), Some(word.len() as u64 + 1));
        let out = c.wait_for("output", |_| true);
        assert_eq!(output_data(&out), Some(format!("echo: {word}").as_str()));
        assert_eq!(out.get("stream").and_then(Value::as_str), Some("stdout"));
    }
    // A new client gets the last two lines.
    let (_late, hello) = Client::connect(weir.addr(), "echo");
    let log = hello.get("log").unwrap();
    let Value::Array(lines) = log else { panic!("{log:?}") };
    let data: Vec<&str> =
        lines.iter().filter_map(|l| l.get("data").and_then(Value::as_str)).collect();
    assert_eq!(data, ["echo: two", "echo: three"]);
    // A command larger than one read (gathered across reads) is a command too, not echoed.
    let pad = "x".repeat(300_000);
    let state = c.ok("get_state", &format!(r#"{{"pad":"{pad}"}}"#));
    assert_eq!(state.get("state").and_then(Value::as_str), Some("running"));
    // Errors are answered, not fatal.
    let bad = c.call("send_input", r#"{"data":5}"#);
    assert_eq!(bad.get("ok"), Some(&Value::Bool(false)));
    let unknown = c.call("frobnicate", "{}");
    assert_eq!(
        unknown.get("error").and_then(|e| e.get("code")).and_then(Value::as_str),
        Some("unknown_method")
    );
    // Every command is audited.
    assert!(
        support::wait_until(TIMEOUT, || weir.log().contains("method=frobnicate")),
        "{}",
        weir.log()
    );
    let log = weir.log();
    assert!(
        log.contains("agent: command")
            && log.contains("method=send_input")
            && log.contains("result=ok")
    );
    // Refused before a method could be read, or for its params: audited too.
    c.ws.send(tungstenite::Message::text("{not json")).unwrap();
    c.ws.send(tungstenite::Message::text(r#"{"id":7,"method":"get_state","params":[1]}"#)).unwrap();
    for code in ["parse_error", "invalid_params"] {
        assert!(
            support::wait_until(TIMEOUT, || weir.log().contains(&format!("result={code}"))),
            "{code}: {}",
            weir.log()
        );
    }
}

#[test]
fn kill_start_and_restart_reach_every_watcher() {
    let counter = agent("counter", "counter.sh");
    let weir = Weir::start(&["--agent", &counter, "--kill-grace", "1s"]);
    let (mut a, hello) = Client::connect(weir.addr(), "counter");
    let (mut b, _) = Client::connect(weir.addr(), "counter");
    let first_pid = pid_of(hello.get("agent").unwrap());
    assert!(alive(first_pid));

    let killed = a.ok("kill", r#"{"signal":"KILL"}"#);
    assert_eq!(killed.get("signal").and_then(Value::as_str), Some("KILL"));
    for c in [&mut a, &mut b] {
        let st = c.wait_for("status", |_| true);
        assert_eq!(status_state(&st), Some("stopped"), "{st:?}");
        assert_eq!(st.get("agent").and_then(|s| s.get("signal")).and_then(Value::as_u64), Some(9));
    }
    assert!(!alive(first_pid));
    // Stopped on purpose: the policy does not bring it back.
    assert_eq!(b.try_event(Duration::from_millis(1200)).as_ref().and_then(status_state), None);

    let started = b.ok("start", "{}");
    assert_eq!(started.get("state").and_then(Value::as_str), Some("running"));
    let mut second_pid = 0;
    for c in [&mut a, &mut b] {
        let st = c.wait_for("status", |_| true);
        assert_eq!(status_state(&st), Some("running"));
        second_pid = pid_of(st.get("agent").unwrap());
    }
    assert_ne!(second_pid, first_pid);

    a.ok("restart", "{}");
    for c in [&mut a, &mut b] {
        assert_eq!(status_state(&c.wait_for("status", |_| true)), Some("stopped"));
        let st = c.wait_for("status", |_| true);
        assert_eq!(status_state(&st), Some("running"));
        let agent = st.get("agent").unwrap();
        assert_ne!(pid_of(agent), second_pid);
        assert_eq!(agent.get("restarts").and_then(Value::as_u64), Some(2));
    }
    assert!(!alive(second_pid));
}

#[test]
fn two_clients_see_the_same_output() {
    let counter = agent("counter", "counter.sh");
    let weir = Weir::start(&["--agent", &counter]);
    let (mut a, _) = Client::connect(weir.addr(), "counter");
    let (mut b, _) = Client::connect(weir.addr(), "counter");
    // From the first line b sees on, a sees the same lines in the same order.
    let start = number(&b.wait_for("output", |v| number(v).is_some())).unwrap();
    let from_a: Vec<u64> = (0..)
        .map(|_| number(&a.wait_for("output", |v| number(v).is_some())).unwrap())
        .skip_while(|&n| n < start)
        .take(10)
        .collect();
    let mut from_b = vec![start];
    from_b.extend((0..9).map(|_| number(&b.wait_for("output", |v| number(v).is_some())).unwrap()));
    assert_eq!(from_a, from_b);
    assert_eq!(from_b, (start..start + 10).collect::<Vec<_>>());
}

#[test]
fn failing_agent_is_restarted_with_back_off() {
    let fail = agent("flaky", "fail.sh");
    let weir = Weir::start(&["--agent", &fail, "--agent-restart", "on-failure"]);
    let (mut c, _) = Client::connect(weir.addr(), "flaky");
    let exited = c.wait_for("status", |v| status_state(v) == Some("exited"));
    assert_eq!(
        exited.get("agent").and_then(|a| a.get("exit_code")).and_then(Value::as_u64),
        Some(3)
    );
    let again = c.wait_for("status", |v| status_state(v) == Some("running"));
    assert!(again.get("agent").and_then(|a| a.get("restarts")).and_then(Value::as_u64) >= Some(1));
    let err = c.wait_for("output", |v| v.get("stream").and_then(Value::as_str) == Some("stderr"));
    assert_eq!(output_data(&err), Some("about to fail"));
}

#[test]
fn http_list_and_access_rules() {
    let counter = agent("counter", "counter.sh");
    let weir = Weir::start(&["--agent", &counter, "--token", "s3cret"]);
    let addr = weir.addr();
    let get = |target: &str| http_get(addr, target);
    let (head, _) = get("/api/agents");
    assert_eq!(common::status(&head), 401);
    let (head, body) = get("/api/agents?token=s3cret");
    assert_eq!(common::status(&head), 200, "{body}");
    let v = json::parse(body.as_bytes()).unwrap();
    let Some(Value::Array(list)) = v.get("agents") else { panic!("{body}") };
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].get("name").and_then(Value::as_str), Some("counter"));
    assert_eq!(list[0].get("state").and_then(Value::as_str), Some("running"));
    // WebSocket: the token is required too, and unknown agents are 404.
    assert_eq!(upgrade_status(addr, "/ws/agents/counter"), 401);
    assert_eq!(upgrade_status(addr, "/ws/agents/counter?token=wrong"), 401);
    assert_eq!(upgrade_status(addr, "/ws/agents/nobody?token=s3cret"), 404);
    let (mut c, _) = Client::connect(addr, "counter?token=s3cret");
    assert_eq!(c.ok("get_state", "{}").get("state").and_then(Value::as_str), Some("running"));
}

#[test]
fn query_token_is_percent_decoded_for_agents() {
    let counter = agent("counter", "counter.sh");
    let weir = Weir::start(&["--agent", &counter, "--token", "ab+c/d="]);
    let addr = weir.addr();
    let get = |target: &str| common::status(&http_get(addr, target).0);
    for q in ["?token=ab%2Bc%2Fd%3D", "?token=ab%2bc%2fd%3d", "?token=ab+c/d="] {
        assert_eq!(get(&format!("/api/agents{q}")), 200, "{q}");
        assert_eq!(upgrade_status(addr, &format!("/ws/agents/counter{q}")), 101, "{q}");
    }
    for q in ["?token=ab%2Bc%2Fd%3", "?token=ab%2Bc%2Fd%zz", "?token=ab%20c%2Fd%3D"] {
        assert_eq!(get(&format!("/api/agents{q}")), 401, "{q}");
        assert_eq!(upgrade_status(addr, &format!("/ws/agents/counter{q}")), 401, "{q}");
    }
    let (mut c, _) = Client::connect(addr, "counter?token=ab%2Bc%2Fd%3D");
    assert_eq!(c.ok("get_state", "{}").get("state").and_then(Value::as_str), Some("running"));
}

/// A log larger than the queue cap does not cut off new watchers: they get the newest lines
/// that fit in half of it (before: the `connected` message passed the cap, and the client got a
/// bare close frame in place of its 101).
#[test]
fn a_log_larger_than_the_queue_cap_still_lets_watchers_in() {
    let echo = agent("echo", "echo.sh");
    let weir = Weir::start(&["--agent", &echo, "--queue-cap", "1MiB"]);
    let (mut c, _) = Client::connect(weir.addr(), "echo");
    let line = |i: usize| format!("{i:03}{}", "a".repeat(60_000));
    for i in 0..40 {
        c.ok("send_input", &format!(r#"{{"data":"{}\n"}}"#, line(i)));
        let want = format!("echo: {}", line(i));
        c.wait_for("output", |o| output_data(o) == Some(want.as_str()));
    }
    let (_late, hello) = Client::connect(weir.addr(), "echo");
    let Some(Value::Array(lines)) = hello.get("log") else { panic!("no log") };
    let data: Vec<&str> =
        lines.iter().filter_map(|l| l.get("data").and_then(Value::as_str)).collect();
    let total: usize = data.iter().map(|d| d.len()).sum();
    assert!(!data.is_empty() && total <= 512 << 10, "{} lines, {total} bytes", data.len());
    // The newest lines, in order, up to the last.
    let first = 40 - data.len();
    for (k, d) in data.iter().enumerate() {
        assert_eq!(&d[..9], format!("echo: {:03}", first + k), "line {k}");
    }
}

#[test]
fn a_program_that_cannot_start_backs_off_to_the_cap() {
    let weir = Weir::start(&["--agent", "gone=/nonexistent/program"]);
    let delays = || -> Vec<u64> {
        weir.log()
            .lines()
            .filter(|l| l.contains("agent: restart scheduled"))
            .filter_map(|l| l.split(" delay_ms=").nth(1))
            .filter_map(|d| d.split_whitespace().next()?.parse().ok())
            .collect()
    };
    // Each failed start doubles the delay: the sixth comes after 15.5 s.
    let within = Duration::from_secs(25);
    assert!(support::wait_until(within, || delays().len() >= 6), "{}", weir.log());
    // A spawn that failed is a run of no length: it never resets the back-off, however long
    // weir has been up.
    assert_eq!(delays()[..6], [500, 1000, 2000, 4000, 8000, 16000], "{}", weir.log());
}

#[test]
fn shutdown_ends_what_an_agent_leaves_in_its_group() {
    let leftover = format!("{} stay", agent("left", "leftover.sh"));
    let mut weir = Weir::start(&["--agent", &leftover, "--kill-grace", "1s"]);
    let (mut c, hello) = Client::connect(weir.addr(), "left");
    let Some(Value::Array(log)) = hello.get("log") else { panic!("{hello:?}") };
    let mut lines: Vec<String> = log
        .iter()
        .filter_map(|l| l.get("data").and_then(Value::as_str))
        .map(String::from)
        .collect();
    while lines.len() < 2 {
        lines.push(output_data(&c.wait_for("output", |_| true)).unwrap().to_string());
    }
    let pids: Vec<u32> =
        lines.iter().map(|l| l.strip_prefix("pid ").unwrap().parse().unwrap()).collect();
    // The agent ends on SIGTERM; one child in its group ignores it.
    weir.bin.sigterm();
    assert!(weir.bin.wait_exit(TIMEOUT).success());
    for pid in pids {
        assert!(support::wait_until(TIMEOUT, || !alive(pid)), "{pid} outlived weir");
    }
}

#[test]
fn a_chatty_agent_leaves_the_sockets_served() {
    // `yes` writes as fast as weir reads, with nobody watching: weir reads a bounded amount of
    // its output per turn of the loop (the unit test on the process reader holds the bound), so
    // an echo client is still answered, each round trip within the usual read timeout.
    let weir = Weir::start(&["--agent", "chatty=yes"]);
    let (mut watcher, _) = Client::connect(weir.addr(), "chatty");
    assert_eq!(output_data(&watcher.wait_for("output", |_| true)), Some("y"));
    drop(watcher);
    let mut ws = support::connect(weir.addr(), "/echo");
    for i in 0..200 {
        let text = format!("canary {i}");
        ws.send(tungstenite::Message::text(text.clone())).unwrap();
        assert_eq!(support::next_text(&mut ws), text);
    }
    // And the agent is still running, read all along.
    let (head, body) = http_get(weir.addr(), "/api/agents");
    assert_eq!(common::status(&head), 200, "{head}");
    assert!(body.contains(r#""state":"running""#), "{body}");
}

#[test]
fn an_agent_command_is_split_as_a_shell_splits_words() {
    // One argument to `sh -c`, with quotes inside quotes: split on blanks it would be
    // `sh -c '"echo'`, which fails.
    let weir =
        Weir::start(&["--agent", r#"quoted=sh -c "echo 'two  words' \"\$0\"; exec cat" x\ y"#]);
    let (mut c, hello) = Client::connect(weir.addr(), "quoted");
    // The line is in the log sent on connect if it came before the client, else an event.
    let logged = hello.get("log").and_then(Value::as_array).and_then(|l| l.first()).cloned();
    let line = match logged {
        Some(entry) => entry.get("data").and_then(Value::as_str).map(String::from),
        None => output_data(&c.wait_for("output", |_| true)).map(String::from),
    };
    assert_eq!(line.as_deref(), Some("two  words x y"));
    let state = c.ok("get_state", "{}");
    assert_eq!(state.get("state").and_then(Value::as_str), Some("running"));
}

#[test]
fn an_unterminated_quote_is_a_flag_error() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["--listen", "127.0.0.1:0", "--agent", r#"t=sh -c "date"#])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exit = common::eventually(TIMEOUT, || child.try_wait().unwrap());
    if exit.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(exit.expect("still running with an open quote").code(), Some(2));
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("--agent") && stderr.contains("unterminated double quote"), "{stderr}");
}

#[test]
fn frames_that_are_not_commands_are_answered_not_ignored() {
    let weir = Weir::start(&["--agent", "c=cat"]);
    let (mut c, _) = Client::connect(weir.addr(), "c");
    // Other systems' frames (no `id`, no `method`), and frames that are no command at all.
    let frames = [
        r#"{"type":"ping"}"#,
        r#"{"type":"command","command":"pause","request_id":"r1"}"#,
        "[]",
        r#""x""#,
        r#"{"method":"pause","params":[1]}"#,
    ];
    for frame in frames {
        c.ws.send(tungstenite::Message::text(frame)).unwrap();
        let v = c.wait_for_answer();
        assert_eq!(v.get("id"), Some(&Value::Null), "{frame}: {v:?}");
        let code = v.get("error").and_then(|e| e.get("code")).and_then(Value::as_str);
        let want = if frame.contains("params") { "invalid_params" } else { "invalid_request" };
        assert_eq!(code, Some(want), "{frame}: {v:?}");
    }
    c.ws.send(tungstenite::Message::binary(b"\x00".to_vec())).unwrap();
    assert_eq!(c.wait_for_answer().get("id"), Some(&Value::Null));
    // The offending id, when there is one.
    c.ws.send(tungstenite::Message::text(r#"{"id":"r2","type":"ping"}"#)).unwrap();
    let v = c.wait_for_answer();
    assert_eq!(v.get("id").and_then(Value::as_str), Some("r2"), "{v:?}");
    // A notification (a method, no id) is still carried out and not answered.
    c.ws.send(tungstenite::Message::text(r#"{"method":"pause"}"#)).unwrap();
    let state = c.ok("get_state", "{}");
    assert_eq!(state.get("state").and_then(Value::as_str), Some("paused"));
    assert!(c.events.iter().all(|v| v.get("id").is_none()), "{:?}", c.events);
}
