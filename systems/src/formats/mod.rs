//! Wire formats the engine reads and writes (PIDF, and later watcherinfo, RLMI, XCAP documents).
//! Parse liberally, emit strictly: everything emitted validates against `tests/schemas/`.

pub mod pidf;
pub mod rlmi;
pub mod watcherinfo;
pub mod xcap_diff;
