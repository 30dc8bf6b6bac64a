//! The dialog a subscription lives in (RFC 3261 §12, RFC 6665 §4.1.2.1) and the NOTIFY head
//! written from it. A dialog's strings are kept as written, to echo them byte for byte.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bevy_ecs::lifecycle::HookContext;
use bevy_ecs::prelude::{Entity, Resource};
use bevy_ecs::world::DeferredWorld;
use bytes::Bytes;

use crate::net::{AddrText, ConnId, Dest, Source, Transport};
use crate::sip::fields::{params, uri_of};
use crate::sip::response::{SERVER, push_header};
use crate::sip::uri::Uri;

/// A notifier-side dialog in 24 bytes; its strings live in the [`DialogStore`] (memory per
/// subscription is a budget: a dozen `String`s and an 88-byte [`Dest`] would cost more than
/// everything else in a subscription).
///
/// Our local tag is not stored: it is derived from the subscription's entity, the Call-ID and
/// the engine seed ([`local_tag`]), and NOTIFY From is the SUBSCRIBE's To with that tag.
#[derive(Debug)]
pub struct Dialog {
    /// call-id, local (the SUBSCRIBE's To, no tag), remote (its From), remote target, event id,
    /// extra hop fields (see [`Hop`]), then the route set, separated by `\n` (none of them can
    /// contain a line end; trailing empty fields are left out).
    text: TextRef,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    hop: Hop,
}

/// A dialog's text in the store: where and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TextRef {
    at: u32,
    len: u32,
}

/// A subscription's dialog text goes back to the store with the subscription (despawn or
/// removal): the hook of [`super::Subscription`].
pub(super) fn free_text(mut world: DeferredWorld, ctx: HookContext) {
    let Some(text) = world
        .get::<super::Subscription>(ctx.entity)
        .map(|s| s.dialog.text)
    else {
        return;
    };
    if let Some(mut store) = world.get_resource_mut::<DialogStore>() {
        store.free(text);
    }
}

/// Where NOTIFYs go, in 8 bytes: an IPv4 peer inline and our local address as an index into
/// the store's local addresses. What does not fit (an IPv6 peer, a TCP connection, a local
/// address past the table) is written in the dialog's text and read back when a NOTIFY is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hop {
    ip: [u8; 4],
    port: u16,
    local: u8,
    flags: u8,
}

impl Hop {
    /// The peer address held inline, when the extras do not override it.
    fn inline_addr(&self) -> Option<SocketAddrV4> {
        (self.flags & Hop::EXTRAS == 0)
            .then(|| SocketAddrV4::new(Ipv4Addr::from(self.ip), self.port))
    }

    const TCP: u8 = 1;
    /// The text's extras field overrides the inline fields.
    const EXTRAS: u8 = 2;
    /// The local part is `<` + the source's URI + `>` and is not in the text (see
    /// [`super::SourceUri`]: a million dialogs to a hundred thousand presentities would otherwise
    /// hold ten copies of each presentity's URI).
    const LOCAL_FROM_SOURCE: u8 = 4;
    /// No local index: the local address is in the extras.
    const NO_LOCAL: u8 = u8::MAX;
}

/// Bytes of a chunk of the text store.
const CHUNK: usize = 64 * 1024;
/// Texts are stored in slots of this many bytes.
const UNIT: usize = 4;
/// Bits of a [`TextRef::at`] that hold the slot's offset (in units) in its chunk (the other 18
/// number chunks: 16 GB of dialog text at most).
const OFFSET_BITS: u32 = 14;
/// Texts longer than this get a chunk of their own.
const LARGE: usize = CHUNK / 4;

/// The strings of every dialog and our local addresses, shared by all dialogs.
///
/// Texts sit in 64 KB chunks, in slots rounded up to 4 bytes, with a free list per slot size:
/// no allocation per dialog, no allocator header or size-class rounding, and long-lived dialog
/// strings never share pages with the short-lived buffers of transactions (whose holes would
/// otherwise keep those pages resident after a burst). Local addresses are interned so that a
/// dialog names its own with a byte; bounded by the shell's sockets (past 255 the address goes
/// in the dialog's text).
#[derive(Resource, Debug, Default)]
pub struct DialogStore {
    locals: Vec<SocketAddr>,
    chunks: Vec<Box<[u8]>>,
    /// Bytes used in the last regular chunk.
    top: usize,
    /// Index of the chunk `top` is in (None: no regular chunk yet).
    current: Option<usize>,
    /// Free slots by size in units: their `at`.
    free: Vec<Vec<u32>>,
    /// Chunks given back by large texts, for reuse.
    free_chunks: Vec<u32>,
}

impl DialogStore {
    fn intern(&mut self, a: SocketAddr) -> Option<u8> {
        if let Some(i) = self.locals.iter().position(|&x| x == a) {
            return Some(i as u8);
        }
        if self.locals.len() >= Hop::NO_LOCAL as usize {
            return None;
        }
        self.locals.push(a);
        Some((self.locals.len() - 1) as u8)
    }

