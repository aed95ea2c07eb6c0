//! The HTTP head differential: [`HeadReader`] must find the same end (or the same error)
//! however the bytes arrive, in work linear in the bytes received.

use weir::proto::Status;
use weir::proto::error::HttpError;
use weir::proto::http::{HeadReader, Limits};

/// What a [`HeadReader`] said last.
pub type Outcome = Result<Status<usize>, HttpError>;

/// Finds the end of the head at the start of `input`, fed three ways: whole, one byte at a
/// time, and in reads whose sizes come from the input's own bytes. Asserts the three agree and
/// returns their answer.
///
/// Each read appends to one buffer and calls [`HeadReader::feed`] on all of it, as the runtime
/// does.
pub fn find_head(input: &[u8], limits: &Limits) -> Outcome {
    let whole = scan(input, limits, Reads::Whole);
    let bytewise = scan(input, limits, Reads::OneByte);
    assert_eq!(whole, bytewise, "whole vs byte-by-byte");
    let chunked = scan(input, limits, Reads::FromInput);
    assert_eq!(whole, chunked, "whole vs chunks chosen by the input");
    whole
}

#[derive(Clone, Copy)]
enum Reads {
    Whole,
    OneByte,
    /// Sizes 1 to 32 taken from the input bytes, cycled: fuzzer-chosen splits without a
    /// prefix that would shift the head.
    FromInput,
}

fn scan(input: &[u8], limits: &Limits, reads: Reads) -> Outcome {
    let mut reader = HeadReader::new(limits);
    let mut buf: Vec<u8> = Vec::with_capacity(input.len());
    let mut outcome = reader.feed(&buf);
    assert_eq!(outcome, Ok(Status::Partial), "an empty buffer holds no head");
    let mut scanned = reader.scanned();
    let mut sizes = input.iter().cycle();
    while buf.len() < input.len() {
        let size = match reads {
            Reads::Whole => input.len(),
            Reads::OneByte => 1,
            Reads::FromInput => usize::from(sizes.next().copied().unwrap_or(0) % 32) + 1,
        };
        let end = input.len().min(buf.len() + size);
        buf.extend_from_slice(&input[buf.len()..end]);
        outcome = reader.feed(&buf);

        // Linear work: nothing is examined twice, nothing past the buffer or the limit.
        let now_scanned = reader.scanned();
        assert!(now_scanned >= scanned, "scanned went back: {scanned} -> {now_scanned}");
        assert!(now_scanned <= buf.len(), "scanned {now_scanned} of {} bytes", buf.len());
        assert!(
            now_scanned <= limits.max_head_len,
            "scanned {now_scanned} past max_head_len {}",
            limits.max_head_len
        );
        scanned = now_scanned;

        match outcome {
            Ok(Status::Partial) => assert!(
                buf.len() <= limits.max_head_len,
                "{} bytes without a head end is Partial, not HeadTooLarge",
                buf.len()
            ),
            Ok(Status::Complete(len)) => {
                assert!(len <= limits.max_head_len, "head of {len} bytes over the limit");
                assert!(len <= buf.len(), "head of {len} bytes in a buffer of {}", buf.len());
                assert!(len >= 3, "a head of {len} bytes has no start line and blank line");
                assert_eq!(buf[len - 1], b'\n', "a head ends with LF");
                // Once found, the answer does not change.
                assert_eq!(reader.feed(&buf), outcome, "second feed after Complete");
                return outcome;
            }
            Err(e) => {
                assert_eq!(e, HttpError::HeadTooLarge, "feed's only error");
                assert!(buf.len() > limits.max_head_len, "HeadTooLarge at {}", buf.len());
                return outcome;
            }
        }
    }
    outcome
}
