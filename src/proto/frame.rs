//! The frame header (RFC 6455 §5.2): decoded straight from the input, encoded into a caller's
//! buffer. Payloads never pass through here; the connection streams them.

use crate::proto::error::{BufferTooSmall, ProtocolError, Status};
use crate::proto::mask::apply_mask;

/// The longest frame header: 2 bytes, an 8-byte extended length and a 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// The most payload a control frame may carry (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode (§5.2). Reserved opcodes are refused when the header is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// 0x0: continues a fragmented message.
    Continuation = 0x0,
    /// 0x1: the first frame of a text message.
    Text = 0x1,
    /// 0x2: the first frame of a binary message.
    Binary = 0x2,
    /// 0x8: close.
    Close = 0x8,
    /// 0x9: ping.
    Ping = 0x9,
    /// 0xA: pong.
    Pong = 0xA,
}

impl Opcode {
    /// The opcode for a 4-bit value.
    ///
    /// # Errors
    /// The value is reserved (0x3-0x7, 0xB-0xF).
    pub const fn from_u4(bits: u8) -> Result<Self, ProtocolError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return Err(ProtocolError::ReservedOpcode),
        })
    }

    /// Close, ping and pong are control frames (§5.5): opcodes with the top bit set.
    pub const fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of its message.
    pub fin: bool,
    /// RSV1-RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, present on every frame a client sends.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `input`, returning it and the header's length.
    ///
    /// The rules that need nothing but the header itself are checked here: reserved opcodes,
    /// control frames that are long or fragmented, and a 64-bit length with the top bit set.
    /// Rules that depend on the role and the configuration are in [`FrameHeader::check`].
    ///
    /// # Errors
    /// A [`ProtocolError`] for the first rule the header breaks.
    pub fn decode(input: &[u8]) -> Result<Status<(FrameHeader, usize)>, ProtocolError> {
        let [b0, b1, ..] = *input else {
            return Ok(Status::Partial);
        };
        let opcode = Opcode::from_u4(b0 & 0x0F)?;
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        if opcode.is_control() {
            // §5.5: control frames carry at most 125 bytes and must not be fragmented.
            if len7 > 125 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
        }
        let ext_len = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + ext_len + if masked { 4 } else { 0 };
        let Some(header) = input.get(..header_len) else {
            return Ok(Status::Partial);
        };
        let payload_len = match len7 {
            126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&header[2..10]);
                let len = u64::from_be_bytes(b);
                // §5.2: the most significant bit of a 64-bit length must be 0.
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthTopBitSet);
                }
                len
            }
            n => u64::from(n),
        };
        let mask = masked.then(|| {
            let m = &header[2 + ext_len..];
            [m[0], m[1], m[2], m[3]]
        });
        let rsv = (b0 >> 4) & 0x7;
        Ok(Status::Complete((FrameHeader { fin, rsv, opcode, mask, payload_len }, header_len)))
    }

    /// The number of header bytes needed, once the first two are known (2 to 14).
    pub const fn len_from_prefix(b1: u8) -> usize {
        let ext = match b1 & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
    }

    /// Checks the rules that depend on who sent the frame and on the configured limit.
    ///
    /// # Errors
    /// RSV bits with no extension negotiated (§5.2), a frame from a client without a mask or a
    /// frame from a server with one (§5.1), a payload over `max_frame_size` (§10.4).
    pub const fn check(&self, from_client: bool, max_frame_size: u64) -> Result<(), ProtocolError> {
        if self.rsv != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        match (from_client, self.mask.is_some()) {
            (true, false) => return Err(ProtocolError::UnmaskedFrame),
            (false, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if self.payload_len > max_frame_size {
            return Err(ProtocolError::FrameTooLarge);
        }
        Ok(())
    }

    /// Encodes this header into `out` and returns its length, using the shortest length form
    /// (§5.2: "the minimal number of bytes MUST be used").
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | self.opcode as u8;
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        n
    }
}