    fn local(&self, i: u8) -> SocketAddr {
        self.locals
            .get(i as usize)
            .copied()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    fn new_chunk(&mut self, bytes: Box<[u8]>) -> usize {
        match self.free_chunks.pop() {
            Some(i) => {
                self.chunks[i as usize] = bytes;
                i as usize
            }
            None => {
                self.chunks.push(bytes);
                self.chunks.len() - 1
            }
        }
    }

    /// Store `text`.
    fn put(&mut self, text: &[u8]) -> TextRef {
        let len = text.len();
        if len > LARGE {
            let c = self.new_chunk(text.into());
            return TextRef {
                at: (c as u32) << OFFSET_BITS,
                len: len as u32,
            };
        }
        let units = len.div_ceil(UNIT).max(1);
        let at = match self.free.get_mut(units).and_then(Vec::pop) {
            Some(at) => at,
            None => {
                let c = match self.current {
                    Some(c) if self.top + units * UNIT <= CHUNK => c,
                    _ => {
                        let c = self.new_chunk(vec![0; CHUNK].into());
                        self.current = Some(c);
                        self.top = 0;
                        c
                    }
                };
                let at = ((c as u32) << OFFSET_BITS) | (self.top / UNIT) as u32;
                self.top += units * UNIT;
                at
            }
        };
        let (c, off) = Self::locate(at);
        self.chunks[c][off..off + len].copy_from_slice(text);
        TextRef {
            at,
            len: len as u32,
        }
    }

    fn locate(at: u32) -> (usize, usize) {
        (
            (at >> OFFSET_BITS) as usize,
            (at & ((1 << OFFSET_BITS) - 1)) as usize * UNIT,
        )
    }

    /// Give a text's slot back (none for the empty text of [`Dialog::none`]).
    fn free(&mut self, t: TextRef) {
        let len = t.len as usize;
        if len == 0 {
            return;
        }
        if len > LARGE {
            let (c, _) = Self::locate(t.at);
            self.chunks[c] = Box::default();
            self.free_chunks.push(c as u32);
            return;
        }
        let units = len.div_ceil(UNIT).max(1);
        if self.free.len() <= units {
            self.free.resize_with(units + 1, Vec::new);
        }
        self.free[units].push(t.at);
    }

    fn get(&self, t: TextRef) -> &str {
        let (c, off) = Self::locate(t.at);
        let bytes = &self.chunks[c][off..off + t.len as usize];
        // written from `&str` parts only
        std::str::from_utf8(bytes).unwrap_or("")
    }
}

/// The parts of a dialog, to build one.
#[derive(Clone, Copy)]
pub struct DialogParts<'a> {
    pub call_id: &'a str,
    /// NOTIFY From without our tag: the SUBSCRIBE's To as written.
    pub local: &'a str,
    /// NOTIFY To: the SUBSCRIBE's From, as written.
    pub remote: &'a str,
    /// Request-URI of NOTIFYs: the subscriber's Contact URI.
    pub remote_target: &'a str,
    /// `Event: <package>;id=...` (RFC 6665 §8.2.1); empty when absent.
    pub event_id: &'a str,
    /// Record-Route of the SUBSCRIBE, in order (the UAS route set, §12.1.1).
    pub route_set: &'a [&'a str],
}

/// Our tag for the dialog of `sub` (RFC 3261 §19.3): the entity, which lets a request in the
/// dialog find its subscription without an index, and 32 bits mixed from the engine seed, the
/// entity and the Call-ID, so that it need not be stored.
pub fn local_tag(sub: Entity, call_id: &str, seed: u64) -> LocalTag {
    let bits = sub.to_bits();
    let mut h = seed ^ bits.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in call_id.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    LocalTag::new(bits, h as u32)
}

/// A dialog's local tag, `{entity bits:x}.{32 bits:08x}`, kept inline: it is written into every
/// NOTIFY, so it must not cost an allocation each time.
#[derive(Clone, Copy)]
pub struct LocalTag {
    buf: [u8; 25],
    len: u8,
}

impl LocalTag {
    fn new(bits: u64, mix: u32) -> LocalTag {
        let mut buf = [0u8; 25];
        let digits = crate::hex::width(bits, 1);
        crate::hex::write(&mut buf, bits, digits);
        buf[digits] = b'.';
        crate::hex::write(&mut buf[digits + 1..], mix.into(), 8);
        LocalTag {
            buf,
            len: (digits + 9) as u8,
        }
    }
}

impl std::ops::Deref for LocalTag {
    type Target = str;
    fn deref(&self) -> &str {
        // hex digits and a dot are ASCII
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or_default()
    }
}

impl std::fmt::Debug for LocalTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

fn push_addr_token(text: &mut String, kind: char, a: SocketAddr) {
    use std::fmt::Write;
    match a {
        SocketAddr::V4(v4) => {
            text.push(kind);
            text.push_str(AddrText::ip(IpAddr::V4(*v4.ip())).as_str());
            text.push('/');
            text.push_str(itoa::Buffer::new().format(v4.port()));
        }
        SocketAddr::V6(v6) => {
            let _ = write!(
                text,
                "{kind}{}/{}/{}/{}",
                v6.ip(),
                v6.port(),
                v6.flowinfo(),
                v6.scope_id()
            );
        }
    }
    text.push(' ');
}

fn parse_addr_token(t: &str) -> Option<SocketAddr> {
    let mut f = t.split('/');
    let ip: IpAddr = f.next()?.parse().ok()?;
    let port: u16 = f.next()?.parse().ok()?;
    Some(match ip {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V4(v4), port),
        IpAddr::V6(v6) => {
            let flow = f.next()?.parse().ok()?;
            let scope = f.next()?.parse().ok()?;
            SocketAddr::V6(SocketAddrV6::new(v6, port, flow, scope))
        }
    })
}

