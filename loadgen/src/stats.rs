//! Measurements of one run (hdrhistogram latencies in µs, counters) and the report built from
//! them: a human table and a JSON document.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The kinds of request loadgen sends; latencies and counters are kept per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    PublishInitial = 0,
    PublishModify,
    PublishRefresh,
    PublishRemove,
    Subscribe,
    SubscribeRefresh,
    Unsubscribe,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 7] = [
        OpKind::PublishInitial,
        OpKind::PublishModify,
        OpKind::PublishRefresh,
        OpKind::PublishRemove,
        OpKind::Subscribe,
        OpKind::SubscribeRefresh,
        OpKind::Unsubscribe,
    ];

    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::PublishInitial => "publish_initial",
            OpKind::PublishModify => "publish_modify",
            OpKind::PublishRefresh => "publish_refresh",
            OpKind::PublishRemove => "publish_remove",
            OpKind::Subscribe => "subscribe_initial",
            OpKind::SubscribeRefresh => "subscribe_refresh",
            OpKind::Unsubscribe => "unsubscribe",
        }
    }

    /// The SIP method.
    pub fn method(self) -> &'static str {
        match self {
            OpKind::PublishInitial
            | OpKind::PublishModify
            | OpKind::PublishRefresh
            | OpKind::PublishRemove => "PUBLISH",
            _ => "SUBSCRIBE",
        }
    }
}

/// A latency histogram in µs from 1 µs to 10 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Counters and latencies of one kind of request.
pub struct OpStats {
    /// Requests sent (retransmissions not counted).
    pub sent: u64,
    /// Final 2xx responses.
    pub ok: u64,
    /// Final non-2xx responses.
    pub failed: u64,
    /// Timer F expiries (and requests still open when the run ended).
    pub timeouts: u64,
    /// Timer E retransmissions.
    pub retrans: u64,
    /// Scheduled send → final response, µs, 2xx and non-2xx alike.
    pub hist: Histogram<u64>,
    /// First scheduled send and last 2xx, ns since run start.
    pub first_sched: u64,
    pub last_ok: u64,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            sent: 0,
            ok: 0,
            failed: 0,
            timeouts: 0,
            retrans: 0,
            hist: histogram(),
            first_sched: u64::MAX,
            last_ok: 0,
        }
    }
}

/// NOTIFY side.
pub struct NotifyStats {
    /// NOTIFYs received in our dialogs (retransmissions not counted), and of those in the
    /// steady phase.
    pub received: u64,
    pub steady: u64,
    /// Retransmitted NOTIFYs (CSeq not above the last one).
    pub retransmitted: u64,
    /// NOTIFYs for dialogs we do not know (earlier runs, old generations): answered 481.
    pub unknown_dialog: u64,
    /// NOTIFYs carrying a token newer than the watcher had seen.
    pub new_state: u64,
    /// NOTIFYs a non-coalescing server would send: watchers at each acknowledged modify.
    pub expected: u64,
    /// Subscriptions the server terminated without our asking.
    pub terminated_by_server: u64,
    /// PUBLISH (scheduled send) → NOTIFY with its token, µs.
    pub pub_to_notify: Histogram<u64>,
    /// SUBSCRIBE (scheduled send) → first NOTIFY of the dialog, µs.
    pub sub_to_first: Histogram<u64>,
}

impl Default for NotifyStats {
    fn default() -> Self {
        NotifyStats {
            received: 0,
            steady: 0,
            retransmitted: 0,
            unknown_dialog: 0,
            new_state: 0,
            expected: 0,
            terminated_by_server: 0,
            pub_to_notify: histogram(),
            sub_to_first: histogram(),
        }
    }
}

/// Subscription states (RFC 6665 §4.1.3 `Subscription-State`), for runs with privacy rules.
#[derive(Default)]
pub struct SubscriptionStats {
    /// NOTIFYs (retransmissions not counted) by the state they say.
    pub notify_active: u64,
    pub notify_pending: u64,
    pub notify_terminated: u64,
    /// Pending NOTIFYs that carried a body: state shown to a watcher not yet allowed.
    pub pending_with_body: u64,
    /// At the end of the steady phase, established subscriptions by their last stated state,
    /// and those with no NOTIFY yet.
    pub active: u64,
    pub pending: u64,
    pub no_state: u64,
    /// Of those, the ones the rules leave pending, and the ones whose state is not the one the
    /// rules decide (without rules: every pending one).
    pub expected_pending: u64,
    pub unexpected_state: u64,
}

