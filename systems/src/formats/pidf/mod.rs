//! PIDF presence documents (RFC 3863) with the RFC 4479 data model, RFC 4480 RPID and any other
//! extension: parse PUBLISH bodies into verbatim element slices, compose them into one NOTIFY view.
//!
//! Watchers (PJSIP, baresip, Linphone) read PIDF literally, so the composer never rewrites an element:
//! each top-level child of `<presence>` is kept as the exact bytes the publisher sent (a slice of one
//! shared [`Bytes`](bytes::Bytes) buffer) and, when copied into another document, only gains the
//! `xmlns` declarations it needs to keep resolving to the same namespaces.
//!
//! The parser ([`parse`]) is a single pass over the bytes on the scanner of [`crate::xml`] (no
//! per-tag copies): it checks XML 1.0 and Namespaces in XML well-formedness as it goes and only
//! records byte ranges; the document's strings (entity, ids, elements) are slices of the body.
//! [`model`] holds the parsed document, [`compose`] writes views; [`PidfElement::children`] and
//! [`PidfElement::without`] let a filter work below the top-level elements.

mod children;
mod compose;
mod layout;
pub mod model;
mod parse;
#[cfg(test)]
mod tests;

pub use children::{Child, ChildAttribute};
pub use compose::{compose, empty_view};
pub use model::{
    CLOSED_TUPLE_ID, DATA_MODEL_NS, ElementKind, PIDF_NS, PidfDocument, PidfElement, SharedStr,
};
pub use parse::{PidfError, parse, parse_bytes, parse_with_view};
