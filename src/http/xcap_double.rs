//! A stand-in for `presenced_systems::xcap` with exactly the contract's items
//! (`/work/briefs/xcap-api.md`) and whole-document passthrough behaviour: documents are stored
//! as sent (well-formedness only roughly checked), node selectors are refused. It exists so the
//! HTTP shell can be built and tested before the XCAP core lands; `super::core` picks the real
//! module once it is merged, and this file then serves the unit tests only.
#![allow(dead_code)]

/// Error conditions of RFC 4825 §11 (the contract's `error` module).
pub mod error {
    /// RFC 4825 §11 conditions (409 body `application/xcap-error+xml`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ErrorCondition {
        NotWellFormed,
        NotXmlFrag,
        NoParent { ancestor: Option<String> },
        SchemaValidationError,
        NotXmlAttValue,
        CannotInsert,
        CannotDelete,
        UniquenessFailure { exists: Vec<(String, Vec<String>)> },
        ConstraintFailure { phrase: Option<String> },
        NotUtf8,
    }

    /// A refused request.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct XcapError {
        pub status: u16,
        pub condition: Option<ErrorCondition>,
        pub phrase: String,
        pub allow: Option<&'static str>,
    }

    impl XcapError {
        pub(crate) fn new(status: u16, phrase: &str) -> XcapError {
            XcapError {
                status,
                condition: None,
                phrase: phrase.into(),
                allow: None,
            }
        }

        pub(crate) fn conflict(c: ErrorCondition) -> XcapError {
            XcapError {
                status: 409,
                condition: Some(c),
                phrase: "Conflict".into(),
                allow: None,
            }
        }

        /// The `application/xcap-error+xml` body for a 409.
        pub fn body(&self) -> Option<Vec<u8>> {
            let c = self.condition.as_ref()?;
            let inner = match c {
                ErrorCondition::NotWellFormed => "<not-well-formed/>".to_owned(),
                ErrorCondition::NotXmlFrag => "<not-xml-frag/>".to_owned(),
                ErrorCondition::NoParent { ancestor } => match ancestor {
                    Some(a) => format!("<no-parent><ancestor>{}</ancestor></no-parent>", esc(a)),
                    None => "<no-parent/>".to_owned(),
                },
                ErrorCondition::SchemaValidationError => "<schema-validation-error/>".to_owned(),
                ErrorCondition::NotXmlAttValue => "<not-xml-att-value/>".to_owned(),
                ErrorCondition::CannotInsert => "<cannot-insert/>".to_owned(),
                ErrorCondition::CannotDelete => "<cannot-delete/>".to_owned(),
                ErrorCondition::UniquenessFailure { exists } => {
                    let mut s = String::from("<uniqueness-failure>");
                    for (field, alts) in exists {
                        s.push_str(&format!("<exists field=\"{}\">", esc(field)));
                        for a in alts {
                            s.push_str(&format!("<alt-value>{}</alt-value>", esc(a)));
                        }
                        s.push_str("</exists>");
                    }
                    s.push_str("</uniqueness-failure>");
                    s
                }
                ErrorCondition::ConstraintFailure { phrase } => match phrase {
                    Some(p) => format!("<constraint-failure phrase=\"{}\"/>", esc(p)),
                    None => "<constraint-failure/>".to_owned(),
                },
                ErrorCondition::NotUtf8 => "<not-utf-8/>".to_owned(),
            };
            Some(
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-error xmlns=\"urn:ietf:params:xml:ns:xcap-error\">{inner}</xcap-error>"
                )
                .into_bytes(),
            )
        }
    }

    pub(crate) fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }
}

/// XCAP URIs (the contract's `uri` module).
pub mod uri {
    use super::error::XcapError;

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub enum Scope {
        Global,
        User(String),
    }

    #[derive(Debug, Clone)]
    pub struct XcapUri {
        pub auid: String,
        pub scope: Scope,
        pub doc_path: String,
        pub node: Option<String>,
        pub ns_bindings: Vec<(String, String)>,
    }

