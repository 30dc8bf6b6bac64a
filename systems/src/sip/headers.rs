//! An index of a message's header fields: for each field its name (an id for the names the
//! engine knows, compact forms of RFC 3261 §7.3.3 already expanded) and where its value lies in
//! the header section's text, checked as UTF-8 once by the first pass. Only a value folded over
//! several lines (§7.3.1) is copied, into one side buffer per message. Lookups compare one byte
//! per field for known names, and reading a value validates nothing again.

macro_rules! header_names {
    ($($variant:ident = $text:literal),* $(,)?) => {
        /// A header field name; [`Name::Other`] for any name outside this list.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Name {
            $($variant,)*
            Other,
        }

        impl Name {
            /// Every known name (not [`Name::Other`]).
            pub const KNOWN: &'static [Name] = &[$(Name::$variant,)*];

            /// Known names with their spelling, for lookups from the wire.
            const TABLE: &'static [(&'static [u8], Name)] = &[$(($text.as_bytes(), Name::$variant),)*];

            /// The canonical spelling ("" for [`Name::Other`]).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Name::$variant => $text,)*
                    Name::Other => "",
                }
            }
        }
    };
}

header_names! {
    Via = "Via",
    From = "From",
    To = "To",
    CallId = "Call-ID",
    CSeq = "CSeq",
    Contact = "Contact",
    ContentLength = "Content-Length",
    ContentType = "Content-Type",
    MaxForwards = "Max-Forwards",
    Expires = "Expires",
    Event = "Event",
    AllowEvents = "Allow-Events",
    Accept = "Accept",
    Require = "Require",
    ProxyRequire = "Proxy-Require",
    Supported = "Supported",
    Unsupported = "Unsupported",
    Route = "Route",
    RecordRoute = "Record-Route",
    SipIfMatch = "SIP-If-Match",
    SipETag = "SIP-ETag",
    SubscriptionState = "Subscription-State",
    UserAgent = "User-Agent",
    Server = "Server",
    ContentEncoding = "Content-Encoding",
    MinExpires = "Min-Expires",
    Allow = "Allow",
    Subject = "Subject",
    ReferTo = "Refer-To",
    ReferredBy = "Referred-By",
}

impl Name {
    /// The id of a name as written on the wire (case-insensitive, compact forms expanded).
    #[inline]
    pub fn from_wire(name: &[u8]) -> Name {
        if let [c] = name {
            return match c.to_ascii_lowercase() {
                b'i' => Name::CallId,
                b'm' => Name::Contact,
                b'e' => Name::ContentEncoding,
                b'l' => Name::ContentLength,
                b'c' => Name::ContentType,
                b'f' => Name::From,
                b's' => Name::Subject,
                b'k' => Name::Supported,
                b't' => Name::To,
                b'v' => Name::Via,
                b'o' => Name::Event,
                b'u' => Name::AllowEvents,
                b'r' => Name::ReferTo,
                b'b' => Name::ReferredBy,
                _ => Name::Other,
            };
        }
        let (Some(&first), Some(&last)) = (name.first(), name.last()) else {
            return Name::Other;
        };
        let mut b = bucket(name.len(), first, last);
        loop {
            let i = BUCKETS[b] as usize;
            let Some(&(s, n)) = Name::TABLE.get(i) else {
                return Name::Other;
            };
            if s.len() == name.len() && same_name(name, &FOLDED[i]) {
                return n;
            }
            b = (b + 1) % BUCKETS.len();
        }
    }
}

/// The bucket of a name in [`BUCKETS`], from its length and its first and last bytes (which
/// tell the known names apart; case folded for letters).
const fn bucket(len: usize, first: u8, last: u8) -> usize {
    (len.wrapping_mul(37) ^ ((first | 0x20) as usize).wrapping_mul(11) ^ (last | 0x20) as usize)
        % BUCKETS_LEN
}

const BUCKETS_LEN: usize = 128;

/// Open-addressed table of the known names: per bucket the position in [`Name::TABLE`] (the
/// first of a run, probing forwards), `u8::MAX` for none.
const BUCKETS: [u8; BUCKETS_LEN] = {
    let mut t = [u8::MAX; BUCKETS_LEN];
    let mut i = 0;
    while i < Name::TABLE.len() {
        let s = Name::TABLE[i].0;
        let mut b = bucket(s.len(), s[0], s[s.len() - 1]);
        while t[b] != u8::MAX {
            b = (b + 1) % BUCKETS_LEN;
        }
        t[b] = i as u8;
        i += 1;
    }
    t
};
const _: () = assert!(Name::TABLE.len() < BUCKETS_LEN / 2);

