//! The XCAP core the shell calls, in one place.
//!
//! Until `presenced_systems::xcap` (branch `xcap-core`) is merged this points at the private
//! whole-document stand-in in `xcap_double.rs`; the merge replaces the line below with
//! `pub(crate) use presenced_systems::xcap::*;` and nothing else in `src/http` changes.
pub(crate) use super::xcap_double::*;