/// List NOTIFYs (RFC 4662, `[lists]`): what they carried, and the member updates (a modify of
/// presentity p, once per list holding p) delivered against those expected.
pub struct ListStats {
    /// List NOTIFYs (retransmissions not counted), by `fullState`; `terminal` ones ended the
    /// subscription (`Subscription-State: terminated`) and are not in `full_state`/`partial`.
    pub notifies: u64,
    pub full_state: u64,
    pub partial: u64,
    pub terminal: u64,
    /// Bodies that were not a multipart RLMI document, and NOTIFYs without a body.
    pub malformed: u64,
    pub no_body: u64,
    /// PIDF member parts carried, those naming no member of the list or without a token.
    pub parts: u64,
    pub foreign_parts: u64,
    pub parts_without_token: u64,
    /// Parts carrying a member's newer state than the list had (after its first NOTIFY), and
    /// the member updates they cover: a part whose token is k sequences ahead covers k (the
    /// server merged k changes into it).
    pub new_parts: u64,
    pub delivered: u64,
    /// Member updates expected: at each acknowledged modify of p, the established lists
    /// holding p.
    pub expected: u64,
    /// Members missing a part in their list's first (full-state) NOTIFY.
    pub missing_in_first: u64,
    /// `<instance>` states of the RLMI roots, over all NOTIFYs.
    pub instances_active: u64,
    pub instances_pending: u64,
    pub instances_terminated: u64,
    /// NOTIFYs and parts received in the steady phase (for the rates).
    pub steady_notifies: u64,
    pub steady_parts: u64,
    /// At the last stale check: members whose list's last part is not their last acknowledged
    /// state, and the lists holding any.
    pub stale_members: u64,
    pub stale_lists: u64,
    /// PUBLISH (scheduled send) → the list NOTIFY carrying its token, µs, per new part.
    pub pub_to_notify: Histogram<u64>,
}

impl Default for ListStats {
    fn default() -> Self {
        ListStats {
            notifies: 0,
            full_state: 0,
            partial: 0,
            terminal: 0,
            malformed: 0,
            no_body: 0,
            parts: 0,
            foreign_parts: 0,
            parts_without_token: 0,
            new_parts: 0,
            delivered: 0,
            expected: 0,
            missing_in_first: 0,
            instances_active: 0,
            instances_pending: 0,
            instances_terminated: 0,
            steady_notifies: 0,
            steady_parts: 0,
            stale_members: 0,
            stale_lists: 0,
            pub_to_notify: histogram(),
        }
    }
}

/// SIP Digest (`[auth]`): the challenges the server sent and how they were answered.
#[derive(Default, Debug, Clone)]
pub struct AuthStats {
    /// 401/407 responses with a challenge loadgen can answer (MD5, qop=auth), and of those
    /// the ones saying `stale=true`.
    pub challenges: u64,
    pub stale: u64,
    /// Requests sent again with credentials after a challenge (a new transaction each).
    pub retries: u64,
    /// Requests sent with credentials, retries included.
    pub with_credentials: u64,
    /// Operations ended by a 401/407 (to their retry, or without a challenge to answer):
    /// also counted as failed.
    pub refused: u64,
    /// Users who authenticated (got their first challenge).
    pub users: u64,
}

/// Everything counted in one run.
#[derive(Default)]
pub struct Stats {
    pub ops: [OpStats; 7],
    /// Final responses by status code (index = code).
    pub status: BTreeMap<u16, u64>,
    pub notify: NotifyStats,
    pub subscriptions: SubscriptionStats,
    pub lists: ListStats,
    pub auth: AuthStats,
    /// Modifies merged into one already waiting for the presentity's previous PUBLISH.
    pub publish_coalesced: u64,
    /// Responses matching no open transaction (late, duplicated, other runs).
    pub stray_responses: u64,
    /// Datagrams we could not read, and truncated ones.
    pub parse_errors: u64,
    pub first_parse_error: Option<String>,
    /// Datagrams the kernel refused to send.
    pub send_errors: u64,
    pub msgs_sent: u64,
    pub msgs_received: u64,
    /// Watchers still waiting for their first NOTIFY at the end.
    pub missing_first_notify: u64,
    /// Watchers whose last NOTIFY did not carry their presentity's last acknowledged state.
    pub stale_watchers: u64,
}