impl Dialog {
    /// No dialog yet (a subscription being accepted): no text in the store.
    pub fn none() -> Dialog {
        Dialog {
            text: TextRef { at: 0, len: 0 },
            local_cseq: 0,
            remote_cseq: 0,
            hop: Hop {
                ip: [0; 4],
                port: 0,
                local: 0,
                flags: 0,
            },
        }
    }

    /// A dialog from its parts, its strings put in `store`. `source_uri`: the URI of the
    /// subscription's source ([`super::SourceUri`]), if any; a local part that is exactly that
    /// URI in angle brackets is then not stored (pass the same URI to [`Dialog::notify_head`]).
    pub fn new(
        p: &DialogParts<'_>,
        remote_cseq: u32,
        dest: Dest,
        source_uri: Option<&str>,
        store: &mut DialogStore,
    ) -> Dialog {
        // the hop: inline what fits, the rest as text
        let mut extras = String::new();
        let mut hop = Hop {
            ip: [0; 4],
            port: dest.addr.port(),
            local: 0,
            flags: if dest.transport == Transport::Tcp {
                Hop::TCP
            } else {
                0
            },
        };
        match dest.addr {
            SocketAddr::V4(v4) => hop.ip = v4.ip().octets(),
            SocketAddr::V6(_) => push_addr_token(&mut extras, 'a', dest.addr),
        }
        match store.intern(dest.local) {
            Some(i) => hop.local = i,
            None => {
                hop.local = Hop::NO_LOCAL;
                push_addr_token(&mut extras, 'l', dest.local);
            }
        }
        if let Some(ConnId(c)) = dest.conn {
            extras.push('c');
            extras.push_str(itoa::Buffer::new().format(c));
            extras.push(' ');
        }
        if !extras.is_empty() {
            hop.flags |= Hop::EXTRAS;
        }
        let text = if source_uri.is_some_and(|u| is_bracketed(p.local, u)) {
            hop.flags |= Hop::LOCAL_FROM_SOURCE;
            let p = DialogParts { local: "", ..*p };
            store.put(Self::text(&p, &extras, hop.inline_addr()).as_bytes())
        } else {
            store.put(Self::text(p, &extras, hop.inline_addr()).as_bytes())
        };
        Dialog {
            text,
            local_cseq: 0,
            remote_cseq,
            hop,
        }
    }

    /// The stored text; `hop`: the inline next-hop address, which a remote target ending in it
    /// does not store again.
    fn text(p: &DialogParts<'_>, extras: &str, hop: Option<SocketAddrV4>) -> String {
        let fixed = [
            p.call_id,
            p.local,
            p.remote,
            p.remote_target,
            p.event_id,
            extras,
        ];
        let len = fixed.iter().chain(p.route_set).map(|r| r.len() + 1).sum();
        let mut text = String::with_capacity(len);
        let mut remote = 0..0;
        for (i, part) in fixed.iter().chain(p.route_set).enumerate() {
            let start = text.len();
            if part.contains(['\n', '\r']) {
                text.extend(part.chars().filter(|&c| c != '\n' && c != '\r'));
            } else {
                text.push_str(part);
            }
            match i {
                2 => remote = start..text.len(),
                3 => {
                    // the remote target, as stored: its prefix shared with the remote URI
                    // (`sip:user@` of a Contact and a From) is written as its length
                    let target = text.split_off(start);
                    let base = uri_of(&text[remote.clone()]);
                    let shared = base
                        .bytes()
                        .zip(target.bytes())
                        .take_while(|(a, b)| a == b)
                        .count()
                        .min(MAX_SHARED);
                    let rest = &target[shared..];
                    if hop.is_some_and(|a| {
                        rest.len() <= 21 && rest == AddrText::socket(SocketAddr::V4(a)).as_str()
                    }) {
                        text.push(HOP_MARK);
                        text.push(char::from(b' ' + shared as u8));
                    } else if shared >= 4 || target.starts_with([SHARED_MARK, HOP_MARK]) {
                        text.push(SHARED_MARK);
                        text.push(char::from(b' ' + shared as u8));
                        text.push_str(&target[shared..]);
                    } else {
                        text.push_str(&target);
                    }
                }
                _ => {}
            }
            text.push('\n');
        }
        // empty fields at the end (no event id, no extras, no route set) need no separators;
        // a text is never empty (an empty one stands for no dialog)
        while text.len() > 1 && text.ends_with('\n') {
            text.pop();
        }
        text
    }

    /// Bytes of the dialog's text in the store.
    pub fn text_len(&self) -> usize {
        self.text.len as usize
    }

