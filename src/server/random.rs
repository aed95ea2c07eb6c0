//! Unpredictable bytes from the operating system, read in bulk (not one syscall per frame):
//! masking keys (RFC 6455 §5.3 asks for a strong source of entropy, fresh for every frame) and
//! handshake nonces (§4.1).

use std::fs::File;
use std::io::{self, Read};

/// Bytes read from the OS per refill.
const BATCH: usize = 4096;

/// A buffer of random bytes from `/dev/urandom`, refilled when used up.
#[derive(Debug)]
pub struct Random {
    source: File,
    buf: Box<[u8; BATCH]>,
    pos: usize,
}

impl Random {
    /// Opens the OS source.
    ///
    /// # Errors
    /// `/dev/urandom` cannot be opened or read.
    pub fn new() -> io::Result<Self> {
        let mut r =
            Self { source: File::open("/dev/urandom")?, buf: Box::new([0; BATCH]), pos: BATCH };
        r.refill()?;
        Ok(r)
    }

    fn refill(&mut self) -> io::Result<()> {
        self.source.read_exact(&mut self.buf[..])?;
        self.pos = 0;
        Ok(())
    }

    /// Fills `out` with random bytes.
    ///
    /// # Errors
    /// The OS source failed.
    pub fn fill(&mut self, out: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < out.len() {
            if self.pos == BATCH {
                self.refill()?;
            }
            let n = (out.len() - done).min(BATCH - self.pos);
            out[done..done + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            done += n;
        }
        Ok(())
    }

    /// A fresh masking key. If the OS source fails (it does not on Linux), the previous bytes
    /// are reused rather than a fixed key.
    pub fn mask_key(&mut self) -> [u8; 4] {
        let mut k = [0u8; 4];
        if self.fill(&mut k).is_err() {
            k.copy_from_slice(&self.buf[..4]);
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_and_refills_happen() {
        let mut r = Random::new().unwrap();
        let keys: Vec<[u8; 4]> = (0..3000).map(|_| r.mask_key()).collect();
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert!(distinct.len() > 2900, "{}", distinct.len());
    }
}
