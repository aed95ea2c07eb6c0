//! Plain HTTP through a `--route` (issue 18): the weir binary in front of a Node HTTP server
//! (tests/node/http-upstream.js) and a Socket.IO server with its default transports. Requests
//! and responses with Content-Length, chunked and until-close bodies, a large upload and
//! download through weir with its memory bounded, server-sent events, keep-alive, the upstream
//! down (502) or silent (504), and Socket.IO's polling then upgrade.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::node::{Node, node_ready};
use common::{Binary, has_header, raw, read_head, status};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The Node upstream and weir in front of it, routed as /app.
fn setup() -> Option<(Node, Binary)> {
    if !node_ready() {
        return None;
    }
    let (node, port) = Node::server("http-upstream.js");
    let weir = Binary::start(&["--route", &format!("/app=ws://127.0.0.1:{port}/base")]);
    Some((node, weir))
}

/// The value of header `name` in a head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads a body of `Content-Length` bytes.
fn read_sized(s: &mut TcpStream, head: &str) -> Vec<u8> {
    let n: usize = header(head, "content-length").expect("Content-Length").parse().unwrap();
    let mut b = vec![0; n];
    s.read_exact(&mut b).unwrap();
    b
}

/// Reads a chunked body, handing each piece of data to `f`.
fn read_chunked(s: &mut BufReader<TcpStream>, mut f: impl FnMut(&[u8])) {
    let mut buf = vec![0; 64 << 10];
    loop {
        let mut line = String::new();
        s.read_line(&mut line).unwrap();
        let mut left = usize::from_str_radix(line.trim(), 16).expect("a chunk size");
        if left == 0 {
            s.read_line(&mut line).unwrap();
            return;
        }
        while left > 0 {
            let n = s.read(&mut buf[..left.min(64 << 10)]).unwrap();
            assert!(n > 0, "EOF inside a chunk");
            f(&buf[..n]);
            left -= n;
        }
        let mut crlf = [0; 2];
        s.read_exact(&mut crlf).unwrap();
    }
}

/// Reads a response head from a buffered stream.
fn buffered_head(s: &mut BufReader<TcpStream>) -> String {
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(s.read_line(&mut head).unwrap() > 0, "EOF in a head: {head:?}");
    }
    head
}

/// The peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).expect("VmHWM");
    kb.trim().trim_end_matches("kB").trim().parse::<usize>().unwrap() * 1024
}

/// The JSON string value of `key` (a flat lookup, enough for the upstream's answers).
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[at..];
    match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next(),
        None => rest.split([',', '}']).next(),
    }
}