    /// The dialog's strings.
    pub fn strings<'a>(&self, store: &'a DialogStore) -> DialogStrings<'a> {
        DialogStrings {
            text: store.get(self.text),
            hop: self.hop.inline_addr(),
        }
    }

    /// Where NOTIFYs go.
    pub fn dest(&self, store: &DialogStore) -> Dest {
        let h = self.hop;
        let mut d = Dest {
            transport: if h.flags & Hop::TCP != 0 {
                Transport::Tcp
            } else {
                Transport::Udp
            },
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(h.ip)), h.port),
            local: store.local(h.local),
            conn: None,
        };
        if h.flags & Hop::EXTRAS != 0 {
            for t in self.strings(store).extras().split(' ') {
                let Some(kind) = t.chars().next() else {
                    continue;
                };
                let v = &t[1..];
                match kind {
                    'a' => d.addr = parse_addr_token(v).unwrap_or(d.addr),
                    'l' => d.local = parse_addr_token(v).unwrap_or(d.local),
                    'c' => d.conn = v.parse().ok().map(ConnId),
                    _ => {}
                }
            }
        }
        d
    }

    /// Target refresh (RFC 6665 §4.1.2.1): a new remote target.
    pub fn set_remote_target(&mut self, target: &str, store: &mut DialogStore) {
        let old = self.strings(store);
        if *old.remote_target() == *target {
            return;
        }
        let routes: Vec<&str> = old.route_set().collect();
        let text = Self::text(
            &DialogParts {
                call_id: old.call_id(),
                local: old.local(),
                remote: old.remote(),
                remote_target: target,
                event_id: old.event_id().unwrap_or(""),
                route_set: &routes,
            },
            old.extras(),
            self.hop.inline_addr(),
        );
        store.free(self.text);
        self.text = store.put(text.as_bytes());
    }
}

/// A stored remote target that starts with this is `SHARED_MARK`, one character `' ' + n`, then
/// the target past the first `n` bytes of the remote URI (no URI starts with a control
/// character; a target that did would be stored with `n` = 0).
const SHARED_MARK: char = '\u{1}';
/// A stored remote target that is `HOP_MARK`, one character `' ' + n`: the first `n` bytes of the
/// remote URI then the dialog's inline next-hop address (`ip:port`, the usual Contact of a
/// client on an IP address, whom NOTIFYs are sent to).
const HOP_MARK: char = '\u{2}';
/// Longest shared prefix written as a length (its character stays printable ASCII).
const MAX_SHARED: usize = 95;

/// `s` is `<` + `uri` + `>`.
fn is_bracketed(s: &str, uri: &str) -> bool {
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .is_some_and(|s| s == uri)
}

/// A stored remote target in pieces: a prefix of the remote URI, then the next-hop address or
/// the rest as stored.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    prefix: &'a str,
    addr: Option<SocketAddrV4>,
    rest: &'a str,
}

impl Target<'_> {
    fn write(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(self.prefix.as_bytes());
        if let Some(a) = self.addr {
            write_addr(b, SocketAddr::V4(a));
        }
        b.extend_from_slice(self.rest.as_bytes());
    }
}

/// A stored remote target in pieces, given the stored remote and the inline next hop (see
/// [`SHARED_MARK`], [`HOP_MARK`]).
fn split_target<'a>(stored: &'a str, remote: &'a str, hop: Option<SocketAddrV4>) -> Target<'a> {
    let (rest, addr) = if let Some(rest) = stored.strip_prefix(SHARED_MARK) {
        (rest, None)
    } else if let Some(rest) = stored.strip_prefix(HOP_MARK) {
        (rest, hop)
    } else {
        return Target {
            prefix: "",
            addr: None,
            rest: stored,
        };
    };
    let n = rest.bytes().next().map_or(0, |b| b.saturating_sub(b' ')) as usize;
    Target {
        prefix: uri_of(remote).get(..n).unwrap_or(""),
        addr,
        rest: if stored.starts_with(HOP_MARK) {
            ""
        } else {
            rest.get(1..).unwrap_or("")
        },
    }
}

/// A dialog's strings, read from the store.
#[derive(Debug, Clone, Copy)]
pub struct DialogStrings<'a> {
    text: &'a str,
    /// The dialog's inline next hop (see [`HOP_MARK`]).
    hop: Option<SocketAddrV4>,
}

impl<'a> DialogStrings<'a> {
    fn part(&self, n: usize) -> &'a str {
        self.text.split('\n').nth(n).unwrap_or("")
    }
    pub fn call_id(&self) -> &'a str {
        self.part(0)
    }
    /// The SUBSCRIBE's To (NOTIFY From without our tag) as stored: empty when it is derived
    /// from the source's URI.
    pub fn local(&self) -> &'a str {
        self.part(1)
    }
    pub fn remote(&self) -> &'a str {
        self.part(2)
    }
    pub fn remote_target(&self) -> std::borrow::Cow<'a, str> {
        match split_target(self.part(3), self.remote(), self.hop) {
            Target {
                prefix: "",
                addr: None,
                rest,
            } => rest.into(),
            t => {
                let mut b = Vec::new();
                t.write(&mut b);
                String::from_utf8(b).unwrap_or_default().into()
            }
        }
    }
    /// The `id` of the subscription's `Event` header, if any.
    pub fn event_id(&self) -> Option<&'a str> {
        Some(self.part(4)).filter(|s| !s.is_empty())
    }
    fn extras(&self) -> &'a str {
        self.part(5)
    }
    /// The route set, in order.
    pub fn route_set(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let text = self.text;
        text.split('\n').skip(6).filter(|r| !r.is_empty())
    }
}

