//! Memory per presentity and per subscription in the engine, measured as live heap bytes with a
//! counting allocator after the transactions have aged out (Timer J): the settled cost of state,
//! which is what the "≤ 300 B per subscription at a million" budget is about. Not a timing
//! bench: it prints its figures and exits (`cargo bench --bench memory`).

mod common;

use common::sip::{initial_publish as publish, src, watcher_subscribe as subscribe};
use presenced_systems::presence::{self, PresenceConfig};
use presenced_systems::{Engine, EngineConfig, Inbound, Outbound, Time};

fn acks(out: &[Outbound]) -> Vec<Inbound> {
    out.iter()
        .filter(|m| m.head.starts_with(b"NOTIFY "))
        .map(|m| presenced_systems::answers::ok_to(m, src(m.dest.addr.port())))
        .collect()
}

fn main() {
    // MEMORY_BENCH_SUBSCRIPTIONS=1000000 for the million-subscription figure
    let watchers: usize = std::env::var("MEMORY_BENCH_SUBSCRIPTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let presentities = (watchers / 10).max(1);
    let mut engine = Engine::new(EngineConfig {
        seed: 1,
        ..EngineConfig::default()
    });
    engine.add_feature(presence::feature(PresenceConfig::default()));
    // the features the server runs: privacy (here letting everyone watch, the no-rules case)
    // places every subscription, and watcher information follows their life cycles
    engine.add_feature(presenced_systems::xdm::feature(Default::default()));
    engine.add_feature(presenced_systems::privacy::feature(
        presenced_systems::privacy::PrivacyConfig {
            default_handling: presenced_systems::privacy::SubHandling::Allow,
        },
    ));
    engine.add_feature(presenced_systems::winfo::feature(
        presenced_systems::winfo::WinfoConfig {
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            max_per_watcher: 1000,
        },
    ));
    let mut out = Vec::new();
    let mut now = 1u64;
    // settle: warm everything once, age the transactions out
    let age = |engine: &mut Engine, now: &mut u64| {
        for _ in 0..6 {
            *now += 10_000;
            engine.tick(Time(*now), [], &mut Vec::new());
        }
        // transactions past Timer J are freed a slice per tick
        let retiring = |e: &mut Engine| {
            e.world_mut()
                .resource::<presenced_systems::transaction::ServerTransactions>()
                .retiring()
        };
        while retiring(engine) > 0 {
            *now += 1;
            engine.tick(Time(*now), [], &mut Vec::new());
        }
    };
    age(&mut engine, &mut now);
    let base = common::live_bytes();
    // MEMORY_BENCH_UNPUBLISHED=1: watch presentities nobody published (loadgen's subscribe
    // scenario), so that a subscription's figure includes its share of the presentities
    let published = if std::env::var("MEMORY_BENCH_UNPUBLISHED").is_ok() {
        0
    } else {
        presentities
    };
    for chunk in (0..published).collect::<Vec<_>>().chunks(2048) {
        out.clear();
        engine.tick(Time(now), chunk.iter().map(|&i| publish(i)), &mut out);
    }
    age(&mut engine, &mut now);
    let after_p = common::live_bytes();
    for chunk in (0..watchers).collect::<Vec<_>>().chunks(2048) {
        out.clear();
        engine.tick(
            Time(now),
            chunk.iter().map(|&i| subscribe(i, presentities)),
            &mut out,
        );
        let a = acks(&out);
        out.clear();
        engine.tick(Time(now), a, &mut out);
    }
    age(&mut engine, &mut now);
    let after_w = common::live_bytes();
    let per_p = (after_p - base) as f64 / published.max(1) as f64;
    let per_w = (after_w - after_p) as f64 / watchers as f64;
    if published > 0 {
        println!(
            "memory/presentity: {per_p:.0} bytes of live heap ({published} published presentities)"
        );
        presentity_breakdown(&mut engine, published, per_p);
    }
    println!(
        "memory/subscription: {per_w:.0} bytes of live heap ({watchers} subscriptions, settled)"
    );
    breakdown(&mut engine, watchers, per_w);
}

/// The sum of `bytes` over every entity with a `C`.
fn total<C: bevy_ecs::component::Component>(
    world: &mut bevy_ecs::world::World,
    bytes: impl Fn(&C) -> usize,
) -> usize {
    world.query::<&C>().iter(world).map(bytes).sum()
}

/// Where a published presentity's bytes go (before any subscription): its publication's
/// document, the composed view, the URI and index entries, the rest (bevy records and tables).
fn presentity_breakdown(engine: &mut Engine, published: usize, per_p: f64) {
    use presenced_systems::presence::components::{Presentity, Publication};
    use presenced_systems::subscription::{Content, SourceUri};
    let world = engine.world_mut();
    let n = published as f64;
    let docs: usize = total::<Publication>(world, |p| p.doc.heap_bytes());
    let views: usize = total::<Content>(world, |c| c.body.len());
    let uris: usize = total::<SourceUri>(world, |u| u.0.len());
    let lists: usize = total::<Presentity>(world, |p| p.publications.bytes());
    let parts = [
        (
            "publication document (body, element and namespace tables)",
            docs as f64 / n,
        ),
        ("Publication component", size_of::<Publication>() as f64),
        ("composed view (Content body)", views as f64 / n),
        (
            "Content + Presentity + SourceUri components",
            (size_of::<Content>() + size_of::<Presentity>() + size_of::<SourceUri>()) as f64,
        ),
        ("presentity URI text (SourceUri)", uris as f64 / n),
        ("presentity publication lists", lists as f64 / n),
    ];
    let known: f64 = parts.iter().map(|(_, b)| b).sum();
    for (name, b) in parts {
        println!("  {name}: {b:.1} B");
    }
    if std::env::var("MEMORY_BENCH_TABLES").is_ok() {
        println!("  entities: {}", world.entities().len());
        for t in world.storages().tables.iter() {
            if t.capacity() > 0 {
                println!(
                    "  table: {} entities, capacity {}",
                    t.entity_count(),
                    t.capacity()
                );
            }
        }
    }
    println!(
        "  rest (index tables, timers, entity records, change ticks, table slack, shared-buffer headers): {:.1} B",
        per_p - known
    );
}

/// Where a subscription's bytes go: the parts that can be read from the outside, and the rest
/// (bevy's entity and archetype records, table slack, allocator-visible leftovers).
fn breakdown(engine: &mut Engine, watchers: usize, per_w: f64) {
    use presenced_systems::presence::components::Presentity;
    use presenced_systems::subscription::{Subscription, SubscriptionIndex};
    use presenced_systems::timers::Timers;
    let world = engine.world_mut();
    let n = watchers as f64;
    let records: usize = total::<Subscription>(world, |s| s.dialog.record_len());
    let watcher_lists: usize = total::<Presentity>(world, |p| p.watchers.bytes());
    let timers = world.resource::<Timers>().bytes();
    let index_bytes = world.resource::<SubscriptionIndex>().bytes() as f64;
    let components = size_of::<Subscription>() as f64;
    let ticks = 8.0; // added + changed tick of the component
    let parts = [
        (
            "dialog record (strings and their lengths)",
            records as f64 / n,
        ),
        ("Subscription component (with its Dialog)", components),
        ("its change ticks", ticks),
        ("presentity watcher lists", watcher_lists as f64 / n),
        ("deadline heap and expiry buckets", timers as f64 / n),
        ("per-watcher counts", index_bytes / n),
    ];
    let known: f64 = parts.iter().map(|(_, b)| b).sum();
    for (name, b) in parts {
        println!("  {name}: {b:.1} B");
    }
    println!(
        "  rest (entity records, table entity column, column slack): {:.1} B",
        per_w - known
    );
    if std::env::var("MEMORY_BENCH_TABLES").is_ok() {
        println!("  entities: {}", world.entities().len());
        for t in world.storages().tables.iter() {
            if t.capacity() > 0 {
                println!(
                    "  table: {} entities, capacity {}",
                    t.entity_count(),
                    t.capacity()
                );
            }
        }
    }
}
