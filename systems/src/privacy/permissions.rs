//! What a watcher may see (RFC 5025 §3.2.2-3.2.4 and OMA's provide-* extensions), in a
//! canonical form: two rule sets that grant the same thing give equal, equally hashed
//! [`Permissions`], so their watchers share one view.

use std::collections::BTreeSet;

/// Which of a kind of element (services, persons, devices) may be shown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Selection<T: Ord> {
    /// None of them (no `provide-*` for the kind in any matching rule).
    #[default]
    Nothing,
    /// Those matching any of these selectors.
    Some(BTreeSet<T>),
    /// All of them (`<all-services/>`, `<all-persons/>`, `<all-devices/>`).
    All,
}

impl<T: Ord + Clone> Selection<T> {
    /// Union (RFC 4745 §10.2: a set-valued permission combines as the union).
    pub fn union(&mut self, other: &Selection<T>) {
        match (&mut *self, other) {
            (Selection::All, _) | (_, Selection::Nothing) => {}
            (_, Selection::All) => *self = Selection::All,
            (Selection::Nothing, Selection::Some(b)) => *self = Selection::Some(b.clone()),
            (Selection::Some(a), Selection::Some(b)) => a.extend(b.iter().cloned()),
        }
    }

    /// Whether an element described by `matches` (true for a selector that names it) is shown.
    pub fn admits(&self, matches: impl Fn(&T) -> bool) -> bool {
        match self {
            Selection::Nothing => false,
            Selection::All => true,
            Selection::Some(set) => set.iter().any(matches),
        }
    }
}

/// A selector of `provide-services`, `provide-persons` or `provide-devices` (RFC 5025 §3.2.2,
/// §3.2.3): persons take only occurrence-id and class, devices deviceID, occurrence-id and
/// class.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceSelector {
    /// `<service-uri>`: the tuple's service URI (RFC 5025 §3.2.2.1; RFC 4479 `<contact>`).
    ServiceUri(String),
    /// `<service-uri-scheme>`: the scheme of that URI.
    ServiceUriScheme(String),
    /// `<occurrence-id>`: the element's `id`.
    OccurrenceId(String),
    /// `<class>`: the element's RPID `<class>`.
    Class(String),
    /// `<deviceID>`: a device's `<deviceID>`.
    DeviceId(String),
}

/// An attribute a watcher may be shown (RFC 5025 §3.2.4, OMA pres-rules); one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Attribute {
    Activities,
    Class,
    DeviceId,
    Mood,
    PlaceIs,
    PlaceType,
    Privacy,
    Relationship,
    StatusIcon,
    Sphere,
    TimeOffset,
    Note,
    // OMA pres-rules extensions (urn:oma:xml:prs:pres-rules).
    Willingness,
    NetworkAvailability,
    SessionParticipation,
    RegistrationState,
    BarringState,
    Geopriv,
}

impl Attribute {
    /// The boolean permissions of RFC 5025 §3.2.4, by element name.
    pub const IETF: [(&'static str, Attribute); 12] = [
        ("provide-activities", Attribute::Activities),
        ("provide-class", Attribute::Class),
        ("provide-deviceID", Attribute::DeviceId),
        ("provide-mood", Attribute::Mood),
        ("provide-place-is", Attribute::PlaceIs),
        ("provide-place-type", Attribute::PlaceType),
        ("provide-privacy", Attribute::Privacy),
        ("provide-relationship", Attribute::Relationship),
        ("provide-status-icon", Attribute::StatusIcon),
        ("provide-sphere", Attribute::Sphere),
        ("provide-time-offset", Attribute::TimeOffset),
        ("provide-note", Attribute::Note),
    ];

    /// OMA's provide-* extensions, by element name.
    pub const OMA: [(&'static str, Attribute); 6] = [
        ("provide-willingness", Attribute::Willingness),
        (
            "provide-network-availability",
            Attribute::NetworkAvailability,
        ),
        (
            "provide-session-participation",
            Attribute::SessionParticipation,
        ),
        ("provide-registration-state", Attribute::RegistrationState),
        ("provide-barring-state", Attribute::BarringState),
        ("provide-geopriv", Attribute::Geopriv),
    ];

    fn bit(self) -> u32 {
        1 << self as u8
    }
}

/// `provide-user-input` (RFC 5025 §3.2.4.13): an ordered scale; combining takes the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum UserInput {
    #[default]
    False,
    Bare,
    Thresholds,
    Full,
}

impl UserInput {
    /// From the element's text.
    pub fn parse(s: &str) -> Option<UserInput> {
        Some(match s {
            "false" => UserInput::False,
            "bare" => UserInput::Bare,
            "thresholds" => UserInput::Thresholds,
            "full" => UserInput::Full,
            _ => return None,
        })
    }
}

/// Everything one watcher may see. The default shows nothing (RFC 5025 §3.2: what no
/// permission grants is withheld).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Permissions {
    /// Tuples shown.
    pub services: Selection<ServiceSelector>,
    /// Persons shown.
    pub persons: Selection<ServiceSelector>,
    /// Devices shown.
    pub devices: Selection<ServiceSelector>,
    /// `provide-all-attributes`: every attribute, known or not.
    pub all_attributes: bool,
    attributes: u32,
    /// `provide-user-input`.
    pub user_input: UserInput,
    /// `provide-unknown-attribute` granted: (namespace, local name) of elements shown.
    pub unknown_attributes: BTreeSet<(String, String)>,
}

impl Permissions {
    /// Everything: what a presentity sees of itself.
    pub fn everything() -> Permissions {
        Permissions {
            services: Selection::All,
            persons: Selection::All,
            devices: Selection::All,
            all_attributes: true,
            attributes: 0,
            user_input: UserInput::Full,
            unknown_attributes: BTreeSet::new(),
        }
    }

    /// Grants `attr`.
    pub fn grant(&mut self, attr: Attribute) {
        self.attributes |= attr.bit();
    }

    /// Whether `attr` is shown.
    pub fn shows(&self, attr: Attribute) -> bool {
        self.all_attributes || self.attributes & attr.bit() != 0
    }

    /// Whether an element this server does not model, `{ns}local`, is shown.
    pub fn shows_unknown(&self, ns: &str, local: &str) -> bool {
        self.all_attributes
            || self
                .unknown_attributes
                .iter()
                .any(|(n, l)| n == ns && l == local)
    }

    /// Combines the permissions of another matching rule (RFC 4745 §10.2: booleans OR,
    /// ordered values the maximum, sets the union).
    pub fn combine(&mut self, other: &Permissions) {
        self.services.union(&other.services);
        self.persons.union(&other.persons);
        self.devices.union(&other.devices);
        self.all_attributes |= other.all_attributes;
        self.attributes |= other.attributes;
        self.user_input = self.user_input.max(other.user_input);
        self.unknown_attributes
            .extend(other.unknown_attributes.iter().cloned());
        self.canonicalize();
    }

    /// One form for one meaning: all attributes covers each single one (and user input in
    /// full), so equal views hash equal.
    pub fn canonicalize(&mut self) {
        if self.all_attributes {
            self.attributes = 0;
            self.user_input = UserInput::Full;
            self.unknown_attributes.clear();
        }
    }
}