/// Where requests in a dialog go, without DNS: the first loose route or else the remote target
/// when its host is an IP literal; otherwise (a host name, or `symmetric`) back to where the
/// SUBSCRIBE came from. TCP dialogs reuse the subscriber's connection when it is still open
/// (RFC 3261 §18.2.2; RFC 5626 flows).
pub fn next_hop(remote_target: &str, route_set: &[&str], source: &Source, symmetric: bool) -> Dest {
    let hop = route_set
        .first()
        .map(|r| uri_of(r))
        .unwrap_or(remote_target);
    let parsed = Uri::parse(hop).ok();
    let transport = parsed
        .as_ref()
        .and_then(|u| {
            let after = u.raw.rfind('@').map_or(u.raw.as_str(), |i| &u.raw[i..]);
            let list = after.split_once(';').map_or("", |(_, p)| p);
            params(list)
                .find(|(n, _)| n.eq_ignore_ascii_case("transport"))
                .and_then(|(_, v)| v)
        })
        .map(|t| {
            if t.eq_ignore_ascii_case("tcp") {
                Transport::Tcp
            } else {
                Transport::Udp
            }
        })
        .unwrap_or(source.transport);
    let literal = parsed.as_ref().and_then(|u| {
        let ip: IpAddr = u.host.parse().ok()?;
        Some(SocketAddr::new(ip, u.port.unwrap_or(5060)))
    });
    let addr = match literal {
        Some(a) if !symmetric => a,
        _ => source.peer,
    };
    let conn = if transport == Transport::Tcp {
        source.conn
    } else {
        None
    };
    Dest {
        transport,
        addr,
        local: source.local,
        conn,
    }
}

/// What a NOTIFY says about the subscription.
#[derive(Debug, Clone, Copy)]
pub enum SubscriptionStateHeader {
    Active { expires: u64 },
    Terminated { reason: Option<&'static str> },
}

impl Dialog {
    /// Write the head of the next NOTIFY in this dialog (RFC 6665 §4.2.2, RFC 3856 §6.5) to
    /// `dest` (from [`Dialog::dest`]), From carrying our `local_tag`; the body is appended by
    /// the sender, shared between all watchers of one view. `source_uri` as given to
    /// [`Dialog::new`].
    #[allow(clippy::too_many_arguments)]
    pub fn notify_head(
        &mut self,
        store: &DialogStore,
        source_uri: Option<&str>,
        dest: &Dest,
        local_tag: &str,
        branch: &str,
        event: &str,
        state: SubscriptionStateHeader,
        content_type: &str,
        body_len: usize,
    ) -> Bytes {
        self.local_cseq += 1;
        let text = self.strings(store);
        let mut b = Vec::with_capacity(512 + text.text.len());
        // one pass over the dialog's text
        let mut parts = text.text.split('\n');
        let mut next = || parts.next().unwrap_or("");
        let (call_id, local, remote, remote_target, event_id, _extras) =
            (next(), next(), next(), next(), next(), next());
        let our_addr = AddrText::socket(dest.local);
        b.extend_from_slice(b"NOTIFY ");
        split_target(remote_target, remote, text.hop).write(&mut b);
        b.extend_from_slice(b" SIP/2.0\r\nVia: SIP/2.0/");
        b.extend_from_slice(dest.transport.via_token().as_bytes());
        b.push(b' ');
        b.extend_from_slice(our_addr.as_bytes());
        b.extend_from_slice(b";branch=");
        b.extend_from_slice(branch.as_bytes());
        b.extend_from_slice(b";rport\r\nMax-Forwards: 70\r\n");
        for r in text.route_set() {
            push_header(&mut b, "Route", r);
        }
        b.extend_from_slice(b"From: ");
        match source_uri {
            Some(uri) if self.hop.flags & Hop::LOCAL_FROM_SOURCE != 0 => {
                b.push(b'<');
                b.extend_from_slice(uri.as_bytes());
                b.push(b'>');
            }
            _ => b.extend_from_slice(local.as_bytes()),
        }
        b.extend_from_slice(b";tag=");
        b.extend_from_slice(local_tag.as_bytes());
        b.extend_from_slice(b"\r\n");
        push_header(&mut b, "To", remote);
        push_header(&mut b, "Call-ID", call_id);
        b.extend_from_slice(b"CSeq: ");
        b.extend_from_slice(itoa::Buffer::new().format(self.local_cseq).as_bytes());
        b.extend_from_slice(b" NOTIFY\r\nContact: <sip:");
        b.extend_from_slice(our_addr.as_bytes());
        if dest.transport == Transport::Tcp {
            b.extend_from_slice(b";transport=tcp");
        }
        b.extend_from_slice(b">\r\nEvent: ");
        b.extend_from_slice(event.as_bytes());
        if !event_id.is_empty() {
            b.extend_from_slice(b";id=");
            b.extend_from_slice(event_id.as_bytes());
        }
        b.extend_from_slice(b"\r\nSubscription-State: ");
        match state {
            SubscriptionStateHeader::Active { expires } => {
                b.extend_from_slice(b"active;expires=");
                b.extend_from_slice(itoa::Buffer::new().format(expires).as_bytes());
            }
            SubscriptionStateHeader::Terminated { reason } => {
                b.extend_from_slice(b"terminated");
                if let Some(r) = reason {
                    b.extend_from_slice(b";reason=");
                    b.extend_from_slice(r.as_bytes());
                }
            }
        }
        b.extend_from_slice(b"\r\n");
        push_header(&mut b, "User-Agent", SERVER);
        if body_len > 0 {
            push_header(&mut b, "Content-Type", content_type);
        }
        b.extend_from_slice(b"Content-Length: ");
        b.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
        b.extend_from_slice(b"\r\n\r\n");
        Bytes::from(b)
    }
}

/// `ip:port`, with brackets for IPv6 (RFC 3261 §25.1 hostport).
pub fn write_addr(b: &mut Vec<u8>, a: SocketAddr) {
    b.extend_from_slice(AddrText::socket(a).as_bytes());
}

#[cfg(test)]
mod tests {

