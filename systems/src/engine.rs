//! The engine: one bevy_ecs `World` and the tick `Schedule`. The caller (the shell, or a test)
//! hands in messages and the time, runs a tick, and takes the messages to send.

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::SingleThreadedExecutor;

use crate::config::EngineConfig;
use crate::io::{Inbox, Outbox};
use crate::net::{Inbound, Outbound};
use crate::pipeline::Pipeline;
use crate::router::{self, Admitted, Capabilities, MethodQueues};
use crate::stats::Stats;
use crate::time::{Clock, Time};
use crate::timers::{self, DueTimers, Timers};
use crate::transaction::{self, ClientOutcomes, ClientTransactions, ServerTransactions};

/// The presence engine.
pub struct Engine {
    world: World,
    schedule: Schedule,
}

impl Engine {
    /// An engine with the foundation systems (parsing, transactions, OPTIONS, dispatch).
    pub fn new(config: EngineConfig) -> Self {
        let mut world = World::new();
        world.insert_resource(ServerTransactions::new(config.hash_seed));
        world.insert_resource(ClientTransactions::new(config.hash_seed));
        world.insert_resource(config);
        world.init_resource::<Clock>();
        world.init_resource::<Timers>();
        world.init_resource::<DueTimers>();
        world.init_resource::<Inbox>();
        world.init_resource::<Outbox>();
        world.init_resource::<Stats>();
        world.init_resource::<ClientOutcomes>();
        world.init_resource::<Admitted>();
        world.init_resource::<MethodQueues>();
        world.init_resource::<Capabilities>();

        let mut schedule = Schedule::default();
        // Two cores, one of them busy with socket I/O: the multi-threaded executor's hand-offs
        // cost more than the parallelism buys (see README, "Engine").
        schedule.set_executor(SingleThreadedExecutor::new());
        schedule.configure_sets(
            (
                Pipeline::Ingest,
                Pipeline::Transactions,
                Pipeline::Publish,
                Pipeline::Subscribe,
                Pipeline::Authorize,
                Pipeline::Lists,
                Pipeline::Expiry,
                Pipeline::NotifyEncode,
                Pipeline::Emit,
            )
                .chain(),
        );
        schedule.add_systems(
            (
                timers::collect_due_timers,
                // aged before admission, so that a request after Timer J opens a new one
                transaction::expire_server_transactions,
                router::ingest,
            )
                .chain()
                .in_set(Pipeline::Ingest),
        );
        schedule.add_systems(
            (transaction::drive_client_transactions, router::dispatch)
                .chain()
                .in_set(Pipeline::Transactions),
        );
        let mut engine = Engine { world, schedule };
        engine.refresh_capabilities();
        engine
    }

    /// Let a feature add its systems and resources.
    pub fn add_feature(&mut self, feature: impl FnOnce(&mut World, &mut Schedule)) -> &mut Self {
        feature(&mut self.world, &mut self.schedule);
        self.refresh_capabilities();
        self
    }

    /// Make room for `n` entities now rather than while requests wait: bevy's entity-record
    /// array doubles in one go when outgrown, a long tick at millions of entities. The indexes
    /// are handed out and given back, so the array is full-sized from the start (about 32
    /// bytes per index; docs/performance.md has the measurements).
    pub fn reserve_entities(&mut self, n: u32) {
        let ids: Vec<Entity> = self.world.entity_allocator().alloc_many(n).collect();
        let Some((&last, rest)) = ids.split_last() else {
            return;
        };
        // spawning the highest index sizes the array; despawning frees that index again
        match self.world.spawn_empty_at(last) {
            Ok(e) => e.despawn(),
            Err(_) => self.world.entity_allocator_mut().free(last),
        }
        // lowest index last, so that it is handed out first: resources made later (bevy keeps
        // them on entities, in sparse sets indexed by entity) stay small
        let descending: Vec<Entity> = rest.iter().rev().copied().collect();
        self.world.entity_allocator_mut().free_many(&descending);
    }

    fn refresh_capabilities(&mut self) {
        let queues = self.world.resource::<MethodQueues>().allow();
        self.world.resource_mut::<Capabilities>().allow = queues;
    }

    /// Run one tick at `now` over `inbound`; what is to be sent is appended to `out`.
    pub fn tick(
        &mut self,
        now: Time,
        inbound: impl IntoIterator<Item = Inbound>,
        out: &mut Vec<Outbound>,
    ) {
        self.world.resource_mut::<Clock>().now = now;
        self.world.resource_mut::<Inbox>().messages.extend(inbound);
        self.schedule.run(&mut self.world);
        let before = out.len();
        // append keeps the outbox's capacity for the next tick
        out.append(&mut self.world.resource_mut::<Outbox>().messages);
        let mut stats = self.world.resource_mut::<Stats>();
        stats.ticks += 1;
        stats.messages_out += (out.len() - before) as u64;
    }

