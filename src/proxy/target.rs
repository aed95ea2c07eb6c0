//! The request-target a proxied connection asks the upstream for: in `crate::proto::target`,
//! which the tunnel shares.

pub use crate::proto::target::{DotSegment, upstream_target};