    #[test]
    fn local_tag_is_entity_hex_dot_eight_hex_digits() {
        for (bits, mix) in [
            (0u64, 0u32),
            (1, 0xdead_beef),
            (0x1_0000_002a, 7),
            (u64::MAX, u32::MAX),
        ] {
            assert_eq!(&*LocalTag::new(bits, mix), format!("{bits:x}.{mix:08x}"));
        }
    }

    use super::*;

    fn src(t: Transport) -> Source {
        Source {
            transport: t,
            peer: "10.0.0.9:40000".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
        }
    }

    #[test]
    fn next_hop_rules() {
        let d = next_hop("sip:bob@192.0.2.5:5070", &[], &src(Transport::Udp), false);
        assert_eq!(d.addr, "192.0.2.5:5070".parse().unwrap());
        let d = next_hop(
            "sip:bob@client.example.com",
            &[],
            &src(Transport::Udp),
            false,
        );
        assert_eq!(d.addr, "10.0.0.9:40000".parse().unwrap());
        let d = next_hop(
            "sip:bob@192.0.2.5:5070",
            &["<sip:192.0.2.1:5080;lr>".into()],
            &src(Transport::Udp),
            false,
        );
        assert_eq!(d.addr, "192.0.2.1:5080".parse().unwrap());
        let d = next_hop(
            "sip:bob@192.0.2.5:5070;transport=TCP",
            &[],
            &src(Transport::Udp),
            false,
        );
        assert_eq!(d.transport, Transport::Tcp);
        let d = next_hop("sip:bob@192.0.2.5:5070", &[], &src(Transport::Udp), true);
        assert_eq!(d.addr, "10.0.0.9:40000".parse().unwrap());
    }

    /// A watcher's UDP next hop, reached from our usual listener.
    fn udp_dest() -> Dest {
        Dest {
            transport: Transport::Udp,
            addr: "10.0.0.9:5070".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
        }
    }

    fn parts<'a>(routes: &'a [&'a str]) -> DialogParts<'a> {
        DialogParts {
            call_id: "c1@x",
            local: "<sip:p@example.com>",
            remote: "\"W\" <sip:w@example.com>;tag=9",
            remote_target: "sip:w@10.0.0.9:5070",
            event_id: "",
            route_set: routes,
        }
    }

    #[test]
    fn a_dialog_keeps_its_strings_and_hop_through_the_store() {
        let mut store = DialogStore::default();
        let routes = ["<sip:192.0.2.1;lr>", "<sip:192.0.2.2;lr>"];
        let v6: SocketAddr = "[fe80::1%3]:5062".parse().unwrap();
        let dests = [
            udp_dest(),
            Dest {
                transport: Transport::Tcp,
                addr: SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 5062, 7, 3)),
                local: "[::1]:5060".parse().unwrap(),
                conn: Some(ConnId(u64::MAX)),
            },
        ];
        assert_eq!(v6.port(), 5062);
        for dest in dests {
            let mut d = Dialog::new(&parts(&routes), 4, dest, None, &mut store);
            assert_eq!(d.dest(&store), dest);
            let s = d.strings(&store);
            assert_eq!(s.call_id(), "c1@x");
            assert_eq!(s.local(), "<sip:p@example.com>");
            assert_eq!(s.remote(), "\"W\" <sip:w@example.com>;tag=9");
            assert_eq!(s.remote_target(), "sip:w@10.0.0.9:5070");
            assert_eq!(s.event_id(), None);
            assert_eq!(s.route_set().collect::<Vec<_>>(), routes);
            d.set_remote_target("sip:w@10.0.0.10", &mut store);
            assert_eq!(d.strings(&store).remote_target(), "sip:w@10.0.0.10");
            assert_eq!(d.strings(&store).route_set().count(), 2);
            assert_eq!(d.dest(&store), dest);
        }
        // past 255 local addresses the address is kept in the text
        for port in 1..300u16 {
            let dest = Dest {
                transport: Transport::Udp,
                addr: "10.0.0.9:5070".parse().unwrap(),
                local: SocketAddr::from(([127, 0, 0, 1], port)),
                conn: None,
            };
            assert_eq!(
                Dialog::new(&parts(&[]), 1, dest, None, &mut store).dest(&store),
                dest
            );
        }
    }

