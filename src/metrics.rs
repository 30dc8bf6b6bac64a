//! What operators scrape: a snapshot of the engine's counters, published by the thread that
//! runs the engine at most every [`PUBLISH_EVERY`], and read by the HTTP thread for `/metrics`
//! and `/readyz`. The hot path pays nothing per request; a publish is a copy of the counters
//! and one uncontended lock.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use presenced_systems::Engine;
use presenced_systems::sip::message::method_str;
use presenced_systems::stats::{METHODS, Stats};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::sip::transport::TransportStats;

/// Least time between two snapshots.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Upper bounds (seconds) of the tick-duration buckets: a tick answering one request takes tens
/// of microseconds, a loaded one milliseconds; past 10 ms requests wait visibly.
const TICK_BOUNDS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];

/// How long the engine's ticks took, bucketed as they happen (an add per tick), exported as
/// the histogram `presenced_tick_duration_seconds`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickTimes {
    /// Ticks per bucket of [`TICK_BOUNDS`], and past the last bound.
    buckets: [u64; TICK_BOUNDS.len() + 1],
    sum_ns: u64,
    count: u64,
}

impl TickTimes {
    /// Counts one tick.
    pub fn record(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = TICK_BOUNDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(TICK_BOUNDS.len());
        self.buckets[i] += 1;
        self.sum_ns += took.as_nanos() as u64;
        self.count += 1;
    }
}

