//! The dialog a subscription lives in (RFC 3261 §12, RFC 6665 §4.1.2.1) and the NOTIFYs sent in
//! it. A dialog's strings are kept as written, to echo them byte for byte: in a record of the
//! [`DialogStore`] (module `record` has its layout), beside the next hop inline (`route`); the
//! NOTIFY head is written from both (`notify_head`).

mod notify_head;
mod record;
mod route;
mod store;
mod tag;

use std::borrow::Cow;
use std::net::SocketAddrV4;

use bevy_ecs::lifecycle::HookContext;
use bevy_ecs::world::DeferredWorld;
use bytes::Bytes;

use crate::net::Dest;

pub use notify_head::{NotifyParts, SubscriptionStateHeader};
pub use route::next_hop;
pub use store::DialogStore;
pub use tag::{LocalTag, local_tag};

use notify_head::{DialogFields, LocalPart};
use record::{Extras, Record, Routes};
use route::{Hop, Target, stored_target};
use store::RecordRef;

/// A notifier-side dialog in 24 bytes; its strings live in the [`DialogStore`] (memory per
/// subscription is a budget: a dozen `String`s and an 88-byte [`Dest`] would cost more than
/// everything else in a subscription).
///
/// Our local tag is not stored: it is derived from the subscription's entity, the Call-ID and
/// the engine seed ([`local_tag`]), and NOTIFY From is the SUBSCRIBE's To with that tag.
#[derive(Debug)]
pub struct Dialog {
    /// Call-id, local and remote parts, remote target, event id, route set and what of the
    /// next hop is not inline (see module `record`).
    record: RecordRef,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    hop: Hop,
}

/// A subscription's dialog record goes back to the store with the subscription (despawn or
/// removal): the hook of [`super::Subscription`].
pub(super) fn free_record(mut world: DeferredWorld, ctx: HookContext) {
    let Some(record) = world
        .get::<super::Subscription>(ctx.entity)
        .map(|s| s.dialog.record)
    else {
        return;
    };
    if let Some(mut store) = world.get_resource_mut::<DialogStore>() {
        store.free(record);
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

/// `s` is `<` + `uri` + `>`.
fn is_bracketed(s: &str, uri: &str) -> bool {
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .is_some_and(|s| s == uri)
}

impl Dialog {
    /// No dialog yet (a subscription being accepted): no record in the store.
    pub fn none() -> Dialog {
        Dialog {
            record: RecordRef::NONE,
            local_cseq: 0,
            remote_cseq: 0,
            hop: Hop::NONE,
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
        let (mut hop, extras) = Hop::new(dest, store);
        let local = if source_uri.is_some_and(|u| is_bracketed(p.local, u)) {
            hop.set_local_from_source();
            ""
        } else {
            p.local
        };
        let record = Self::encode(&DialogParts { local, ..*p }, extras, hop.inline_addr());
        Dialog {
            record: store.put(&record),
            local_cseq: 0,
            remote_cseq,
            hop,
        }
    }

    /// True for a subscription with no SIP dialog: one the engine keeps for itself (a
    /// resource list's back-end subscription to a local presentity), never sent a NOTIFY.
    pub fn is_internal(&self) -> bool {
        self.record == RecordRef::NONE
    }

    /// The record of a dialog of parts `p`, `extras` and inline next hop `hop` (which a remote
    /// target ending in it does not store again).
    fn encode(p: &DialogParts<'_>, extras: Extras, hop: Option<SocketAddrV4>) -> Vec<u8> {
        // the target is compared with the remote part as it is stored
        let remote = record::without_line_ends(p.remote);
        let target = record::without_line_ends(p.remote_target);
        Record {
            call_id: p.call_id,
            local: p.local,
            remote: &remote,
            target: stored_target(&target, &remote, hop),
            event_id: p.event_id,
            extras,
            route_set: p.route_set,
        }
        .encode()
    }

    /// Bytes of the dialog's record in the store.
    pub fn record_len(&self) -> usize {
        self.record.len()
    }

    fn record<'a>(&self, store: &'a DialogStore) -> Record<'a, Routes<'a>> {
        Record::decode(store.get(self.record))
    }

    /// The dialog's strings.
    pub fn strings<'a>(&self, store: &'a DialogStore) -> DialogStrings<'a> {
        DialogStrings {
            record: self.record(store),
            hop: self.hop.inline_addr(),
        }
    }

    /// The SUBSCRIBE's To as written (NOTIFY From without our tag), rebuilt from
    /// `source_uri` (as given to [`Dialog::notify_head`]) when it is not stored.
    pub fn local_part<'a>(&self, store: &'a DialogStore, source_uri: Option<&str>) -> Cow<'a, str> {
        match source_uri {
            Some(uri) if self.hop.local_from_source() => format!("<{uri}>").into(),
            _ => self.record(store).local.into(),
        }
    }

    /// Where NOTIFYs go.
    pub fn dest(&self, store: &DialogStore) -> Dest {
        let extras = if self.hop.has_extras() {
            self.record(store).extras
        } else {
            Extras::default()
        };
        self.hop.dest(extras, store)
    }

    /// Target refresh (RFC 6665 §4.1.2.1): a new remote target.
    pub fn set_remote_target(&mut self, target: &str, store: &mut DialogStore) {
        let old = self.strings(store);
        if *old.remote_target() == *target {
            return;
        }
        let routes: Vec<&str> = old.route_set().collect();
        let r = old.record;
        let record = Self::encode(
            &DialogParts {
                call_id: r.call_id,
                local: r.local,
                remote: r.remote,
                remote_target: target,
                event_id: r.event_id,
                route_set: &routes,
            },
            r.extras,
            self.hop.inline_addr(),
        );
        store.free(self.record);
        self.record = store.put(&record);
    }

    /// Write the head of the next NOTIFY in this dialog: its CSeq is the next one.
    pub fn notify_head(&mut self, store: &DialogStore, n: &NotifyParts<'_>) -> Bytes {
        self.local_cseq += 1;
        let r = self.record(store);
        let local = match n.source_uri {
            Some(uri) if self.hop.local_from_source() => LocalPart::Source(uri),
            _ => LocalPart::Stored(r.local),
        };
        let fields = DialogFields {
            target: Target::of(r.target, r.remote, self.hop.inline_addr()),
            route_set: r.route_set,
            local,
            remote: r.remote,
            call_id: r.call_id,
            cseq: self.local_cseq,
            event_id: r.event_id,
        };
        notify_head::write(&fields, n)
    }
}