impl Stats {
    /// Counters of one kind.
    pub fn op(&mut self, k: OpKind) -> &mut OpStats {
        &mut self.ops[k as usize]
    }
}

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    /// Summary of a µs histogram.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Latency {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// One kind of request (or one method) in the report.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct OpReport {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub timeouts: u64,
    pub retransmissions: u64,
    /// 2xx per second from the first scheduled send to the last 2xx.
    pub achieved_rate: f64,
    pub latency_ms: Latency,
}

impl OpReport {
    fn of(parts: &[&OpStats]) -> OpReport {
        let mut h = histogram();
        let mut r = OpReport::default();
        let (mut first, mut last) = (u64::MAX, 0u64);
        for p in parts {
            r.sent += p.sent;
            r.ok += p.ok;
            r.failed += p.failed;
            r.timeouts += p.timeouts;
            r.retransmissions += p.retrans;
            h.add(&p.hist).expect("same histogram bounds");
            first = first.min(p.first_sched);
            last = last.max(p.last_ok);
        }
        if r.ok > 0 && last > first {
            r.achieved_rate = r.ok as f64 / ((last - first) as f64 / 1e9);
        }
        r.latency_ms = Latency::of(&h);
        r
    }
}

/// NOTIFY part of the report.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct NotifyReport {
    pub received: u64,
    /// Received in the steady phase (list NOTIFYs included).
    pub steady_received: u64,
    pub retransmitted: u64,
    pub unknown_dialog: u64,
    pub new_state: u64,
    pub expected: u64,
    pub terminated_by_server: u64,
    pub missing_first_notify: u64,
    pub stale_watchers: u64,
    /// NOTIFYs with new state per second over the steady phase.
    pub rate: f64,
    pub publish_to_notify_ms: Latency,
    pub subscribe_to_first_notify_ms: Latency,
}

/// Subscription part of the report: how the subscriptions ended up (at the end of the steady
/// phase, before any unsubscribe) and the NOTIFYs by `Subscription-State`.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct SubscriptionsReport {
    pub active: u64,
    pub pending: u64,
    /// Established but never told a state (their first NOTIFY is missing).
    pub no_state: u64,
    /// Pending by the rules (0 without rules).
    pub expected_pending: u64,
    /// Active where the rules say pending or pending where they say active: a wrong decision.
    pub unexpected_state: u64,
    pub notify_active: u64,
    pub notify_pending: u64,
    pub notify_terminated: u64,
    /// Pending NOTIFYs with a body (must be 0: a pending watcher sees nothing).
    pub pending_with_body: u64,
}

/// The privacy rules written before the run (`[rules]`).
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct RulesReport {
    pub xcap_root: String,
    /// Documents PUT (a resource-lists and a pres-rules document per presentity).
    pub documents: u64,
    pub upload_secs: f64,
    /// Watchers on their first presentity's list `allowed` (expected active), and the others
    /// (each presentity's last watcher, expected pending).
    pub listed_watchers: u64,
    pub unlisted_watchers: u64,
}

