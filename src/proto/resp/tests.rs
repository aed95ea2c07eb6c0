use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::*;

/// A reply as text ([`Reply`]'s `Display`), to compare.
fn show(r: Reply<'_>) -> String {
    format!("{r}")
}

type Outcome = Result<(String, usize), RespError>;

/// One call: `None` for `Partial`.
fn call(p: &mut Parser, buf: &[u8]) -> Option<Outcome> {
    match p.parse(buf) {
        Ok(Status::Partial) => None,
        Ok(Status::Complete((r, n))) => Some(Ok((show(r), n))),
        Err(e) => Some(Err(e)),
    }
}

/// `input` fed whole, one byte at a time, and in every split in two gives `want`; a reply is
/// never complete before its last byte.
fn check_with(limits: Limits, input: &[u8], want: &Outcome) {
    assert_eq!(call(&mut Parser::new(limits), input).as_ref(), Some(want), "whole {input:?}");

    let mut p = Parser::new(limits);
    let mut got = None;
    for k in 1..=input.len() {
        if let Some(o) = call(&mut p, &input[..k]) {
            if let Ok((_, n)) = &o {
                assert_eq!(*n, k, "complete at its last byte: {input:?}");
            }
            got = Some(o);
            break;
        }
    }
    assert_eq!(got.as_ref(), Some(want), "byte by byte {input:?}");

    for k in 0..=input.len() {
        let mut p = Parser::new(limits);
        let o = call(&mut p, &input[..k]).or_else(|| call(&mut p, input));
        assert_eq!(o.as_ref(), Some(want), "split at {k}: {input:?}");
    }
}

fn ok(input: &str, want: &str) {
    check_with(Limits::default(), input.as_bytes(), &Ok((want.to_string(), input.len())));
}

fn err(input: &str, want: RespError) {
    check_with(Limits::default(), input.as_bytes(), &Err(want));
}

fn err_with(limits: Limits, input: &str, want: RespError) {
    check_with(limits, input.as_bytes(), &Err(want));
}

/// Every prefix of `input`, and `input` itself, is unfinished.
fn partial(limits: Limits, input: &[u8]) {
    let mut p = Parser::new(limits);
    for k in 0..=input.len() {
        assert_eq!(call(&mut p, &input[..k]), None, "prefix {k} of {input:?}");
        assert_eq!(call(&mut Parser::new(limits), &input[..k]), None, "fresh, prefix {k}");
    }
}