/// A dialog's strings, read from the store.
#[derive(Debug, Clone, Copy)]
pub struct DialogStrings<'a> {
    record: Record<'a, Routes<'a>>,
    /// The dialog's inline next hop, which the remote target may end in.
    hop: Option<SocketAddrV4>,
}

impl<'a> DialogStrings<'a> {
    /// The Call-ID.
    pub fn call_id(&self) -> &'a str {
        self.record.call_id
    }

    /// The SUBSCRIBE's To (NOTIFY From without our tag) as stored: empty when it is derived
    /// from the source's URI.
    pub fn local(&self) -> &'a str {
        self.record.local
    }

    /// The SUBSCRIBE's From (NOTIFY To).
    pub fn remote(&self) -> &'a str {
        self.record.remote
    }

    /// The subscriber's Contact URI (NOTIFY Request-URI).
    pub fn remote_target(&self) -> Cow<'a, str> {
        Target::of(self.record.target, self.record.remote, self.hop).text()
    }

    /// The `id` of the subscription's `Event` header, if any.
    pub fn event_id(&self) -> Option<&'a str> {
        Some(self.record.event_id).filter(|s| !s.is_empty())
    }

    /// The route set, in order.
    pub fn route_set(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.record.route_set
    }
}

#[cfg(test)]
mod tests {
    use std::net::{SocketAddr, SocketAddrV6};

    use bevy_ecs::prelude::Entity;

    use super::*;
    use crate::net::{ConnId, Transport};

