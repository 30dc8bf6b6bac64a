//! The XCAP core (RFC 4825): URIs, node selectors, GET/PUT/DELETE of documents, elements and
//! attributes, the application usages and their checks, and the XCAP error bodies. Pure: it
//! turns (request, current document bytes) into (response content or new document bytes) or
//! an [`XcapError`]; HTTP, authentication, storage, ETags and conditional requests belong to
//! the shell.
//!
//! ```
//! use presenced_systems::xcap::{apply, Method, NoDirectory, Outcome, Request, Usages, XcapUri};
//!
//! let usages = Usages::standard();
//! let doc = br#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="friends"/></resource-lists>"#;
//! let uri = XcapUri::parse(
//!     "/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22friends%22%5d/entry%5b@uri=%22sip:bob@example.com%22%5d",
//!     None,
//! )?;
//! let req = Request {
//!     method: Method::Put,
//!     uri: &uri,
//!     body: br#"<entry uri="sip:bob@example.com"/>"#,
//!     content_type: Some("application/xcap-el+xml"),
//! };
//! let Outcome::Write { document: Some(new_doc), created: true } =
//!     apply(&usages, &req, Some(doc), &NoDirectory)?
//! else {
//!     unreachable!()
//! };
//! assert!(String::from_utf8(new_doc).unwrap().contains("<entry uri=\"sip:bob@example.com\"/>"));
//! # Ok::<(), presenced_systems::xcap::XcapError>(())
//! ```

#![warn(missing_docs)]

pub mod dom;
pub mod error;
pub mod ops;
pub mod schema;
pub mod selector;
pub mod uri;
pub mod usage;
pub mod usages;

pub use error::{ErrorCondition, XcapError};
pub use ops::apply;
pub use uri::{Scope, XcapUri};
pub use usage::{
    ApplicationUsage, DirectoryEntry, Usages, rls_services_global_index, xcap_caps_document,
    xcap_directory_document,
};

/// What the request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Read a document, element, attribute or namespace bindings.
    Get,
    /// Create or replace a document, element or attribute.
    Put,
    /// Remove a document, element or attribute.
    Delete,
}

/// One XCAP request as the core sees it.
pub struct Request<'a> {
    /// GET, PUT or DELETE.
    pub method: Method,
    /// The parsed request URI.
    pub uri: &'a XcapUri,
    /// PUT body (empty otherwise).
    pub body: &'a [u8],
    /// PUT Content-Type header value, as sent (parameters included), if any.
    pub content_type: Option<&'a str>,
}

/// The result of a request the core accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// GET: the selected document, element, attribute value or namespace bindings, with the
    /// MIME type to send (`application/resource-lists+xml`, `application/xcap-el+xml`,
    /// `application/xcap-att+xml`, `application/xcap-ns+xml`, ...).
    Content {
        /// Response body.
        body: Vec<u8>,
        /// Response Content-Type.
        mime: String,
    },
    /// PUT or DELETE: the whole new document to store (None: delete the document), and
    /// whether the document or node was created (201) rather than replaced/deleted (200).
    Write {
        /// New document bytes, or None when the document is deleted.
        document: Option<Vec<u8>>,
        /// 201 rather than 200.
        created: bool,
    },
}

/// What the core may ask the store during a write, for constraints that span documents.
pub trait Directory {
    /// RFC 4826 §4.4.3: is this rls-services `uri` already used by a service in a document
    /// other than (`xui`, `doc_path`)?
    fn service_uri_in_use(&self, uri: &str, xui: &str, doc_path: &str) -> bool;
}

/// A [`Directory`] that knows no other documents (tests, benches, single-document checks).
pub struct NoDirectory;

impl Directory for NoDirectory {
    fn service_uri_in_use(&self, _uri: &str, _xui: &str, _doc_path: &str) -> bool {
        false
    }
}

#[cfg(test)]
pub(crate) mod tests;
