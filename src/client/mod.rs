//! `weir client`: a command-line WebSocket client.

pub mod console;