/// The longest known name (bytes), rounded up to whole words.
const NAME_MAX: usize = 24;

/// A known name for case-insensitive comparison eight bytes at a time: its bytes with letters
/// in lower case, and per byte the bit that folds case (0x20 for a letter, 0 otherwise).
struct Folded {
    lower: [u8; NAME_MAX],
    fold: [u8; NAME_MAX],
}

const FOLDED: [Folded; Name::TABLE.len()] = {
    let mut t = [const {
        Folded {
            lower: [0; NAME_MAX],
            fold: [0; NAME_MAX],
        }
    }; Name::TABLE.len()];
    let mut i = 0;
    while i < Name::TABLE.len() {
        let s = Name::TABLE[i].0;
        assert!(s.len() <= NAME_MAX);
        let mut k = 0;
        while k < s.len() {
            let c = s[k];
            if c.is_ascii_alphabetic() {
                t[i].lower[k] = c | 0x20;
                t[i].fold[k] = 0x20;
            } else {
                t[i].lower[k] = c;
            }
            k += 1;
        }
        i += 1;
    }
    t
};

/// `name` equals the known name `known` of the same length, ASCII case-insensitively: a byte
/// with its case bit folded must equal the lower-case letter, any other byte must be equal.
#[inline]
fn same_name(name: &[u8], known: &Folded) -> bool {
    let n = name.len();
    if n < 8 {
        return name
            .iter()
            .zip(&known.lower)
            .zip(&known.fold)
            .all(|((&c, &l), &f)| c | f == l);
    }
    let word =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
    let mut at = 0;
    loop {
        // the last word overlaps the one before it rather than running past the name
        let o = at.min(n - 8);
        if word(name, o) | word(&known.fold, o) != word(&known.lower, o) {
            return false;
        }
        if o + 8 >= n {
            return true;
        }
        at += 8;
    }
}

/// What a lookup asks for: a known name by id, any other by its text (case-insensitive).
#[derive(Debug, Clone, Copy)]
pub struct Key<'k> {
    name: Name,
    text: &'k str,
}

impl From<Name> for Key<'static> {
    fn from(name: Name) -> Self {
        Key {
            name,
            text: name.as_str(),
        }
    }
}

impl<'k> From<&'k str> for Key<'k> {
    fn from(text: &'k str) -> Self {
        Key {
            name: Name::from_wire(text.as_bytes()),
            text,
        }
    }
}

/// Where a piece of text lies: in the header section's text, or in the index's buffer of
/// unfolded values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    at: u32,
    len: u32,
    folded: bool,
}

impl Span {
    fn new(at: usize, len: usize, folded: bool) -> Span {
        Span {
            at: at as u32,
            len: len as u32,
            folded,
        }
    }

    fn range(self) -> std::ops::Range<usize> {
        self.at as usize..(self.at + self.len) as usize
    }

    /// The span of `part`, a sub-slice of `whole` (the text this span points at).
    pub fn sub(self, whole: &str, part: &str) -> Span {
        let off = part.as_ptr() as usize - whole.as_ptr() as usize;
        debug_assert!(off + part.len() <= whole.len());
        Span::new(self.at as usize + off, part.len(), self.folded)
    }
}

/// One header field line.
#[derive(Debug, Clone, Copy)]
struct Entry {
    name: Name,
    /// The name as written (for [`Name::Other`]).
    raw_name: Span,
    value: Span,
}

/// No entry (in [`HeaderIndex::first`]).
const NONE: u8 = u8::MAX;
const _: () = assert!(
    (Name::Other as usize) <= 64,
    "one bit per known name in a u64"
);

/// The header fields of one message, in order, as spans of its bytes.
#[derive(Debug, Clone)]
pub struct HeaderIndex {
    entries: Vec<Entry>,
    /// Values folded over several lines, unfolded (RFC 3261 §7.3.1), and the values of a head
    /// that is not text throughout (checked one by one).
    folded: String,
    /// Per known name, the position of its first entry (NONE when absent or past 254 entries).
    first: [u8; Name::Other as usize],
    /// Bit per known name: more than one entry carries it.
    repeated: u64,
}

impl Default for HeaderIndex {
    fn default() -> Self {
        HeaderIndex::with_capacity(0)
    }
}

impl HeaderIndex {
    pub(crate) fn with_capacity(n: usize) -> Self {
        HeaderIndex {
            entries: Vec::with_capacity(n),
            folded: String::new(),
            first: [NONE; Name::Other as usize],
            repeated: 0,
        }
    }

