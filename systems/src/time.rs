//! Engine time: a monotonic millisecond count set by the caller before each tick.
//! The engine never reads a clock itself (sans-IO), so tests can drive time freely.

use bevy_ecs::prelude::Resource;

/// A point on the engine's monotonic time line, in milliseconds since the engine started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    /// This time plus `ms` milliseconds (saturating).
    pub const fn plus_ms(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms))
    }

    /// This time plus whole seconds (saturating).
    pub const fn plus_secs(self, secs: u64) -> Time {
        self.plus_ms(secs.saturating_mul(1000))
    }

    /// Milliseconds from `self` until `later`, zero if `later` is not later.
    pub const fn until(self, later: Time) -> u64 {
        later.0.saturating_sub(self.0)
    }
}

/// The current engine time, written by [`crate::Engine::tick`] before the schedule runs.
#[derive(Resource, Debug, Default, Clone, Copy)]
pub struct Clock {
    pub now: Time,
    /// Unix time in milliseconds at engine time 0, set by the caller
    /// ([`crate::Engine::set_wall_clock`]): rules that name dates (`<validity>`) compare with it.
    pub unix_at_zero_ms: i64,
}

impl Clock {
    /// The wall-clock time of `now`, Unix seconds.
    pub fn unix_secs(&self) -> i64 {
        (self.unix_at_zero_ms + self.now.0 as i64).div_euclid(1000)
    }
}
