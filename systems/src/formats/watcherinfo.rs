//! `application/watcherinfo+xml` documents (RFC 3858): who watches a resource, in what state,
//! and what moved them there. The first NOTIFY of a subscription (and each refresh's) is full
//! state; the others carry only the watchers that changed (`state="partial"`), each document
//! one `version` further.

use bytes::Bytes;
use quick_xml::escape::escape;

use crate::subscription::lifecycle::{Event, Status};

/// The namespace.
pub const NS: &str = "urn:ietf:params:xml:ns:watcherinfo";
/// The content type.
pub const CONTENT_TYPE: &str = "application/watcherinfo+xml";

/// One `<watcher>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watcher {
    /// Unique among the resource's watchers, the same in every document (RFC 3858 §4).
    pub id: String,
    /// The watcher's URI.
    pub uri: String,
    pub display_name: Option<String>,
    pub status: Status,
    pub event: Event,
    /// Seconds until the subscription expires.
    pub expiration: Option<u64>,
    /// Seconds since it began.
    pub duration_subscribed: Option<u64>,
}

/// A document about `resource`'s watchers of `package`.
pub fn write(
    version: u32,
    full: bool,
    resource: &str,
    package: &str,
    watchers: &[Watcher],
) -> Bytes {
    let mut out = Vec::with_capacity(192 + watchers.len() * 160);
    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<watcherinfo xmlns=\"");
    out.extend_from_slice(NS.as_bytes());
    out.extend_from_slice(b"\" version=\"");
    out.extend_from_slice(itoa::Buffer::new().format(version).as_bytes());
    out.extend_from_slice(if full {
        b"\" state=\"full\">\n".as_slice()
    } else {
        b"\" state=\"partial\">\n".as_slice()
    });
    out.extend_from_slice(b"<watcher-list resource=\"");
    out.extend_from_slice(escape(resource).as_bytes());
    out.extend_from_slice(b"\" package=\"");
    out.extend_from_slice(escape(package).as_bytes());
    out.extend_from_slice(b"\">\n");
    for w in watchers {
        out.extend_from_slice(b"<watcher id=\"");
        out.extend_from_slice(escape(w.id.as_str()).as_bytes());
        out.extend_from_slice(b"\" status=\"");
        out.extend_from_slice(w.status.as_str().as_bytes());
        out.extend_from_slice(b"\" event=\"");
        out.extend_from_slice(w.event.as_str().as_bytes());
        out.push(b'"');
        if let Some(d) = &w.display_name {
            out.extend_from_slice(b" display-name=\"");
            out.extend_from_slice(escape(d.as_str()).as_bytes());
            out.push(b'"');
        }
        for (name, v) in [
            (&b" expiration=\""[..], w.expiration),
            (&b" duration-subscribed=\""[..], w.duration_subscribed),
        ] {
            if let Some(v) = v {
                out.extend_from_slice(name);
                out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
                out.push(b'"');
            }
        }
        out.push(b'>');
        out.extend_from_slice(escape(w.uri.as_str()).as_bytes());
        out.extend_from_slice(b"</watcher>\n");
    }
    out.extend_from_slice(b"</watcher-list>\n</watcherinfo>\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: &str, status: Status, event: Event) -> Watcher {
        Watcher {
            id: id.into(),
            uri: "sip:bob@example.com".into(),
            display_name: Some("Bob \"B\" <&>".into()),
            status,
            event,
            expiration: Some(3600),
            duration_subscribed: Some(0),
        }
    }

    #[test]
    fn full_and_partial_documents_validate() {
        let full = write(
            0,
            true,
            "sip:alice@example.com",
            "presence",
            &[
                w("a1", Status::Pending, Event::Subscribe),
                w("a2", Status::Active, Event::Approved),
            ],
        );
        crate::schema_check::assert_valid(&full);
        let text = String::from_utf8(full.to_vec()).unwrap();
        assert!(text.contains("version=\"0\" state=\"full\""), "{text}");
        assert!(
            text.contains("display-name=\"Bob &quot;B&quot; &lt;&amp;&gt;\""),
            "{text}"
        );
        let partial = write(
            1,
            false,
            "sip:alice@example.com",
            "presence",
            &[w("a1", Status::Waiting, Event::Timeout)],
        );
        crate::schema_check::assert_valid(&partial);
        assert!(String::from_utf8_lossy(&partial).contains("state=\"partial\""));
        // no watchers at all is a valid full state
        crate::schema_check::assert_valid(&write(0, true, "sip:a@b", "presence", &[]));
    }
}
