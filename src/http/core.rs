//! The XCAP core the shell calls, in one place: `presenced_systems::xcap` (the pure core,
//! `systems/src/xcap/`).
pub(crate) use presenced_systems::xcap::*;
