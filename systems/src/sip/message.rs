//! From bytes to a checked message: the lenient first pass ([`super::scan`]), the mandatory-header
//! and start-line checks of RFC 3261 §8.2.1–§8.2.2, then rsip as the strict parser. A message
//! that fails is answered here when it can be (400/416/501/505, built from the first pass),
//! dropped and counted when it cannot.

use bytes::Bytes;
pub use rsip::Method;

use super::fields::{self, TopVia};
use super::response::{Echo, ResponseWriter, response_dest};
use super::scan::{Scan, ScanError, StartLine, scan};
use super::syntax::{check_name_addr, check_via};
use super::uri::{Uri, UriError};
use crate::net::{Inbound, Outbound, Source};

/// A request that passed every parse check.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: rsip::Headers,
    pub body: Bytes,
    pub source: Source,
    pub call_id: String,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub cseq: u32,
    pub via: TopVia,
}

/// A response that passed every parse check.
#[derive(Debug, Clone)]
pub struct Response {
    pub code: u16,
    pub headers: rsip::Headers,
    pub body: Bytes,
    pub source: Source,
    pub call_id: String,
    pub to_tag: Option<String>,
    pub cseq: u32,
    pub cseq_method: Method,
    pub via: TopVia,
}

/// Why a message was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a SIP message at all (no start line, no header end, not text).
    Garbage,
    /// A request whose response could not be routed (no usable Via, RFC 3261 §18.2.2).
    Unroutable,
    /// A malformed response (never answered, RFC 3261 §18.1.2).
    BadResponse,
    /// A malformed ACK (ACK is never answered).
    BadAck,
}

/// The outcome of parsing one inbound message.
#[derive(Debug)]
pub enum Parsed {
    Request(Box<Request>),
    Response(Box<Response>),
    /// Answered statelessly at parse time (400, 416, 501, 505).
    Rejected {
        code: u16,
        reply: Outbound,
    },
    Dropped(DropReason),
}

/// The method's name on the wire.
pub fn method_str(m: Method) -> &'static str {
    match m {
        Method::Ack => "ACK",
        Method::Bye => "BYE",
        Method::Cancel => "CANCEL",
        Method::Info => "INFO",
        Method::Invite => "INVITE",
        Method::Message => "MESSAGE",
        Method::Notify => "NOTIFY",
        Method::Options => "OPTIONS",
        Method::PRack => "PRACK",
        Method::Publish => "PUBLISH",
        Method::Refer => "REFER",
        Method::Register => "REGISTER",
        Method::Subscribe => "SUBSCRIBE",
        Method::Update => "UPDATE",
    }
}

/// Methods this build of rsip models; any other token is a method we do not recognise (501).
fn known_method(m: &str) -> Option<Method> {
    Some(match m {
        "ACK" => Method::Ack,
        "BYE" => Method::Bye,
        "CANCEL" => Method::Cancel,
        "INFO" => Method::Info,
        "INVITE" => Method::Invite,
        "MESSAGE" => Method::Message,
        "NOTIFY" => Method::Notify,
        "OPTIONS" => Method::Options,
        "PRACK" => Method::PRack,
        "PUBLISH" => Method::Publish,
        "REFER" => Method::Refer,
        "REGISTER" => Method::Register,
        "SUBSCRIBE" => Method::Subscribe,
        "UPDATE" => Method::Update,
        _ => return None,
    })
}

/// The strict header checks (RFC 3261 §25.1, RFC 4475 §3.1.2 and §3.3.8): single-valued
/// headers once, From/To/Contact name-addr syntax, every Via well-formed.
fn check_headers(sc: &Scan<'_>) -> Result<(), String> {
    for name in ["Call-ID", "From", "To", "CSeq", "Max-Forwards"] {
        if sc.headers_named(name).count() > 1 {
            return Err(format!("Multiple {name} headers"));
        }
    }
    for name in ["From", "To"] {
        if let Some(v) = sc.header(name) {
            check_name_addr(v).map_err(|why| format!("Malformed {name} header ({why})"))?;
        }
    }
    for v in sc.headers_named("Contact") {
        if v.trim() != "*" {
            for c in fields::split_commas(v) {
                check_name_addr(c).map_err(|why| format!("Malformed Contact header ({why})"))?;
            }
        }
    }
    for v in sc.headers_named("Via") {
        check_via(v).map_err(|why| format!("Malformed Via header ({why})"))?;
    }
    Ok(())
}

