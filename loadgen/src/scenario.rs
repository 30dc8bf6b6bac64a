//! Scenario files (TOML): the population and the rates of a workload. Every key is optional and
//! has a default; unknown keys are an error. See `config/loadgen-*.toml` for commented examples.

use serde::{Deserialize, Serialize};

/// A whole workload description.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Free text shown in the report.
    pub name: String,
    pub population: Population,
    pub publish: Publish,
    pub subscribe: Subscribe,
    pub lists: Lists,
    pub rules: Rules,
    pub auth: Auth,
    pub run: RunLimits,
}

/// Who takes part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Population {
    /// Presentities `sip:p<i>@<domain>`, i = 1..=presentities.
    pub presentities: u32,
    /// Watchers `sip:w<i>@<domain>`, each holding one subscription.
    pub watchers: u32,
    pub domain: String,
    /// Zipf exponent of presentity popularity: which presentity a watcher watches and which
    /// one publishes next. 0 means even: watcher i watches presentity ((i-1) mod P)+1 and
    /// modifies go round-robin, as the anchors' SIPp scenarios do.
    pub zipf_exponent: f64,
    /// Seed of the pseudo-random choices, so runs are repeatable.
    pub seed: u64,
}

/// The presentities' PUBLISH traffic (RFC 3903).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Publish {
    /// Send one initial PUBLISH per presentity in the publish phase.
    pub initial: bool,
    /// Initial PUBLISHes per second.
    pub rate: f64,
    /// Modify PUBLISHes (new body, `SIP-If-Match`) per second in the steady phase.
    pub modify_rate: f64,
    /// Expires asked for; refreshes (no body, `SIP-If-Match`) go out at `refresh_fraction`
    /// of the granted time.
    pub expires: u32,
    pub refresh_fraction: f64,
    /// Remove every publication (Expires: 0) in the teardown phase.
    pub remove_at_end: bool,
}

/// The watchers' SUBSCRIBE traffic (RFC 6665, RFC 3856).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Subscribe {
    /// Initial SUBSCRIBEs per second in the subscribe phase (also the unsubscribe rate at
    /// the end).
    pub rate: f64,
    pub expires: u32,
    pub refresh_fraction: f64,
    /// Churn in the steady phase: unsubscribes per second, each followed at once by a new
    /// subscription of the same watcher (to a presentity drawn again).
    pub churn_rate: f64,
    /// Unsubscribe (Expires: 0) every watcher in the teardown phase.
    pub unsubscribe_at_end: bool,
}

/// Resource-list subscriptions (RFC 4662): each watcher owns one list of `members`
/// presentities (a `<service>` of its rls-services document, written over XCAP before the load
/// starts) and sends one list SUBSCRIBE (`Supported: eventlist`) instead of its per-presentity
/// subscription, so that the run measures what a Resource List Server costs per member update.
/// See `crate::lists`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Lists {
    /// Write the lists and subscribe to them.
    pub enabled: bool,
    /// Members per list (distinct presentities): consecutive ones when `zipf_exponent = 0`
    /// (so every presentity is on watchers × members / presentities lists), else drawn by
    /// popularity.
    pub members: u32,
    /// The target's XCAP root, as `rules.xcap`; `--xcap` overrides it.
    pub xcap: String,
    /// PUTs in flight at once (one keep-alive connection each).
    pub concurrency: u32,
}

impl Default for Lists {
    fn default() -> Self {
        Lists {
            enabled: false,
            members: 10,
            xcap: String::new(),
            concurrency: 4,
        }
    }
}

/// Privacy rules (RFC 5025 pres-rules with OMA's extensions), written over XCAP before the load
/// starts so that the run measures a server that filters and authorizes every watcher. For
/// every presentity loadgen PUTs a resource-lists document (list `allowed`: its watchers except
/// the last one) and a pres-rules document: r1 allows the members of that list (OMA
/// `external-list`) with a filtering view, r2 blocks an identity that never subscribes, r3
/// (OMA `other-identity`) answers everyone else `confirm`, so each presentity's last watcher
/// stays `pending`. See `crate::rules`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// Write the documents and expect the outcomes they decide.
    pub enabled: bool,
    /// The target's XCAP root, e.g. `http://127.0.0.1:8080` (`/xcap-root` is added when the
    /// URI has no path); loopback only. Usually given with `--xcap`, since the port is chosen
    /// when the server starts.
    pub xcap: String,
    /// PUTs in flight at once (one keep-alive connection each).
    pub concurrency: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            enabled: false,
            xcap: String::new(),
            concurrency: 4,
        }
    }
}