    #[test]
    fn the_store_reuses_freed_slots_and_gives_large_texts_their_own_chunk() {
        let mut store = DialogStore::default();
        let a = store.put(b"hello");
        let b = store.put(&[b'x'; 100]);
        assert_eq!(store.get(a), "hello");
        store.free(a);
        let c = store.put(b"world!!");
        assert_eq!(c.at, a.at, "same slot size: the slot is reused");
        assert_eq!(store.get(c), "world!!");
        assert_eq!(store.get(b), "x".repeat(100));
        let big = "y".repeat(LARGE + 1);
        let l = store.put(big.as_bytes());
        assert_eq!(store.get(l), big);
        let chunks = store.chunks.len();
        store.free(l);
        let l2 = store.put(big.as_bytes());
        assert_eq!(store.chunks.len(), chunks, "a freed large chunk is reused");
        assert_eq!(store.get(l2), big);
        // a full chunk starts another
        let many: Vec<TextRef> = (0..2000).map(|_| store.put(&[b'z'; 60])).collect();
        assert!(many.iter().all(|t| store.get(*t) == "z".repeat(60)));
    }

    #[test]
    fn a_despawned_subscription_gives_its_text_back() {
        let mut world = bevy_ecs::world::World::new();
        world.init_resource::<DialogStore>();
        let dest = udp_dest();
        let d = Dialog::new(
            &parts(&[]),
            1,
            dest,
            None,
            &mut world.resource_mut::<DialogStore>(),
        );
        let at = d.text.at;
        let sub = |dialog| super::super::Subscription {
            expires_at: crate::time::Time(0),
            source: Entity::PLACEHOLDER,
            package: super::super::PackageId(0),
            state: super::super::SubState::Active,
            flow: Default::default(),
            dialog,
        };
        let e = world.spawn(sub(d)).id();
        world.despawn(e);
        let store = world.resource::<DialogStore>();
        assert!(store.free.iter().any(|slots| slots.contains(&at)));
        // a subscription refused before it had a dialog frees nothing
        let e = world.spawn(sub(Dialog::none())).id();
        world.despawn(e);
        let store = world.resource::<DialogStore>();
        assert_eq!(store.free.iter().map(Vec::len).sum::<usize>(), 1);
        assert!(size_of::<super::super::Subscription>() <= 48);
    }

    #[test]
    fn a_local_part_naming_the_source_is_derived_not_stored() {
        let mut store = DialogStore::default();
        let dest = udp_dest();
        let head = |d: &mut Dialog, store: &DialogStore, uri| {
            let state = SubscriptionStateHeader::Active { expires: 60 };
            d.notify_head(
                store, uri, &dest, "t1", "z9hG4bKb", "presence", state, "", 0,
            )
        };
        let uri = Some("sip:p@example.com");
        let mut stored = Dialog::new(&parts(&[]), 1, dest, None, &mut store);
        let mut derived = Dialog::new(&parts(&[]), 1, dest, uri, &mut store);
        assert_eq!(derived.strings(&store).local(), "");
        assert_eq!(
            derived.text_len() + "<sip:p@example.com>".len(),
            stored.text_len()
        );
        assert_eq!(
            head(&mut stored, &store, None),
            head(&mut derived, &store, uri)
        );
        // anything else is kept as written
        let other = DialogParts {
            local: "<sip:p@example.com>;x=1",
            ..parts(&[])
        };
        let d = Dialog::new(&other, 1, dest, uri, &mut store);
        assert_eq!(d.strings(&store).local(), "<sip:p@example.com>;x=1");
    }

    #[test]
    fn a_remote_target_sharing_the_remote_uri_prefix_reads_back_whole() {
        let mut store = DialogStore::default();
        let dest = udp_dest();
        let long = format!("sip:{}@10.0.0.9", "u".repeat(200));
        let from_long = format!("<sip:{}@example.com>;tag=1", "u".repeat(200));
        for (remote, target) in [
            ("<sip:w@example.com>;tag=1", "sip:w@10.0.0.9:5070"),
            ("<sip:w@example.com>;tag=1", "sips:w@10.0.0.9"),
            ("<sip:w@example.com>;tag=1", "\u{1}!odd"),
            ("sip:w@example.com;tag=1", "sip:w@example.com"),
            ("<sip:w@example.com>;tag=1", "sip:w@10.0.0.9"),
            ("<sip:w@example.com>;tag=1", "sip:w@10.0.0.9:50700"),
            ("<sip:w@example.com>;tag=1", "sip:10.0.0.9:5070"),
            ("<sip:w@example.com>;tag=1", "\u{2}"),
            (from_long.as_str(), long.as_str()),
        ] {
            let parts = DialogParts {
                remote,
                remote_target: target,
                ..parts(&[])
            };
            let mut d = Dialog::new(&parts, 1, dest, None, &mut store);
            assert_eq!(d.strings(&store).remote_target(), target);
            let state = SubscriptionStateHeader::Active { expires: 1 };
            let head = d.notify_head(&store, None, &dest, "t", "b", "presence", state, "", 0);
            assert!(head.starts_with(format!("NOTIFY {target} SIP/2.0\r\n").as_bytes()));
        }
    }

    /// A dialog made from `parts` to `dest`, and the head of its first NOTIFY.
    fn first_head(
        parts: &DialogParts<'_>,
        dest: Dest,
        source_uri: Option<&str>,
        state: SubscriptionStateHeader,
        content_type: &str,
        body_len: usize,
    ) -> String {
        let mut store = DialogStore::default();
        let mut d = Dialog::new(parts, 3, dest, source_uri, &mut store);
        let dest = d.dest(&store);
        let head = d.notify_head(
            &store,
            source_uri,
            &dest,
            "5.0badcafe",
            "z9hG4bK1",
            "presence",
            state,
            content_type,
            body_len,
        );
        String::from_utf8(head.to_vec()).unwrap()
    }

