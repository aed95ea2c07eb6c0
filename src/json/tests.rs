extern crate std;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::*;

fn kind(input: &[u8]) -> Result<(), ErrorKind> {
    parse(input).map(drop).map_err(|e| e.kind())
}

fn compact(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

#[test]
fn accepts() {
    let cases: &[(&str, &str)] = &[
        // (input, compact output)
        ("1", "1"),
        ("-0", "-0"),
        ("0", "0"),
        ("-0.0e-0", "-0.0e-0"),
        ("1E+2", "1E+2"),
        ("1.50", "1.50"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("\"\"", "\"\""),
        ("null", "null"),
        ("true", "true"),
        (" \t\r\n false \t\r\n", "false"),
        ("[]", "[]"),
        ("{}", "{}"),
        ("[ ]", "[]"),
        ("{ }", "{}"),
        ("[1,[2,[3]]]", "[1,[2,[3]]]"),
        ("{\"a\" : 1 , \"b\":[true,null]}", "{\"a\":1,\"b\":[true,null]}"),
        ("[\"\\u0000\"]", "[\"\\u0000\"]"),
        ("[\"\\ud800\\udc00\"]", "[\"\u{10000}\"]"),
        ("[\"\\uDBFF\\uDFFF\"]", "[\"\u{10FFFF}\"]"),
        ("[\"\\u00e9\\u20AC\"]", "[\"é€\"]"),
        ("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[\"\\\"\\\\/\\u0008\\u000c\\u000a\\u000d\\u0009\"]"),
        ("[\"é€😀\u{7f}\"]", "[\"é€😀\u{7f}\"]"),
        ("{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}"),
        ("[1e5,-1E-5,0.5]", "[1e5,-1E-5,0.5]"),
    ];
    for (input, expected) in cases {
        let v = parse(input.as_bytes()).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(compact(&v), *expected, "{input:?}");
    }
}

#[test]
fn refuses() {
    use ErrorKind::*;
    let cases: &[(&[u8], ErrorKind, usize)] = &[
        (b"", UnexpectedEnd, 0),
        (b"   ", UnexpectedEnd, 3),
        (b"[1,]", UnexpectedByte, 3),
        (b"{\"a\":1,}", UnexpectedByte, 7),
        (b"[1 2]", UnexpectedByte, 3),
        (b"{\"a\" 1}", UnexpectedByte, 5),
        (b"{\"a\":}", UnexpectedByte, 5),
        (b"{1:1}", UnexpectedByte, 1),
        (b"{'a':1}", UnexpectedByte, 1),
        (b"[1}", UnexpectedByte, 2),
        (b"{\"a\":1]", UnexpectedByte, 6),
        (b"[", UnexpectedEnd, 1),
        (b"[1", UnexpectedEnd, 2),
        (b"{\"a\"", UnexpectedEnd, 4),
        (b"{\"a", UnexpectedEnd, 3),
        (b"[01]", InvalidNumber, 2),
        (b"-01", InvalidNumber, 2),
        (b"00", InvalidNumber, 1),
        (b"[-]", InvalidNumber, 2),
        (b"[-a]", InvalidNumber, 2),
        (b"[1e]", InvalidNumber, 3),
        (b"[1e+]", InvalidNumber, 4),
        (b"[1.]", InvalidNumber, 3),
        (b"[1.e5]", InvalidNumber, 3),
        (b"1.", UnexpectedEnd, 2),
        (b"-", UnexpectedEnd, 1),
        (b"[+1]", UnexpectedByte, 1),
        (b"[.5]", UnexpectedByte, 1),
        (b"[NaN]", UnexpectedByte, 1),
        (b"[Infinity]", UnexpectedByte, 1),
        (b"[-Infinity]", InvalidNumber, 2),
        (b"[0x10]", UnexpectedByte, 2),
        (b"[\"\\ud800\"]", LoneSurrogate, 2),
        (b"[\"\\udc00\"]", LoneSurrogate, 2),
        (b"[\"\\ud800\\ud800\"]", LoneSurrogate, 2),
        (b"[\"\\ud800\\u0041\"]", LoneSurrogate, 2),
        (b"[\"\\ud800x\"]", LoneSurrogate, 2),
        (b"[\"\\ud800\\n\"]", LoneSurrogate, 2),
        (b"[\"\\udc00\\ud800\"]", LoneSurrogate, 2),
        (b"[\"\\x41\"]", InvalidEscape, 2),
        (b"[\"\\'\"]", InvalidEscape, 2),
        (b"[\"\\u12g4\"]", InvalidEscape, 6),
        (b"[\"\\U0041\"]", InvalidEscape, 2),
        (b"[\"\\u00", UnexpectedEnd, 6),
        (b"[\"a\tb\"]", ControlCharacter, 3),
        (b"[\"\n\"]", ControlCharacter, 2),
        (b"[\"\x00\"]", ControlCharacter, 2),
        (b"[\"\x1f\"]", ControlCharacter, 2),
        (b"[\"\xff\"]", InvalidUtf8, 2),
        (b"[\"a\xc3\"]", InvalidUtf8, 3),
        (b"[\"\xed\xa0\x80\"]", InvalidUtf8, 2),
        (b"[\"\xc0\xaf\"]", InvalidUtf8, 2),
        (b"[\"\xf4\x90\x80\x80\"]", InvalidUtf8, 2),
        (b"\xef\xbb\xbf[]", UnexpectedByte, 0),
        (b"[\xc3\xa9]", UnexpectedByte, 1),
        (b"[1] x", TrailingCharacters, 4),
        (b"[1]]", TrailingCharacters, 3),
        (b"1 2", TrailingCharacters, 2),
        (b"{}{}", TrailingCharacters, 2),
        (b"truex", TrailingCharacters, 4),
        (b"tru", UnexpectedEnd, 3),
        (b"nul1", UnexpectedByte, 3),
        (b"[True]", UnexpectedByte, 1),
        (b"\x0c1", UnexpectedByte, 0),
        (b"1\x00", TrailingCharacters, 1),
    ];
    for (input, expected, offset) in cases {
        let e = parse(input).expect_err(&alloc::format!("{:?} parsed", input.escape_ascii()));
        assert_eq!((e.kind(), e.offset()), (*expected, *offset), "{}", input.escape_ascii());
        // Validating without building finds the same error.
        assert_eq!(find_raw(input, &[]), Err(e), "{}", input.escape_ascii());
    }
}

#[test]
fn error_display() {
    let e = parse(b"[1,]").unwrap_err();
    assert_eq!(alloc::format!("{e}"), "invalid JSON at byte 3: unexpected byte");
}

#[test]
fn limits() {
    let limits = Limits { max_depth: 2, max_len: 10 };
    assert!(parse_with(b"[[1]]", &limits).is_ok());
    assert!(parse_with(b"[{\"a\":1}]", &limits).is_ok());
    let e = parse_with(b"[[[1]]]", &limits).unwrap_err();
    assert_eq!((e.kind(), e.offset()), (ErrorKind::TooDeep, 2));
    let e = parse_with(b"[1,      2]", &limits).unwrap_err();
    assert_eq!((e.kind(), e.offset()), (ErrorKind::TooLong, 10));
    assert!(parse_with(b"[1,     2]", &limits).is_ok());
    let none = Limits { max_depth: 0, max_len: 10 };
    assert!(parse_with(b"1", &none).is_ok());
    assert_eq!(kind_with(b"[]", &none), Err(ErrorKind::TooDeep));

    // The default depth: 64 levels pass, 65 do not.
    let deep = |n: usize| [vec![b'['; n], vec![b']'; n]].concat();
    assert!(parse(&deep(64)).is_ok());
    assert_eq!(kind(&deep(65)), Err(ErrorKind::TooDeep));
    // Far too deep is an error, not a stack overflow.
    assert_eq!(kind(&vec![b'['; 10_000]), Err(ErrorKind::TooDeep));
    assert_eq!(kind(&deep(10_000)), Err(ErrorKind::TooDeep));
}

fn kind_with(input: &[u8], limits: &Limits) -> Result<(), ErrorKind> {
    parse_with(input, limits).map(drop).map_err(|e| e.kind())
}

#[test]
fn very_deep_documents_do_not_recurse() {
    // Run on a small stack so that any recursion per level would overflow it.
    let handle = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| {
            let n = 100_000;
            let limits = Limits { max_depth: 2 * n, max_len: 1 << 20 };
            let mut doc = Vec::new();
            for _ in 0..n {
                doc.extend_from_slice(b"{\"a\":[");
            }
            doc.extend_from_slice(b"\"leaf\"");
            for _ in 0..n {
                doc.extend_from_slice(b"]}");
            }
            let v = parse_with(&doc, &limits).unwrap();
            let copy = v.clone();
            assert!(v == copy);
            let written = compact(&v);
            assert!(written.as_bytes() == doc);
            let raw = find_raw_with(&doc, &["a"], &limits).unwrap();
            assert_eq!(raw.map(str::len), Some(doc.len() - 6));
            assert_eq!(find_raw_with(&doc, &["a", "a"], &limits), Ok(None));
            assert!(alloc::format!("{copy}") == written);
            drop(v);
            drop(copy);
            // A truncated document fails part way, with a deep partial value to drop.
            assert_eq!(kind_with(&doc[..doc.len() - 1], &limits), Err(ErrorKind::UnexpectedEnd));
        })
        .unwrap();
    handle.join().unwrap();
}

#[test]
fn round_trip() {
    let docs: &[&str] = &[
        r#"{"id": "7", "method": "publish", "params": {"channel": "builds", "data": {"n": [1, -2.5e10, 1E400, 0.1], "s": "tab\there \u00e9 \ud83d\ude00 \u0001 \\ \"", "x": null, "t": true}}}"#,
        r#"[[], {}, [[]], {"": {"": ""}}, "", 0, -0, 1.0]"#,
        "\"\\u007f\\u2028\"",
    ];
    for doc in docs {
        let v = parse(doc.as_bytes()).unwrap();
        let once = compact(&v);
        let again = parse(once.as_bytes()).unwrap();
        assert_eq!(v, again, "{doc}");
        assert_eq!(compact(&again), once);
    }
}

#[test]
fn write_str_escapes() {
    let cases: &[(&str, &str)] = &[
        ("", r#""""#),
        ("plain", r#""plain""#),
        ("a/b", r#""a/b""#),
        ("\"\\", r#""\"\\""#),
        ("\u{0}\u{1f}\n", r#""\u0000\u001f\u000a""#),
        ("é\u{7f}\u{2028}", "\"é\u{7f}\u{2028}\""),
    ];
    for (s, expected) in cases {
        let mut out = String::new();
        write_str(&mut out, s);
        assert_eq!(out, *expected);
        assert_eq!(parse(out.as_bytes()).unwrap().as_str(), Some(*s));
    }
}

#[test]
fn numbers() {
    let n = |s: &str| parse(s.as_bytes()).unwrap();
    assert_eq!(n("-9223372036854775808").as_i64(), Some(i64::MIN));
    assert_eq!(n("9223372036854775807").as_i64(), Some(i64::MAX));
    assert_eq!(n("9223372036854775808").as_i64(), None);
    assert_eq!(n("-9223372036854775809").as_i64(), None);
    assert_eq!(n("18446744073709551615").as_u64(), Some(u64::MAX));
    assert_eq!(n("18446744073709551616").as_u64(), None);
    assert_eq!(n("-1").as_u64(), None);
    assert_eq!(n("-0").as_u64(), Some(0));
    assert_eq!(n("-0").as_i64(), Some(0));
    assert_eq!(n("1.0").as_i64(), None);
    assert_eq!(n("1e2").as_u64(), None);
    assert_eq!(n("1e2").as_f64(), Some(100.0));
    assert_eq!(n("-2.5").as_f64(), Some(-2.5));
    assert_eq!(n("1e400").as_f64(), None);
    assert_eq!(n("-1e400").as_f64(), None);
    assert_eq!(n("1e-400").as_f64(), Some(0.0));
    assert_eq!(n("18446744073709551616").as_f64(), Some(18446744073709551616.0));
    assert_eq!(n("\"1\"").as_i64(), None);
    let big = n("123456789012345678901234567890.000000000000000000001");
    assert_eq!(
        big.as_number().map(Number::as_str),
        Some("123456789012345678901234567890.000000000000000000001")
    );

    assert_eq!(Number::from(i64::MIN).as_str(), "-9223372036854775808");
    assert_eq!(Number::from(u64::MAX).as_str(), "18446744073709551615");
    for f in [0.0, -0.0, 0.1, 1.0, -2.5, 1e300, 1e-300, f64::MAX, f64::MIN_POSITIVE, 5e-324] {
        let num = Number::from_f64(f).unwrap();
        assert_eq!(num.as_f64(), Some(f), "{num}");
    }
    assert_eq!(Number::from_f64(f64::NAN), None);
    assert_eq!(Number::from_f64(f64::INFINITY), None);
    assert_eq!("1.5e3".parse::<Number>().map(|n| n.as_f64()), Ok(Some(1500.0)));
    assert_eq!("01".parse::<Number>().map_err(|e| e.kind()), Err(ErrorKind::InvalidNumber));
    assert_eq!("1 ".parse::<Number>().map_err(|e| e.kind()), Err(ErrorKind::TrailingCharacters));
    assert_eq!("".parse::<Number>().map_err(|e| e.kind()), Err(ErrorKind::UnexpectedEnd));
}

#[test]
fn accessors() {
    let v = parse(br#"{"s": "x", "b": false, "n": null, "a": [1], "o": {"k": 1}, "k": 1, "k": 2}"#)
        .unwrap();
    assert_eq!(v.get("s").and_then(Value::as_str), Some("x"));
    assert_eq!(v.get("b").and_then(Value::as_bool), Some(false));
    assert!(v.get("n").is_some_and(Value::is_null));
    assert_eq!(v.get("a").and_then(Value::as_array).map(<[_]>::len), Some(1));
    assert_eq!(v.get("o").and_then(Value::as_object).map(<[_]>::len), Some(1));
    assert_eq!(v.get("missing"), None);
    assert_eq!(v.get("s").and_then(|s| s.get("x")), None);
    // Duplicate keys: both kept, the first one found.
    assert_eq!(v.get("k").and_then(Value::as_u64), Some(1));
    assert_eq!(v.as_object().map(<[_]>::len), Some(7));
    assert_eq!(v.as_str(), None);
    assert_eq!(v.as_bool(), None);
    assert_eq!(v.as_array(), None);

    let s = parse(b"\"owned\"").unwrap();
    assert_eq!(s.into_string().as_deref(), Some("owned"));
    let a = parse(b"[1,2]").unwrap();
    assert_eq!(a.into_array().map(|a| a.len()), Some(2));
    let o = parse(b"{\"a\":[]}").unwrap();
    assert_eq!(o.clone().into_object().map(|o| o.len()), Some(1));
    assert_eq!(o.into_array(), None);

    assert_eq!(Value::from("x"), Value::String("x".into()));
    assert_eq!(Value::from(7u64), parse(b"7").unwrap());
    assert_eq!(Value::from(-7i64), parse(b"-7").unwrap());
    assert_eq!(Value::from(true), parse(b"true").unwrap());
    assert_ne!(parse(b"1").unwrap(), parse(b"1.0").unwrap());
    assert_ne!(parse(b"{\"a\":1,\"b\":2}").unwrap(), parse(b"{\"b\":2,\"a\":1}").unwrap());
    assert_ne!(parse(b"[1,2]").unwrap(), parse(b"[1]").unwrap());
    assert_eq!(alloc::format!("{:?}", parse(b"[ 1 , \"a\" ]").unwrap()), "[1,\"a\"]");
}

#[test]
fn find_raw_paths() {
    let doc = br#" { "id" : "7", "params": { "channel":"builds" , "data" : {"x": [1, 2 ], "big": 1e999} }, "params": {"data": 0} } "#;
    assert_eq!(
        find_raw(doc, &["params", "data"]).unwrap(),
        Some(r#"{"x": [1, 2 ], "big": 1e999}"#)
    );
    assert_eq!(find_raw(doc, &["params", "channel"]).unwrap(), Some("\"builds\""));
    assert_eq!(find_raw(doc, &["id"]).unwrap(), Some("\"7\""));
    assert_eq!(
        find_raw(doc, &[]).unwrap(),
        Some(&core::str::from_utf8(doc).unwrap()[1..doc.len() - 1])
    );
    assert_eq!(find_raw(doc, &["params", "data", "x"]).unwrap(), Some("[1, 2 ]"));
    assert_eq!(find_raw(doc, &["params", "data", "x", "0"]).unwrap(), None);
    assert_eq!(find_raw(doc, &["id", "x"]).unwrap(), None);
    assert_eq!(find_raw(doc, &["nope"]).unwrap(), None);
    assert_eq!(find_raw(doc, &["channel"]).unwrap(), None);
    assert_eq!(find_raw(b"[{\"a\":1}]", &["a"]).unwrap(), None);
    // Keys are compared decoded.
    assert_eq!(find_raw(br#"{"\u0061": 5}"#, &["a"]).unwrap(), Some("5"));
    // The first member with the key is followed even when it leads nowhere.
    assert_eq!(find_raw(br#"{"p": 1, "p": {"d": 2}}"#, &["p", "d"]).unwrap(), None);
    assert_eq!(find_raw(br#"{"p": {"d": 1, "d": 2}}"#, &["p", "d"]).unwrap(), Some("1"));
    // The match is found, but the document must be valid to its end.
    let e = find_raw(br#"{"data": 1, "x": [}"#, &["data"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedByte);
    let e = find_raw(br#"{"data": 1} x"#, &["data"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TrailingCharacters);

    // One pass for both: the value and the raw member agree with the separate calls.
    let (v, raw) = parse_and_find_raw(doc, &["params", "data"], &Limits::default()).unwrap();
    assert_eq!(v, parse(doc).unwrap());
    assert_eq!(raw, find_raw(doc, &["params", "data"]).unwrap());
    let data = v.get("params").and_then(|p| p.get("data")).unwrap();
    assert_eq!(parse(raw.unwrap().as_bytes()).unwrap(), *data);
}

#[test]
fn writers() {
    let mut out = String::new();
    {
        let mut w = ObjectWriter::new(&mut out);
        w.str("s", "a\"b").u64("u", u64::MAX).i64("i", i64::MIN).bool("t", true);
        w.null("n").f64("f", 0.5).f64("nan", f64::NAN);
        w.number("num", &"1.50".parse().unwrap());
        w.value("v", &parse(b"[1,{\"a\":null}]").unwrap());
        w.raw("r", "{\"raw\": [1, 2]}");
        let mut inner = w.object("o");
        inner.str("k", "v");
        let mut list = inner.array("l");
        list.str("x").u64(1).i64(-1).bool(false).null().f64(1e300);
        list.number(&Number::from(3u8)).value(&Value::Null).raw("{}");
        list.object().str("deep", "yes");
        list.array().u64(9);
        list.finish();
        inner.finish();
        w.array("empty").finish();
        w.object("empty_o").finish();
        w.finish();
    }
    assert_eq!(
        out,
        concat!(
            r#"{"s":"a\"b","u":18446744073709551615,"i":-9223372036854775808,"t":true,"#,
            r#""n":null,"f":0.5,"nan":null,"num":1.50,"v":[1,{"a":null}],"r":{"raw": [1, 2]},"#,
            r#""o":{"k":"v","l":["x",1,-1,false,null,1e300,3,null,{},{"deep":"yes"},[9]]},"#,
            r#""empty":[],"empty_o":{}}"#
        )
    );
    assert!(parse(out.as_bytes()).is_ok());

    let mut out = String::new();
    ArrayWriter::new(&mut out).finish();
    assert_eq!(out, "[]");
}

#[test]
fn deep_value_built_by_hand() {
    // Deeper than any parse would allow; dropping, cloning, comparing and writing it must not
    // recurse.
    let handle = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(|| {
            let mut v = Value::Null;
            for i in 0..200_000 {
                v = if i % 2 == 0 {
                    Value::Array(vec![Value::from(1u64), v])
                } else {
                    Value::Object(vec![("k".into(), v), ("z".into(), Value::Null)])
                };
            }
            let copy = v.clone();
            assert!(v == copy);
            let mut out = String::new();
            write_value(&mut out, &v);
            assert_eq!(
                out.len(),
                100_000 * ("[1,".len() + "]".len() + "{\"k\":,\"z\":null}".len()) + 4
            );
        })
        .unwrap();
    handle.join().unwrap();
}