    /// The durable changes of the ticks since the last call ([`crate::durable`]), appended to
    /// `into`; nothing without the durability feature.
    pub fn take_changes(&mut self, into: &mut Vec<crate::durable::Change>) {
        if let Some(mut log) = self.world.get_resource_mut::<crate::durable::DurableLog>() {
            log.drain_into(into);
        }
    }

    /// Rebuild state from durable `records` (as the journal returned them) at `now`, whose
    /// wall-clock time must be set first ([`Engine::set_wall_clock`]). What expired meanwhile
    /// is dropped, with the changes that delete its records ([`Engine::take_changes`]); the
    /// next tick composes what was restored, and restored subscriptions are notified from
    /// then on, a batch at a time ([`crate::durable::DurableConfig`]). XDM documents must be
    /// handed in before that tick: restored watchers are placed by their rules in it.
    pub fn restore(&mut self, now: Time, records: &[(u64, Vec<u8>)]) -> crate::durable::Restored {
        let mut done = crate::durable::Restored::default();
        if !self.world.contains_resource::<crate::durable::DurableLog>() {
            return done;
        }
        self.world.resource_mut::<Clock>().now = now;
        if self
            .world
            .contains_resource::<crate::presence::components::PresenceIndex>()
        {
            crate::presence::durable::restore(&mut self.world, records, &mut done);
        }
        // after the publications: presence subscriptions attach to their presentities
        if self
            .world
            .contains_resource::<crate::subscription::Packages>()
        {
            crate::subscription::durable::restore(&mut self.world, records, &mut done);
        }
        done
    }

    /// Tell the engine the wall-clock time of its time `now`, as Unix milliseconds (the
    /// engine never reads a clock; dates in rules are compared with this).
    pub fn set_wall_clock(&mut self, now: Time, unix_ms: i64) {
        self.world.resource_mut::<Clock>().unix_at_zero_ms = unix_ms - now.0 as i64;
    }

    /// Hand in committed XDM document changes (in commit order); the next tick applies them.
    pub fn submit_documents(
        &mut self,
        changes: impl IntoIterator<Item = crate::xdm::DocumentChange>,
    ) {
        if let Some(mut c) = self.world.get_resource_mut::<crate::xdm::DocumentChanges>() {
            c.incoming.extend(changes);
        }
    }

    /// Hand in every user requests may authenticate as, replacing those before (the shell
    /// reads them from its store at start and after each change); without the auth feature
    /// they are ignored.
    pub fn set_users(&mut self, logins: impl IntoIterator<Item = crate::auth::UserLogin>) {
        if let Some(mut users) = self.world.get_resource_mut::<crate::auth::Users>() {
            users.replace(logins);
        }
    }

    /// Peers whose `P-Asserted-Identity` is taken from now on (a configuration reload).
    pub fn set_trusted_peers(&mut self, peers: Vec<std::net::IpAddr>) {
        self.world.resource_mut::<EngineConfig>().trusted_peers = peers;
    }

    /// When the engine next needs a tick even if nothing arrives.
    pub fn next_deadline(&self) -> Option<Time> {
        let mut timers = self.world.resource::<Timers>().next_deadline();
        let txs = self.world.get_resource::<ServerTransactions>();
        // Open transactions age by generation, on ticks: an idle server ticks for that too.
        let timer_j = self.world.resource::<EngineConfig>().timer_64t1();
        if let Some(rotation) = txs.and_then(|t| t.next_rotation(timer_j)) {
            timers = Some(timers.map_or(rotation, |t| t.min(rotation)));
        }
        // Retired transactions are freed a slice per tick: keep ticking until they are gone,
        // so that an idle server gives their memory back too.
        let retiring = txs.is_some_and(|t| t.retiring() > 0);
        if retiring {
            let soon = self.world.resource::<Clock>().now.plus_ms(1);
            return Some(timers.map_or(soon, |t| t.min(soon)));
        }
        timers
    }

    /// The engine's counters.
    pub fn stats(&self) -> &Stats {
        self.world.resource::<Stats>()
    }

    /// A copy of the counters with the responses sent filled in (for metrics: a copy of a few
    /// hundred bytes, taken at most every ~100 ms by the shell).
    pub fn stats_snapshot(&self) -> Stats {
        let mut s = self.stats().clone();
        if let Some(txs) = self.world.get_resource::<ServerTransactions>() {
            s.responses_sent = txs.sent.clone();
        }
        s
    }

    /// How many entities have component `T`: a sum over archetypes, not a scan of entities
    /// (a gauge the shell can read at every snapshot).
    pub fn count<T: bevy_ecs::component::Component>(&self) -> u64 {
        let Some(id) = self.world.component_id::<T>() else {
            return 0;
        };
        self.world
            .archetypes()
            .iter()
            .filter(|a| a.contains(id))
            .map(|a| a.len() as u64)
            .sum()
    }

    /// The world, for features and tests.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The world, for features and tests.
    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }
}