/// The list subscriptions of a `[lists]` run: the lists written, what their NOTIFYs carried,
/// and the member updates delivered against those expected.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct ListsReport {
    pub xcap_root: String,
    /// rls-services documents PUT (one per watcher) and how long that took.
    pub documents: u64,
    pub upload_secs: f64,
    pub lists: u64,
    pub members_per_list: u32,
    /// Lists per presentity: fewest, mean, most.
    pub memberships_min: u32,
    pub memberships_mean: f64,
    pub memberships_max: u32,
    pub notifies: u64,
    /// Full-state NOTIFYs of live subscriptions (one per list at its start, and after a
    /// refresh or a list edit), partial ones, and the final ones of ended subscriptions.
    pub full_state: u64,
    pub partial: u64,
    pub terminal: u64,
    pub malformed: u64,
    pub no_body: u64,
    /// Member (PIDF) parts carried; those naming no member; those without loadgen's token.
    pub member_parts: u64,
    pub foreign_parts: u64,
    pub parts_without_token: u64,
    /// Parts with a member's newer state; the member updates they cover (a part k sequences
    /// ahead of the list's last one covers k); of those, the ones merged into a later part.
    pub new_member_parts: u64,
    pub delivered_member_updates: u64,
    pub merged_member_updates: u64,
    /// Σ over acknowledged modifies of presentity p of the established lists holding p.
    pub expected_member_updates: u64,
    /// expected − delivered (0 when nothing was lost).
    pub lost_member_updates: u64,
    /// At the end of the steady phase: members whose list's last part is not their last
    /// acknowledged state, and the lists holding any.
    pub stale_members: u64,
    pub stale_lists: u64,
    pub missing_in_first_notify: u64,
    pub instances_active: u64,
    pub instances_pending: u64,
    pub instances_terminated: u64,
    /// List NOTIFYs and member parts per second over the steady phase.
    pub notify_rate: f64,
    pub parts_rate: f64,
    /// PUBLISH → the list NOTIFY with its state, per new member part.
    pub publish_to_list_notify_ms: Latency,
}

impl ListsReport {
    /// Fill the counters of `s` over the steady phase `steady_ns` (run clock).
    pub fn fill(&mut self, s: &ListStats, steady_ns: Option<(u64, u64)>) {
        let secs = match steady_ns {
            Some((a, b)) if b > a => (b - a) as f64 / 1e9,
            _ => 0.0,
        };
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        self.notifies = s.notifies;
        self.full_state = s.full_state;
        self.partial = s.partial;
        self.terminal = s.terminal;
        self.malformed = s.malformed;
        self.no_body = s.no_body;
        self.member_parts = s.parts;
        self.foreign_parts = s.foreign_parts;
        self.parts_without_token = s.parts_without_token;
        self.new_member_parts = s.new_parts;
        self.delivered_member_updates = s.delivered;
        self.merged_member_updates = s.delivered.saturating_sub(s.new_parts);
        self.expected_member_updates = s.expected;
        self.lost_member_updates = s.expected.saturating_sub(s.delivered);
        self.stale_members = s.stale_members;
        self.stale_lists = s.stale_lists;
        self.missing_in_first_notify = s.missing_in_first;
        self.instances_active = s.instances_active;
        self.instances_pending = s.instances_pending;
        self.instances_terminated = s.instances_terminated;
        self.notify_rate = per_sec(s.steady_notifies);
        self.parts_rate = per_sec(s.steady_parts);
        self.publish_to_list_notify_ms = Latency::of(&s.pub_to_notify);
    }

    /// Wrong outcomes: lost updates, stale members, unreadable bodies, members missing at the
    /// start, parts of no member.
    pub fn errors(&self) -> u64 {
        self.lost_member_updates
            + self.stale_members
            + self.malformed
            + self.missing_in_first_notify
            + self.foreign_parts
    }
}

/// SIP Digest in the report (`[auth]`). A challenge answered by a retry is not an error: the
/// operation's latency runs from its first (scheduled) send to the final response of its
/// retry, and `requests_sent` counts the operation once.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct AuthReport {
    /// Users who got a first challenge (each user is challenged once and then reuses its
    /// nonce with a growing nonce count).
    pub users: u64,
    /// Answerable challenges received (401/407 with MD5 and qop=auth), the stale ones.
    pub challenges: u64,
    pub stale_challenges: u64,
    /// Requests sent again, with credentials, after a challenge.
    pub retries: u64,
    /// Requests that carried credentials without being challenged first (nonce reuse).
    pub proactive: u64,
    /// Operations the server refused with 401/407 after their retry (also in `final_failed`).
    pub refused: u64,
}

impl AuthReport {
    fn of(a: &AuthStats) -> AuthReport {
        AuthReport {
            users: a.users,
            challenges: a.challenges,
            stale_challenges: a.stale,
            retries: a.retries,
            proactive: a.with_credentials.saturating_sub(a.retries),
            refused: a.refused,
        }
    }
}

