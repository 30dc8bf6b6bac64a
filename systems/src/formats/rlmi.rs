//! Resource list NOTIFY bodies (RFC 4662 §5): a `multipart/related` body (RFC 2387) whose root
//! is an `application/rlmi+xml` document listing the list's resources and their back-end
//! subscriptions (`<instance>`), followed by one part per instance that has state, named by
//! `Content-ID` (RFC 2392) and pointed at by the instance's `cid`.
//!
//! A member's part ([`part`]) is written once and shared by every list NOTIFY that carries it;
//! per NOTIFY only the RLMI document and the framing are written ([`multipart`]).

use bytes::Bytes;
use quick_xml::escape::escape;

/// The RLMI namespace.
pub const NS: &str = "urn:ietf:params:xml:ns:rlmi";
/// The RLMI content type.
pub const CONTENT_TYPE: &str = "application/rlmi+xml";
/// The body type of list NOTIFYs.
pub const MULTIPART: &str = "multipart/related";

/// The state of one back-end subscription (RFC 4662 §5.2: the `state` of `<instance>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Active,
    Pending,
    /// With the reason it ended (RFC 6665 §4.1.3 values), if any.
    Terminated(Option<&'static str>),
}

/// One `<instance>`.
#[derive(Debug, Clone, Copy)]
pub struct Instance<'a> {
    /// Unique among the resource's instances, the same for the life of the back-end
    /// subscription.
    pub id: &'a str,
    pub state: InstanceState,
    /// The `Content-ID` (without angle brackets) of the part holding its state, if sent.
    pub cid: Option<&'a str>,
}

/// One `<resource>`: a member of the list.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    pub uri: &'a str,
    /// The member's `<display-name>` in the list, if any.
    pub name: Option<&'a str>,
    /// None: no back-end subscription (a member over the list's size limit).
    pub instance: Option<Instance<'a>>,
}

/// The RLMI document of one NOTIFY: `version` counts the NOTIFYs of the subscription from 0;
/// `full` says every resource is listed (else only those that changed).
pub fn write<'a>(
    out: &mut Vec<u8>,
    list_uri: &str,
    version: u32,
    full: bool,
    list_name: Option<&str>,
    resources: impl IntoIterator<Item = Resource<'a>>,
) {
    list_open(out, list_uri);
    let mut n = Vec::new();
    if let Some(list_name) = list_name {
        name(&mut n, list_name);
    }
    list_rest(out, version, full, &n, resources);
}

/// The document up to the value of `version`: the same in every NOTIFY of a subscription.
fn list_open(out: &mut Vec<u8>, list_uri: &str) {
    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<list xmlns=\"");
    out.extend_from_slice(NS.as_bytes());
    out.extend_from_slice(b"\" uri=\"");
    push_escaped(out, list_uri);
    out.extend_from_slice(b"\" version=\"");
}

/// The rest of the document after [`list_open`]; `list_name` is the written `<name>`, if any.
fn list_rest<'a>(
    out: &mut Vec<u8>,
    version: u32,
    full: bool,
    list_name: &[u8],
    resources: impl IntoIterator<Item = Resource<'a>>,
) {
    out.extend_from_slice(itoa::Buffer::new().format(version).as_bytes());
    out.extend_from_slice(if full {
        b"\" fullState=\"true\">\n".as_slice()
    } else {
        b"\" fullState=\"false\">\n".as_slice()
    });
    out.extend_from_slice(list_name);
    for r in resources {
        out.extend_from_slice(b"<resource uri=\"");
        push_escaped(out, r.uri);
        out.extend_from_slice(b"\">");
        if let Some(n) = r.name {
            name(out, n);
        }
        if let Some(i) = &r.instance {
            out.extend_from_slice(b"<instance id=\"");
            push_escaped(out, i.id);
            out.extend_from_slice(b"\" state=\"");
            match i.state {
                InstanceState::Active => out.extend_from_slice(b"active\""),
                InstanceState::Pending => out.extend_from_slice(b"pending\""),
                InstanceState::Terminated(reason) => {
                    out.extend_from_slice(b"terminated\"");
                    if let Some(r) = reason {
                        out.extend_from_slice(b" reason=\"");
                        out.extend_from_slice(r.as_bytes());
                        out.push(b'"');
                    }
                }
            }
            if let Some(cid) = i.cid {
                out.extend_from_slice(b" cid=\"");
                push_escaped(out, cid);
                out.push(b'"');
            }
            out.extend_from_slice(b"/>");
        }
        out.extend_from_slice(b"</resource>\n");
    }
    out.extend_from_slice(b"</list>\n");
}