    #[test]
    fn notify_head_to_a_plain_ipv4_udp_peer() {
        let head = first_head(
            &parts(&[]),
            udp_dest(),
            None,
            SubscriptionStateHeader::Active { expires: 3600 },
            "application/pidf+xml",
            321,
        );
        let expected = "\
            NOTIFY sip:w@10.0.0.9:5070 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport\r\n\
            Max-Forwards: 70\r\n\
            From: <sip:p@example.com>;tag=5.0badcafe\r\n\
            To: \"W\" <sip:w@example.com>;tag=9\r\n\
            Call-ID: c1@x\r\n\
            CSeq: 1 NOTIFY\r\n\
            Contact: <sip:127.0.0.1:5060>\r\n\
            Event: presence\r\n\
            Subscription-State: active;expires=3600\r\n\
            User-Agent: presenced/0.1.0\r\n\
            Content-Type: application/pidf+xml\r\n\
            Content-Length: 321\r\n\
            \r\n";
        assert_eq!(head, expected);
    }

    #[test]
    fn notify_head_through_a_route_set() {
        let routes = [
            "<sip:192.0.2.1;lr>",
            "<sip:192.0.2.2:5080;lr;transport=udp>",
        ];
        let p = DialogParts {
            event_id: "7",
            ..parts(&routes)
        };
        let dest = Dest {
            addr: "192.0.2.1:5060".parse().unwrap(),
            ..udp_dest()
        };
        let head = first_head(
            &p,
            dest,
            Some("sip:p@example.com"),
            SubscriptionStateHeader::Terminated {
                reason: Some("timeout"),
            },
            "application/pidf+xml",
            0,
        );
        let expected = "\
            NOTIFY sip:w@10.0.0.9:5070 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport\r\n\
            Max-Forwards: 70\r\n\
            Route: <sip:192.0.2.1;lr>\r\n\
            Route: <sip:192.0.2.2:5080;lr;transport=udp>\r\n\
            From: <sip:p@example.com>;tag=5.0badcafe\r\n\
            To: \"W\" <sip:w@example.com>;tag=9\r\n\
            Call-ID: c1@x\r\n\
            CSeq: 1 NOTIFY\r\n\
            Contact: <sip:127.0.0.1:5060>\r\n\
            Event: presence;id=7\r\n\
            Subscription-State: terminated;reason=timeout\r\n\
            User-Agent: presenced/0.1.0\r\n\
            Content-Length: 0\r\n\
            \r\n";
        assert_eq!(head, expected);
    }

    #[test]
    fn notify_head_to_an_ipv6_peer() {
        let p = DialogParts {
            remote_target: "sip:w@[2001:db8::5]:5062",
            ..parts(&[])
        };
        let dest = Dest {
            transport: Transport::Udp,
            addr: "[2001:db8::5]:5062".parse().unwrap(),
            local: "[2001:db8::1]:5060".parse().unwrap(),
            conn: None,
        };
        let head = first_head(
            &p,
            dest,
            None,
            SubscriptionStateHeader::Terminated { reason: None },
            "application/pidf+xml",
            12,
        );
        let expected = "\
            NOTIFY sip:w@[2001:db8::5]:5062 SIP/2.0\r\n\
            Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport\r\n\
            Max-Forwards: 70\r\n\
            From: <sip:p@example.com>;tag=5.0badcafe\r\n\
            To: \"W\" <sip:w@example.com>;tag=9\r\n\
            Call-ID: c1@x\r\n\
            CSeq: 1 NOTIFY\r\n\
            Contact: <sip:[2001:db8::1]:5060>\r\n\
            Event: presence\r\n\
            Subscription-State: terminated\r\n\
            User-Agent: presenced/0.1.0\r\n\
            Content-Type: application/pidf+xml\r\n\
            Content-Length: 12\r\n\
            \r\n";
        assert_eq!(head, expected);
    }

    #[test]
    fn notify_head_over_a_tcp_connection() {
        let p = DialogParts {
            remote_target: "sip:w@10.0.0.9:5070;transport=tcp",
            ..parts(&[])
        };
        let dest = Dest {
            transport: Transport::Tcp,
            conn: Some(ConnId(42)),
            ..udp_dest()
        };
        let head = first_head(
            &p,
            dest,
            Some("sip:p@example.com"),
            SubscriptionStateHeader::Active { expires: 60 },
            "application/pidf+xml",
            400,
        );
        let expected = "\
            NOTIFY sip:w@10.0.0.9:5070;transport=tcp SIP/2.0\r\n\
            Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK1;rport\r\n\
            Max-Forwards: 70\r\n\
            From: <sip:p@example.com>;tag=5.0badcafe\r\n\
            To: \"W\" <sip:w@example.com>;tag=9\r\n\
            Call-ID: c1@x\r\n\
            CSeq: 1 NOTIFY\r\n\
            Contact: <sip:127.0.0.1:5060;transport=tcp>\r\n\
            Event: presence\r\n\
            Subscription-State: active;expires=60\r\n\
            User-Agent: presenced/0.1.0\r\n\
            Content-Type: application/pidf+xml\r\n\
            Content-Length: 400\r\n\
            \r\n";
        assert_eq!(head, expected);
    }
}
