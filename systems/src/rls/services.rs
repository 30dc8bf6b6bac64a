//! The resource list services in force (RFC 4826 §4, OMA RLS XDMS): every `<service uri>` of
//! every user's rls-services documents, by URI, kept current as the documents change. This is
//! the server's own `global/index` (§4.4.1): a SUBSCRIBE to one of these URIs is a list
//! subscription.

use std::collections::HashMap;

use bevy_ecs::prelude::*;

use crate::keyed_hash::HashKeys;
use crate::sip::identity::identity_key;
use crate::xcap::dom::parse_document;
use crate::xcap::usages::rls_services::RLS_NS;

/// The application usage of resource list services.
pub const AUID: &str = "rls-services";

/// Where a service is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service URI as written.
    pub uri: Box<str>,
    /// The decoded selector of its rls-services document.
    pub doc: Box<str>,
    /// The user whose document it is (the list's owner).
    pub owner: Box<str>,
}

/// Services by the identity key of their URI, and the keys each document defines.
#[derive(Resource)]
pub struct Services {
    by_key: HashMap<Vec<u8>, Service, HashKeys>,
    by_doc: HashMap<Box<str>, Vec<Vec<u8>>, HashKeys>,
}

impl Services {
    /// Empty, keyed from the engine's `hash_seed`.
    pub fn new(hash_seed: u128) -> Services {
        let k = |n: &[u8; 8]| HashKeys::derive(hash_seed, u64::from_be_bytes(*n));
        Services {
            by_key: HashMap::with_hasher(k(b"rls-svcs")),
            by_doc: HashMap::with_hasher(k(b"rls-docs")),
        }
    }

    /// The service a request URI names, if any.
    pub fn find(&self, uri: &str) -> Option<&Service> {
        self.by_key.get(&identity_key(uri)?)
    }

    /// The service whose URI has identity key `key`.
    pub fn find_key(&self, key: &[u8]) -> Option<&Service> {
        self.by_key.get(key)
    }

    /// Number of services known.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when no service is defined.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Read document `doc` of `owner` again (`content` None: deleted). Returns the keys of the
    /// services it defined before or defines now.
    pub fn reindex(&mut self, doc: &str, owner: &str, content: Option<&[u8]>) -> Vec<Vec<u8>> {
        let mut touched = self.by_doc.remove(doc).unwrap_or_default();
        for k in &touched {
            // a URI another document took over stays with that document
            if self.by_key.get(k).is_some_and(|s| &*s.doc == doc) {
                self.by_key.remove(k);
            }
        }
        let mut now = Vec::new();
        if let Some(parsed) = content.and_then(|c| parse_document(c).ok()) {
            for (_, s) in parsed.root.child_elements() {
                if !s.is(RLS_NS, "service") {
                    continue;
                }
                let Some(uri) = s.attr("uri") else { continue };
                let Some(key) = identity_key(uri) else {
                    continue;
                };
                // RFC 4826 §4.4.3: a service URI is unique across users; the first one stays
                if self.by_key.get(&key).is_some_and(|s| &*s.doc != doc) {
                    continue;
                }
                self.by_key.insert(
                    key.clone(),
                    Service {
                        uri: uri.into(),
                        doc: doc.into(),
                        owner: owner.into(),
                    },
                );
                now.push(key);
            }
        }
        touched.extend(now.iter().cloned());
        touched.sort();
        touched.dedup();
        if !now.is_empty() {
            self.by_doc.insert(doc.into(), now);
        }
        touched
    }
}