    fn decode(s: &str) -> Result<String, XcapError> {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let h = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| XcapError::new(400, "bad percent-encoding"))?;
                out.push(h);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).map_err(|_| XcapError::new(400, "URI is not UTF-8"))
    }

    fn encode_segment(s: &str) -> String {
        let mut o = String::new();
        for c in s.bytes() {
            if c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&c) {
                o.push(c as char);
            } else {
                o.push_str(&format!("%{c:02X}"));
            }
        }
        o
    }

    impl XcapUri {
        /// Parse the request target below the XCAP root.
        pub fn parse(path: &str, _query: Option<&str>) -> Result<XcapUri, XcapError> {
            let path = path.strip_prefix('/').unwrap_or(path);
            let (doc, node) = match path.split_once("/~~") {
                Some((d, n)) => (d, Some(decode(n)?)),
                None => (path, None),
            };
            let mut segs = doc.split('/');
            let auid = decode(segs.next().unwrap_or(""))?;
            if auid.is_empty() {
                return Err(XcapError::new(404, "no application usage"));
            }
            let scope = match segs.next() {
                Some("global") => Scope::Global,
                Some("users") => {
                    let x = decode(segs.next().unwrap_or(""))?;
                    if x.is_empty() {
                        return Err(XcapError::new(404, "no XUI"));
                    }
                    Scope::User(x)
                }
                _ => return Err(XcapError::new(404, "no such tree")),
            };
            let rest: Vec<String> = segs.map(decode).collect::<Result<_, _>>()?;
            let doc_path = rest.join("/");
            if doc_path.is_empty() || rest.iter().any(String::is_empty) {
                return Err(XcapError::new(404, "no document"));
            }
            Ok(XcapUri {
                auid,
                scope,
                doc_path,
                node,
                ns_bindings: Vec::new(),
            })
        }

        /// The document's own path below the root.
        pub fn document_selector(&self) -> String {
            let doc: Vec<String> = self.doc_path.split('/').map(encode_segment).collect();
            match &self.scope {
                Scope::Global => format!("{}/global/{}", self.auid, doc.join("/")),
                Scope::User(x) => {
                    format!(
                        "{}/users/{}/{}",
                        self.auid,
                        encode_segment(x),
                        doc.join("/")
                    )
                }
            }
        }
    }
}

/// Application usages (the contract's `usage` module).
pub mod usage {
    use super::error::esc;

    pub trait ApplicationUsage: Send + Sync {
        fn auid(&self) -> &'static str;
        fn mime(&self) -> &'static str;
        fn default_namespace(&self) -> &'static str;
    }

    struct U(&'static str, &'static str, &'static str);

    impl ApplicationUsage for U {
        fn auid(&self) -> &'static str {
            self.0
        }
        fn mime(&self) -> &'static str {
            self.1
        }
        fn default_namespace(&self) -> &'static str {
            self.2
        }
    }

    pub struct Usages {
        list: Vec<U>,
    }

    impl Usages {
        pub fn standard() -> Usages {
            Usages {
                list: vec![
                    U(
                        "resource-lists",
                        "application/resource-lists+xml",
                        "urn:ietf:params:xml:ns:resource-lists",
                    ),
                    U(
                        "rls-services",
                        "application/rls-services+xml",
                        "urn:ietf:params:xml:ns:rls-services",
                    ),
                    U(
                        "pres-rules",
                        "application/auth-policy+xml",
                        "urn:ietf:params:xml:ns:common-policy",
                    ),
                    U(
                        "org.openmobilealliance.pres-rules",
                        "application/auth-policy+xml",
                        "urn:ietf:params:xml:ns:common-policy",
                    ),
                    U(
                        "xcap-caps",
                        "application/xcap-caps+xml",
                        "urn:ietf:params:xml:ns:xcap-caps",
                    ),
                    U(
                        "org.openmobilealliance.xcap-directory",
                        "application/vnd.oma.xcap-directory+xml",
                        "urn:oma:xml:xdm:xcap-directory",
                    ),
                ],
            }
        }
        pub fn get(&self, auid: &str) -> Option<&dyn ApplicationUsage> {
            self.list
                .iter()
                .find(|u| u.0 == auid)
                .map(|u| u as &dyn ApplicationUsage)
        }
        pub fn auids(&self) -> impl Iterator<Item = &'static str> + '_ {
            self.list.iter().map(|u| u.0)
        }
    }

    pub fn xcap_caps_document(usages: &Usages) -> Vec<u8> {
        let mut s = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-caps xmlns=\"urn:ietf:params:xml:ns:xcap-caps\"><auids>",
        );
        for u in &usages.list {
            s.push_str(&format!("<auid>{}</auid>", u.0));
        }
        s.push_str("</auids><extensions/><namespaces>");
        let mut ns: Vec<&str> = usages.list.iter().map(|u| u.2).collect();
        ns.dedup();
        for n in ns {
            s.push_str(&format!("<namespace>{n}</namespace>"));
        }
        s.push_str("</namespaces></xcap-caps>");
        s.into_bytes()
    }

    /// Crude composition: the children of each document's root, one after the other.
    pub fn rls_services_global_index(user_docs: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut s = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\">",
        );
        for (_, d) in user_docs {
            let t = String::from_utf8_lossy(d);
            let Some(start) = t.find("<rls-services") else {
                continue;
            };
            let Some(open_end) = t[start..].find('>') else {
                continue;
            };
            let body_start = start + open_end + 1;
            if let Some(end) = t.rfind("</rls-services>") {
                if end > body_start {
                    s.push_str(&t[body_start..end]);
                }
            }
        }
        s.push_str("</rls-services>");
        s.into_bytes()
    }

    pub struct DirectoryEntry {
        pub auid: String,
        pub uri: String,
        pub etag: String,
        pub last_modified: String,
        pub size: u64,
    }

    pub fn xcap_directory_document(xcap_root: &str, entries: &[DirectoryEntry]) -> Vec<u8> {
        let mut s = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-directory xmlns=\"urn:oma:xml:xdm:xcap-directory\">",
        );
        let mut i = 0;
        while i < entries.len() {
            let auid = &entries[i].auid;
            s.push_str(&format!("<folder auid=\"{}\">", esc(auid)));
            while i < entries.len() && &entries[i].auid == auid {
                let e = &entries[i];
                s.push_str(&format!(
                    "<entry uri=\"{}/{}\" etag=\"{}\" last-modified=\"{}\" size=\"{}\"/>",
                    esc(xcap_root.trim_end_matches('/')),
                    esc(&e.uri),
                    esc(&e.etag),
                    esc(&e.last_modified),
                    e.size
                ));
                i += 1;
            }
            s.push_str("</folder>");
        }
        s.push_str("</xcap-directory>");
        s.into_bytes()
    }
}