/// A stateless answer; `tag` is derived from the request so that a retransmission gets the
/// same bytes back.
fn reject(
    scan: &Scan<'_>,
    via: &TopVia,
    source: &Source,
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> Parsed {
    let echo = Echo::from_scan(scan);
    let tag = stateless_tag(&echo);
    let mut w = ResponseWriter::new(code, reason, &echo, via, source, Some(&tag));
    for (n, v) in extra {
        w.header(n, v);
    }
    Parsed::Rejected {
        code,
        reply: Outbound::whole(response_dest(via, source), w.finish()),
    }
}

/// A To tag that depends only on the request and `seed`: a retransmission gets the same tag
/// (FNV-1a over the given parts, in hex).
pub fn derived_tag<'a>(seed: u64, parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h: u64 = 0xcbf29ce484222325 ^ seed;
    for part in parts {
        for b in part.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

/// The To tag of a stateless answer built from the first pass (Call-ID, From, CSeq, top Via).
pub fn stateless_tag(echo: &Echo<'_>) -> String {
    let parts = [
        echo.call_id,
        echo.from,
        echo.cseq,
        echo.vias.first().copied(),
    ];
    derived_tag(0, parts.into_iter().flatten())
}

/// Reason phrase for a strict-parser failure, short and on one line.
fn rsip_reason(e: &rsip::Error) -> String {
    let s = e.to_string();
    let s: String = s.chars().filter(|c| !c.is_control()).take(80).collect();
    format!("Bad Request ({s})")
}

/// Parse one inbound message.
pub fn parse(inbound: &Inbound, allow: &str, force_rport: bool) -> Parsed {
    let source = &inbound.source;
    let sc = match scan(&inbound.bytes, !source.transport.is_reliable()) {
        Ok(s) => s,
        Err(_) => return Parsed::Dropped(DropReason::Garbage),
    };
    let is_request = matches!(sc.start, StartLine::Request { .. });
    let Some(mut via) = sc.header("Via").and_then(fields::parse_via) else {
        return Parsed::Dropped(if is_request {
            DropReason::Unroutable
        } else {
            DropReason::BadResponse
        });
    };
    via.rport |= force_rport && is_request;
    match sc.start {
        StartLine::Request {
            method,
            uri,
            version,
        } => {
            let known = known_method(method);
            if known == Some(Method::Ack)
                && (sc.fault.is_some() || Echo::from_scan(&sc).missing().is_some())
            {
                return Parsed::Dropped(DropReason::BadAck);
            }
            if let Some(fault) = &sc.fault {
                return reject(
                    &sc,
                    &via,
                    source,
                    400,
                    &format!("Bad Request ({fault})"),
                    &[],
                );
            }
            if let Some(missing) = Echo::from_scan(&sc).missing() {
                return reject(
                    &sc,
                    &via,
                    source,
                    400,
                    &format!("Missing {missing} header"),
                    &[],
                );
            }
            if !version.eq_ignore_ascii_case("SIP/2.0") {
                return reject(&sc, &via, source, 505, "Version Not Supported", &[]);
            }
            let Some((cseq, cseq_method)) = sc.header("CSeq").and_then(fields::parse_cseq) else {
                return reject(&sc, &via, source, 400, "Malformed CSeq", &[]);
            };
            if cseq_method != method {
                return reject(
                    &sc,
                    &via,
                    source,
                    400,
                    "CSeq method does not match the request method",
                    &[],
                );
            }
            if let Err(why) = check_headers(&sc) {
                return reject(&sc, &via, source, 400, &why, &[]);
            }
            let Some(method) = known else {
                // RFC 3261 §21.5.2: a method we do not recognise
                return reject(
                    &sc,
                    &via,
                    source,
                    501,
                    "Not Implemented",
                    &[("Allow", allow)],
                );
            };
            if uri.contains(['<', '>']) {
                return reject(&sc, &via, source, 400, "Malformed Request-URI", &[]);
            }
            let request_uri = match Uri::parse(uri) {
                Ok(u) if u.has_headers() => {
                    return reject(
                        &sc,
                        &via,
                        source,
                        400,
                        "Request-URI must not carry headers",
                        &[],
                    );
                }
                Ok(u) => u,
                Err(UriError::Scheme) => {
                    return reject(&sc, &via, source, 416, "Unsupported URI Scheme", &[]);
                }
                Err(UriError::Malformed) => {
                    return reject(&sc, &via, source, 400, "Malformed Request-URI", &[]);
                }
            };
            let mut head = Vec::with_capacity(inbound.bytes.len() + 64);
            sc.canonical_head(&mut head);
            let req = match rsip::Request::try_from(&head[..]) {
                Ok(r) => r,
                // rsip's URI grammar is narrower than RFC 3261's (it refuses `;` in the user
                // part, RFC 4475 §3.1.1.9); the Request-URI was checked above, so let rsip read
                // the headers behind a stand-in Request-URI.
                Err(_) => {
                    head.clear();
                    let stand_in = Scan {
                        start: StartLine::Request {
                            method: method_str(method),
                            uri: "sip:invalid",
                            version,
                        },
                        ..sc.clone()
                    };
                    stand_in.canonical_head(&mut head);
                    match rsip::Request::try_from(&head[..]) {
                        Ok(r) => r,
                        Err(e) => return reject(&sc, &via, source, 400, &rsip_reason(&e), &[]),
                    }
                }
            };
            let body = inbound
                .bytes
                .slice(sc.body_offset..sc.body_offset + sc.body.len());
            Parsed::Request(Box::new(Request {
                method,
                uri: request_uri,
                call_id: sc.header("Call-ID").unwrap_or_default().to_owned(),
                from_tag: sc.header("From").and_then(fields::tag).map(str::to_owned),
                to_tag: sc.header("To").and_then(fields::tag).map(str::to_owned),
                cseq,
                via,
                headers: req.headers,
                body,
                source: *source,
            }))
        }
        StartLine::Response { code, .. } => {
            if sc.fault.is_some() || Echo::from_scan(&sc).missing().is_some() {
                return Parsed::Dropped(DropReason::BadResponse);
            }
            let Some((cseq, m)) = sc.header("CSeq").and_then(fields::parse_cseq) else {
                return Parsed::Dropped(DropReason::BadResponse);
            };
            let Some(cseq_method) = known_method(m) else {
                return Parsed::Dropped(DropReason::BadResponse);
            };
            let mut head = Vec::with_capacity(inbound.bytes.len() + 64);
            sc.canonical_head(&mut head);
            let Ok(resp) = rsip::Response::try_from(&head[..]) else {
                return Parsed::Dropped(DropReason::BadResponse);
            };
            let body = inbound
                .bytes
                .slice(sc.body_offset..sc.body_offset + sc.body.len());
            Parsed::Response(Box::new(Response {
                code,
                call_id: sc.header("Call-ID").unwrap_or_default().to_owned(),
                to_tag: sc.header("To").and_then(fields::tag).map(str::to_owned),
                cseq,
                cseq_method,
                via,
                headers: resp.headers,
                body,
                source: *source,
            }))
        }
    }
}

/// Helpers to read parsed headers by name.
pub trait HeaderLookup {
    /// The parsed headers.
    fn header_list(&self) -> &rsip::Headers;

    /// The value of the first header called `name` (case-insensitive; canonical names).
    fn header(&self, name: &str) -> Option<&str> {
        self.header_list().iter().find_map(|h| {
            let (n, v) = name_value(h);
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    /// All values of headers called `name`, split at top-level commas.
    fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.header_list()
            .iter()
            .filter_map(move |h| {
                let (n, v) = name_value(h);
                n.eq_ignore_ascii_case(name).then_some(v)
            })
            .flat_map(fields::split_commas)
            .filter(|s| !s.is_empty())
    }
}

impl HeaderLookup for Request {
    fn header_list(&self) -> &rsip::Headers {
        &self.headers
    }
}

impl HeaderLookup for Response {
    fn header_list(&self) -> &rsip::Headers {
        &self.headers
    }
}

/// The canonical name and raw value of a parsed header.
pub fn name_value(h: &rsip::Header) -> (&str, &str) {
    use rsip::Header as H;
    use rsip::headers::UntypedHeader;
    match h {
        H::Accept(v) => ("Accept", v.value()),
        H::AcceptEncoding(v) => ("Accept-Encoding", v.value()),
        H::AcceptLanguage(v) => ("Accept-Language", v.value()),
        H::AlertInfo(v) => ("Alert-Info", v.value()),
        H::Allow(v) => ("Allow", v.value()),
        H::AuthenticationInfo(v) => ("Authentication-Info", v.value()),
        H::Authorization(v) => ("Authorization", v.value()),
        H::CSeq(v) => ("CSeq", v.value()),
        H::CallId(v) => ("Call-ID", v.value()),
        H::CallInfo(v) => ("Call-Info", v.value()),
        H::Contact(v) => ("Contact", v.value()),
        H::ContentDisposition(v) => ("Content-Disposition", v.value()),
        H::ContentEncoding(v) => ("Content-Encoding", v.value()),
        H::ContentLanguage(v) => ("Content-Language", v.value()),
        H::ContentLength(v) => ("Content-Length", v.value()),
        H::ContentType(v) => ("Content-Type", v.value()),
        H::Date(v) => ("Date", v.value()),
        H::ErrorInfo(v) => ("Error-Info", v.value()),
        H::Event(v) => ("Event", v.value()),
        H::Expires(v) => ("Expires", v.value()),
        H::From(v) => ("From", v.value()),
        H::InReplyTo(v) => ("In-Reply-To", v.value()),
        H::MaxForwards(v) => ("Max-Forwards", v.value()),
        H::MimeVersion(v) => ("MIME-Version", v.value()),
        H::MinExpires(v) => ("Min-Expires", v.value()),
        H::Organization(v) => ("Organization", v.value()),
        H::Other(n, v) => (n.as_str(), v.as_str()),
        H::Priority(v) => ("Priority", v.value()),
        H::ProxyAuthenticate(v) => ("Proxy-Authenticate", v.value()),
        H::ProxyAuthorization(v) => ("Proxy-Authorization", v.value()),
        H::ProxyRequire(v) => ("Proxy-Require", v.value()),
        H::RecordRoute(v) => ("Record-Route", v.value()),
        H::ReplyTo(v) => ("Reply-To", v.value()),
        H::Require(v) => ("Require", v.value()),
        H::RetryAfter(v) => ("Retry-After", v.value()),
        H::Route(v) => ("Route", v.value()),
        H::Server(v) => ("Server", v.value()),
        H::Subject(v) => ("Subject", v.value()),
        H::SubscriptionState(v) => ("Subscription-State", v.value()),
        H::Supported(v) => ("Supported", v.value()),
        H::Timestamp(v) => ("Timestamp", v.value()),
        H::To(v) => ("To", v.value()),
        H::Unsupported(v) => ("Unsupported", v.value()),
        H::UserAgent(v) => ("User-Agent", v.value()),
        H::Via(v) => ("Via", v.value()),
        H::Warning(v) => ("Warning", v.value()),
        H::WwwAuthenticate(v) => ("WWW-Authenticate", v.value()),
    }
}

/// Parse errors that make a message impossible to answer are reported through [`DropReason`];
/// this re-export lets the shell name first-pass failures in its counters.
pub type FirstPassError = ScanError;

/// The 503 the shell sends when the engine's inbox is full (RFC 3261 §21.5.4 with Retry-After).
/// Built from the first pass only, so it costs no strict parse. None for responses, ACKs and
/// anything that cannot be answered.
pub fn overload_reply(
    inbound: &Inbound,
    retry_after_secs: u32,
    force_rport: bool,
) -> Option<Outbound> {
    let sc = scan(&inbound.bytes, !inbound.source.transport.is_reliable()).ok()?;
    let StartLine::Request { method, .. } = sc.start else {
        return None;
    };
    if method == "ACK" {
        return None;
    }
    let mut via = sc.header("Via").and_then(fields::parse_via)?;
    via.rport |= force_rport;
    let echo = Echo::from_scan(&sc);
    if echo.missing().is_some() {
        return None;
    }
    let tag = stateless_tag(&echo);
    let mut w = ResponseWriter::new(
        503,
        "Service Unavailable",
        &echo,
        &via,
        &inbound.source,
        Some(&tag),
    );
    w.header_num("Retry-After", retry_after_secs as u64);
    Some(Outbound::whole(
        response_dest(&via, &inbound.source),
        w.finish(),
    ))
}
