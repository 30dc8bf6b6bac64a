//! The Resource List Server (RFC 4662, OMA RLS; the seed's PRS-4, PRS-9, PRS-10): one
//! SUBSCRIBE to a list URI (a `<service>` of an rls-services document) gives the subscriber
//! the presence of every member of the list, in `multipart/related` NOTIFYs whose root is an
//! RLMI document.
//!
//! State as entities: a [`ServiceList`] per service URI watched (its members, resolved once
//! per change of the documents it reads); a list subscription is a `Subscription` of the
//! `presence` event with a [`ListWatch`] (one [`Slot`] per member); each member of this
//! domain is watched by a back-end subscription ([`BackEnd`]): a `Subscription` with no SIP
//! dialog, a watcher of the member's presentity like any other, on behalf of the list's
//! subscriber, so that the member's pres-rules decide what it shows (pending, polite-block,
//! a filtered view). Members in other domains are watched over SIP ([`remote`]).
//!
//! The tick: the Lists set follows document changes (members added get back-end
//! subscriptions, removed ones end) and gathers what back-end subscriptions were told; the
//! NotifyEncode set writes each list NOTIFY, the member parts encoded once per tick per view
//! and shared by every list NOTIFY that carries them.

pub mod backend;
pub mod config;
pub mod lists;
pub mod notify;
pub mod remote;
pub mod resolve;
pub mod services;
pub mod shared_names;
pub mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use bevy_ecs::prelude::*;

use crate::keyed_hash::HashKeys;
use crate::pipeline::Pipeline;
use crate::subscription::{self, PackageId, PackageSpec, Reason};

pub use config::RlsConfig;
pub use resolve::{Member, Resolved};
pub use services::{Service, Services};

/// The option tag of resource list subscriptions (RFC 4662 §4.1).
pub const EVENTLIST: &str = "eventlist";

/// One service URI being watched, resolved.
#[derive(Component, Debug)]
pub struct ServiceList {
    /// The identity key of the service URI.
    pub key: Vec<u8>,
    pub service: Service,
    pub resolved: Arc<Resolved>,
    /// Its list subscriptions.
    pub subscribers: Vec<Entity>,
}

/// One member of a list subscription, and its back-end subscription.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Shared with every list naming the same (see [`shared_names`]).
    pub uri: Arc<str>,
    pub name: Option<Arc<str>>,
    /// The back-end subscription watching it, while there is one.
    pub back_end: Option<Entity>,
    /// The number of its current (or last) instance, unique within the list subscription.
    pub instance: u32,
    /// Why the last back-end subscription ended, while there is none.
    pub ended: Option<Reason>,
    /// Past the list's member limit: listed without an instance.
    pub over: bool,
}

/// A list subscription: what it watches and what its subscriber was last told.
#[derive(Component, Debug)]
pub struct ListWatch {
    /// The [`ServiceList`].
    pub list: Entity,
    /// Its resolution, kept here too: a NOTIFY reads the list's URI and name without visiting
    /// the list's entity.
    pub resolved: Arc<Resolved>,
    /// Who subscribed: the watcher the back-end subscriptions act for.
    pub identity: Box<str>,
    pub slots: Vec<Slot>,
    /// The RLMI `version` of the next NOTIFY (RFC 4662 §5.2: from 0, one more each NOTIFY).
    pub version: u32,
    /// The next NOTIFY lists every member (the first one, after a refresh or a list change).
    pub full: bool,
    /// Slots that changed since the last NOTIFY (repeats allowed: the last one counts).
    pub changed: smallvec::SmallVec<[notify::Changed; 1]>,
    /// When the last NOTIFY was written.
    pub last_sent: Option<crate::time::Time>,
    /// A NOTIFY waits for the minimum interval.
    pub held: bool,
    /// The next instance number.
    pub next_instance: u32,
    /// What its NOTIFYs repeat, written at the first (again after its list changed).
    pub root: Option<Root>,
    /// The run of the encoder that last wrote its body (the queue may name it twice).
    pub encoded_in: u64,
}

/// What every NOTIFY of one list subscription repeats: the root part's `Content-ID` (named
/// after the subscription), the `Content-Type` (the boundary is the engine's) and the start of
/// the body.
#[derive(Debug)]
pub struct Root {
    pub cid: Box<str>,
    pub content_type: Arc<str>,
    pub start: crate::formats::rlmi::BodyStart,
    /// The subscription's `Content` body begins with `start` (the last NOTIFY used the
    /// engine's boundary): the next is written in its buffer.
    pub in_body: bool,
}

/// A back-end subscription: which list subscription's slot it feeds.
#[derive(Component, Debug, Clone, Copy)]
pub struct BackEnd {
    pub list_sub: Entity,
    pub slot: u32,
}