pub use error::{ErrorCondition, XcapError};
pub use uri::{Scope, XcapUri};
pub use usage::{
    DirectoryEntry, Usages, rls_services_global_index, xcap_caps_document, xcap_directory_document,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Delete,
}

pub struct Request<'a> {
    pub method: Method,
    pub uri: &'a XcapUri,
    pub body: &'a [u8],
    pub content_type: Option<&'a str>,
}

pub enum Outcome {
    Content {
        body: Vec<u8>,
        mime: String,
    },
    Write {
        document: Option<Vec<u8>>,
        created: bool,
    },
}

pub trait Directory {
    fn service_uri_in_use(&self, uri: &str, xui: &str, doc_path: &str) -> bool;
}

/// Whole-document passthrough.
pub fn apply(
    usages: &Usages,
    req: &Request<'_>,
    current: Option<&[u8]>,
    _dir: &dyn Directory,
) -> Result<Outcome, XcapError> {
    let usage = usages
        .get(&req.uri.auid)
        .ok_or_else(|| XcapError::new(404, "unknown application usage"))?;
    if req.uri.node.is_some() {
        return Err(XcapError::new(404, "node selectors need the XCAP core"));
    }
    match req.method {
        Method::Get => match current {
            Some(d) => Ok(Outcome::Content {
                body: d.to_vec(),
                mime: usage.mime().into(),
            }),
            None => Err(XcapError::new(404, "no such document")),
        },
        Method::Put => {
            let ct = req.content_type.unwrap_or("");
            let base = ct.split(';').next().unwrap_or("").trim();
            if !base.eq_ignore_ascii_case(usage.mime()) {
                return Err(XcapError::new(415, "wrong MIME type for this usage"));
            }
            let Ok(text) = std::str::from_utf8(req.body) else {
                return Err(XcapError::conflict(ErrorCondition::NotUtf8));
            };
            let t = text.trim();
            if !t.starts_with('<') || !t.ends_with('>') {
                return Err(XcapError::conflict(ErrorCondition::NotWellFormed));
            }
            Ok(Outcome::Write {
                document: Some(req.body.to_vec()),
                created: current.is_none(),
            })
        }
        Method::Delete => match current {
            Some(_) => Ok(Outcome::Write {
                document: None,
                created: false,
            }),
            None => Err(XcapError::new(404, "no such document")),
        },
    }
}
