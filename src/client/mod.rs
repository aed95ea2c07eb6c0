//! The client side: `ws://` URLs, the OS random source for masking keys, and `weir client`.

pub mod console;
pub mod random;
pub mod url;
