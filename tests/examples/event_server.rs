//! examples/event_server.rs: the C REST server's events over WebSocket and SSE alike.

use super::http::{Sse, post};
use super::{Ws, parse, refused, start, str_of};
use weir::json::Value;

#[test]
fn a_client_message_is_acked_and_rebroadcast_to_websocket_and_sse_clients() {
    let server = start("event_server", &[], &[]);
    let mut a = Ws::open(server.addr, "/api/v1/ws");
    let mut b = Ws::open(server.addr, "/api/v1/ws");
    let mut sse = Sse::open(server.addr, "/api/v1/events", &[]);

    let msg = r#"{"type":"note","id":"m-1","payload":{"text":"caf\u00e9","n":[1,2]}}"#;
    a.send(msg);
    assert_eq!(a.next(), parse(r#"{"type":"ack","id":"m-1"}"#));
    for got in [a.next(), b.next(), sse.event().json()] {
        assert_eq!(str_of(&got, "type"), "client_event", "{got}");
        assert_eq!(got.get("data"), Some(&parse(msg)), "{got}");
        assert!(got.get("client").and_then(Value::as_u64).is_some(), "{got}");
    }

    // A message written over several lines reaches an SSE client as one event (RFC 8259
    // whitespace; a raw newline would end the SSE data line).
    let pretty = "{\n  \"type\": \"t\",\r\n  \"id\": \"p\",\n  \"payload\": [1,\n 2]\n}";
    a.send(pretty);
    assert_eq!(str_of(&a.next(), "type"), "ack");
    assert_eq!(b.next().get("data"), Some(&parse(pretty)));
    assert_eq!(sse.event().json().get("data"), Some(&parse(pretty)));

    // An integer id is echoed as an integer.
    b.send(r#"{"type":"t","id":7,"payload":null}"#);
    assert_eq!(b.next(), parse(r#"{"type":"ack","id":7}"#));
    assert_eq!(str_of(&a.next(), "type"), "client_event");
}

#[test]
fn a_server_event_reaches_websocket_and_sse_clients_alike() {
    let server = start("event_server", &[], &[]);
    let mut ws = Ws::open(server.addr, "/api/v1/ws");
    let mut sse = Sse::open(server.addr, "/api/v1/events", &[]);
    let r = post(server.addr, "/api/v1/events", &[], br#"{"job":"build","state":"done"}"#);
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json().get("delivered").and_then(Value::as_u64), Some(2), "{r:?}");
    let block = sse.event();
    for got in [ws.next(), block.json()] {
        assert_eq!(str_of(&got, "type"), "server_event", "{got}");
        assert_eq!(got.get("data"), Some(&parse(r#"{"job":"build","state":"done"}"#)));
    }
    assert!(block.id.is_some(), "{block:?}");

    let r = post(server.addr, "/api/v1/events", &[], b"{not json");
    assert_eq!(r.status, 400, "{r:?}");
}

#[test]
fn a_message_outside_the_schema_gets_an_error_frame_and_reaches_nobody() {
    let server = start("event_server", &[], &[]);
    let mut a = Ws::open(server.addr, "/api/v1/ws");
    let mut b = Ws::open(server.addr, "/api/v1/ws");
    let long_type = format!(r#"{{"type":"{}","id":"x","payload":1}}"#, "t".repeat(65));
    let big_payload = format!(r#"{{"type":"t","id":"x","payload":"{}"}}"#, "p".repeat(20_000));
    let bad: &[(&str, &str)] = &[
        ("{not json", "invalid JSON"),
        ("[1,2]", "an object"),
        (r#"{"id":"x","payload":1}"#, "type"),
        (r#"{"type":"t","payload":1}"#, "id"),
        (r#"{"type":"t","id":"x"}"#, "payload"),
        (r#"{"type":"t","id":"x","payload":1,"extra":2}"#, "extra"),
        (r#"{"type":"t","id":"x","id":"y","payload":1}"#, "twice"),
        (r#"{"type":7,"id":"x","payload":1}"#, "type"),
        (r#"{"type":"t","id":1.5,"payload":1}"#, "id"),
        (r#"{"type":"t","id":1234567890123456789012345,"payload":1}"#, "id"),
        (&long_type, "type"),
        (&big_payload, "payload"),
    ];
    for (text, why) in bad {
        a.send(text);
        let e = a.next();
        assert_eq!(str_of(&e, "type"), "error", "{text}: {e}");
        assert!(str_of(&e, "error").contains(why), "{text}: {e}");
    }
    // The offending id is echoed when there is one.
    a.send(r#"{"type":"t","id":"k-9","payload":1,"more":0}"#);
    assert_eq!(str_of(&a.next(), "id"), "k-9");
    // The connection is still good, and b saw none of the bad ones.
    a.send(r#"{"type":"t","id":"ok","payload":{}}"#);
    assert_eq!(str_of(&a.next(), "type"), "ack");
    assert_eq!(b.next().get("data").map(|d| str_of(d, "id").to_owned()), Some("ok".into()));
}

#[test]
fn binary_frames_oversized_messages_and_other_paths_are_refused_precisely() {
    let server = start("event_server", &[], &[]);
    assert_eq!(refused(Ws::connect(server.addr, "/ws", &[])), 404);

    // JSON text only: RFC 6455 §7.4.1, 1003 for a data type the endpoint cannot accept.
    let mut ws = Ws::open(server.addr, "/api/v1/ws");
    ws.ws.send(tungstenite::Message::binary(vec![0u8, 1])).unwrap();
    assert_eq!(ws.close_code(), 1003);

    // Past the message bound (64 KiB): 1009 (RFC 6455 §7.4.1).
    let mut ws = Ws::open(server.addr, "/api/v1/ws");
    ws.send(&" ".repeat(65 << 10));
    assert_eq!(ws.close_code(), 1009);
}
