//! Wall and CPU time of a stretch of the I/O thread's work, for the slow-turn and slow-tick
//! debug logs: CPU time tells work from time the thread was not running.

use std::time::{Duration, Instant};

/// A turn of the loop or a tick this long is logged (at debug level): requests waited behind it.
pub const SLOW: Duration = Duration::from_millis(10);

/// The log target of the slow-turn and slow-tick lines, one for both wherever they are timed
/// (the README names it: `--log warn,presenced::sip::transport=debug`).
pub const LOG_TARGET: &str = "presenced::sip::transport";

/// Wall and CPU time at a start.
pub struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    /// Started now.
    pub fn start() -> Stopwatch {
        Stopwatch {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }

    /// Milliseconds of wall and of CPU time since the start, when the wall time reached [`SLOW`].
    pub fn slow(&self) -> Option<(u64, u64)> {
        let took = self.wall.elapsed();
        (took >= SLOW).then(|| {
            let cpu = thread_cpu().saturating_sub(self.cpu);
            (took.as_millis() as u64, cpu.as_millis() as u64)
        })
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
