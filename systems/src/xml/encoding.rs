//! Which encodings a document may be in: the one decision for every format read here.
//!
//! Content is UTF-8, optionally after a UTF-8 byte order mark. RFC 3863 §4 and RFC 4825 (§6 and
//! the `not-utf-8` condition of §11) ask UTF-8 of PIDF and XCAP documents, and elements are
//! copied byte for byte into UTF-8 documents (a PIDF view, an XCAP response). XML 1.0 §4.3.3
//! makes a declaration naming an encoding the processor cannot read, or bytes that are not legal
//! in the declared encoding, a fatal error. So:
//!
//! - no declaration, or one naming UTF-8 (`UTF-8`, `utf8`, any case): read as UTF-8;
//! - a declaration naming an ASCII superset (US-ASCII, ISO-8859-*, windows-125*, latin1) on a
//!   document that is pure 7-bit ASCII: its bytes read the same in UTF-8, so it is accepted
//!   where the declaration is dropped ([`DeclarationUse::Replaced`]: PIDF, whose elements go
//!   into views under a UTF-8 declaration of their own), and refused where the document is kept
//!   as sent ([`DeclarationUse::Stored`]: XCAP, where RFC 4825 §11 `not-utf-8` refuses a
//!   request that would produce a document not encoded in UTF-8, and a stored document that
//!   declares ISO-8859-1 is one);
//! - anything else (UTF-16 and other encodings, non-ASCII bytes under a non-UTF-8 label, byte
//!   order marks of UTF-16 or UTF-32, bytes that are not UTF-8): refused.

use super::{Error, Fault};

/// The UTF-8 byte order mark, allowed (and skipped) at the start of a document.
pub const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// Length of the UTF-8 byte order mark at the start of `b` (0 when there is none).
pub fn bom_len(b: &[u8]) -> usize {
    if b.starts_with(UTF8_BOM) { 3 } else { 0 }
}

/// What becomes of a document's XML declaration, which decides the labels it may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclarationUse {
    /// Dropped: what is written from the document gets a UTF-8 declaration of its own.
    Replaced,
    /// Kept with the document, which is served again as sent.
    Stored,
}

/// Checks the encoding named by an XML declaration (`label`, already known to match XML 1.0
/// §4.3.3 EncName) for a document whose bytes are pure ASCII (`ascii`) or not, and whose
/// declaration is used as `used` says; `at` is where the declaration starts.
pub fn check_label(label: &str, ascii: bool, used: DeclarationUse, at: usize) -> Result<(), Error> {
    if label.eq_ignore_ascii_case("utf-8") || label.eq_ignore_ascii_case("utf8") {
        return Ok(());
    }
    // Same bytes as UTF-8 when the body is plain ASCII.
    if ascii && used == DeclarationUse::Replaced && is_ascii_superset(label) {
        return Ok(());
    }
    Err(Error {
        at,
        reason: "unsupported encoding",
        fault: Fault::Encoding,
    })
}

/// Encoding names that agree with UTF-8 on ASCII text.
fn is_ascii_superset(label: &str) -> bool {
    let label = label.to_ascii_lowercase();
    matches!(label.as_str(), "us-ascii" | "ascii" | "latin1")
        || label
            .strip_prefix("iso-8859-")
            .or_else(|| label.strip_prefix("windows-125"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for (label, ascii, ok) in [
            ("UTF-8", false, true),
            ("utf-8", true, true),
            ("Utf8", false, true),
            ("US-ASCII", true, true),
            ("ISO-8859-1", true, true),
            ("iso-8859-15", true, true),
            ("windows-1252", true, true),
            ("latin1", true, true),
            ("ISO-8859-1", false, false),
            ("windows-1252", false, false),
            ("UTF-16", true, false),
            ("UTF-16LE", true, false),
            ("Shift_JIS", true, false),
            ("iso-8859-", true, false),
        ] {
            let replaced = check_label(label, ascii, DeclarationUse::Replaced, 0);
            assert_eq!(replaced.is_ok(), ok, "{label} {ascii}");
            // a stored document says what it is: UTF-8
            let stored = check_label(label, ascii, DeclarationUse::Stored, 0);
            assert_eq!(
                stored.is_ok(),
                label.to_ascii_lowercase().starts_with("utf-8")
                    || label.eq_ignore_ascii_case("utf8"),
                "{label}"
            );
        }
        assert_eq!(bom_len(b"\xef\xbb\xbf<a/>"), 3);
        assert_eq!(bom_len(b"<a/>"), 0);
    }
}
