//! `proto::resp` round trip for commands: any arguments, encoded, parse back as themselves.
//!
//! Byte 0 picks a read size (plus one); the rest, split at each `0xFF`, are the arguments (at
//! least one, any bytes, CR LF included). Checks:
//! - `write_command`, `encode_command` into a slice of exactly `command_len` bytes, and the
//!   command built with `write_array_header` and `write_bulk` give the same bytes; a slice one
//!   byte short is refused with the size needed and left untouched;
//! - two copies of the command, pipelined in one buffer and fed in reads of the picked size,
//!   parse (default limits) as two arrays of bulk strings equal to the arguments, each taking
//!   exactly the bytes written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::Status;
use weir::proto::resp::{
    EncodeError, Limits, Parser, Reply, command_len, encode_command, write_array_header,
    write_bulk, write_command,
};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let chunk = usize::from(pick) + 1;
    let args: Vec<&[u8]> = rest.split(|&b| b == 0xFF).collect();

    let mut out = Vec::new();
    let n = write_command(&mut out, &args).expect("arguments are never empty");
    assert_eq!((n, out.len()), (command_len(&args), n));

    let mut exact = vec![0u8; n];
    assert_eq!(encode_command(&mut exact, &args), Ok(n));
    assert_eq!(exact, out, "slice and Vec encodings");
    let mut short = vec![0u8; n - 1];
    assert_eq!(encode_command(&mut short, &args), Err(EncodeError::BufferTooSmall { needed: n }));
    assert!(short.iter().all(|&b| b == 0), "nothing written to a short slice");

    let mut built = Vec::new();
    write_array_header(&mut built, args.len());
    for a in &args {
        write_bulk(&mut built, a);
    }
    assert_eq!(built, out, "argument by argument");

    let stream = [out.as_slice(), out.as_slice()].concat();
    let mut p = Parser::new(Limits::default());
    let mut buf = Vec::new();
    let mut replies = 0;
    for read in stream.chunks(chunk) {
        buf.extend_from_slice(read);
        while let Status::Complete((reply, used)) = p.parse(&buf).expect("a command parses") {
            let Reply::Array(array) = reply else { panic!("an array: {reply:?}") };
            let got: Vec<&[u8]> = array
                .iter()
                .map(|r| match r {
                    Reply::Bulk(b) => b,
                    other => panic!("a bulk string: {other:?}"),
                })
                .collect();
            assert_eq!(got, args, "arguments back");
            assert_eq!(used, n, "the whole command and no more");
            replies += 1;
            buf.drain(..used);
        }
    }
    assert_eq!((replies, buf.len()), (2, 0), "both commands, nothing left");
});
