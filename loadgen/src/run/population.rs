//! The population's state: each presentity's entity tag and PUBLISH sequence, each watcher's
//! dialog, kept in flat vectors indexed by entity number.

use super::NONE;
use crate::popularity::{Rng, Zipf};
use crate::scenario::Population;

/// No presentity (in `Watcher::list_of`).
pub(super) const NONE32: u32 = u32::MAX;

/// An entity tag kept inline (no allocation per presentity).
#[derive(Clone, Copy)]
pub(super) struct Inline {
    pub len: u8,
    pub b: [u8; 63],
}

impl Inline {
    const EMPTY: Inline = Inline { len: 0, b: [0; 63] };
    pub(super) fn get(&self) -> &[u8] {
        &self.b[..self.len as usize]
    }
    /// Keep `v`; false when it is too long to keep.
    pub(super) fn set(&mut self, v: &[u8]) -> bool {
        if v.len() > self.b.len() {
            self.len = 0;
            return false;
        }
        self.b[..v.len()].copy_from_slice(v);
        self.len = v.len() as u8;
        true
    }
    pub(super) fn clear(&mut self) {
        self.len = 0;
    }
}

/// One presentity: its entity tag (RFC 3903) and what it has published.
pub(super) struct Pres {
    pub etag: Inline,
    pub inflight: bool,
    /// Scheduled time of a modify waiting for the open PUBLISH, or NONE.
    pub pending_modify: u64,
    /// Last token sequence sent, and the highest acknowledged by a 2xx.
    pub seq: u32,
    pub acked_seq: u32,
    pub cseq: u32,
    pub timer_gen: u32,
    /// Watchers with an established dialog on this presentity.
    pub watchers: u32,
    /// Established list subscriptions (`[lists]`) whose list holds it.
    pub list_subs: u32,
}

/// Where a watcher's subscription stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum WState {
    Idle,
    Subscribing,
    Active,
    Unsubscribing,
    Ended,
}

/// What the server's NOTIFYs say of a subscription (`Subscription-State`, RFC 6665 §4.1.3):
/// nothing yet, `active`, or `pending` (authorization awaited, RFC 5025 `confirm`: no state is
/// sent, so a pending watcher expects no NOTIFY and holds no state to be stale).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Auth {
    Unknown,
    Active,
    Pending,
}

/// One watcher: its subscription dialog (RFC 6665) and the NOTIFYs it has seen. With
/// `[lists]` the dialog is its list subscription (RFC 4662) and `target` is unused.
pub(super) struct Watcher {
    pub target: u32,
    pub generation: u32,
    pub state: WState,
    pub inflight: bool,
    pub cseq: u32,
    pub to_tag: Inline,
    /// Scheduled time of the initial SUBSCRIBE, NONE once its first NOTIFY came.
    pub sub_sched: u64,
    /// Counted in the presentity's `watchers`.
    pub counted: bool,
    pub last_notify_cseq: u32,
    pub last_seq: u32,
    pub timer_gen: u32,
    /// Churn: subscribe again once the unsubscribe is answered.
    pub resubscribe: bool,
    /// The subscription's state as the last NOTIFY said it.
    pub auth: Auth,
    /// With `[rules]`: the presentity whose list `allowed` holds this watcher (NONE for
    /// none); a subscription to any other presentity is expected to stay pending.
    pub list_of: u32,
}

/// The presentities of `pop`, none published yet.
pub(super) fn presentities(pop: &Population) -> Vec<Pres> {
    (0..pop.presentities)
        .map(|_| Pres {
            etag: Inline::EMPTY,
            inflight: false,
            pending_modify: NONE,
            seq: 0,
            acked_seq: 0,
            cseq: 0,
            timer_gen: 0,
            watchers: 0,
            list_subs: 0,
        })
        .collect()
}

/// The watchers of `pop`, none subscribed yet, each aimed at a presentity: in turn, or drawn
/// by popularity when the scenario has a Zipf exponent.
pub(super) fn watchers(pop: &Population, zipf: &Zipf, rng: &mut Rng) -> Vec<Watcher> {
    (0..pop.watchers)
        .map(|i| Watcher {
            target: if pop.zipf_exponent == 0.0 {
                i % pop.presentities
            } else {
                zipf.sample(rng)
            },
            generation: 0,
            state: WState::Idle,
            inflight: false,
            cseq: 0,
            to_tag: Inline::EMPTY,
            sub_sched: NONE,
            counted: false,
            last_notify_cseq: 0,
            last_seq: 0,
            timer_gen: 0,
            resubscribe: false,
            auth: Auth::Unknown,
            list_of: NONE32,
        })
        .collect()
}
