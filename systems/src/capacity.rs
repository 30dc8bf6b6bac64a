//! Room made up front in bevy's component tables, so that a growing population does not pause.
//!
//! A table grows by doubling: past a few hundred thousand rows one `insert` reallocates and
//! copies every column at once (tens of milliseconds, every request of the tick waiting). bevy
//! 0.20 has no public per-table reserve, but `spawn_batch` reserves the table of its bundle for
//! the size its iterator announces: an iterator that announces `rows` and yields nothing
//! reserves without spawning. The room is address space until rows are written into it (large
//! allocations come from the OS untouched), so an idle server's RSS does not grow with it.

use std::marker::PhantomData;

use bevy_ecs::bundle::{Bundle, NoBundleEffect};
use bevy_ecs::world::World;

/// Reserves table room for several bundles, at start-up (before anything was despawned).
///
/// A batch frees the entities it allocated and did not use. bevy 0.20 frees them while it still
/// reads them from the free list when that list was not empty, which hands one entity out twice
/// (a second reservation in a row was enough to corrupt the world). So each batch's unused
/// entities are taken back off the free list at once and never used: the next batch allocates
/// fresh ones. The cost is their entity records (16 bytes each, once an entity is spawned past
/// them), about a tenth of the room they reserve.
pub struct TableRoom<'w> {
    world: &'w mut World,
}

impl<'w> TableRoom<'w> {
    pub fn new(world: &'w mut World) -> Self {
        TableRoom { world }
    }

    /// Room for `rows` entities of exactly the bundle `B` in its table.
    pub fn rows<B>(&mut self, rows: usize) -> &mut Self
    where
        B: Bundle<Effect: NoBundleEffect>,
    {
        if rows == 0 {
            return self;
        }
        let rows = u32::try_from(rows).unwrap_or(u32::MAX / 4);
        self.world
            .spawn_batch(Announce::<B>(rows as usize, PhantomData));
        self.world
            .entity_allocator()
            .alloc_many(rows)
            .for_each(drop);
        self
    }
}

/// Announces `.0` items and yields none.
struct Announce<B>(usize, PhantomData<fn() -> B>);

impl<B> Iterator for Announce<B> {
    type Item = B;

    fn next(&mut self) -> Option<B> {
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.0))
    }
}

#[cfg(test)]
mod tests {
    use bevy_ecs::prelude::*;

    use super::*;

    #[derive(Component)]
    struct Row(#[allow(dead_code)] u64);

    #[derive(Component)]
    struct Other;

    #[test]
    fn reserves_the_bundles_table_without_spawning() {
        let mut world = World::new();
        let before = world.entities().count_spawned();
        TableRoom::new(&mut world).rows::<(Row,)>(10_000);
        assert_eq!(world.entities().count_spawned(), before);
        let table = world
            .archetypes()
            .iter()
            .find(|a| a.contains(world.component_id::<Row>().unwrap()))
            .map(|a| a.table_id())
            .expect("the bundle's archetype exists");
        assert!(world.storages().tables[table].capacity() >= 10_000);
        let e = world.spawn(Row(1)).id();
        assert!(world.get::<Row>(e).is_some());
    }

    #[test]
    fn entities_spawned_after_a_reservation_stay_distinct() {
        let mut world = World::new();
        TableRoom::new(&mut world)
            .rows::<(Row,)>(1_000)
            .rows::<(Row, Other)>(1_000);
        let mut live = Vec::new();
        for i in 0..3_000u64 {
            live.push(if i % 2 == 0 {
                world.spawn(Row(i)).id()
            } else {
                world.spawn((Row(i), Other)).id()
            });
            if i % 3 == 0 {
                let e = live.swap_remove(live.len() / 2);
                world.despawn(e);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for &e in &live {
            assert!(seen.insert(e), "{e:?} handed out twice");
            assert!(world.get::<Row>(e).is_some());
        }
    }
}
