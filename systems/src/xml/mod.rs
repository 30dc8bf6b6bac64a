//! The one XML layer of the engine: XML 1.0 and Namespaces in XML well-formedness on bytes, for
//! every format it reads (PIDF, XCAP documents, and the formats that come after them).
//!
//! - [`scan`]: the byte-level pieces (character classes, names, references, attribute values,
//!   comments, processing instructions, the XML declaration);
//! - [`walk`]: the one pass over a document, handing what it finds to a [`walk::Handler`] as
//!   byte offsets, allocating nothing per element;
//! - [`namespace`]: the rules of declaring and resolving prefixes;
//! - [`encoding`]: which encodings a document may be in (one decision for all formats).
//!
//! Errors carry the byte offset where the fault was found and a short fixed reason; what a fault
//! means to a protocol (a SIP 400, an XCAP `not-well-formed` or `not-utf-8`) is up to its user.

pub mod encoding;
pub mod namespace;
pub mod scan;
pub mod walk;

/// A document that is not well-formed XML (or not in an encoding this layer reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// Byte offset in the input where the fault was found.
    pub at: usize,
    /// What is wrong, a fixed ASCII phrase.
    pub reason: &'static str,
    /// The kind of fault.
    pub fault: Fault,
}

/// Kinds of [`Error`], for the users that report them differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// XML 1.0 or Namespaces in XML well-formedness.
    Syntax,
    /// The bytes are not UTF-8 (or hold a byte order mark of another encoding).
    NotUtf8,
    /// The XML declaration names an encoding the document cannot be read in ([`encoding`]).
    Encoding,
    /// A `<!DOCTYPE>`: no user accepts a DTD (its entities would not survive verbatim copying).
    Doctype,
}

impl Error {
    /// A well-formedness fault at `at`.
    pub fn syntax(at: usize, reason: &'static str) -> Error {
        Error {
            at,
            reason,
            fault: Fault::Syntax,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.at)
    }
}

impl std::error::Error for Error {}