/// What every NOTIFY body of one list subscription begins with, written once (the boundary is
/// the engine's, the root part is named after the subscription, the list's URI and name change
/// only with the list): the first delimiter, the root part's headers and the RLMI document up
/// to its `version` value, then the list's `<name>` for after `fullState`.
#[derive(Debug)]
pub struct BodyStart {
    bytes: Box<[u8]>,
    /// Where the RLMI document begins.
    rlmi_at: u32,
    /// Where the `<name>` begins.
    name_at: u32,
    /// The boundary occurs in the list's URI or name.
    collides: bool,
}

impl BodyStart {
    pub fn new(
        boundary: &Boundary,
        root_cid: &str,
        form: CidForm,
        list_uri: &str,
        list_name: Option<&str>,
    ) -> BodyStart {
        let mut b = multipart_start(&boundary.text, root_cid, form, 160, &[]);
        let rlmi_at = b.len();
        list_open(&mut b, list_uri);
        let name_at = b.len();
        if let Some(n) = list_name {
            name(&mut b, n);
        }
        BodyStart {
            collides: boundary.occurs_in(&b[rlmi_at..]),
            rlmi_at: rlmi_at as u32,
            name_at: name_at as u32,
            bytes: b.into_boxed_slice(),
        }
    }

    /// Begin a body with room for `more` bytes after this start: the caller then writes the
    /// RLMI document's rest with [`BodyStart::finish_rlmi`].
    pub fn begin(&self, more: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + more);
        out.extend_from_slice(&self.bytes[..self.name_at as usize]);
        out
    }

    /// Begin a body in the buffer of the previous one (`old`, which began with this start):
    /// the start is already there, and the buffer is warm. A buffer still shared (a NOTIFY in
    /// flight) or much larger than needed (after a full state) is let go instead.
    pub fn resume(&self, old: Bytes, more: usize) -> Vec<u8> {
        let at = self.name_at as usize;
        match old.try_into_mut() {
            Ok(b) if b.len() >= at && b.capacity() <= 2 * (at + more) => {
                let mut v = Vec::from(b);
                v.truncate(at);
                v.reserve(more);
                v
            }
            _ => self.begin(more),
        }
    }

    /// The rest of the RLMI document of a body from [`BodyStart::begin`]; true when
    /// `boundary` occurs in the document, which then needs another.
    pub fn finish_rlmi<'a>(
        &self,
        out: &mut Vec<u8>,
        boundary: &Boundary,
        version: u32,
        full: bool,
        resources: impl IntoIterator<Item = Resource<'a>>,
    ) -> bool {
        let at = out.len();
        list_rest(
            out,
            version,
            full,
            &self.bytes[self.name_at as usize..],
            resources,
        );
        // the start ends in `"`, which no boundary contains: none straddles start and rest
        self.collides || boundary.occurs_in(&out[at..])
    }

    /// The RLMI document within a body from [`BodyStart::begin`].
    pub fn rlmi<'b>(&self, body: &'b [u8]) -> &'b [u8] {
        &body[self.rlmi_at as usize..]
    }
}

fn name(out: &mut Vec<u8>, n: &str) {
    out.extend_from_slice(b"<name>");
    push_escaped(out, n);
    out.extend_from_slice(b"</name>");
}

/// Text or an attribute value, escaped (URIs and ids rarely need it: they are copied as they
/// are when they do not).
fn push_escaped(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .any(|b| matches!(b, b'<' | b'>' | b'&' | b'"' | b'\''))
    {
        out.extend_from_slice(escape(s).as_bytes());
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// How a part's `Content-ID` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidForm {
    /// `<cid>`, as RFC 2392 writes a msg-id.
    Bracketed,
    /// The bare value: what liblinphone 5.1 compares byte for byte with the RLMI `cid`.
    Bare,
}

/// A body part: its headers (binary transfer, its `Content-ID`, its type) and content. The
/// header is spelled `Content-Id` (names are case-insensitive, RFC 2045 §1; liblinphone looks
/// it up by exactly this spelling).
pub fn part(cid: &str, form: CidForm, content_type: &str, body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(96 + cid.len() + content_type.len() + body.len());
    part_into(&mut out, cid, form, content_type, body);
    Bytes::from(out)
}

fn part_into(out: &mut Vec<u8>, cid: &str, form: CidForm, content_type: &str, body: &[u8]) {
    out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\nContent-Id: ");
    if form == CidForm::Bracketed {
        out.push(b'<');
    }
    out.extend_from_slice(cid.as_bytes());
    if form == CidForm::Bracketed {
        out.push(b'>');
    }
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b";charset=\"UTF-8\"\r\n\r\n");
    out.extend_from_slice(body);
}

