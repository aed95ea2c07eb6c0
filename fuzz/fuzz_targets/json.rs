//! `weir::json` against `serde_json`: both must accept or both refuse any input, and agree on
//! what they accept. Then weir's own invariants: the writer's output parses back to the same
//! value, validating without building finds the same error, and `find_raw` slices decode to the
//! members `Value::get` finds.
//!
//! Known differences, and how they are handled:
//! - Depth: serde_json refuses 128 nested arrays or objects (its recursion limit), so weir runs
//!   with `max_depth = 127` here and the two limits line up exactly.
//! - Number range: without `arbitrary_precision`, serde_json refuses numbers beyond `f64`
//!   (`1e400`: "number out of range"). RFC 8259 §6 lets an implementation limit the range; weir
//!   keeps the text and accepts. Such inputs are skipped once weir has accepted them.
//! - Duplicate keys: serde_json's map keeps the last member; weir keeps all of them in order.
//!   The comparison takes the last one from weir.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::json::{self, ErrorKind, Limits, Value};

const LIMITS: Limits = Limits { max_depth: 127, max_len: usize::MAX };

fuzz_target!(|data: &[u8]| {
    let ours = json::parse_with(data, &LIMITS);
    let theirs = serde_json::from_slice::<serde_json::Value>(data);

    // Validating only must find exactly the error building finds.
    let validated = json::find_raw_with(data, &[], &LIMITS);
    match &ours {
        Ok(_) => {
            let trimmed = data.trim_ascii();
            assert_eq!(validated.map(|r| r.map(str::as_bytes)), Ok(Some(trimmed)));
        }
        Err(e) => assert_eq!(validated, Err(*e)),
    }

    let value = match (ours, theirs) {
        (Ok(v), Ok(s)) => {
            assert_same(&v, &s);
            v
        }
        (Err(e), Err(_)) => {
            assert!(e.offset() <= data.len());
            return;
        }
        (Ok(v), Err(s)) if s.to_string().starts_with("number out of range") => v,
        (Ok(v), Err(s)) => panic!("weir accepted what serde_json refused ({s}): {v}"),
        (Err(e), Ok(s)) => panic!("weir refused what serde_json accepted ({e}): {s}"),
    };

    // Written compactly, it parses back to the same value (numbers keep their text).
    let mut out = String::new();
    json::write_value(&mut out, &value);
    let again = json::parse_with(out.as_bytes(), &LIMITS).expect("written JSON must parse");
    assert!(again == value, "round trip changed {value} into {again}");
    assert_eq!(value.to_string(), out);
    assert!(value.clone() == value);

    // Each top-level member found raw decodes to the value `get` gives (the first of a key).
    if let Some(members) = value.as_object() {
        for (key, _) in members {
            let raw = json::find_raw_with(data, &[key], &LIMITS)
                .expect("a valid document stays valid")
                .expect("the key is there");
            let member = json::parse_with(raw.as_bytes(), &LIMITS).expect("a member parses");
            assert!(Some(&member) == value.get(key));
            for (inner, _) in member.as_object().unwrap_or_default() {
                let raw = json::find_raw_with(data, &[key, inner], &LIMITS)
                    .expect("a valid document stays valid")
                    .expect("the key is there");
                let deeper = json::parse_with(raw.as_bytes(), &LIMITS).expect("a member parses");
                assert!(Some(&deeper) == member.get(inner));
            }
        }
        let (both, raw) = json::parse_and_find_raw(data, &["params", "data"], &LIMITS)
            .expect("a valid document stays valid");
        assert!(both == value);
        let expected = value.get("params").and_then(|p| p.get("data"));
        let got = raw.map(|r| json::parse_with(r.as_bytes(), &LIMITS).expect("a member parses"));
        assert!(got.as_ref() == expected);
    }

    // A deeper limit never refuses what a shallower one accepts.
    let shallow = Limits { max_depth: 8, max_len: usize::MAX };
    if let Err(e) = json::parse_with(data, &shallow) {
        assert_eq!(e.kind(), ErrorKind::TooDeep);
    }
});

/// Structural equality across the two models. Recursion is bounded by the depth limit (127).
fn assert_same(ours: &Value, theirs: &serde_json::Value) {
    use serde_json::Value as S;
    match (ours, theirs) {
        (Value::Null, S::Null) => {}
        (Value::Bool(a), S::Bool(b)) => assert_eq!(a, b),
        (Value::String(a), S::String(b)) => assert_eq!(a, b),
        (Value::Number(a), S::Number(b)) => {
            // Both round correctly to the nearest f64 (serde_json with `float_roundtrip`).
            let (x, y) = (a.as_f64(), b.as_f64());
            assert!(x == y, "{a} is {x:?} for weir, {y:?} for serde_json");
            // Integers serde_json keeps exactly, weir reads exactly too.
            if let Some(u) = b.as_u64() {
                assert_eq!(a.as_u64(), Some(u), "{a}");
            }
            if let Some(i) = b.as_i64() {
                assert_eq!(a.as_i64(), Some(i), "{a}");
            }
        }
        (Value::Array(a), S::Array(b)) => {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert_same(x, y);
            }
        }
        (Value::Object(a), S::Object(b)) => {
            let mut distinct: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), b.len());
            for (key, y) in b {
                let last = a.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
                assert_same(last.expect("serde_json's key is in weir's object"), y);
            }
        }
        _ => panic!("different kinds: {ours} and {theirs}"),
    }
}