#[test]
fn a_get_is_forwarded_with_its_head_rewritten_and_the_connection_kept_alive() {
    let Some((_node, weir)) = setup() else { return };
    let mut s = raw(weir.addr);
    for i in 0..3 {
        let req = format!(
            "GET /app/hello?i={i} HTTP/1.1\r\nHost: front.example\r\nX-Forwarded-For: 10.0.0.1\r\n\
             Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nX-Kept: yes\r\n\r\n"
        );
        s.write_all(req.as_bytes()).unwrap();
        let head = read_head(&mut s);
        assert_eq!(status(&head), 200, "{head}");
        assert!(!has_header(&head, "connection", "close"), "{head}");
        let body = String::from_utf8(read_sized(&mut s, &head)).unwrap();
        assert_eq!(json_field(&body, "url"), Some(format!("/base/hello?i={i}").as_str()), "{body}");
        assert_eq!(json_field(&body, "x-forwarded-for"), Some("10.0.0.1, 127.0.0.1"), "{body}");
        assert_eq!(json_field(&body, "x-forwarded-host"), Some("front.example"), "{body}");
        assert_eq!(json_field(&body, "x-kept"), Some("yes"), "{body}");
        assert_eq!(json_field(&body, "x-hop"), None, "{body}");
        assert!(json_field(&body, "host").unwrap().starts_with("127.0.0.1:"), "{body}");
    }
    let (_, metrics) = common::request(weir.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(metrics.contains("weir_route_http_requests_total{route=\"/app\"} 3\n"), "{metrics}");
}

#[test]
fn post_bodies_go_up_with_content_length_and_chunked() {
    let Some((_node, weir)) = setup() else { return };
    let mut s = raw(weir.addr);
    s.write_all(b"POST /app/count HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    let head = read_head(&mut s);
    let body = String::from_utf8(read_sized(&mut s, &head)).unwrap();
    assert_eq!(json_field(&body, "bytes"), Some("5"), "{body}");
    assert_eq!(json_field(&body, "cl"), Some("5"), "{body}");
    // Chunked up, with Expect: 100-continue; the echo comes back chunked.
    s.write_all(
        b"POST /app/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let interim = read_head(&mut s);
    assert_eq!(status(&interim), 100, "{interim}");
    s.write_all(b"6\r\nchunk \r\n4\r\nsent\r\n0\r\n\r\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let head = buffered_head(&mut r);
    assert_eq!(status(&head), 200, "{head}");
    assert!(has_header(&head, "transfer-encoding", "chunked"), "{head}");
    let mut got = Vec::new();
    read_chunked(&mut r, |b| got.extend_from_slice(b));
    assert_eq!(got, b"chunk sent");
}

#[test]
fn a_large_upload_to_an_upstream_that_waits_streams_through_in_bounded_memory() {
    let Some((_node, weir)) = setup() else { return };
    let n: usize = 96 << 20;
    let mut s = raw(weir.addr);
    // The upstream reads nothing for 1.5 s: weir must stop reading the client meanwhile.
    let head =
        format!("POST /app/count?wait=1500 HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let piece: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let mut sum: u64 = 0;
    for _ in 0..n >> 20 {
        s.write_all(&piece).unwrap();
        sum = piece.iter().fold(sum, |a, &b| (a + u64::from(b)) % 1_000_000_007);
    }
    let head = read_head(&mut s);
    let body = String::from_utf8(read_sized(&mut s, &head)).unwrap();
    assert_eq!(json_field(&body, "bytes"), Some(n.to_string().as_str()), "{body}");
    assert_eq!(json_field(&body, "sum"), Some(sum.to_string().as_str()), "{body}");
    let peak = peak_rss(weir.pid());
    assert!(peak < 48 << 20, "weir's peak RSS {peak} B for a {n} B upload");
}

#[test]
fn a_large_download_to_a_slow_reader_is_held_back_not_buffered() {
    let Some((_node, weir)) = setup() else { return };
    let n: usize = 96 << 20;
    let mut s = raw(weir.addr);
    write!(s, "GET /app/big?n={n} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let head = buffered_head(&mut r);
    assert_eq!(status(&head), 200, "{head}");
    // The client reads nothing for a while: the upstream must be held back meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    let mid = peak_rss(weir.pid());
    let (mut got, mut ok) = (0usize, true);
    read_chunked(&mut r, |b| {
        ok &= b.iter().enumerate().all(|(i, &x)| x as usize == (got + i) % 251);
        got += b.len();
    });
    assert_eq!(got, n);
    assert!(ok, "the body's bytes came back wrong");
    let peak = peak_rss(weir.pid());
    assert!(mid < 48 << 20 && peak < 48 << 20, "weir's peak RSS {mid} / {peak} B for {n} B");
    // Kept alive after a chunked response.
    s.write_all(b"GET /app/hello HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(status(&buffered_head(&mut r)), 200);
}

#[test]
fn server_sent_events_stream_through_as_they_come() {
    let Some((_node, weir)) = setup() else { return };
    let mut s = raw(weir.addr);
    s.write_all(b"GET /app/sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let head = buffered_head(&mut r);
    assert_eq!(status(&head), 200, "{head}");
    assert!(has_header(&head, "content-type", "text/event-stream"), "{head}");
    // Events 0, 1, 2 arrive one by one (each within the read timeout, 100 ms apart upstream),
    // inside chunks: the response never ends.
    let mut events = Vec::new();
    let mut line = String::new();
    while events.len() < 3 {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "EOF in the event stream");
        if let Some(e) = line.trim_end().strip_prefix("data: ") {
            events.push(e.to_string());
        }
    }
    assert_eq!(events, ["0", "1", "2"]);
}

#[test]
fn an_upstream_that_is_down_is_502_and_one_that_does_not_answer_is_504() {
    let down = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let weir = Binary::start(&[
        "--route",
        &format!("/down=ws://{down}/"),
        "--route",
        &format!("/silent=ws://{}/", silent.local_addr().unwrap()),
        "--response-timeout",
        "500ms",
    ]);
    let (head, _) = common::request(weir.addr, b"GET /down/x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&head), 502, "{head}");
    assert!(weir.log_with("upstream failed", TIMEOUT).contains("status=502"));
    let (head, _) = common::request(weir.addr, b"GET /silent/x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&head), 504, "{head}");
    drop(silent);
}

#[test]
fn a_body_that_runs_until_the_upstream_closes_closes_the_clients_connection() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let up: SocketAddr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let _ = read_head(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end").unwrap();
    });
    let weir = Binary::start(&["--route", &format!("/old=ws://{up}/")]);
    let (head, body) = common::request(weir.addr, b"GET /old/ HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&head), 200, "{head}");
    assert!(has_header(&head, "connection", "close"), "{head}");
    assert_eq!(body, "until the end");
}

#[test]
fn the_access_policy_applies_to_plain_requests_on_a_route() {
    if !node_ready() {
        return;
    }
    let (_node, port) = Node::server("http-upstream.js");
    let weir =
        Binary::start(&["--token", "s3cret", "--route", &format!("/app=ws://127.0.0.1:{port}/")]);
    let (head, _) = common::request(weir.addr, b"GET /app/hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&head), 401, "{head}");
    let (head, _) = common::request(
        weir.addr,
        b"GET /app/hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&head), 200, "{head}");
}

#[test]
fn socket_io_with_its_default_transports_polls_then_upgrades_through_a_plain_route() {
    if !node_ready() {
        return;
    }
    let mut server = Node::spawn("sio-server.js", &["polling"]);
    let port: u16 = server.expect_line("PORT ", TIMEOUT).trim().parse().unwrap();
    let weir = Binary::start(&["--route", &format!("/socket.io=ws://127.0.0.1:{port}/socket.io")]);
    let mut client =
        Node::spawn("sio-polling-client.js", &[&format!("http://127.0.0.1:{}", weir.addr.port())]);
    let polled = client.expect_line("OK polling ", TIMEOUT);
    assert!(polled.contains("\"transport\":\"polling\""), "{polled}");
    client.expect_line("OK upgraded", TIMEOUT);
    client.expect_line("OK ack ", TIMEOUT);
    assert!(client.wait_exit(TIMEOUT).success());
    assert!(weir.log().contains("proxy: http"), "the polling requests went through the route");
}

#[test]
fn an_upload_slower_than_the_response_timeout_is_not_cut_while_it_progresses() {
    if !node_ready() {
        return;
    }
    let (_node, port) = Node::server("http-upstream.js");
    let weir = Binary::start(&[
        "--route",
        &format!("/app=ws://127.0.0.1:{port}/"),
        "--response-timeout",
        "1s",
    ]);
    let mut s = raw(weir.addr);
    s.write_all(b"POST /app/count HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n").unwrap();
    // A slow client: five bytes over 2.5 s, more than the timeout, each within it.
    for b in b"hello" {
        std::thread::sleep(Duration::from_millis(500));
        s.write_all(&[*b]).unwrap();
    }
    let head = read_head(&mut s);
    assert_eq!(status(&head), 200, "{head}");
    let body = String::from_utf8(read_sized(&mut s, &head)).unwrap();
    assert_eq!(json_field(&body, "bytes"), Some("5"), "{body}");
}

#[test]
fn sigterm_lets_a_relayed_exchange_finish_and_cuts_an_event_stream_at_the_timeout() {
    if !node_ready() {
        return;
    }
    let (_node, port) = Node::server("http-upstream.js");
    let route = format!("/app=ws://127.0.0.1:{port}/");
    let mut weir = Binary::start(&["--route", &route, "--shutdown-timeout", "2s"]);
    let mut sse = raw(weir.addr);
    sse.write_all(b"GET /app/sse HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut sse = BufReader::new(sse);
    assert_eq!(status(&buffered_head(&mut sse)), 200);
    // An upload under way when the signal comes is answered, then its connection closes.
    let mut up = raw(weir.addr);
    up.write_all(b"POST /app/count HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab").unwrap();
    // Both are relayed (two lines) before the signal.
    let relayed = || (weir.log().matches("proxy: http").count() >= 2).then_some(());
    assert_eq!(common::eventually(TIMEOUT, relayed), Some(()), "{}", weir.log());
    weir.sigterm();
    weir.log_with("shutting down", TIMEOUT);
    up.write_all(b"cd").unwrap();
    let head = read_head(&mut up);
    assert_eq!(status(&head), 200, "{head}");
    assert!(has_header(&head, "connection", "close"), "{head}");
    let body = String::from_utf8(read_sized(&mut up, &head)).unwrap();
    assert_eq!(json_field(&body, "bytes"), Some("4"), "{body}");
    assert!(weir.wait_exit(TIMEOUT).success());
    // The event stream got events until then, and its connection is closed now.
    let mut rest = Vec::new();
    let _ = sse.read_to_end(&mut rest);
    assert!(String::from_utf8_lossy(&rest).contains("data: "), "no events before the end");
}

#[test]
fn a_request_pipelined_behind_a_relayed_one_closes_the_connection_after_the_first_answer() {
    let Some((_node, weir)) = setup() else { return };
    let mut s = raw(weir.addr);
    s.write_all(b"GET /app/hello?n=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /app/hello?n=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = read_head(&mut s);
    assert_eq!(status(&head), 200, "{head}");
    assert!(has_header(&head, "connection", "close"), "{head}");
    let body = String::from_utf8(read_sized(&mut s, &head)).unwrap();
    assert_eq!(json_field(&body, "url"), Some("/base/hello?n=1"), "{body}");
    assert!(common::read_to_end(&mut s).is_empty(), "no second answer");
}

#[test]
fn an_http10_client_gets_a_chunked_response_decoded_and_the_connection_closed() {
    let Some((_node, weir)) = setup() else { return };
    let mut s = raw(weir.addr);
    // RFC 9112 §7: no chunked body to an HTTP/1.0 client (the upstream is asked in HTTP/1.1).
    s.write_all(b"GET /app/big?n=100000 HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let head = read_head(&mut s);
    assert_eq!(status(&head), 200, "{head}");
    assert!(header(&head, "transfer-encoding").is_none(), "{head}");
    assert!(has_header(&head, "connection", "close"), "{head}");
    let body = common::read_to_end(&mut s);
    assert_eq!(body.len(), 100_000);
    assert!(body.iter().enumerate().all(|(i, &b)| b as usize == i % 251));
}

/// A listener that takes one connection, reads what comes and never answers; the bytes read
/// and whether it saw the end of the stream are sent back when the connection ends.
fn silent_upstream() -> (SocketAddr, std::sync::mpsc::Receiver<(usize, bool)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let (mut n, mut buf) = (0, [0u8; 4096]);
        let eof = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(k) => n += k,
                Err(_) => break false,
            }
        };
        let _ = tx.send((n, eof));
    });
    (up, rx)
}

/// The number of file descriptors weir has open.
fn open_fds(weir: &Binary) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", weir.pid())).unwrap().count()
}

#[test]
fn a_client_that_stops_sending_its_body_gets_408_and_is_no_upstream_failure() {
    // RFC 9110 §15.5.9: the request was not whole within the time weir waits; the upstream
    // took every byte it was sent, so a 504 and an upstream failure counted would blame it
    // for the client (anyone could raise an operator's upstream alarm so).
    let (up, seen) = silent_upstream();
    let weir =
        Binary::start(&["--route", &format!("/app=ws://{up}/"), "--response-timeout", "500ms"]);
    let mut s = raw(weir.addr);
    s.write_all(b"POST /app/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab").unwrap();
    let head = read_head(&mut s);
    assert_eq!(status(&head), 408, "{head}");
    let (n, eof) = seen.recv_timeout(TIMEOUT).unwrap();
    assert!(eof && n > 2, "the upstream's connection is closed after the head and 2 bytes");
    let (_, metrics) = common::request(weir.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let failures = metrics.lines().find(|l| l.starts_with("weir_route_upstream_failures_total"));
    assert!(failures.is_some_and(|l| l.ends_with(" 0")), "{failures:?}");
}

#[test]
fn a_client_gone_mid_exchange_closes_its_upstream_connection_and_leaks_no_fd() {
    let (up, seen) = silent_upstream();
    let weir = Binary::start(&["--route", &format!("/app=ws://{up}/")]);
    let before = open_fds(&weir);
    let mut s = raw(weir.addr);
    s.write_all(b"POST /app/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab").unwrap();
    // The upstream is connected once weir has more descriptors than before.
    assert!(
        common::eventually(TIMEOUT, || (open_fds(&weir) >= before + 2).then_some(())).is_some()
    );
    drop(s);
    let (n, eof) = seen.recv_timeout(TIMEOUT).unwrap();
    assert!(eof && n > 2, "the upstream saw the end ({n} bytes, eof {eof})");
    let after = common::eventually(TIMEOUT, || (open_fds(&weir) <= before).then_some(()));
    assert!(after.is_some(), "fds {} now, {before} before", open_fds(&weir));
}

#[test]
fn an_upstream_that_answers_before_the_body_ends_is_heard_and_the_connection_closed() {
    // RFC 9112 §9.6: weir closes the client's connection in stages, so the unread rest of the
    // upload does not reset it before the client has read its answer.
    let up = upstream_after_the_head(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!");
        std::thread::sleep(Duration::from_millis(200));
    });
    let weir = Binary::start(&["--route", &format!("/app=ws://{up}/")]);
    let mut s = raw(weir.addr);
    s.write_all(b"POST /app/x HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n").unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let piece = vec![b'x'; 64 << 10];
        for _ in 0..1024 {
            if w.write_all(&piece).is_err() {
                break;
            }
        }
    });
    let head = read_head(&mut s);
    assert_eq!(status(&head), 413, "{head}");
    assert!(has_header(&head, "connection", "close"), "{head}");
    assert_eq!(read_sized(&mut s, &head), b"big!");
    drop(s);
    writer.join().unwrap();
}

#[test]
fn each_request_on_a_kept_alive_connection_meets_the_access_policy() {
    if !node_ready() {
        return;
    }
    let (_node, port) = Node::server("http-upstream.js");
    let weir =
        Binary::start(&["--token", "s3cret", "--route", &format!("/app=ws://127.0.0.1:{port}/")]);
    let mut s = raw(weir.addr);
    s.write_all(b"GET /app/hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n")
        .unwrap();
    let head = read_head(&mut s);
    assert_eq!(status(&head), 200, "{head}");
    read_sized(&mut s, &head);
    // The same connection, kept alive, without the token: refused, the upstream not asked.
    s.write_all(b"GET /app/hello HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let head = read_head(&mut s);
    assert_eq!(status(&head), 401, "{head}");
}

#[test]
fn requests_framed_ambiguously_are_refused_before_the_upstream_is_dialled() {
    // RFC 9112 §6.1, §6.3, §5.1, §5.2: each of these could end its body at two places for
    // two readers (request smuggling); none reaches the upstream.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let up = l.local_addr().unwrap();
    let weir = Binary::start(&["--route", &format!("/app=ws://{up}/")]);
    let cases: &[(&[u8], u16)] = &[
        (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400),
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", 400),
        (b"Content-Length: 5, 6\r\n", 400),
        (b"Content-Length: +5\r\n", 400),
        (b"Transfer-Encoding: chunked, identity\r\n", 501),
        (b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n", 501),
        (b"Transfer-Encoding : chunked\r\n", 400),
        (b"X: a\r\n Transfer-Encoding: chunked\r\n", 400),
    ];
    for (fields, want) in cases {
        let req = [
            &b"POST /app/x HTTP/1.1\r\nHost: x\r\n"[..],
            fields,
            b"\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        ]
        .concat();
        let (head, _) = common::request(weir.addr, &req);
        assert_eq!(status(&head), *want, "{}", String::from_utf8_lossy(fields));
    }
    // A chunk size past 64 bits, and a bare LF after a chunk size: 400 once relayed.
    for body in [&b"10000000000000000\r\n"[..], b"5\nhello\r\n0\r\n\r\n"] {
        let req =
            [&b"POST /app/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"[..], body]
                .concat();
        let (head, _) = common::request(weir.addr, &req);
        assert_eq!(status(&head), 400, "{}", String::from_utf8_lossy(body));
    }
    // Only the two chunked requests were dialled, and cut before any body went up.
    let mut dialled = 0;
    while let Ok((mut s, _)) = l.accept() {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let seen = String::from_utf8(common::read_to_end(&mut s)).unwrap();
        assert!(!seen.contains("hello") && !seen.contains("\r\n\r\n5"), "{seen}");
        dialled += 1;
    }
    assert!(dialled <= 2, "{dialled}");
}

/// A listener that takes one connection, reads the request head, then hands the connection to
/// `answer` (on its own thread).
fn upstream_after_the_head(answer: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let _ = read_head(&mut s);
        answer(s);
    });
    up
}

#[test]
fn a_response_slower_than_the_upstream_timeout_reaches_the_client() {
    // `--upstream-timeout` bounds the connect; the wait for the answer is `--response-timeout`
    // (60 s by default), so a long poll held 2 s until it has something to say (or a slow
    // report) is answered, not cut with 504 at 1 s.
    let up = upstream_after_the_head(|mut s| {
        std::thread::sleep(Duration::from_secs(2));
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate");
    });
    let weir =
        Binary::start(&["--route", &format!("/poll=ws://{up}/"), "--upstream-timeout", "1s"]);
    let (head, body) = common::request(
        weir.addr,
        b"GET /poll/socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(body, "late");
}

#[test]
fn a_silent_upstream_gets_its_client_a_504_after_the_response_timeout_not_before() {
    // The connect is done at once (the listener's backlog takes it), so the short
    // `--upstream-timeout` is not what decides: the 504 comes once `--response-timeout` has
    // passed since the request went up, logged, and the upstream's connection is closed.
    let (up, seen) = silent_upstream();
    let weir = Binary::start(&[
        "--route",
        &format!("/app=ws://{up}/"),
        "--upstream-timeout",
        "200ms",
        "--response-timeout",
        "1500ms",
    ]);
    let asked = std::time::Instant::now();
    let (head, _) = common::request(weir.addr, b"GET /app/x HTTP/1.1\r\nHost: x\r\n\r\n");
    let waited = asked.elapsed();
    assert_eq!(status(&head), 504, "{head}");
    assert!(waited >= Duration::from_millis(1500), "504 before the timeout: {waited:?}");
    let log = weir.log_with("upstream failed", TIMEOUT);
    assert!(log.contains("status=504") && log.contains("did not answer"), "{log}");
    let (n, eof) = seen.recv_timeout(TIMEOUT).unwrap();
    assert!(eof && n > 0, "the upstream got the request, then its connection was closed");
}

#[test]
fn an_upstream_whose_connect_hangs_gets_504_after_the_upstream_timeout() {
    // The connect is `--upstream-timeout`'s (1 s), not `--response-timeout`'s (30 s, past the
    // client's 10 s read timeout), nor the runtime's handshake timeout (30 s).
    let (addr, _full, _held) = common::listener_whose_connects_hang();
    let weir = Binary::start(&[
        "--route",
        &format!("/hang=ws://{addr}/"),
        "--upstream-timeout",
        "1s",
        "--response-timeout",
        "30s",
        "--handshake-timeout",
        "30s",
    ]);
    let (head, _) = common::request(weir.addr, b"GET /hang/x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&head), 504, "{head}");
    let log = weir.log_with("upstream failed", TIMEOUT);
    assert!(log.contains("did not connect in time"), "{log}");
}