/// Encodes a whole frame (header and payload, masked if `mask` is given) into `out` and returns
/// its length.
///
/// # Errors
/// `out` is shorter than the frame.
pub fn encode_frame(
    fin: bool,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let header = FrameHeader { fin, rsv: 0, opcode, mask, payload_len: payload.len() as u64 };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let needed = n + payload.len();
    let out = out.get_mut(..needed).ok_or(BufferTooSmall { needed })?;
    out[..n].copy_from_slice(&head[..n]);
    out[n..].copy_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[n..], key, 0);
    }
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn decode_all(input: &[u8]) -> Result<Status<(FrameHeader, usize)>, ProtocolError> {
        // Every prefix shorter than the header must be Partial, never an error the whole
        // header would not give, and never a different header.
        let whole = FrameHeader::decode(input);
        if let Ok(Status::Complete((_, n))) = whole {
            for cut in 0..n {
                match FrameHeader::decode(&input[..cut]) {
                    Ok(Status::Partial) => {}
                    Err(e) => assert_eq!(whole, Err(e)),
                    other => panic!("prefix {cut} gave {other:?}"),
                }
            }
        }
        whole
    }

    fn header(input: &[u8]) -> (FrameHeader, usize) {
        match decode_all(input) {
            Ok(Status::Complete(h)) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc_5_7_examples() {
        // A single-frame unmasked text message "Hello".
        let (h, n) = header(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!((h.fin, h.opcode, h.mask, h.payload_len, n), (true, Opcode::Text, None, 5, 2));
        // A single-frame masked text message "Hello".
        let (h, n) = header(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        assert_eq!((h.mask, h.payload_len, n), (Some([0x37, 0xfa, 0x21, 0x3d]), 5, 6));
        // A fragmented unmasked text message: "Hel" then "lo".
        let (h, _) = header(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert_eq!((h.fin, h.opcode), (false, Opcode::Text));
        let (h, _) = header(&[0x80, 0x02, 0x6c, 0x6f]);
        assert_eq!((h.fin, h.opcode), (true, Opcode::Continuation));
        // Unmasked ping with "Hello", and the masked pong answering it.
        let (h, _) = header(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(h.opcode, Opcode::Ping);
        let (h, _) = header(&[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        assert_eq!(h.opcode, Opcode::Pong);
        // 256 bytes binary in a single unmasked frame: 16-bit length.
        let (h, n) = header(&[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!((h.payload_len, n), (256, 4));
        // 64 KiB binary in a single unmasked frame: 64-bit length.
        let (h, n) = header(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn encode_matches_rfc_examples() {
        let mut out = vec![0u8; 64];
        let n = encode_frame(true, Opcode::Text, None, b"Hello", &mut out).unwrap();
        assert_eq!(&out[..n], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        let n =
            encode_frame(true, Opcode::Text, Some([0x37, 0xfa, 0x21, 0x3d]), b"Hello", &mut out)
                .unwrap();
        assert_eq!(&out[..n], &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        assert_eq!(
            encode_frame(true, Opcode::Text, None, b"Hello", &mut out[..6]),
            Err(BufferTooSmall { needed: 7 })
        );
    }

    #[test]
    fn encode_decode_round_trip_at_length_boundaries() {
        for len in [0u64, 1, 125, 126, 127, 0xFFFF, 0x10000, u64::MAX >> 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                for opcode in [Opcode::Text, Opcode::Binary, Opcode::Continuation] {
                    let h =
                        FrameHeader { fin: len % 2 == 0, rsv: 0, opcode, mask, payload_len: len };
                    let mut out = [0u8; MAX_HEADER_LEN];
                    let n = h.encode(&mut out);
                    assert_eq!(n, FrameHeader::len_from_prefix(out[1]));
                    assert_eq!(header(&out[..n]), (h, n));
                }
            }
        }
    }

    #[test]
    fn header_time_rejections() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (&[0x83, 0x00], ProtocolError::ReservedOpcode),
            (&[0x87, 0x00], ProtocolError::ReservedOpcode),
            (&[0x8B, 0x00], ProtocolError::ReservedOpcode),
            (&[0x8F, 0x00], ProtocolError::ReservedOpcode),
            (&[0x89, 0x7E, 0x00, 0x7E], ProtocolError::ControlFrameTooLong),
            (&[0x88, 0x7E], ProtocolError::ControlFrameTooLong),
            (&[0x09, 0x00], ProtocolError::FragmentedControlFrame),
            (&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], ProtocolError::LengthTopBitSet),
        ];
        for (input, err) in cases {
            assert_eq!(decode_all(input), Err(*err), "{input:x?}");
        }
    }

    #[test]
    fn role_and_limit_checks() {
        let h = |rsv, mask, len| FrameHeader {
            fin: true,
            rsv,
            opcode: Opcode::Binary,
            mask,
            payload_len: len,
        };
        let key = Some([0; 4]);
        assert_eq!(h(0, key, 10).check(true, 10), Ok(()));
        assert_eq!(h(0, None, 10).check(false, 10), Ok(()));
        assert_eq!(h(0b100, key, 0).check(true, 10), Err(ProtocolError::ReservedBits));
        assert_eq!(h(0b001, key, 0).check(true, 10), Err(ProtocolError::ReservedBits));
        assert_eq!(h(0, None, 0).check(true, 10), Err(ProtocolError::UnmaskedFrame));
        assert_eq!(h(0, key, 0).check(false, 10), Err(ProtocolError::MaskedFrame));
        assert_eq!(h(0, key, 11).check(true, 10), Err(ProtocolError::FrameTooLarge));
    }
}
