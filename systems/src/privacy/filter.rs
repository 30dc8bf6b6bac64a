//! Placeholder: the content filter (RFC 5025 §3.2.2-3.2.4).

use bytes::Bytes;

use super::permissions::Permissions;
use crate::formats::pidf::{PidfDocument, compose};

/// The view a watcher holding `perms` sees of `view`.
pub fn filter(view: &PidfDocument, _perms: &Permissions) -> Bytes {
    compose(&view.entity, &[view])
}