    /// A watcher's UDP next hop, reached from our usual listener.
    fn udp_dest() -> Dest {
        let [addr, local] = ["10.0.0.9:5070", "127.0.0.1:5060"].map(|a| a.parse().unwrap());
        let (transport, conn) = (Transport::Udp, None);
        Dest {
            transport,
            addr,
            local,
            conn,
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
        // past 255 local addresses the address is kept in the record
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
    fn a_despawned_subscription_gives_its_record_back() {
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
        let record = d.record;
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
        assert!(store.is_free(record));
        // a subscription refused before it had a dialog frees nothing
        let e = world.spawn(sub(Dialog::none())).id();
        world.despawn(e);
        let store = world.resource::<DialogStore>();
        assert_eq!(store.free_slots(), 1);
        assert!(size_of::<super::super::Subscription>() <= 48);
    }

    #[test]
    fn a_local_part_naming_the_source_is_derived_not_stored() {
        let mut store = DialogStore::default();
        let dest = udp_dest();
        let head = |d: &mut Dialog, store: &DialogStore, source_uri| {
            let state = SubscriptionStateHeader::Active { expires: 60 };
            d.notify_head(store, &notify(source_uri, &dest, state, 0))
        };
        let uri = Some("sip:p@example.com");
        let mut stored = Dialog::new(&parts(&[]), 1, dest, None, &mut store);
        let mut derived = Dialog::new(&parts(&[]), 1, dest, uri, &mut store);
        assert_eq!(derived.strings(&store).local(), "");
        assert_eq!(
            derived.record_len() + "<sip:p@example.com>".len() + 1,
            stored.record_len()
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
            let head = d.notify_head(&store, &notify(None, &dest, state, 0));
            assert!(head.starts_with(format!("NOTIFY {target} SIP/2.0\r\n").as_bytes()));
        }
    }

    /// A NOTIFY's own parts: a fixed tag, branch, event package and body type.
    fn notify<'a>(
        source_uri: Option<&'a str>,
        dest: &'a Dest,
        state: SubscriptionStateHeader,
        body_len: usize,
    ) -> NotifyParts<'a> {
        NotifyParts {
            source_uri,
            dest,
            local_tag: "5.0badcafe",
            branch: "z9hG4bK1",
            event: "presence",
            require: None,
            state,
            content_type: "application/pidf+xml",
            body_len,
        }
    }

    /// The heads of `pinned_heads.txt` by name, with their CRLF line ends.
    fn pinned_heads() -> Vec<(&'static str, String)> {
        include_str!("pinned_heads.txt")
            .split("\n\n")
            .filter_map(|block| {
                let (name, head) = block.strip_prefix("# ")?.split_once('\n')?;
                // the file's own note is a block too, and no NOTIFY
                head.starts_with("NOTIFY ").then_some(())?;
                let lines: Vec<&str> = head.lines().collect();
                Some((name, lines.join("\r\n") + "\r\n\r\n"))
            })
            .collect()
    }

    #[test]
    fn notify_heads_are_pinned_byte_for_byte() {
        let routes = [
            "<sip:192.0.2.1;lr>",
            "<sip:192.0.2.2:5080;lr;transport=udp>",
        ];
        let source = Some("sip:p@example.com");
        let active = |expires| SubscriptionStateHeader::Active { expires };
        let terminated = |reason| SubscriptionStateHeader::Terminated { reason };
        let cases = [
            (
                "plain IPv4 UDP peer",
                parts(&[]),
                udp_dest(),
                None,
                active(3600),
                321,
            ),
            (
                "route set",
                DialogParts {
                    event_id: "7",
                    ..parts(&routes)
                },
                Dest {
                    addr: "192.0.2.1:5060".parse().unwrap(),
                    ..udp_dest()
                },
                source,
                terminated(Some("timeout")),
                0,
            ),
            (
                "IPv6 peer",
                DialogParts {
                    remote_target: "sip:w@[2001:db8::5]:5062",
                    ..parts(&[])
                },
                Dest {
                    transport: Transport::Udp,
                    addr: "[2001:db8::5]:5062".parse().unwrap(),
                    local: "[2001:db8::1]:5060".parse().unwrap(),
                    conn: None,
                },
                None,
                terminated(None),
                12,
            ),
            (
                "TCP connection",
                DialogParts {
                    remote_target: "sip:w@10.0.0.9:5070;transport=tcp",
                    ..parts(&[])
                },
                Dest {
                    transport: Transport::Tcp,
                    conn: Some(ConnId(42)),
                    ..udp_dest()
                },
                source,
                active(60),
                400,
            ),
        ];
        let pinned = pinned_heads();
        assert_eq!(pinned.len(), cases.len());
        for ((name, parts, dest, source_uri, state, body_len), (pinned_name, expected)) in
            cases.into_iter().zip(pinned)
        {
            assert_eq!(name, pinned_name);
            let mut store = DialogStore::default();
            let mut d = Dialog::new(&parts, 3, dest, source_uri, &mut store);
            let dest = d.dest(&store);
            let head = d.notify_head(&store, &notify(source_uri, &dest, state, body_len));
            assert_eq!(
                String::from_utf8(head.to_vec()).unwrap(),
                expected,
                "{name}"
            );
        }
    }
}
