//! TLS (feature `tls`): HTTPS and WSS on `--listen-tls` beside a plain listener, the TLS
//! handshake bounded like the WebSocket one, hostile TLS peers costing only themselves (each
//! followed by a canary), the certificate re-read on SIGHUP, and `weir client wss://` and
//! `--route PATH=wss://...` verifying the server. Without the feature, `--listen-tls` is refused
//! with a precise message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

#[cfg(not(feature = "tls"))]
#[test]
fn without_the_feature_tls_flags_are_refused_with_the_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["--listen-tls", "127.0.0.1:0", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("built without TLS (cargo build --features tls)"), "{err}");
    let _ = Duration::ZERO;
}

#[cfg(feature = "tls")]
mod with_tls {
    use super::*;
    use std::io::{Read, Write};

    use tungstenite::Message;
    use tungstenite::protocol::CloseFrame;
    use tungstenite::protocol::frame::coding::CloseCode;

    use crate::common::tls::{self, Certs, TlsBinary};
    use crate::common::{self, eventually};

    #[test]
    fn wss_echoes_text_binary_1mib_fragments_and_close_with_reason() {
        let certs = Certs::new();
        let srv = TlsBinary::start(&certs, &[]);
        let mut ws = tls::ws(srv.tls, &certs.ca(), "/echo");
        ws.send(Message::text("héllo")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("héllo"));
        ws.send(Message::binary(vec![0u8, 1, 2, 255])).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(vec![0u8, 1, 2, 255]));
        let big: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
        ws.send(Message::binary(big.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(big));
        // A text message in three fragments, written as raw masked frames under the session.
        let mut raw = common::frame(0x01, b"fra");
        raw.extend(common::frame(0x00, b"gmen"));
        raw.extend(common::frame(0x80, b"ted"));
        ws.get_mut().write_all(&raw).unwrap();
        ws.get_mut().flush().unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("fragmented"));
        ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye now".into() })).unwrap();
        let echo = loop {
            match ws.read() {
                Ok(Message::Close(f)) => break f,
                Ok(_) => {}
                Err(e) => panic!("no close echo: {e}"),
            }
        };
        let echo = echo.unwrap();
        assert_eq!((u16::from(echo.code), echo.reason.as_str()), (1000, "bye now"));
        // The server closes first (RFC 6455 §7.1.1), with a close_notify: a clean TLS end.
        let mut rest = Vec::new();
        ws.get_mut().read_to_end(&mut rest).unwrap();
        // The plain listener still speaks plain WebSocket.
        let mut plain = common::upgraded(srv.bin.addr);
        plain.write_all(&common::frame(0x81, b"plain")).unwrap();
        assert_eq!(common::read_frame(&mut plain).unwrap().payload, b"plain");
    }

    #[test]
    fn https_serves_the_http_apps_with_alpn_http11_and_a_plain_request_gets_400() {
        let certs = Certs::new();
        let srv = TlsBinary::start(&certs, &[]);
        let mut s = tls::connect(srv.tls, &certs.ca());
        assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        // Plain HTTP to the TLS port: a short 400 in plain text, then closed.
        let mut p = common::raw(srv.tls);
        p.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let answer = String::from_utf8(common::read_to_end(&mut p)).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
        assert!(answer.ends_with("This port speaks TLS: use https:// or wss://.\n"), "{answer}");
        tls::canary(srv.tls, &certs.ca());
        logged(&srv.bin, "plain HTTP request on a TLS listener");
    }

    #[test]
    fn hostile_tls_peers_cost_only_themselves() {
        let certs = Certs::new();
        let srv = TlsBinary::start(&certs, &["--handshake-timeout", "1s"]);
        let ca = certs.ca();
        // A client hello of 16 KiB of junk: a handshake record header, then noise.
        let mut s = common::raw(srv.tls);
        let mut junk = vec![0x16, 0x03, 0x01, 0x40, 0x00];
        junk.extend((0..16 << 10).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        let _ = s.write_all(&junk);
        tls::closed_within(&mut s, Duration::from_secs(5));
        tls::canary(srv.tls, &ca);
        // Junk that is not even a record.
        let mut s = common::raw(srv.tls);
        let _ = s.write_all(&[0u8; 4096]);
        tls::closed_within(&mut s, Duration::from_secs(5));
        tls::canary(srv.tls, &ca);
        // A truncated record: the header promises 16 KiB, 100 bytes come, then EOF.
        let mut s = common::raw(srv.tls);
        let mut cut = vec![0x16, 0x03, 0x01, 0x40, 0x00];
        cut.extend([0x01; 100]);
        s.write_all(&cut).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        tls::closed_within(&mut s, Duration::from_secs(5));
        tls::canary(srv.tls, &ca);
        // A handshake that never finishes: half a real ClientHello, then silence, bounded by
        // --handshake-timeout (1 s here).
        let hello = tls::client_hello(&ca);
        let mut s = common::raw(srv.tls);
        s.write_all(&hello[..hello.len() / 2]).unwrap();
        let took = tls::closed_within(&mut s, Duration::from_secs(5));
        assert!(took >= Duration::from_millis(500), "closed after {took:?}");
        // And one that sends nothing at all.
        let mut s = common::raw(srv.tls);
        let took = tls::closed_within(&mut s, Duration::from_secs(5));
        assert!(took >= Duration::from_millis(500), "closed after {took:?}");
        tls::canary(srv.tls, &ca);
        // close_notify missing: a WebSocket open over TLS, a message, then TCP cut.
        let mut ws = tls::ws(srv.tls, &ca, "/echo");
        ws.send(Message::text("then gone")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("then gone"));
        ws.get_mut().sock.shutdown(std::net::Shutdown::Both).unwrap();
        drop(ws);
        let closed = eventually(Duration::from_secs(5), || {
            srv.bin
                .log()
                .lines()
                .any(|l| l.contains(" close ") && l.contains("code=1006"))
                .then_some(())
        });
        assert!(closed.is_some(), "{}", srv.bin.log());
        tls::canary(srv.tls, &ca);
        logged(&srv.bin, "tls failed");
    }

    /// Waits (at most 5 s) for the log to hold `what`.
    fn logged(bin: &common::Binary, what: &str) {
        let found = eventually(Duration::from_secs(5), || bin.log().contains(what).then_some(()));
        assert!(found.is_some(), "no {what:?} in the log:\n{}", bin.log());
    }

    #[test]
    fn a_tls_client_that_never_reads_is_cut_as_a_slow_reader() {
        let certs = Certs::new();
        let srv = TlsBinary::start(&certs, &["--queue-cap", "256KiB"]);
        let ca = certs.ca();
        let mut ws = tls::ws(srv.tls, &ca, "/echo");
        ws.get_mut().sock.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
        // 64 KiB messages echoed to a client that reads none of them: what TLS takes from the
        // queue waits in the socket, then the queue passes --queue-cap.
        let msg = Message::binary(vec![7u8; 64 << 10]);
        for _ in 0..400 {
            if ws.send(msg.clone()).is_err() {
                break;
            }
        }
        logged(&srv.bin, "slow reader");
        tls::canary(srv.tls, &ca);
    }

    fn sighup(pid: u32) {
        let st = Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
        assert!(st.success());
    }

    #[test]
    fn sighup_rereads_the_certificate_and_keeps_connections_and_a_bad_file_keeps_the_old() {
        let certs = Certs::new();
        let srv = TlsBinary::start(&certs, &[]);
        let mut open = tls::ws(srv.tls, &certs.ca(), "/echo");
        // A new CA and certificate in place of the old, then SIGHUP.
        certs.issue("ca2.pem", "cert.pem", "key.pem");
        let ca2 = certs.dir.path("ca2.pem");
        sighup(srv.bin.pid());
        logged(&srv.bin, "tls certificate reloaded");
        tls::canary(srv.tls, &ca2);
        // The connection opened before the reload is still served.
        open.send(Message::text("still here")).unwrap();
        assert_eq!(open.read().unwrap(), Message::text("still here"));
        // A key file that does not parse: the reload fails, says why, and the pair loaded
        // before stays.
        std::fs::write(certs.key(), "not a key\n").unwrap();
        sighup(srv.bin.pid());
        logged(&srv.bin, "tls reload failed");
        tls::canary(srv.tls, &ca2);
        open.send(Message::text("and here")).unwrap();
        assert_eq!(open.read().unwrap(), Message::text("and here"));
        assert!(srv.bin.log().contains("key.pem"), "{}", srv.bin.log());
    }

    /// Runs `weir client ARGS` with `input` on stdin; returns (status, stdout, stderr).
    fn client(args: &[&str], input: &str) -> (i32, String, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("client")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let exit = eventually(Duration::from_secs(10), || child.try_wait().unwrap());
        if exit.is_none() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    #[test]
    fn weir_client_wss_verifies_the_server_against_the_ca_given() {
        let certs = Certs::new();
        let srv = TlsBinary::start(&certs, &[]);
        let url = format!("wss://localhost:{}/echo", srv.tls.port());
        let ca = certs.ca_str();
        let (code, out, err) = client(&[&url, "--tls-ca", &ca], "one\ntwo\n");
        assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");
        // Not signed by the roots given (the system's here): refused, and says why.
        let (code, out, err) = client(&[&url], "one\n");
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(err.contains("invalid peer certificate"), "{err}");
        // The wrong name: a certificate for another name, signed by a CA given.
        let other = Certs::for_names(&["example.test"]);
        let elsewhere = TlsBinary::start(&other, &[]);
        let wrong = format!("wss://localhost:{}/echo", elsewhere.tls.port());
        let (code, _, err) = client(&[&wrong, "--tls-ca", &other.ca_str()], "x\n");
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("certificate not valid for name \"localhost\""), "{err}");
        // --insecure: works, and says so loudly.
        let (code, out, err) = client(&[&url, "--insecure"], "three\n");
        assert_eq!((code, out.as_str()), (0, "three\n"), "{err}");
        assert!(err.contains("NOT verified"), "{err}");
        // An IP address URL is verified against the certificate's IP names (no SNI sent).
        let ip = format!("wss://127.0.0.1:{}/echo", srv.tls.port());
        let (code, out, err) = client(&[&ip, "--tls-ca", &ca], "four\n");
        assert_eq!((code, out.as_str()), (0, "four\n"), "{err}");
    }

    #[test]
    fn a_wss_route_dials_its_upstream_over_tls_with_the_same_checks() {
        let certs = Certs::new();
        let upstream = TlsBinary::start(&certs, &[]);
        let ca = certs.ca_str();
        let good = format!("/up=wss://localhost:{}/echo", upstream.tls.port());
        let bad = format!("/bad=wss://localhost:{}/echo", upstream.tls.port());
        // /bad has no CA that signed the upstream: a proxy with --tls-ca for /up only is not
        // possible (one set of roots), so a second proxy without it stands for it.
        let proxy = common::Binary::start(&["--route", &good, "--tls-ca", &ca]);
        let mut s = common::raw(proxy.addr);
        s.write_all(common::UPGRADE.replace("/echo", "/up").as_bytes()).unwrap();
        let head = common::read_head(&mut s);
        assert_eq!(common::status(&head), 101, "{head}\n{}", proxy.log());
        s.write_all(&common::frame(0x81, b"through")).unwrap();
        assert_eq!(common::read_frame(&mut s).unwrap().payload, b"through");
        let unverified = common::Binary::start(&["--route", &bad]);
        let mut s = common::raw(unverified.addr);
        s.write_all(common::UPGRADE.replace("/echo", "/bad").as_bytes()).unwrap();
        let head = common::read_head(&mut s);
        assert_eq!(common::status(&head), 502, "{head}\n{}", unverified.log());
        logged(&unverified, "invalid peer certificate");
    }

    /// Starts `program ARGS` with `stdin` and its output piped. A program that cannot be run
    /// fails the test with `install` (unless skipped: `None`).
    fn spawn_external(
        program: &str,
        install: &str,
        args: &[&str],
        stdin: Stdio,
    ) -> Option<std::process::Child> {
        let child = Command::new(program)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        child
            .map_err(|e| {
                let why = format!("`{program}` cannot be run ({e}): {install}");
                common::missing_external(program, &why);
            })
            .ok()
    }

    /// Runs `program ARGS` with stdin closed, at most 20 s; returns whether it succeeded, and
    /// its stdout and stderr (`None`: skipped, see [`spawn_external`]).
    fn run_external(program: &str, install: &str, args: &[&str]) -> Option<(bool, String)> {
        let mut child = spawn_external(program, install, args, Stdio::null())?;
        let exit = eventually(Duration::from_secs(20), || child.try_wait().unwrap());
        if exit.is_none() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some((out.status.success(), text))
    }

    /// The DNS names of the certificate weir presents to a python `ssl` client that asks for
    /// `name` (SNI; `None`: asks for none), verified against the CA of `certs` (the test CAs
    /// share a subject name, so the client is given the one expected).
    fn python_sni(port: u16, name: Option<&str>, certs: &Certs) -> Option<String> {
        const SCRIPT: &str = "import socket, ssl, sys
port, name, ca = int(sys.argv[1]), sys.argv[2] or None, sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the chain is verified; which name it has is the question
with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
    with ctx.wrap_socket(s, server_hostname=name) as t:
        print(' '.join(v for k, v in t.getpeercert()['subjectAltName'] if k == 'DNS'))
";
        let port = port.to_string();
        let ca = certs.ca_str();
        let args = ["-c", SCRIPT, &port, name.unwrap_or(""), &ca];
        let (ok, out) = run_external("python3", "apt-get install python3", &args)?;
        assert!(ok, "python3 ssl client failed:\n{out}");
        Some(out.trim().to_string())
    }

    #[test]
    fn sni_picks_the_certificate_for_the_name_asked_and_the_first_for_any_other() {
        let first = Certs::new();
        let other = Certs::for_names(&["other.test"]);
        let pair = Certs::for_names(&["a.test", "b.test"]);
        let path = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
        let (c2, k2, c3, k3) =
            (path(other.cert()), path(other.key()), path(pair.cert()), path(pair.key()));
        let srv = TlsBinary::start(
            &first,
            &["--tls-cert", &c2, "--tls-key", &k2, "--tls-cert", &c3, "--tls-key", &k3],
        );
        let port = srv.tls.port();
        let Some(got) = python_sni(port, Some("other.test"), &other) else { return };
        assert_eq!(got, "other.test");
        assert_eq!(python_sni(port, Some("b.test"), &pair).unwrap(), "a.test b.test");
        assert_eq!(python_sni(port, Some("A.TEST"), &pair).unwrap(), "a.test b.test");
        // The first pair: for its own name, for a name no pair has, and with no SNI at all.
        assert_eq!(python_sni(port, Some("localhost"), &first).unwrap(), "localhost");
        assert_eq!(python_sni(port, Some("nowhere.test"), &first).unwrap(), "localhost");
        assert_eq!(python_sni(port, None, &first).unwrap(), "localhost");
        // SIGHUP re-reads every pair.
        sighup(srv.bin.pid());
        let log = srv.bin.log_with("tls certificate reloaded", Duration::from_secs(5));
        assert!(log.contains("pairs=3"), "{log}");
        assert_eq!(python_sni(port, Some("other.test"), &other).unwrap(), "other.test");
        tls::canary(srv.tls, &first.ca());
        // A certificate without its key is refused at start-up, with the reason.
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["--listen-tls", "127.0.0.1:0", "--tls-cert", &c2, "--tls-cert", &c3])
            .args(["--tls-key", &k2])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--tls-cert given 2 times and --tls-key 1"), "{err}");
    }

    #[test]
    fn a_renegotiation_attempt_costs_only_that_connection() {
        let certs = Certs::new();
        let srv = TlsBinary::start(&certs, &[]);
        let ca = certs.ca();
        let mut open = tls::ws(srv.tls, &ca, "/echo");
        // TLS 1.2 (TLS 1.3 has no renegotiation), then `R` once the handshake is done:
        // openssl sends a second ClientHello on the open session. rustls answers with a
        // no_renegotiation warning (RFC 5246 §7.2.2), which openssl takes as the end.
        let connect = format!("127.0.0.1:{}", srv.tls.port());
        let ca_arg = ca.to_str().unwrap();
        let args = ["s_client", "-connect", &connect, "-tls1_2", "-CAfile", ca_arg];
        let args = [&args[..], &["-servername", "localhost"]].concat();
        let install = "apt-get install openssl";
        let Some(mut child) = spawn_external("openssl", install, &args, Stdio::piped()) else {
            return;
        };
        // Its stdout and stderr, line by line, into one channel.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for pipe in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        // Waits (at most 10 s) for `what` among the lines, keeping them in `seen`.
        fn wait_for(rx: &std::sync::mpsc::Receiver<String>, seen: &mut String, what: &str) -> bool {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !seen.contains(what) {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) => *seen += &(line + "\n"),
                    Err(_) => break,
                }
            }
            seen.contains(what)
        }
        let mut seen = String::new();
        assert!(wait_for(&rx, &mut seen, "Verify return code"), "no handshake:\n{seen}");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"R\n").unwrap();
        stdin.flush().unwrap();
        // openssl gives up on its own (stdin stays open, so only the failure ends it).
        wait_for(&rx, &mut seen, "no renegotiation");
        let exit = eventually(Duration::from_secs(10), || child.try_wait().unwrap());
        if exit.is_none() {
            let _ = child.kill();
        }
        drop(stdin);
        let ok = child.wait().unwrap().success();
        let out = seen;
        assert!(!ok, "the renegotiation went through:\n{out}");
        assert!(out.contains("Protocol  : TLSv1.2"), "{out}");
        assert!(out.contains("RENEGOTIATING"), "{out}");
        assert!(out.contains("no renegotiation"), "{out}");
        logged(&srv.bin, "tls failed");
        assert!(srv.bin.log().contains("HandshakeFailure"), "{}", srv.bin.log());
        // The connection opened before, and a new one, are served as ever.
        open.send(Message::text("still here")).unwrap();
        assert_eq!(open.read().unwrap(), Message::text("still here"));
        tls::canary(srv.tls, &ca);
    }
}