/// The RLS's indexes and counters.
#[derive(Resource)]
pub struct Rls {
    /// Watched services by identity key.
    pub lists: HashMap<Vec<u8>, Entity, HashKeys>,
    /// Document key -> the service lists that read it.
    pub by_doc: HashMap<Box<str>, Vec<Entity>, HashKeys>,
    /// The `presence` package of back-end subscriptions.
    pub presence: PackageId,
    /// The list package.
    pub package: PackageId,
    /// Live back-end subscriptions (local ones): while there are none, the Lists set does not
    /// look through the NOTIFY queue.
    pub back_ends: u64,
    /// Service resolutions so far (for tests and metrics).
    pub resolutions: u64,
    /// Member parts encoded so far (once per view and tick, never per list subscription).
    pub parts_encoded: u64,
    /// The multipart boundary (unguessable: derived from the engine seed).
    pub boundary: crate::formats::rlmi::Boundary,
    /// Keys of Content-ID hashes.
    pub cid_keys: HashKeys,
    /// How Content-IDs are written (see [`RlsConfig::linphone_compat`]).
    pub cid_form: crate::formats::rlmi::CidForm,
    /// Members' URIs and names.
    pub names: shared_names::SharedNames,
}

/// Add the Resource List Server to an engine serving presence, XDM and privacy (after those
/// features).
pub fn feature(config: RlsConfig) -> impl FnOnce(&mut World, &mut Schedule) {
    move |world, schedule| {
        assert!(
            world.contains_resource::<crate::xdm::DocumentIndex>(),
            "the RLS reads XDM documents: add the xdm feature first"
        );
        assert!(
            world.contains_resource::<crate::privacy::RuleBook>(),
            "members' rules apply to list subscribers: add the privacy feature first"
        );
        let packages = world.resource::<subscription::Packages>();
        let (presence, spec) = packages
            .find(crate::presence::EVENT)
            .map(|(id, s)| (id, s.clone()))
            .expect("the RLS serves presence lists: add the presence feature first");
        let package = PackageId(packages.0.len() as u8);
        subscription::register_package(
            world,
            PackageSpec {
                // event names compare without case (RFC 6665 §8.2.1 tokens); this is only how
                // NOTIFYs spell it
                event: if config.linphone_compat {
                    "Presence"
                } else {
                    crate::presence::EVENT
                },
                label: "presence-list",
                content_types: &[
                    crate::formats::rlmi::MULTIPART,
                    crate::formats::rlmi::CONTENT_TYPE,
                    crate::presence::PIDF,
                ],
                empty_body: None,
                on_subscribe: watch::on_subscribe,
                on_refresh: watch::on_refresh,
                on_end: watch::on_end,
                claims: Some(watch::claims),
                require: Some(EVENTLIST),
                // a list subscription is not kept: its subscriber subscribes again
                durable: None,
                ..spec
            },
        );
        let seed = world.resource::<crate::EngineConfig>().hash_seed;
        let k = |n: &[u8; 8]| HashKeys::derive(seed, u64::from_be_bytes(*n));
        let boundary = {
            use std::hash::BuildHasher;
            format!("rlmi-{:016x}", k(b"rls-bndy").hash_one(0u8))
        };
        world.insert_resource(Rls {
            lists: HashMap::with_hasher(k(b"rls-list")),
            by_doc: HashMap::with_hasher(k(b"rls-deps")),
            presence,
            package,
            back_ends: 0,
            resolutions: 0,
            parts_encoded: 0,
            boundary: crate::formats::rlmi::Boundary::new(&boundary),
            cid_keys: k(b"rls-cids"),
            names: shared_names::SharedNames::new(k(b"rls-name")),
            cid_form: if config.linphone_compat {
                crate::formats::rlmi::CidForm::Bare
            } else {
                crate::formats::rlmi::CidForm::Bracketed
            },
        });
        world.insert_resource(Services::new(seed));
        world.insert_resource(remote::Remotes::new(config.local));
        world
            .resource_mut::<crate::router::MethodQueues>()
            .register(crate::sip::Method::Notify);
        world.insert_resource(config);
        {
            let mut engine = world.resource_mut::<crate::EngineConfig>();
            if !engine.supported.iter().any(|s| s == EVENTLIST) {
                engine.supported.push(EVENTLIST.into());
            }
        }
        // services are current before this tick's SUBSCRIBEs are dispatched, and members
        // are placed under the rules of this tick
        let after = crate::privacy::book::follow_rules;
        schedule.add_systems(
            lists::follow_documents
                .in_set(Pipeline::Ingest)
                .after(crate::xdm::apply_document_changes)
                .after(after),
        );
        schedule.add_systems(
            (remote::drive, notify::collect)
                .chain()
                .in_set(Pipeline::Lists),
        );
        schedule.add_systems(
            notify::encode
                .in_set(Pipeline::NotifyEncode)
                .after(subscription::notify::notify_outcomes)
                .before(subscription::notify::send_notifies),
        );
    }
}
