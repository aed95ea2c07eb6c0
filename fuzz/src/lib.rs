//! Helpers shared by weir's fuzz targets.
//!
//! Every helper asserts the invariants it can check and panics when one breaks, so that
//! libFuzzer reports the input. Nothing here may panic on an input the core handles correctly.

pub mod conn;
pub mod head;