/// The `Content-Type` of a list NOTIFY whose root part is `start_cid` (RFC 2387 §3.1, §3.2).
pub fn content_type(boundary: &str, start_cid: &str) -> String {
    format!("{MULTIPART};type=\"{CONTENT_TYPE}\";start=\"<{start_cid}>\";boundary={boundary}")
}

/// The multipart body: the RLMI document `rlmi` as the root part `rlmi_cid`, then `parts`
/// (from [`part`]), delimited by `boundary` (RFC 2046 §5.1.1), which none of them may contain.
pub fn multipart(
    boundary: &str,
    rlmi_cid: &str,
    form: CidForm,
    rlmi: &[u8],
    parts: &[Bytes],
) -> Bytes {
    let mut out = multipart_start(boundary, rlmi_cid, form, rlmi.len(), parts);
    out.extend_from_slice(rlmi);
    multipart_finish(out, boundary, parts)
}

/// The start of a multipart body (its first delimiter and the root part's headers), with room
/// for an RLMI document of about `rlmi_len` bytes and `parts`: the caller writes the RLMI
/// document after it (no copy) and hands it to [`multipart_finish`].
pub fn multipart_start(
    boundary: &str,
    rlmi_cid: &str,
    form: CidForm,
    rlmi_len: usize,
    parts: &[Bytes],
) -> Vec<u8> {
    let framing = boundary.len() + 6;
    let len = rlmi_len + 160 + parts.iter().map(|p| p.len() + framing).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    delimiter(&mut out, boundary, true);
    part_into(&mut out, rlmi_cid, form, CONTENT_TYPE, b"");
    out
}

/// The rest of a multipart body begun by [`multipart_start`]: the member parts and the close
/// delimiter.
pub fn multipart_finish(mut out: Vec<u8>, boundary: &str, parts: &[Bytes]) -> Bytes {
    for p in parts {
        delimiter(&mut out, boundary, false);
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b"\r\n--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
    Bytes::from(out)
}

fn delimiter(out: &mut Vec<u8>, boundary: &str, first: bool) {
    if !first {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// True when `boundary` cannot delimit `bytes` (it occurs in them).
pub fn collides(bytes: &[u8], boundary: &str) -> bool {
    memchr::memmem::find(bytes, boundary.as_bytes()).is_some()
}

/// [`collides`] for one boundary checked against many bodies (its searcher built once).
#[derive(Debug, Clone)]
pub struct Boundary {
    pub text: Box<str>,
    finder: memchr::memmem::Finder<'static>,
}

impl Boundary {
    pub fn new(text: &str) -> Boundary {
        Boundary {
            text: text.into(),
            finder: memchr::memmem::Finder::new(text.as_bytes()).into_owned(),
        }
    }

    /// True when it occurs in `bytes`.
    pub fn occurs_in(&self, bytes: &[u8]) -> bool {
        self.finder.find(bytes).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_state_body_frames_the_rlmi_root_and_each_part() {
        let mut rlmi = Vec::new();
        let resources = [
            Resource {
                uri: "sip:bob@example.com",
                name: Some("Bob & co"),
                instance: Some(Instance {
                    id: "1",
                    state: InstanceState::Active,
                    cid: Some("b1@example.com"),
                }),
            },
            Resource {
                uri: "sip:carol@example.com",
                name: None,
                instance: Some(Instance {
                    id: "2",
                    state: InstanceState::Terminated(Some("rejected")),
                    cid: None,
                }),
            },
        ];
        write(
            &mut rlmi,
            "sip:l@example.com",
            0,
            true,
            Some("Friends"),
            resources,
        );
        let text = String::from_utf8(rlmi.clone()).unwrap();
        assert!(text.contains("version=\"0\" fullState=\"true\""), "{text}");
        assert!(text.contains("<name>Bob &amp; co</name>"), "{text}");
        assert!(text.contains("state=\"terminated\" reason=\"rejected\"/>"));
        let p = part(
            "b1@example.com",
            CidForm::Bracketed,
            "application/pidf+xml",
            b"<presence/>",
        );
        let body = multipart("BND", "r@example.com", CidForm::Bracketed, &rlmi, &[p]);
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.starts_with("--BND\r\nContent-Transfer-Encoding: binary\r\n"));
        assert!(body.contains("Content-Id: <r@example.com>\r\nContent-Type: application/rlmi+xml"));
        assert!(body.contains(
            "\r\n--BND\r\nContent-Transfer-Encoding: binary\r\nContent-Id: <b1@example.com>"
        ));
        assert!(body.ends_with("<presence/>\r\n--BND--\r\n"));
        assert_eq!(
            content_type("BND", "r@example.com"),
            "multipart/related;type=\"application/rlmi+xml\";start=\"<r@example.com>\";boundary=BND"
        );
        assert!(collides(body.as_bytes(), "BND") && !collides(b"abc", "BND"));
    }
}