/// loadgen's own cost.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct SelfReport {
    pub cpu_secs: f64,
    /// Of one core.
    pub cpu_pct: f64,
    pub msgs_sent: u64,
    pub msgs_received: u64,
    pub msgs_per_sec: f64,
    /// Messages handled per second of loadgen CPU: its capacity if it had a core to itself.
    pub msgs_per_cpu_sec: f64,
    pub sockets: u16,
    pub socket_rcvbuf: usize,
    pub socket_sndbuf: usize,
    pub parse_errors: u64,
    pub send_errors: u64,
    pub stray_responses: u64,
    pub publish_coalesced: u64,
}

/// The server's cost, from /proc (`--server-pid`).
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct ServerReport {
    pub pid: u32,
    pub processes: u32,
    pub cpu_secs: f64,
    /// Of one core (200 = both cores of this box).
    pub cpu_pct: f64,
    pub rss_kb_start: u64,
    pub rss_kb_end: u64,
    pub rss_kb_max: u64,
    /// PUBLISH 2xx + SUBSCRIBE 2xx + NOTIFYs received.
    pub ops: u64,
    pub cpu_ms_per_1k_ops: f64,
    /// CPU over the steady phase alone (modifies and the NOTIFYs they cause, settle
    /// included), of one core, and per 1,000 NOTIFYs received in it: the cost of a NOTIFY
    /// without the set-up of the publish and subscribe phases.
    pub steady_cpu_secs: f64,
    pub steady_cpu_pct: f64,
    pub cpu_ms_per_1k_steady_notifies: f64,
}

/// Everything a run reports.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Report {
    pub scenario: String,
    pub target: String,
    pub wall_secs: f64,
    /// Set when the run hit `max_secs` or `max_requests` before its phases ended.
    pub cut_short: Option<String>,
    pub requests_sent: u64,
    pub final_ok: u64,
    pub final_failed: u64,
    pub timeouts: u64,
    pub retransmissions: u64,
    /// (failed + timeouts) / sent, in %.
    pub error_pct: f64,
    /// All requests together.
    pub latency_ms: Latency,
    pub methods: BTreeMap<String, OpReport>,
    pub ops: BTreeMap<String, OpReport>,
    pub errors_by_status: BTreeMap<String, u64>,
    pub notify: NotifyReport,
    pub subscriptions: SubscriptionsReport,
    /// Set when the run wrote privacy rules first.
    pub rules: Option<RulesReport>,
    /// Set for a run of list subscriptions (`[lists]`).
    pub lists: Option<ListsReport>,
    /// Set when the population authenticates (`[auth]`).
    pub auth: Option<AuthReport>,
    pub loadgen: SelfReport,
    pub server: Option<ServerReport>,
}

impl Report {
    /// The SIP Digest part, for a run whose population authenticated.
    pub fn fill_auth(&mut self, s: &Stats) {
        self.auth = Some(AuthReport::of(&s.auth));
    }