/// SIP Digest (RFC 3261 §22, RFC 7616 qop=auth, MD5): every presentity and watcher
/// authenticates as itself (digest username: the user part of its URI, `p17` or `r3p17`) with
/// this one password, the way a real client does: its first request goes without credentials,
/// the 401's MD5 challenge is answered by a new transaction (new branch, CSeq + 1), and its
/// later requests carry credentials unprompted with the same nonce and a growing nonce count;
/// a 401 to those (a stale nonce, a refused count) is answered once with the new nonce. The
/// users must exist on the server: `loadgen users ... | presenced user import -`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// The password of every user; empty: no authentication (401s are errors).
    pub password: String,
}

impl Auth {
    /// Whether the population authenticates.
    pub fn enabled(&self) -> bool {
        !self.password.is_empty()
    }
}

/// Durations and limits: every run ends by itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunLimits {
    /// Seconds of steady phase (modifies, churn).
    pub duration_secs: f64,
    /// Pause between phases once the previous phase's transactions are done (at most
    /// `settle_secs` waiting for stragglers).
    pub settle_secs: f64,
    /// Time given at the end to outstanding transactions and NOTIFYs; what is still open
    /// then counts as timed out.
    pub drain_secs: f64,
    /// Hard cap on the whole run, whatever the phases.
    pub max_secs: f64,
    /// Hard cap on requests sent (retransmissions not counted).
    pub max_requests: u64,
    /// RFC 3261 T1 and T2 (ms) for Timer E retransmission over UDP.
    pub t1_ms: u64,
    pub t2_ms: u64,
    /// RFC 3261 Timer F (ms): a request without a final response by then has timed out.
    pub timer_f_ms: u64,
    /// `udp` or `tcp`: how requests reach the target.
    pub transport: LinkKind,
    /// Local UDP sockets, or TCP connections, the population is spread over (over TCP each
    /// connection carries many user agents, like a proxy's connection to a presence server).
    pub sockets: u16,
    /// Scheduler quantum (µs): sends due within it go out in one batch.
    pub tick_us: u64,
    /// Over UDP, wake up for every datagram that arrives (as sipp does) instead of reading the
    /// sockets once per tick. Off by default: on one machine a sleeping load generator costs
    /// the server a wake-up of another core (an inter-processor interrupt, expensive in a VM)
    /// inside nearly every `sendmmsg` of its responses, about a tenth of presenced's CPU at
    /// 90,000 PUBLISH/s, which a server answering a network never pays. Latencies are the same
    /// either way: they are taken from the kernel's receive time of each datagram.
    pub wake_on_receive: bool,
    /// Ask the SIP target for bigger socket buffers (bytes).
    pub socket_buffer_bytes: usize,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "custom".into(),
            population: Population::default(),
            publish: Publish::default(),
            subscribe: Subscribe::default(),
            lists: Lists::default(),
            rules: Rules::default(),
            auth: Auth::default(),
            run: RunLimits::default(),
        }
    }
}

impl Default for Population {
    fn default() -> Self {
        Population {
            presentities: 1000,
            watchers: 0,
            domain: "example.com".into(),
            zipf_exponent: 0.0,
            seed: 1,
        }
    }
}

impl Default for Publish {
    fn default() -> Self {
        Publish {
            initial: true,
            rate: 1000.0,
            modify_rate: 0.0,
            expires: 3600,
            refresh_fraction: 0.8,
            remove_at_end: false,
        }
    }
}

impl Default for Subscribe {
    fn default() -> Self {
        Subscribe {
            rate: 1000.0,
            expires: 3600,
            refresh_fraction: 0.8,
            churn_rate: 0.0,
            unsubscribe_at_end: false,
        }
    }
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            duration_secs: 0.0,
            settle_secs: 2.0,
            drain_secs: 5.0,
            max_secs: 600.0,
            max_requests: 10_000_000,
            t1_ms: 500,
            t2_ms: 4000,
            timer_f_ms: 32_000,
            transport: LinkKind::Udp,
            sockets: 4,
            tick_us: 200,
            wake_on_receive: false,
            socket_buffer_bytes: 8 << 20,
        }
    }
}

/// The transport loadgen speaks to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Udp,
    Tcp,
}

/// A scenario that cannot run.
#[derive(Debug)]
pub struct ScenarioError(pub String);

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

/// Which stream a ramp raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Primary {
    Publish,
    Subscribe,
    Modify,
}