    fn note(&mut self, name: Name) {
        if name == Name::Other {
            return;
        }
        let i = name as usize;
        if self.first[i] == NONE {
            self.first[i] = self.entries.len().min(NONE as usize - 1) as u8;
        } else {
            self.repeated |= 1u64 << i;
        }
    }

    /// True when a header line carries the known name `name` (not [`Name::Other`]).
    #[inline]
    pub fn has(&self, name: Name) -> bool {
        name != Name::Other && self.first[name as usize] != NONE
    }

    /// True when more than one header line carries the known name `name`.
    pub fn repeated(&self, name: Name) -> bool {
        name != Name::Other && self.repeated & (1u64 << name as usize) != 0
    }

    /// Where to start looking for `key`: the first entry for a known name.
    fn start(&self, key: Key<'_>) -> usize {
        match key.name {
            Name::Other => 0,
            // (a first entry past 253 is recorded as 253: the search goes on from there)
            n => match self.first[n as usize] {
                NONE => self.entries.len(),
                i => i as usize,
            },
        }
    }

    /// Number of header fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the message has no header field.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Record a field whose name is at `name` and whose value is at `value` in the text.
    pub(crate) fn push(&mut self, name: Name, raw_name: (usize, usize), value: (usize, usize)) {
        self.note(name);
        self.entries.push(Entry {
            name,
            raw_name: Span::new(raw_name.0, raw_name.1, false),
            value: Span::new(value.0, value.1, false),
        });
    }

    /// Record a field whose value was unfolded from several lines, or whose name or value
    /// could not be read in place (a head that is not text throughout: `raw_name` is then
    /// given as text too).
    pub(crate) fn push_owned(&mut self, name: Name, raw_name: RawName<'_>, value: &str) {
        let raw_name = match raw_name {
            RawName::At(at, len) => Span::new(at, len, false),
            RawName::Text(t) => {
                let at = self.folded.len();
                self.folded.push_str(t);
                Span::new(at, t.len(), true)
            }
        };
        let at = self.folded.len();
        self.folded.push_str(value);
        self.note(name);
        self.entries.push(Entry {
            name,
            raw_name,
            value: Span::new(at, value.len(), true),
        });
    }

    /// The text of `span`; `text` is the message's header section (as the first pass checked
    /// it). Spans are cut at ASCII delimiters, so this never fails on a span of this index.
    #[inline]
    pub fn text<'s>(&'s self, text: &'s str, span: Span) -> &'s str {
        let src = if span.folded {
            self.folded.as_str()
        } else {
            text
        };
        src.get(span.range()).unwrap_or("")
    }

    fn matches(&self, text: &str, e: &Entry, key: Key<'_>) -> bool {
        e.name == key.name
            && (key.name != Name::Other
                || self.text(text, e.raw_name).eq_ignore_ascii_case(key.text))
    }

    /// The span of the first value of `key`.
    pub fn span<'k>(&self, text: &str, key: impl Into<Key<'k>>) -> Option<Span> {
        let key = key.into();
        if key.name != Name::Other {
            // the first entry of a known name is indexed (unless past 253 entries)
            let i = self.start(key);
            if let Some(e) = self.entries.get(i)
                && e.name == key.name
            {
                return Some(e.value);
            }
            return self
                .entries
                .get(i..)?
                .iter()
                .find(|e| e.name == key.name)
                .map(|e| e.value);
        }
        self.entries
            .iter()
            .find(|e| self.matches(text, e, key))
            .map(|e| e.value)
    }

    /// The first value of `key`.
    pub fn get<'s, 'k>(&'s self, text: &'s str, key: impl Into<Key<'k>>) -> Option<&'s str> {
        self.span(text, key).map(|s| self.text(text, s))
    }

    /// Every value of `key`, in order.
    pub fn all<'s, 'k>(
        &'s self,
        text: &'s str,
        key: impl Into<Key<'k>>,
    ) -> impl Iterator<Item = &'s str> {
        let key = key.into();
        self.entries[self.start(key)..]
            .iter()
            .filter(move |e| self.matches(text, e, key))
            .map(move |e| self.text(text, e.value))
    }

    /// Every field as (id, name as written, value), in order.
    pub fn iter<'s>(&'s self, text: &'s str) -> impl Iterator<Item = (Name, &'s str, &'s str)> {
        self.entries.iter().map(move |e| {
            let name = match e.name {
                Name::Other => self.text(text, e.raw_name),
                n => n.as_str(),
            };
            (e.name, name, self.text(text, e.value))
        })
    }
}