    /// Fill the request, NOTIFY and error parts from the counters.
    pub fn fill(&mut self, s: &Stats, steady_ns: Option<(u64, u64)>) {
        let all: Vec<&OpStats> = s.ops.iter().collect();
        let total = OpReport::of(&all);
        self.requests_sent = total.sent;
        self.final_ok = total.ok;
        self.final_failed = total.failed;
        self.timeouts = total.timeouts;
        self.retransmissions = total.retransmissions;
        self.error_pct = if total.sent > 0 {
            (total.failed + total.timeouts) as f64 * 100.0 / total.sent as f64
        } else {
            0.0
        };
        self.latency_ms = total.latency_ms;
        for method in ["PUBLISH", "SUBSCRIBE"] {
            let parts: Vec<&OpStats> = OpKind::ALL
                .iter()
                .filter(|k| k.method() == method)
                .map(|k| &s.ops[*k as usize])
                .collect();
            let r = OpReport::of(&parts);
            if r.sent > 0 {
                self.methods.insert(method.into(), r);
            }
        }
        for k in OpKind::ALL {
            let r = OpReport::of(&[&s.ops[k as usize]]);
            if r.sent > 0 {
                self.ops.insert(k.name().into(), r);
            }
        }
        for (code, n) in &s.status {
            if !(200..300).contains(code) {
                self.errors_by_status.insert(code.to_string(), *n);
            }
        }
        if total.timeouts > 0 {
            self.errors_by_status
                .insert("timeout".into(), total.timeouts);
        }
        let n = &s.notify;
        self.notify = NotifyReport {
            received: n.received,
            steady_received: n.steady,
            retransmitted: n.retransmitted,
            unknown_dialog: n.unknown_dialog,
            new_state: n.new_state,
            expected: n.expected,
            terminated_by_server: n.terminated_by_server,
            missing_first_notify: s.missing_first_notify,
            stale_watchers: s.stale_watchers,
            rate: match steady_ns {
                Some((a, b)) if b > a => n.pub_to_notify.len() as f64 / ((b - a) as f64 / 1e9),
                _ => 0.0,
            },
            publish_to_notify_ms: Latency::of(&n.pub_to_notify),
            subscribe_to_first_notify_ms: Latency::of(&n.sub_to_first),
        };
        let u = &s.subscriptions;
        self.subscriptions = SubscriptionsReport {
            active: u.active,
            pending: u.pending,
            no_state: u.no_state,
            expected_pending: u.expected_pending,
            unexpected_state: u.unexpected_state,
            notify_active: u.notify_active,
            notify_pending: u.notify_pending,
            notify_terminated: u.notify_terminated,
            pending_with_body: u.pending_with_body,
        };
    }

    /// Operations the server did (for CPU per 1,000 operations).
    pub fn server_ops(&self) -> u64 {
        self.final_ok + self.notify.received
    }