impl Scenario {
    /// Read a scenario file.
    pub fn load(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError(format!("{}: {e}", path.display())))?;
        Scenario::parse(&text).map_err(|e| ScenarioError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parse scenario TOML text and check it.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Reject values that cannot run or would not stop.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let err = |m: &str| Err(ScenarioError(m.to_string()));
        let p = &self.population;
        if p.presentities == 0 {
            return err("population.presentities must be at least 1");
        }
        if !(p.zipf_exponent >= 0.0 && p.zipf_exponent <= 10.0) {
            return err("population.zipf_exponent must be in 0..=10");
        }
        for (name, r) in [
            ("publish.rate", self.publish.rate),
            ("publish.modify_rate", self.publish.modify_rate),
            ("subscribe.rate", self.subscribe.rate),
            ("subscribe.churn_rate", self.subscribe.churn_rate),
        ] {
            if !(r.is_finite() && (0.0..=10_000_000.0).contains(&r)) {
                return Err(ScenarioError(format!("{name} must be in 0..=10000000")));
            }
        }
        if self.publish.initial && self.publish.rate <= 0.0 {
            return err("publish.rate must be > 0 when publish.initial is true");
        }
        if (p.watchers > 0 || self.subscribe.unsubscribe_at_end) && self.subscribe.rate <= 0.0 {
            return err("subscribe.rate must be > 0 when there are watchers");
        }
        for (name, f) in [
            ("publish.refresh_fraction", self.publish.refresh_fraction),
            (
                "subscribe.refresh_fraction",
                self.subscribe.refresh_fraction,
            ),
        ] {
            if !(f > 0.05 && f < 1.0) {
                return Err(ScenarioError(format!("{name} must be in (0.05, 1)")));
            }
        }
        for (name, c, root) in [
            ("rules", self.rules.concurrency, &self.rules.xcap),
            ("lists", self.lists.concurrency, &self.lists.xcap),
        ] {
            if c == 0 || c > 64 {
                return Err(ScenarioError(format!(
                    "{name}.concurrency must be in 1..=64"
                )));
            }
            if !root.is_empty() {
                crate::rules::XcapRoot::parse(root)
                    .map_err(|e| ScenarioError(format!("{name}.xcap: {e}")))?;
            }
        }
        let l = &self.lists;
        if l.enabled {
            if l.members == 0 || l.members > p.presentities {
                return err("lists.members must be in 1..=population.presentities");
            }
            if self.rules.enabled {
                // the members' rules would decide per member instance, which the run does not
                // follow: a run with both would count right outcomes as losses
                return err("lists and rules cannot be enabled together");
            }
        }
        if self.auth.enabled() {
            if self.rules.enabled || self.lists.enabled {
                // their documents go over XCAP, which then wants HTTP Digest: not written yet
                return err("auth cannot be combined with rules or lists");
            }
            if self
                .auth
                .password
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            {
                // the users file (`loadgen users`) holds one `URI PASSWORD` per line
                return err("auth.password must not contain spaces or control characters");
            }
        }
        let r = &self.run;
        for (name, v) in [
            ("run.duration_secs", r.duration_secs),
            ("run.settle_secs", r.settle_secs),
            ("run.drain_secs", r.drain_secs),
        ] {
            if !(v.is_finite() && (0.0..=86_400.0).contains(&v)) {
                return Err(ScenarioError(format!("{name} must be in 0..=86400")));
            }
        }
        if !(r.max_secs.is_finite() && r.max_secs > 0.0 && r.max_secs <= 86_400.0) {
            return err("run.max_secs must be in (0, 86400]");
        }
        if r.max_requests == 0 {
            return err("run.max_requests must be at least 1");
        }
        if r.t1_ms == 0 || r.t2_ms < r.t1_ms || r.timer_f_ms < r.t1_ms {
            return err("need 0 < run.t1_ms <= run.t2_ms and run.t1_ms <= run.timer_f_ms");
        }
        if r.sockets == 0 || r.sockets > 256 {
            return err("run.sockets must be in 1..=256");
        }
        if r.tick_us == 0 || r.tick_us > 100_000 {
            return err("run.tick_us must be in 1..=100000");
        }
        Ok(())
    }

    /// The stream a ramp raises: modifies when the scenario has a steady modify stream, else
    /// subscribes when it has watchers, else initial publishes.
    pub fn primary(&self) -> Primary {
        if self.publish.modify_rate > 0.0 && self.run.duration_secs > 0.0 {
            Primary::Modify
        } else if self.population.watchers > 0 {
            Primary::Subscribe
        } else {
            Primary::Publish
        }
    }

