//! Sub-millisecond wake-ups: a timerfd registered with the run's poll, armed for the next
//! thing due (a stream's send, a timer, the progress display) and re-armed only when needed.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::NONE;

/// The poll token of the wake-up timer (the sockets take 0, 1, …).
const TOKEN: Token = Token(usize::MAX - 1);

/// The wake-up timer and when it is armed for.
pub(super) struct Wakeup {
    fd: OwnedFd,
    /// Run clock (ns) the timer fires at, or NONE when it is not armed.
    armed_at: u64,
}

impl Wakeup {
    /// A fresh timer registered with `poll`.
    pub(super) fn new(poll: &Poll) -> Result<Wakeup, String> {
        let fd = timerfd().map_err(|e| format!("timerfd: {e}"))?;
        poll.registry()
            .register(&mut SourceFd(&fd.as_raw_fd()), TOKEN, Interest::READABLE)
            .map_err(|e| format!("register timerfd: {e}"))?;
        Ok(Wakeup { fd, armed_at: NONE })
    }

    /// Sleep until `wake` (run clock, ns; `now` is the clock now): arm the timer and return
    /// the poll timeout.
    pub(super) fn sleep_until(&mut self, wake: u64, now: u64) -> Option<Duration> {
        // re-arm only when the armed wake-up is gone or too late (saves a syscall per
        // response-driven wake-up)
        if self.armed_at == NONE || self.armed_at <= now || self.armed_at > wake {
            arm(&self.fd, Duration::from_nanos(wake - now));
            self.armed_at = wake;
        }
        // the timerfd wakes us; the poll timeout is a safety net
        Some(Duration::from_millis(100))
    }

    /// After a poll: a fired timer is read and no longer armed.
    pub(super) fn on_events(&mut self, events: &Events) {
        for ev in events.iter() {
            if ev.token() == TOKEN {
                clear_timer(&self.fd);
                self.armed_at = NONE;
            }
        }
    }
}

fn timerfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked and owned.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arm the timer `after` from now (relative; at least 1 µs).
fn arm(fd: &OwnedFd, after: Duration) {
    let after = after.max(Duration::from_micros(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: after.as_secs() as libc::time_t,
            tv_nsec: after.subsec_nanos() as libc::c_long,
        },
    };
    // SAFETY: valid fd and itimerspec.
    unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
}

fn clear_timer(fd: &OwnedFd) {
    let mut buf = [0u8; 8];
    // SAFETY: reading 8 bytes into a local buffer from a non-blocking timerfd.
    unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
}