/// Where the first pass found a header's name: in place, or (a head that is not text
/// throughout) as text to copy.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RawName<'a> {
    At(usize, usize),
    Text(&'a str),
}

/// The header section of a parsed message: its text (checked as UTF-8 once by the first pass,
/// kept as a slice of the inbound bytes) and the index of its fields.
#[derive(Debug, Clone, Default)]
pub struct Head {
    text: super::text::Text,
    index: HeaderIndex,
}

impl Head {
    /// `index` must have been built over `text` (the header section) by
    /// [`super::scan::scan`].
    pub fn new(text: &str, index: HeaderIndex) -> Head {
        Head {
            text: text.into(),
            index,
        }
    }

    /// [`Head::new`] with `text` inside `buf` (the inbound message): kept without a copy.
    pub fn within(buf: &bytes::Bytes, text: &str, index: HeaderIndex) -> Head {
        Head {
            text: super::text::Text::within(buf, text),
            index,
        }
    }

    /// The text a span of this head points at.
    #[inline]
    pub fn text(&self, span: Span) -> &str {
        self.index.text(&self.text, span)
    }

    /// The index of the header fields.
    pub fn index(&self) -> &HeaderIndex {
        &self.index
    }

    /// The header section's text, which the index's spans point into.
    pub fn section(&self) -> &str {
        &self.text
    }

    /// The first value of the header called `name`.
    pub fn header<'k>(&self, name: impl Into<Key<'k>>) -> Option<&str> {
        self.index.get(&self.text, name)
    }

    /// Every value of the headers called `name`, in order (one per header line).
    pub fn headers_named<'s, 'k>(
        &'s self,
        name: impl Into<Key<'k>>,
    ) -> impl Iterator<Item = &'s str> {
        self.index.all(&self.text, name)
    }

    /// Every field as (id, name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (Name, &str, &str)> {
        self.index.iter(&self.text)
    }

    /// Number of header fields.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when there is no header field.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_wire() {
        assert_eq!(Name::from_wire(b"i"), Name::CallId);
        assert_eq!(Name::from_wire(b"CALL-id"), Name::CallId);
        assert_eq!(Name::from_wire(b"sip-if-match"), Name::SipIfMatch);
        assert_eq!(Name::from_wire(b"X-Foo"), Name::Other);
        assert_eq!(Name::from_wire(b"q"), Name::Other);
        assert_eq!(Name::from_wire(b"CONTENT-LENGTH"), Name::ContentLength);
        assert_eq!(
            Name::from_wire(b"subscription-STATE"),
            Name::SubscriptionState
        );
        assert_eq!(Name::from_wire(b"Content-Lengtx"), Name::Other);
        assert_eq!(Name::from_wire(b"Call\rID"), Name::Other);
        assert_eq!(Name::from_wire(b"Max_Forwards"), Name::Other);
        for n in Name::KNOWN {
            let s = n.as_str();
            assert_eq!(Name::from_wire(s.as_bytes()), *n);
            assert_eq!(Name::from_wire(s.to_ascii_uppercase().as_bytes()), *n);
            assert_eq!(Name::from_wire(s.to_ascii_lowercase().as_bytes()), *n);
            // one byte changed anywhere is another name
            for i in 0..s.len() {
                let mut b = s.as_bytes().to_vec();
                b[i] ^= 0x01;
                assert_ne!(Name::from_wire(&b), *n, "{s} {i}");
            }
        }
    }

    #[test]
    fn lookups_by_id_and_by_text() {
        let bytes = "X-Foo: 1\r\nVia: a\r\nvia: b\r\n";
        let mut ix = HeaderIndex::default();
        ix.push(Name::Other, (0, 5), (7, 1));
        ix.push(Name::Via, (10, 3), (15, 1));
        ix.push_owned(Name::Via, RawName::At(18, 3), "b c");
        assert_eq!(ix.get(bytes, "x-foo"), Some("1"));
        assert_eq!(ix.get(bytes, "X-Bar"), None);
        assert_eq!(ix.all(bytes, Name::Via).collect::<Vec<_>>(), ["a", "b c"]);
        assert_eq!(ix.all(bytes, "v").count(), 2);
        assert!(ix.repeated(Name::Via) && !ix.repeated(Name::From));
        assert_eq!(ix.get(bytes, Name::From), None);
        let names: Vec<_> = ix.iter(bytes).map(|(_, n, _)| n).collect();
        assert_eq!(names, ["X-Foo", "Via", "Via"]);
    }
}