    /// The primary stream's rate.
    pub fn primary_rate(&self) -> f64 {
        match self.primary() {
            Primary::Modify => self.publish.modify_rate,
            Primary::Subscribe => self.subscribe.rate,
            Primary::Publish => self.publish.rate,
        }
    }

    /// The same workload with its primary stream at `rate`. For the publish and subscribe
    /// workloads the population grows with the rate so the phase keeps its length.
    pub fn with_primary_rate(&self, rate: f64) -> Scenario {
        let mut s = self.clone();
        match self.primary() {
            Primary::Modify => s.publish.modify_rate = rate,
            Primary::Subscribe => {
                let secs = self.population.watchers as f64 / self.subscribe.rate;
                s.subscribe.rate = rate;
                s.population.watchers = (rate * secs).round().max(1.0) as u32;
            }
            Primary::Publish => {
                let secs = self.population.presentities as f64 / self.publish.rate;
                s.publish.rate = rate;
                s.population.presentities = (rate * secs).round().max(1.0) as u32;
            }
        }
        s
    }

    /// Rough wall time of the run, for the progress bar.
    pub fn estimated_secs(&self) -> f64 {
        let mut t = 0.0;
        if self.publish.initial {
            t += self.population.presentities as f64 / self.publish.rate + 0.5;
        }
        if self.population.watchers > 0 {
            t += self.population.watchers as f64 / self.subscribe.rate + 0.5;
        }
        t += self.run.duration_secs;
        if self.subscribe.unsubscribe_at_end && self.population.watchers > 0 {
            t += self.population.watchers as f64 / self.subscribe.rate + 0.5;
        }
        if self.publish.remove_at_end {
            t += self.population.presentities as f64 / self.publish.rate + 0.5;
        }
        t.min(self.run.max_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_unknown_keys_fail() {
        Scenario::default().validate().unwrap();
        assert!(Scenario::parse("[population]\nfoo = 1\n").is_err());
        assert!(Scenario::parse("[lists]\ncount = 3\n").is_err());
        let s = Scenario::parse("[lists]\nenabled = true\nmembers = 5\n").unwrap();
        assert_eq!((s.lists.enabled, s.lists.members), (true, 5));
        assert!(Scenario::parse("[lists]\nenabled = true\nmembers = 0\n").is_err());
        assert!(Scenario::parse("[lists]\nenabled = true\nmembers = 1001\n").is_err());
        assert!(Scenario::parse("[lists]\nenabled = true\n[rules]\nenabled = true\n").is_err());
        assert!(Scenario::parse("[lists]\nconcurrency = 65\n").is_err());
        let s = Scenario::parse("[population]\npresentities = 5\nwatchers = 10\n").unwrap();
        assert_eq!(s.population.presentities, 5);
        assert_eq!(s.primary(), Primary::Subscribe);
        let s =
            Scenario::parse("[rules]\nenabled = true\nxcap = \"http://127.0.0.1:1\"\n").unwrap();
        assert!(s.rules.enabled);
        assert!(Scenario::parse("[rules]\nxcap = \"http://192.0.2.1:80\"\n").is_err());
        assert!(Scenario::parse("[rules]\nconcurrency = 0\n").is_err());
        let s = Scenario::parse("[auth]\npassword = \"pw\"\n").unwrap();
        assert!(s.auth.enabled() && !Scenario::default().auth.enabled());
        assert!(Scenario::parse("[auth]\nuser = \"x\"\n").is_err());
        assert!(Scenario::parse("[auth]\npassword = \"a b\"\n").is_err());
        assert!(Scenario::parse("[auth]\npassword = \"pw\"\n[rules]\nenabled = true\n").is_err());
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        for f in [
            "loadgen-publish.toml",
            "loadgen-subscribe.toml",
            "loadgen-fanout.toml",
            "loadgen-fanout-rules.toml",
            "loadgen-lists.toml",
            "loadgen-lists-smoke.toml",
        ] {
            let s = Scenario::load(&dir.join(f)).unwrap();
            assert!(s.estimated_secs() > 0.0, "{f}");
        }
    }

    #[test]
    fn ramp_scaling_keeps_phase_length() {
        let mut s = Scenario::default();
        s.population.presentities = 4000;
        s.publish.rate = 1000.0;
        let t = s.with_primary_rate(3000.0);
        assert_eq!(t.population.presentities, 12_000);
        assert_eq!(t.publish.rate, 3000.0);
    }
}
