//! Interrupt coalescing that adapts to the arrival rate.
//!
//! Waiting a short window after a wake-up lets the messages that arrive meanwhile be read,
//! processed and answered as one batch: one wake-up, one `recvmmsg`, one tick and one
//! `sendmmsg` for all of them instead of one of each per message. That only pays when more
//! than one message is likely to arrive within the window; below that rate the wait is a
//! wasted sleep and wake-up plus latency for nothing. So the loop keeps a smoothed arrival rate
//! and waits only when it expects at least [`MIN_BATCH`] messages in the window.

use std::time::{Duration, Instant};

/// Messages the window must be expected to gather before waiting for it pays.
pub const MIN_BATCH: f64 = 2.0;
/// Time constant of the smoothed rate: it follows a change of load within a few of these.
const TAU_SECS: f64 = 0.05;

#[derive(Debug)]
pub struct Coalescer {
    window: Duration,
    /// Smoothed arrivals per second.
    rate: f64,
    last_wake: Instant,
}

impl Coalescer {
    pub fn new(window: Duration, now: Instant) -> Self {
        Coalescer {
            window,
            rate: 0.0,
            last_wake: now,
        }
    }

    /// A wake-up at `now` that brought `msgs` messages (since the previous wake-up).
    pub fn woke(&mut self, now: Instant, msgs: usize) {
        let dt = now.saturating_duration_since(self.last_wake).as_secs_f64();
        self.last_wake = now;
        if dt <= 0.0 {
            return;
        }
        let alpha = (dt / TAU_SECS).min(1.0);
        self.rate += alpha * (msgs as f64 / dt - self.rate);
    }

    /// How long to wait before reading again, at `now`, after a wake-up that brought `msgs`.
    pub fn wait(&self, now: Instant, msgs: usize) -> Option<Duration> {
        if msgs == 0 {
            return None;
        }
        if self.rate * self.window.as_secs_f64() < MIN_BATCH {
            return None;
        }
        self.window
            .checked_sub(now.saturating_duration_since(self.last_wake))
            .filter(|d| !d.is_zero())
    }

    /// Smoothed arrivals per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_micros(1000);

    /// Wake-ups `gap` apart, each bringing `per_wake` messages, for one second.
    fn steady(c: &mut Coalescer, start: Instant, gap: Duration, per_wake: usize) -> Instant {
        let mut t = start;
        while t < start + Duration::from_secs(1) {
            t += gap;
            c.woke(t, per_wake);
        }
        t
    }

    #[test]
    fn no_window_never_waits() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(Duration::ZERO, t0);
        let t = steady(&mut c, t0, Duration::from_micros(50), 1);
        assert_eq!(c.wait(t, 1), None);
    }

    #[test]
    fn a_slow_trickle_is_answered_at_once() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(WINDOW, t0);
        // 1,000 messages/s: half a message per 1 ms window
        let t = steady(&mut c, t0, Duration::from_micros(1000), 1);
        assert!((c.rate() - 1000.0).abs() < 50.0, "rate {}", c.rate());
        assert_eq!(c.wait(t, 1), None);
    }

    #[test]
    fn a_steady_load_is_gathered_into_windows() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(WINDOW, t0);
        // 10,000 messages/s, one per wake-up: ten per window once batching starts
        let t = steady(&mut c, t0, Duration::from_micros(100), 1);
        assert!((c.rate() - 10_000.0).abs() < 500.0, "rate {}", c.rate());
        assert_eq!(c.wait(t, 1), Some(WINDOW));
        // the wait counts from the wake-up, not from when the batch was handled
        assert_eq!(
            c.wait(t + Duration::from_micros(300), 1),
            Some(Duration::from_micros(700))
        );
        assert_eq!(c.wait(t + WINDOW, 1), None);
        // and a wake-up that brought nothing (a timer) does not wait
        assert_eq!(c.wait(t, 0), None);
    }

    #[test]
    fn the_rate_follows_a_drop_in_load() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(WINDOW, t0);
        let t = steady(&mut c, t0, Duration::from_micros(100), 1);
        // the load stops: the next message, a second later, is answered at once
        let later = t + Duration::from_secs(1);
        c.woke(later, 1);
        assert_eq!(c.wait(later, 1), None);
    }
}