    /// The human table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "scenario {}  target {}  wall {:.2}s{}",
            self.scenario,
            self.target,
            self.wall_secs,
            self.cut_short
                .as_ref()
                .map(|c| format!("  CUT SHORT: {c}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "{:<18} {:>9} {:>9} {:>7} {:>7} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8}",
            "request",
            "sent",
            "ok",
            "failed",
            "timeout",
            "retrans",
            "ok/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms"
        );
        let row = |o: &mut String, name: &str, r: &OpReport| {
            let _ = writeln!(
                o,
                "{:<18} {:>9} {:>9} {:>7} {:>7} {:>7} {:>10.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
                name,
                r.sent,
                r.ok,
                r.failed,
                r.timeouts,
                r.retransmissions,
                r.achieved_rate,
                r.latency_ms.p50,
                r.latency_ms.p90,
                r.latency_ms.p99,
                r.latency_ms.max
            );
        };
        for (k, r) in &self.ops {
            row(&mut o, k, r);
        }
        for (k, r) in &self.methods {
            row(&mut o, &format!("{k} (all)"), r);
        }
        let n = &self.notify;
        if n.received > 0 || n.expected > 0 || n.missing_first_notify > 0 {
            let _ = writeln!(
                o,
                "NOTIFY: received {} (new state {}, expected without coalescing {}), {:.0}/s, retransmitted {}, unknown dialog {}, terminated by server {}, missing first {}, stale watchers {}",
                n.received,
                n.new_state,
                n.expected,
                n.rate,
                n.retransmitted,
                n.unknown_dialog,
                n.terminated_by_server,
                n.missing_first_notify,
                n.stale_watchers
            );
            let l = |x: &Latency| {
                format!(
                    "n={} p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3} ms",
                    x.count, x.p50, x.p90, x.p99, x.p999, x.max
                )
            };
            let _ = writeln!(o, "  PUBLISH->NOTIFY        {}", l(&n.publish_to_notify_ms));
            let _ = writeln!(
                o,
                "  SUBSCRIBE->1st NOTIFY  {}",
                l(&n.subscribe_to_first_notify_ms)
            );
        }
        let u = &self.subscriptions;
        if u.active + u.pending + u.no_state > 0 || self.rules.is_some() {
            let _ = writeln!(
                o,
                "subscriptions: active {}, pending {} (expected {}), no state yet {}, unexpected state {}; NOTIFYs active {}, pending {} (with a body {}), terminated {}",
                u.active,
                u.pending,
                u.expected_pending,
                u.no_state,
                u.unexpected_state,
                u.notify_active,
                u.notify_pending,
                u.pending_with_body,
                u.notify_terminated
            );
        }
        if let Some(r) = &self.rules {
            let _ = writeln!(
                o,
                "rules: {} documents PUT to {} in {:.2}s; {} watchers listed (allow), {} not (confirm)",
                r.documents, r.xcap_root, r.upload_secs, r.listed_watchers, r.unlisted_watchers
            );
        }
        if let Some(l) = &self.lists {
            let _ = writeln!(
                o,
                "lists: {} of {} members (on {}..{} lists per presentity, mean {:.1}), {} documents PUT to {} in {:.2}s",
                l.lists,
                l.members_per_list,
                l.memberships_min,
                l.memberships_max,
                l.memberships_mean,
                l.documents,
                l.xcap_root,
                l.upload_secs
            );
            let _ = writeln!(
                o,
                "  list NOTIFYs {} (full state {}, partial {}, final {}), {:.0}/s, {} member parts, {:.0}/s; malformed {}, without body {}, parts of no member {}, without token {}",
                l.notifies,
                l.full_state,
                l.partial,
                l.terminal,
                l.notify_rate,
                l.member_parts,
                l.parts_rate,
                l.malformed,
                l.no_body,
                l.foreign_parts,
                l.parts_without_token
            );
            let _ = writeln!(
                o,
                "  member updates: expected {}, delivered {} ({} new parts, {} merged), lost {}; stale members {} on {} lists, missing in first NOTIFY {}; instances active {}, pending {}, terminated {}",
                l.expected_member_updates,
                l.delivered_member_updates,
                l.new_member_parts,
                l.merged_member_updates,
                l.lost_member_updates,
                l.stale_members,
                l.stale_lists,
                l.missing_in_first_notify,
                l.instances_active,
                l.instances_pending,
                l.instances_terminated
            );
            let x = &l.publish_to_list_notify_ms;
            let _ = writeln!(
                o,
                "  PUBLISH->list NOTIFY  n={} p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3} ms",
                x.count, x.p50, x.p90, x.p99, x.p999, x.max
            );
        }
        if let Some(a) = &self.auth {
            let _ = writeln!(
                o,
                "auth: {} users challenged; {} challenges ({} stale) answered by {} retries; {} requests with credentials unprompted (nonce reused); {} operations refused after their retry",
                a.users, a.challenges, a.stale_challenges, a.retries, a.proactive, a.refused
            );
        }
        let _ = writeln!(
            o,
            "errors: {:.3}% {}",
            self.error_pct,
            if self.errors_by_status.is_empty() {
                "(none)".to_string()
            } else {
                format!("{:?}", self.errors_by_status)
            }
        );
        let g = &self.loadgen;
        let _ = writeln!(
            o,
            "loadgen: {} msgs sent, {} received, {:.0} msgs/s, CPU {:.1}% of a core ({:.0} msgs per CPU-second); sockets {} rcvbuf {} KB; parse errors {}, send errors {}, stray responses {}, coalesced modifies {}",
            g.msgs_sent,
            g.msgs_received,
            g.msgs_per_sec,
            g.cpu_pct,
            g.msgs_per_cpu_sec,
            g.sockets,
            g.socket_rcvbuf / 1024,
            g.parse_errors,
            g.send_errors,
            g.stray_responses,
            g.publish_coalesced
        );
        if let Some(s) = &self.server {
            let _ = writeln!(
                o,
                "server pid {} ({} procs): CPU {:.2}s = {:.1}% of a core, {:.3} ms CPU per 1,000 ops ({} ops); RSS start {} KB, end {} KB, max {} KB",
                s.pid,
                s.processes,
                s.cpu_secs,
                s.cpu_pct,
                s.cpu_ms_per_1k_ops,
                s.ops,
                s.rss_kb_start,
                s.rss_kb_end,
                s.rss_kb_max
            );
            if s.steady_cpu_secs > 0.0 {
                let _ = writeln!(
                    o,
                    "  steady phase: server CPU {:.2}s = {:.1}% of a core, {:.3} ms CPU per 1,000 NOTIFYs ({} NOTIFYs)",
                    s.steady_cpu_secs,
                    s.steady_cpu_pct,
                    s.cpu_ms_per_1k_steady_notifies,
                    self.notify.steady_received
                );
            }
        }
        o
    }
}
