//! The presentity's current sphere (RPID `<sphere>`, RFC 4480 §3.7), which `<sphere>`
//! conditions of its rules compare with (RFC 4745 §7.2).

use bytes::Bytes;

use super::rules::{Condition, RuleSet};
use crate::formats::pidf::{self, ElementKind};

use super::filter::RPID_NS;

/// Whether any rule has a `<sphere>` condition (only then is the sphere read).
pub fn needs_sphere(rules: &RuleSet) -> bool {
    rules.rules.iter().any(|r| {
        r.conditions
            .iter()
            .any(|c| matches!(c, Condition::Sphere(_)))
    })
}

/// The sphere of the first person of a presence document: its `<rpid:sphere>`'s token
/// element (`<rpid:work/>` gives `work`) or its text.
pub fn sphere_of(body: &Bytes) -> Option<String> {
    let doc = pidf::parse_bytes(body.clone()).ok()?;
    for el in doc
        .elements
        .iter()
        .filter(|e| e.kind == ElementKind::Person)
    {
        for c in el.children(&doc) {
            if c.namespace != RPID_NS || c.local != "sphere" {
                continue;
            }
            // a token element (`<rpid:work/>`) names the sphere, else its text does
            if let Some(token) = el.children_of(&doc, &c).first() {
                return Some(token.local.to_owned());
            }
            let text = el.child_text(&c);
            let text = text.trim();
            return (!text.is_empty()).then(|| text.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(sphere: &str) -> Bytes {
        Bytes::from(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
<dm:person id="p1">{sphere}</dm:person></presence>"#
        ))
    }

    #[test]
    fn token_element_or_text() {
        assert_eq!(
            sphere_of(&doc("<rpid:sphere><rpid:work/></rpid:sphere>")).as_deref(),
            Some("work")
        );
        assert_eq!(
            sphere_of(&doc("<rpid:sphere> home </rpid:sphere>")).as_deref(),
            Some("home")
        );
        assert_eq!(
            sphere_of(&doc("<rpid:mood><rpid:happy/></rpid:mood>")),
            None
        );
    }
}