#[test]
fn line_types() {
    ok("+OK\r\n", r#"+"OK""#);
    ok("+\r\n", r#"+"""#);
    ok("-ERR unknown command 'x'\r\n", r#"-"ERR unknown command \'x\'""#);
    ok(":0\r\n", "0");
    ok(":1000\r\n", "1000");
    ok(":-42\r\n", "-42");
    ok(":+7\r\n", "7");
    ok(":9223372036854775807\r\n", "9223372036854775807");
    ok(":-9223372036854775808\r\n", "-9223372036854775808");
    ok("_\r\n", "null");
    ok("#t\r\n", "true");
    ok("#f\r\n", "false");
    ok(",2.5\r\n", ",2.5");
    ok(",10\r\n", ",10.0");
    ok(",-1.5e+10\r\n", ",-15000000000.0");
    ok(",+2E-3\r\n", ",0.002");
    ok(",inf\r\n", ",inf");
    ok(",-inf\r\n", ",-inf");
    ok(",nan\r\n", ",NaN");
    ok(
        "(3492890328409238509324850943850943825024385\r\n",
        "(3492890328409238509324850943850943825024385",
    );
    ok("(-12\r\n", "(-12");
}

#[test]
fn string_types() {
    ok("$5\r\nhello\r\n", r#""hello""#);
    ok("$0\r\n\r\n", r#""""#);
    // Binary safe: CR, LF and NUL inside the payload.
    ok("$6\r\na\r\nb\0\n\r\n", r#""a\r\nb\x00\n""#);
    ok("$05\r\nhello\r\n", r#""hello""#);
    ok("$-1\r\n", "null");
    ok("!21\r\nSYNTAX invalid syntax\r\n", r#"!"SYNTAX invalid syntax""#);
    ok("=15\r\ntxt:Some string\r\n", r#"=txt:"Some string""#);
    ok("=4\r\nmkd:\r\n", r#"=mkd:"""#);
}

#[test]
fn aggregates() {
    ok("*-1\r\n", "null");
    ok("*0\r\n", "[]");
    ok("*2\r\n$3\r\nfoo\r\n:1\r\n", r#"["foo", 1]"#);
    ok("%0\r\n", "{}");
    ok("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", r#"{+"first": 1, +"second": 2}"#);
    ok("~2\r\n#t\r\n_\r\n", "~[true, null]");
    ok(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n", r#">["message", "ch", "hello"]"#);
    // RESP3's example: an attribute, then the reply it annotates.
    ok(
        "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n\
         *2\r\n:2039123\r\n:9543892\r\n",
        r#"|{+"key-popularity": {"a": ,0.1923, "b": ,0.0012}} [2039123, 9543892]"#,
    );
    // Nested, with empty and null aggregates inside, and an attribute on an element.
    ok(
        "*4\r\n*2\r\n*0\r\n*-1\r\n%1\r\n$1\r\nk\r\n*1\r\n$-1\r\n|0\r\n:5\r\n:6\r\n",
        r#"[[[], null], {"k": [null]}, |{} 5, 6]"#,
    );
    // XRANGE's shape: entries of an id and a field list.
    ok("*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nm\r\n$2\r\nhi\r\n", r#"[["1-0", ["m", "hi"]]]"#);
    // A map's pairs, and the elements' count.
    let input = b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*0\r\n";
    let Ok(Status::Complete((Reply::Map(map), _))) = Parser::new(Limits::default()).parse(input)
    else {
        panic!("a map")
    };
    assert_eq!((map.len(), map.is_empty(), map.iter().count()), (4, false, 4));
    let keys: Vec<Reply<'_>> = map.iter().step_by(2).collect();
    assert_eq!(keys, [Reply::Bulk(b"a"), Reply::Bulk(b"b")]);
}

#[test]
fn depth_up_to_the_limit() {
    let limits = Limits { max_depth: 3, ..Limits::default() };
    let input = b"*1\r\n*1\r\n*1\r\n:1\r\n";
    check_with(limits, input, &Ok(("[[[1]]]".to_string(), input.len())));
    err_with(limits, "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", RespError::TooDeep);
    // Empty aggregates count as a level too.
    err_with(limits, "*1\r\n*1\r\n%1\r\n*0\r\n", RespError::TooDeep);
    // Depth is capped at MAX_DEPTH whatever the limits say.
    let deep = Limits { max_depth: usize::MAX, ..Limits::default() };
    assert_eq!(Parser::new(deep).limits().max_depth, MAX_DEPTH);
    let mut input = "*1\r\n".repeat(MAX_DEPTH);
    input.push_str(":1\r\n");
    assert!(matches!(Parser::new(deep).parse(input.as_bytes()), Ok(Status::Complete(_))));
    let input = "*1\r\n".repeat(MAX_DEPTH + 1);
    assert_eq!(Parser::new(deep).parse(input.as_bytes()), Err(RespError::TooDeep));
}

/// What Redis 7.0.15 sent (`redis-server` from Debian 12, in RESP3 after `HELLO 3`, and in RESP2
/// on a second connection), reply by reply: `HELLO 3`, SET/GET with CR LF in the value, a
/// missing key, INCR, ZADD/ZSCORE, XADD/XRANGE, an unknown command, an empty set and hash,
/// `DEBUG PROTOCOL` attrib/bignum/verbatim/true/null/double/map/set/push, and pub/sub as pushes
/// and as RESP2 arrays. Parsed pipelined, whole and in reads of 1 to 16 bytes.
const REDIS_7_0: &[(&str, &str)] = &[
    (
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:3\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
        r#"{"server": "redis", "version": "7.0.15", "proto": 3, "id": 3, "mode": "standalone", "role": "master", "modules": []}"#,
    ),
    ("+OK\r\n", r#"+"OK""#),
    ("$4\r\nv\r\nx\r\n", r#""v\r\nx""#),
    ("_\r\n", r#"null"#),
    (":1\r\n", r#"1"#),
    (":1\r\n", r#"1"#),
    (",1.5\r\n", r#",1.5"#),
    ("$3\r\n1-1\r\n", r#""1-1""#),
    ("*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nm\r\n$2\r\nhi\r\n", r#"[["1-1", ["m", "hi"]]]"#),
    (
        "-ERR unknown command \'NOSUCH\', with args beginning with: \r\n",
        r#"-"ERR unknown command \'NOSUCH\', with args beginning with: ""#,
    ),
    ("~0\r\n", r#"~[]"#),
    ("%0\r\n", r#"{}"#),
    (
        "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n",
        r#"|{"key-popularity": ["key:123", 90]} "Some real reply following the attribute""#,
    ),
    ("(1234567999999999999999999999999999999\r\n", r#"(1234567999999999999999999999999999999"#),
    ("=29\r\ntxt:This is a verbatim\nstring\r\n", r#"=txt:"This is a verbatim\nstring""#),
    ("#t\r\n", r#"true"#),
    ("_\r\n", r#"null"#),
    (",3.141\r\n", r#",3.141"#),
    ("%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n", r#"{0: false, 1: true, 2: false}"#),
    ("~3\r\n:0\r\n:1\r\n:2\r\n", r#"~[0, 1, 2]"#),
    (">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n", r#">["server-cpu-usage", 42]"#),
    (
        "$40\r\nSome real reply following the push reply\r\n",
        r#""Some real reply following the push reply""#,
    ),
    (":1\r\n", r#"1"#),
    (">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", r#">["subscribe", "ch", 1]"#),
    ("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", r#"["subscribe", "ch", 1]"#),
    (":2\r\n", r#"2"#),
    ("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\ntwo\r\n", r#"["message", "ch", "two"]"#),
    (
        ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$9\r\npayload\r\n\r\n",
        r#">["message", "ch", "payload\r\n"]"#,
    ),
];

#[test]
fn what_redis_7_0_sends() {
    let stream: Vec<u8> = REDIS_7_0.iter().flat_map(|(raw, _)| raw.bytes()).collect();
    let want: Vec<(String, usize)> =
        REDIS_7_0.iter().map(|(raw, text)| (text.to_string(), raw.len())).collect();
    for read in (1..=16).chain([stream.len()]) {
        let mut p = Parser::new(Limits::default());
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for chunk in stream.chunks(read) {
            buf.extend_from_slice(chunk);
            while let Ok(Status::Complete((r, n))) = p.parse(&buf) {
                got.push((show(r), n));
                buf.drain(..n);
            }
        }
        assert_eq!(got, want, "reads of {read} bytes");
        assert!(buf.is_empty());
    }
}

#[test]
fn grammar_errors() {
    use RespError::*;
    err("?\r\n", UnknownType);
    err("x", UnknownType);
    err("\r\n", UnknownType);
    err("*2\r\n:1\r\nhello\r\n", UnknownType);
    err("+OK\n", LineEnd);
    err("+O\rK\r\n", LineEnd);
    err(":1\n", LineEnd);
    err("$3\n", LineEnd);
    err("$3\r\nfooXY", BulkEnd);
    err("$3\r\nfoo\rX", BulkEnd);
    err("$3\r\nfoo\n\r", BulkEnd);
    err("=5\r\ntxt:aXY", BulkEnd);
    err("$abc\r\n", BadLength);
    err("$\r\n", BadLength);
    err("$+3\r\n", BadLength);
    err("$ 3\r\n", BadLength);
    err("$-\r\n", BadLength);
    err("$?\r\n", BadLength);
    err("*?\r\n", BadLength);
    err("*1x\r\n", BadLength);
    err("$-2\r\n", NegativeLength);
    err("$-0\r\n", NegativeLength);
    err("*-5\r\n", NegativeLength);
    err("%-1\r\n", NegativeLength);
    err("~-1\r\n", NegativeLength);
    err(">-1\r\n", NegativeLength);
    err("!-1\r\n", NegativeLength);
    err("=-1\r\n", NegativeLength);
    err("|-1\r\n", NegativeLength);
    err(":abc\r\n", BadInteger);
    err(":\r\n", BadInteger);
    err(":-\r\n", BadInteger);
    err(":1.5\r\n", BadInteger);
    err(":9223372036854775808\r\n", IntegerRange);
    err(":-9223372036854775809\r\n", IntegerRange);
    err(",\r\n", BadDouble);
    err(",1.\r\n", BadDouble);
    err(",.5\r\n", BadDouble);
    err(",1e\r\n", BadDouble);
    err(",1e+\r\n", BadDouble);
    err(",infinity\r\n", BadDouble);
    err(",+inf\r\n", BadDouble);
    err(",NaN\r\n", BadDouble);
    err(",1 \r\n", BadDouble);
    err("#x\r\n", BadBoolean);
    err("#tt\r\n", BadBoolean);
    err("#\r\n", BadBoolean);
    err("_x\r\n", BadNull);
    err("(12a\r\n", BadBigNumber);
    err("(\r\n", BadBigNumber);
    err("=3\r\ntxt\r\n", BadVerbatim);
    err("=5\r\ntxtxy\r\n", BadVerbatim);
    // Nested errors are found too.
    err("*1\r\n%1\r\n:1\r\n#y\r\n", BadBoolean);
}

#[test]
fn line_limits() {
    use RespError::*;
    // A number line gets MAX_NUMBER_LINE bytes: refused at the next one, CR or not.
    let long = ":".to_owned() + &"1".repeat(MAX_NUMBER_LINE + 1);
    err(&long, LineTooLong);
    partial(Limits::default(), &long.as_bytes()[..MAX_NUMBER_LINE + 1]);
    let zeros = "$".to_owned() + &"0".repeat(MAX_NUMBER_LINE - 1) + "1\r\nx\r\n";
    ok(&zeros, r#""x""#);

    let small = Limits { max_bulk: 4, ..Limits::default() };
    check_with(small, b"+abcd\r\n", &Ok((r#"+"abcd""#.to_string(), 7)));
    err_with(small, "+abcde", StringTooLarge);
    err_with(small, "-abcde", StringTooLarge);
    err_with(small, "(12345", StringTooLarge);
    partial(small, b"+abcd\r");
    check_with(small, b"$4\r\nabcd\r\n", &Ok((r#""abcd""#.to_string(), 10)));
    err_with(small, "$5\r\n", StringTooLarge);
    err_with(small, "!5\r\n", StringTooLarge);
    err_with(small, "=5\r\n", StringTooLarge);
    // A length past u64 saturates and is refused like any other.
    err_with(small, "$99999999999999999999999\r\n", StringTooLarge);
    err("$99999999999999999999999\r\n", StringTooLarge);
    err("*99999999999999999999999\r\n", TooManyElements);
}

#[test]
fn element_and_reply_limits() {
    use RespError::*;
    let l = Limits { max_elements: 2, ..Limits::default() };
    check_with(l, b"*2\r\n:1\r\n:2\r\n", &Ok(("[1, 2]".to_string(), 12)));
    err_with(l, "*3\r\n", TooManyElements);
    err_with(l, "~3\r\n", TooManyElements);
    err_with(l, ">3\r\n", TooManyElements);
    // A map of 2 pairs has 4 elements; an attribute's pairs are counted the same way.
    err_with(l, "%2\r\n", TooManyElements);
    err_with(l, "|2\r\n", TooManyElements);
    check_with(l, b"%1\r\n:1\r\n:2\r\n", &Ok(("{1: 2}".to_string(), 12)));

    // 17 bytes exactly fit; a bulk whose payload would end past the limit is refused at its
    // length line, before the caller buffers it.
    let r = Limits { max_reply: 17, ..Limits::default() };
    check_with(r, b"$10\r\n0123456789\r\n", &Ok((r#""0123456789""#.to_string(), 17)));
    err_with(r, "$11\r\n", ReplyTooLarge);
    check_with(r, b"+012345678901234\r\n"[..17].as_ref(), &Err(ReplyTooLarge));
    check_with(r, b"+0123456789012\r\n", &Ok((r#"+"0123456789012""#.to_string(), 16)));
    partial(r, b"+01234567890123\r");
    check_with(r, b"+01234567890123\r\n", &Ok((r#"+"01234567890123""#.to_string(), 17)));
    err_with(r, "+012345678901234\r\n", ReplyTooLarge);
    // Many small elements add up.
    err_with(r, "*9\r\n:1\r\n:2\r\n:3\r\n", ReplyTooLarge);
    check_with(r, b"*3\r\n:1\r\n:2\r\n:3\r\n", &Ok(("[1, 2, 3]".to_string(), 16)));
}

#[test]
fn pipelined_replies_one_after_another() {
    let input = b"+OK\r\n:1\r\n$3\r\nabc\r\n>2\r\n$9\r\nsubscribe\r\n:1\r\n+PART";
    let mut p = Parser::new(Limits::default());
    let mut at = 0;
    let mut got = Vec::new();
    while let Ok(Status::Complete((r, n))) = p.parse(&input[at..]) {
        got.push(show(r));
        at += n;
    }
    assert_eq!(got, [r#"+"OK""#, "1", r#""abc""#, r#">["subscribe", 1]"#]);
    assert_eq!(&input[at..], b"+PART");
}

#[test]
fn a_message_payload_is_borrowed_not_copied() {
    let input = b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n";
    let Ok(Status::Complete((Reply::Push(push), n))) = Parser::new(Limits::default()).parse(input)
    else {
        panic!("a push")
    };
    assert_eq!(n, input.len());
    let items: Vec<Reply<'_>> = push.iter().collect();
    let [Reply::Bulk(kind), Reply::Bulk(channel), Reply::Bulk(payload)] = items[..] else {
        panic!("three bulk strings: {items:?}")
    };
    assert_eq!((kind, channel, payload), (&b"message"[..], &b"news"[..], &b"hello"[..]));
    assert!(core::ptr::eq(payload.as_ptr(), input[input.len() - 7..].as_ptr()));
    assert_eq!(push.as_bytes(), &input[4..]);
}

#[test]
fn each_byte_is_scanned_once() {
    let mut p = Parser::new(Limits::default());
    let mut buf = b"+".to_vec();
    for _ in 0..1000 {
        buf.push(b'a');
        assert_eq!(p.parse(&buf), Ok(Status::Partial));
        // The next call starts where this one stopped, not at the line's start.
        assert_eq!(p.searched, buf.len());
    }
    // A bulk payload is not scanned at all: its end is known from its length.
    let mut p = Parser::new(Limits::default());
    let mut buf = b"$100000\r\n".to_vec();
    assert_eq!(p.parse(&buf), Ok(Status::Partial));
    assert_eq!(p.bulk, Some((9 + 100_000 + 2, b'$')));
    buf.resize(9 + 50_000, b'x');
    assert_eq!(p.parse(&buf), Ok(Status::Partial));
    assert_eq!(p.pos, 9);
}

#[test]
fn a_buffer_that_shrank_starts_afresh() {
    let mut p = Parser::new(Limits::default());
    assert_eq!(call(&mut p, b"*2\r\n:1\r\n"), None);
    // Not the same bytes: the caller broke the contract; the parser does not panic.
    assert_eq!(call(&mut p, b"+OK\r\n"), Some(Ok((r#"+"OK""#.to_string(), 5))));
    // After an error it starts afresh too.
    assert_eq!(call(&mut p, b"?"), Some(Err(RespError::UnknownType)));
    assert_eq!(call(&mut p, b":1\r\n"), Some(Ok(("1".to_string(), 4))));
}

#[test]
fn every_error_has_a_name_and_text() {
    let all = RespError::ALL;
    let mut names: Vec<&str> = all.iter().map(|e| e.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
    assert!(all.iter().all(|e| !alloc::format!("{e}").is_empty()));
}

#[test]
fn commands_encode_as_arrays_of_bulk_strings() {
    let mut out = Vec::new();
    assert_eq!(write_command(&mut out, &["SET", "key", "value"]), Ok(33));
    assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
    // Pipelined: appended after what is there.
    let args: [&[u8]; 2] = [b"GET", b""];
    assert_eq!(write_command(&mut out, &args), Ok(19));
    assert_eq!(&out[33..], b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
    assert_eq!(command_len(&args), 19);
    assert_eq!(write_command::<&str>(&mut out, &[]), Err(EncodeError::Empty));
    assert_eq!(out.len(), 52);

    let mut slice = [0u8; 64];
    assert_eq!(encode_command(&mut slice, &["SET", "key", "value"]), Ok(33));
    assert_eq!(&slice[..33], &out[..33]);
    let mut short = [0u8; 32];
    assert_eq!(
        encode_command(&mut short, &["SET", "key", "value"]),
        Err(EncodeError::BufferTooSmall { needed: 33 })
    );
    assert_eq!(short, [0u8; 32], "nothing written");
    assert_eq!(encode_command::<&str>(&mut slice, &[]), Err(EncodeError::Empty));

    // Built argument by argument.
    let mut out = Vec::new();
    write_array_header(&mut out, 4);
    write_bulk(&mut out, b"XADD");
    write_bulk_int(&mut out, 0);
    write_bulk_int(&mut out, -42);
    write_bulk_int(&mut out, i64::MIN);
    assert_eq!(out, b"*4\r\n$4\r\nXADD\r\n$1\r\n0\r\n$3\r\n-42\r\n$20\r\n-9223372036854775808\r\n");
}

#[test]
fn commands_parse_back_as_sent() {
    let long = vec![b'\r'; 300];
    let args: [&[u8]; 5] = [b"PUBLISH", b"ch", b"a\r\nb", b"", &long];
    let mut out = Vec::new();
    let n = write_command(&mut out, &args).unwrap();
    assert_eq!(n, command_len(&args));
    let quoted: Vec<String> = args.iter().map(|a| format!("\"{}\"", a.escape_ascii())).collect();
    let want = format!("[{}]", quoted.join(", "));
    check_with(Limits::default(), &out, &Ok((want, n)));
}
