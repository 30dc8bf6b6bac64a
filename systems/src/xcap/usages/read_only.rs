//! The read-only, computed usages: `xcap-caps` (RFC 4825 §12) and the OMA
//! `org.openmobilealliance.xcap-directory`. The shell serves their documents from the
//! builders in [`crate::xcap::usage`]; writes are refused with 405.

use crate::xcap::dom::Document;
use crate::xcap::error::XcapError;
use crate::xcap::schema::invalid;
use crate::xcap::uri::Scope;
use crate::xcap::usage::ApplicationUsage;

/// `urn:ietf:params:xml:ns:xcap-caps`.
pub const XCAP_CAPS_NS: &str = "urn:ietf:params:xml:ns:xcap-caps";
/// `urn:oma:xml:xdm:xcap-directory`.
pub const XCAP_DIRECTORY_NS: &str = "urn:oma:xml:xdm:xcap-directory";

/// RFC 4825 §12: the server's capabilities (global/index).
pub struct XcapCaps;

impl ApplicationUsage for XcapCaps {
    fn auid(&self) -> &'static str {
        "xcap-caps"
    }
    fn mime(&self) -> &'static str {
        "application/xcap-caps+xml"
    }
    fn default_namespace(&self) -> &'static str {
        XCAP_CAPS_NS
    }
    fn writable(&self, _scope: &Scope) -> bool {
        false
    }
    fn validate_schema(&self, doc: &Document) -> Result<(), XcapError> {
        if !doc.root.is(XCAP_CAPS_NS, "xcap-caps") {
            return Err(invalid(&doc.root, "root must be <xcap-caps>"));
        }
        Ok(())
    }
}

/// OMA XDM: the list of a user's documents (users/{xui}/directory.xml).
pub struct XcapDirectory;

impl ApplicationUsage for XcapDirectory {
    fn auid(&self) -> &'static str {
        "org.openmobilealliance.xcap-directory"
    }
    fn mime(&self) -> &'static str {
        "application/vnd.oma.xcap-directory+xml"
    }
    fn default_namespace(&self) -> &'static str {
        XCAP_DIRECTORY_NS
    }
    fn writable(&self, _scope: &Scope) -> bool {
        false
    }
    fn validate_schema(&self, doc: &Document) -> Result<(), XcapError> {
        if !doc.root.is(XCAP_DIRECTORY_NS, "xcap-directory") {
            return Err(invalid(&doc.root, "root must be <xcap-directory>"));
        }
        Ok(())
    }
}