impl TypedMetric for TickTimes {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for TickTimes {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // per-bucket counts; the encoder accumulates them and writes f64::MAX as +Inf
        let buckets: Vec<(f64, u64)> = TICK_BOUNDS
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(self.buckets)
            .collect();
        encoder.encode_histogram::<NoLabelSet>(self.sum_ns as f64 / 1e9, self.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A snapshot older than this means the engine is not turning (`/readyz` answers 503).
pub const STALE_AFTER: Duration = Duration::from_secs(5);

/// The engine's counters and table sizes at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The engine's counters.
    pub stats: Stats,
    /// Presentities in the engine's tables.
    pub presentities: u64,
    /// Live publications.
    pub publications: u64,
    /// Live subscriptions by event package, and how many of them are pending.
    pub subscriptions: Vec<(&'static str, u64, u64)>,
    /// When it was taken.
    pub at: Instant,
    /// The engine's inbox was over its high-water mark.
    pub backlogged: bool,
    /// Tick durations up to this snapshot.
    pub ticks: TickTimes,
}

/// Shared between the engine's thread, the transport and the HTTP thread.
#[derive(Debug, Default)]
pub struct Metrics {
    snapshot: Mutex<Option<Snapshot>>,
    transport: Mutex<Option<Arc<TransportStats>>>,
    /// XCAP requests by AUID and status.
    xcap: Mutex<BTreeMap<(String, u16), u64>>,
}

/// Takes snapshots of an engine, at most every [`PUBLISH_EVERY`].
pub struct Publisher {
    metrics: Arc<Metrics>,
    last: Option<Instant>,
    /// Requests shed for overload up to the last snapshot.
    shed: u64,
    /// Tick durations so far.
    ticks: TickTimes,
}

impl Publisher {
    /// A publisher into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Publisher {
        Publisher {
            metrics,
            last: None,
            shed: 0,
            ticks: TickTimes::default(),
        }
    }

    /// Counts one tick of the engine and how long it took.
    pub fn record_tick(&mut self, took: Duration) {
        self.ticks.record(took);
    }

    /// Publish a snapshot of `engine` if the last one is older than [`PUBLISH_EVERY`]; it is
    /// backlogged when `backlogged` says so or the transport shed requests since the last one
    /// (how an inline engine's overload shows: its inbox is the kernel's receive buffer).
    pub fn maybe_publish(&mut self, engine: &Engine, backlogged: bool) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < PUBLISH_EVERY)
        {
            return;
        }
        self.last = Some(now);
        let shed = self
            .metrics
            .transport
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |t| {
                t.overload_replies.load(Ordering::Relaxed)
                    + t.overload_dropped.load(Ordering::Relaxed)
            });
        let backlogged = backlogged || shed > self.shed;
        self.shed = shed;
        use presenced_systems::presence::components::{Presentity, Publication};
        use presenced_systems::subscription::Packages;
        use presenced_systems::subscription::gauges::SubscriptionGauges;
        let world = engine.world();
        let live = world.get_resource::<SubscriptionGauges>();
        let subscriptions = world
            .get_resource::<Packages>()
            .map(|p| {
                let n = |i: usize| live.and_then(|g| g.live.get(i).copied()).unwrap_or(0);
                p.0.iter()
                    .enumerate()
                    .map(|(i, p)| {
                        // presence subscriptions waiting for their presentity's decision
                        let pending = if p.label == presenced_systems::presence::EVENT {
                            world
                                .get_resource::<presenced_systems::privacy::PendingWatchers>()
                                .map_or(0, |w| w.0)
                        } else {
                            0
                        };
                        (p.label, n(i), pending)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let snap = Snapshot {
            stats: engine.stats_snapshot(),
            presentities: engine.count::<Presentity>(),
            publications: engine.count::<Publication>(),
            subscriptions,
            at: now,
            backlogged,
            ticks: self.ticks,
        };
        *self.metrics.snapshot.lock().unwrap() = Some(snap);
    }
}

impl Metrics {
    /// Export the transport's counters too.
    pub fn set_transport(&self, stats: Arc<TransportStats>) {
        *self.transport.lock().unwrap() = Some(stats);
    }

    /// Count an XCAP request for `auid` answered `status`.
    pub fn count_xcap(&self, auid: &str, status: u16) {
        // XCAP is low-rate next to SIP: a lock and a small key per request are nothing here
        *self
            .xcap
            .lock()
            .unwrap()
            .entry((auid.to_owned(), status))
            .or_insert(0) += 1;
    }

    /// True while the engine publishes fresh snapshots and is not backlogged, with the
    /// transport's listeners bound.
    pub fn ready(&self) -> bool {
        let bound = self.transport.lock().unwrap().is_some();
        let fresh = self
            .snapshot
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|s| s.at.elapsed() < STALE_AFTER && !s.backlogged);
        bound && fresh
    }

    /// The exposition (OpenMetrics text, which Prometheus reads) of everything counted.
    /// Request latency histograms are not here yet; tick durations are.
    pub fn render(&self) -> String {
        let snap = self.snapshot.lock().unwrap().clone();
        let transport = self.transport.lock().unwrap().clone();
        let xcap = self.xcap.lock().unwrap().clone();
        let mut reg = Registry::with_prefix("presenced");

        let requests = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        let responses = Family::<Vec<(&'static str, String)>, Counter>::default();
        if let Some(s) = &snap {
            for (i, m) in METHODS.iter().enumerate() {
                let name = method_str(*m);
                let n = s.stats.requests_by_method[i];
                if n > 0 {
                    requests.get_or_create(&vec![("method", name)]).inc_by(n);
                }
                for (class, &n) in s.stats.responses_sent.0[i].iter().enumerate() {
                    if n > 0 {
                        responses
                            .get_or_create(&vec![
                                ("method", name.to_owned()),
                                ("status", format!("{}xx", class + 1)),
                            ])
                            .inc_by(n);
                    }
                }
            }
        }
        reg.register("sip_requests", "SIP requests received, by method", requests);
        reg.register(
            "sip_responses",
            "Final SIP responses sent from server transactions, by method and status class",
            responses,
        );
        let xcap_family = Family::<Vec<(&'static str, String)>, Counter>::default();
        for ((auid, status), n) in xcap {
            xcap_family
                .get_or_create(&vec![("auid", auid), ("status", status.to_string())])
                .inc_by(n);
        }
        reg.register(
            "xcap_requests",
            "XCAP requests, by AUID and status",
            xcap_family,
        );
        let s = snap.as_ref();
        let stat = |f: fn(&Snapshot) -> u64| s.map_or(0, f);
        reg.register(
            "ticks",
            "Engine ticks run",
            ConstCounter::new(stat(|s| s.stats.ticks)),
        );
        reg.register(
            "tick_duration_seconds",
            "How long engine ticks took (a tick processes one batch of messages and timers)",
            s.map_or(TickTimes::default(), |s| s.ticks),
        );
        let notifies = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        for (outcome, n) in [
            ("sent", stat(|s| s.stats.notifies_sent)),
            ("answered", stat(|s| s.stats.notifies_answered)),
            ("failed", stat(|s| s.stats.notifies_failed)),
            ("timeout", stat(|s| s.stats.notifies_timed_out)),
        ] {
            notifies
                .get_or_create(&vec![("outcome", outcome)])
                .inc_by(n);
        }
        reg.register(
            "notifies",
            "NOTIFYs sent, and how they ended: answered 2xx, failed (other final), timeout",
            notifies,
        );
        let auth = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        for (outcome, n) in [
            ("challenged", stat(|s| s.stats.auth_challenges)),
            ("wrong", stat(|s| s.stats.auth_failures)),
            ("refused", stat(|s| s.stats.auth_refusals)),
        ] {
            auth.get_or_create(&vec![("outcome", outcome)]).inc_by(n);
        }
        reg.register(
            "sip_auth",
            "PUBLISH and SUBSCRIBE authentication: challenged (401/407), wrong credentials, \
             refused (403 for their identity)",
            auth,
        );
        reg.register(
            "presentities",
            "Presentities in the engine's tables",
            ConstGauge::new(stat(|s| s.presentities) as i64),
        );
        reg.register(
            "publications",
            "Live publications",
            ConstGauge::new(stat(|s| s.publications) as i64),
        );
        let subs = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        for &(package, live, pending) in s.map_or(&[][..], |s| &s.subscriptions) {
            let pending = pending.min(live);
            subs.get_or_create(&vec![("package", package), ("state", "active")])
                .set((live - pending) as i64);
            subs.get_or_create(&vec![("package", package), ("state", "pending")])
                .set(pending as i64);
            // a terminated subscription is gone once its final NOTIFY is answered
            subs.get_or_create(&vec![("package", package), ("state", "terminated")])
                .set(0);
        }
        reg.register(
            "subscriptions",
            "Subscriptions, by event package and state",
            subs,
        );
        type Field = fn(&TransportStats) -> &std::sync::atomic::AtomicU64;
        let counters: [(&str, &str, Field); 5] = [
            (
                "overload_rejections",
                "Requests answered 503 for overload",
                |t| &t.overload_replies,
            ),
            (
                "overload_dropped",
                "Requests shed for overload without an answer",
                |t| &t.overload_dropped,
            ),
            ("send_errors", "SIP messages that could not be sent", |t| {
                &t.send_errors
            }),
            (
                "oversize_dropped",
                "Datagrams over max_message_bytes, dropped",
                |t| &t.oversize_dropped,
            ),
            ("tcp_accepted", "TCP connections accepted", |t| {
                &t.tcp_accepted
            }),
        ];
        for (name, help, field) in counters {
            let n = transport
                .as_ref()
                .map_or(0, |t| field(t).load(Ordering::Relaxed));
            reg.register(name, help, ConstCounter::new(n));
        }
        let mut out = String::new();
        let _ = encode(&mut out, &reg);
        out
    }
}
