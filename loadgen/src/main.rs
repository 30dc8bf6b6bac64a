//! The `loadgen` command line: `run`, `ramp`, `compare`, `responder` and `users`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use loadgen::responder::Responder;
use loadgen::run::{Options, check_loopback, run};
use loadgen::scenario::Scenario;
use loadgen::stats::Report;
use serde::Serialize;

/// SIP presence load generator: plays a population of presentities (PUBLISH) and watchers
/// (SUBSCRIBE, answering NOTIFYs) against a presence server on loopback, open-loop, and reports
/// latencies (request -> final response per method, PUBLISH -> NOTIFY, SUBSCRIBE -> first
/// NOTIFY), achieved rates, errors by status code, retransmissions, timeouts, its own CPU and,
/// with --server-pid, the server's CPU per 1,000 operations and memory.
///
/// A run goes through phases: publish (one initial PUBLISH per presentity at publish.rate),
/// subscribe (one SUBSCRIBE per watcher at subscribe.rate), steady (modify PUBLISHes with
/// SIP-If-Match at publish.modify_rate and subscription churn for run.duration_secs), teardown
/// (optional unsubscribe / publication removal) and drain. Every run stops by itself (phase
/// counts, run.max_secs, run.max_requests). Only loopback targets are accepted.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    long_about,
    after_help = "Scenario files: config/loadgen-publish.toml, config/loadgen-subscribe.toml, config/loadgen-fanout.toml (the three workloads of the Kamailio anchors), config/loadgen-fanout-rules.toml (fan-out through privacy rules, with --xcap), config/loadgen-lists.toml (resource-list subscriptions, with --xcap). `loadgen --help` lists every scenario key; the main ones are also flags of `run`.",
    after_long_help = SCENARIO_KEYS
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Every scenario key, for `--help`.
const SCENARIO_KEYS: &str = "\
Scenario files: config/loadgen-publish.toml, config/loadgen-subscribe.toml,
config/loadgen-fanout.toml (the three workloads of the Kamailio anchors) and
config/loadgen-fanout-rules.toml (the fan-out through privacy rules) and
config/loadgen-lists.toml (list subscriptions, RFC 4662). Keys (TOML; every key
optional, unknown keys are an error; the main ones are also flags of `run`):
  name                          label in the report
  [population] presentities     P presentities sip:p<i>@domain (default 1000)
               watchers         W watchers sip:w<i>@domain, one subscription each (0)
               domain           (example.com)
               zipf_exponent    popularity skew for watched and publishing presentities;
                                0 = even: watcher i watches p((i-1) mod P)+1, modifies round-robin
               seed             pseudo-random seed (1)
  [publish]    initial          one initial PUBLISH per presentity in the publish phase (true)
               rate             initial PUBLISH/s (1000)
               modify_rate      modify PUBLISH/s (SIP-If-Match, new body) in the steady phase (0)
               expires          Expires asked (3600); refresh_fraction: refresh at this part (0.8)
               remove_at_end    Expires: 0 for every publication at the end (false)
  [subscribe]  rate             SUBSCRIBE/s, also the unsubscribe rate at the end (1000)
               expires, refresh_fraction   as for publish (3600, 0.8)
               churn_rate       unsubscribe + new subscription per second in the steady phase (0)
               unsubscribe_at_end  (false)
  [lists]      enabled          before the load, PUT per watcher over XCAP an rls-services
                                document: one <service uri=sip:w<i>-list@domain> whose list
                                holds `members` distinct presentities; then each watcher sends
                                one list SUBSCRIBE (Supported: eventlist) instead of its
                                per-presentity one, and list NOTIFYs are read part by part (false)
               members          members per list (10): consecutive presentities when
                                zipf_exponent = 0 (each on watchers*members/presentities lists),
                                else drawn by popularity, no duplicates
               xcap, concurrency  as for [rules] (--xcap overrides xcap; 4 PUTs in flight)
  [auth]       password         SIP Digest: every presentity and watcher answers the server's
                                challenges as itself (username: the URI's user part, p<i> or
                                w<i>) with this password, like a real client: first request
                                without credentials, the 401 answered by a new transaction,
                                later requests with the same nonce and a growing nc; the users
                                come from `loadgen users` and `presenced user import` (empty:
                                off; not with [rules] or [lists])
  [rules]      enabled          before the load, PUT per presentity over XCAP a resource-lists
                                document (list `allowed`: its watchers but the last) and a
                                pres-rules document (list members: allow with a filtering view;
                                sip:blocked-<i>@domain: block; OMA other-identity: confirm), then
                                expect each presentity's last watcher pending (false)
               xcap             the target's XCAP root, http://IP:PORT[/path] (/xcap-root when no
                                path), loopback only; usually given with --xcap
               concurrency      PUTs in flight (4)
  [run]        duration_secs    steady phase length (0)
               settle_secs      most wait between phases for stragglers (2)
               drain_secs       most wait at the end; still open then = timed out (5)
               max_secs         hard cap on the run (600); max_requests: hard cap (10000000)
               t1_ms, t2_ms     RFC 3261 Timer E retransmission over UDP (500, 4000)
               timer_f_ms       RFC 3261 Timer F timeout (32000)
               transport        udp or tcp (udp); over tcp Timer E does not retransmit
               sockets          local UDP sockets or TCP connections (4); socket_buffer_bytes (8 MiB)
               tick_us          send batching quantum (200)
               wake_on_receive  over UDP, wake for each arriving datagram instead of reading every
                                tick (false; latencies use kernel receive times either way)";

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Play a scenario once at its fixed rates and report.
    Run {
        #[command(flatten)]
        common: Common,
    },
    /// Raise the primary rate (modify for fan-out, SUBSCRIBE for subscribe, initial PUBLISH for
    /// publish) step by step until the SLO breaks; report the highest rate that held. Each step
    /// uses fresh user names (sip:s<step>p<i>@...), so the server needs no restart between
    /// steps (old state stays until it expires).
    Ramp {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ramp: RampArgs,
    },
    /// Play the same scenario against two targets one after the other; print both and B/A ratios.
    Compare {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        cmp: CompareArgs,
    },
    /// A trivial stateless SIP responder: every request gets 200 at once (Via/From/To/Call-ID/
    /// CSeq echoed, SIP-ETag on PUBLISH, no dialogs so no NOTIFYs). The harness limit to divide
    /// a server's rate by; with --status, a server that fails every request.
    Responder {
        /// Address to answer on (loopback only).
        #[arg(long, default_value = "127.0.0.1:5099")]
        listen: SocketAddr,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 3600.0)]
        max_secs: f64,
        /// Stop after answering this many requests.
        #[arg(long, default_value_t = u64::MAX)]
        max_requests: u64,
        /// Final status of every answer (200 to 699): e.g. 500 plays a server that fails
        /// every request, with no SIP-ETag or Expires.
        #[arg(long, default_value_t = 200)]
        status: u16,
    },
    /// Print the users file (`sip:URI PASSWORD` per line, the password of --auth-password) of
    /// every presentity and watcher that run, ramp or compare with the same arguments plays,
    /// for `presenced user import`, e.g. `loadgen users ramp -s config/loadgen-publish.toml
    /// --max-steps 5 --auth-password pw > u.txt`.
    Users {
        #[command(subcommand)]
        of: UsersOf,
    },
}

/// The command whose population `loadgen users` prints (its arguments as they will be given).
#[derive(Subcommand, Debug)]
enum UsersOf {
    /// The users of `loadgen run` with these arguments.
    Run {
        #[command(flatten)]
        common: Common,
    },
    /// The users of every step `loadgen ramp` with these arguments may play (up to --max and
    /// --max-steps: each step has its own names).
    Ramp {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        ramp: RampArgs,
    },
    /// The users of `loadgen compare` with these arguments (both targets).
    Compare {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        cmp: CompareArgs,
    },
}

/// The rates and the SLO of a ramp.
#[derive(Args, Debug)]
struct RampArgs {
    /// First rate (default: the scenario's primary rate).
    #[arg(long)]
    start: Option<f64>,
    /// Added to the rate at each step (default: the start rate).
    #[arg(long)]
    step: Option<f64>,
    /// Multiply the rate by this at each step instead of adding --step.
    #[arg(long)]
    factor: Option<f64>,
    /// Highest rate tried.
    #[arg(long, default_value_t = 1_000_000.0)]
    max: f64,
    /// Most steps.
    #[arg(long, default_value_t = 20)]
    max_steps: u32,
    /// SLO: p99 of request latency and of PUBLISH->NOTIFY latency below this (ms).
    #[arg(long, default_value_t = 10.0)]
    slo_p99_ms: f64,
    /// SLO: failed + timed-out requests (+ stale or missing NOTIFYs) below this % of requests.
    #[arg(long, default_value_t = 0.1)]
    slo_error_pct: f64,
    /// SLO: achieved primary rate at least this fraction of the offered one.
    #[arg(long, default_value_t = 0.95)]
    slo_min_achieved: f64,
    /// Pause between steps (s).
    #[arg(long, default_value_t = 2.0)]
    pause_secs: f64,
}

/// The second target of a comparison.
#[derive(Args, Debug)]
struct CompareArgs {
    /// The second target (the first is --target).
    #[arg(long)]
    target_b: SocketAddr,
    /// The second server's PID, for its CPU and memory.
    #[arg(long)]
    server_pid_b: Option<u32>,
    /// Names of the two targets in the report.
    #[arg(long, default_value = "A")]
    name_a: String,
    #[arg(long, default_value = "B")]
    name_b: String,
    /// Pause between the two runs (s).
    #[arg(long, default_value_t = 2.0)]
    pause_secs: f64,
    /// The second target's XCAP root, for scenarios with `[rules]` or `[lists]`.
    #[arg(long)]
    xcap_b: Option<String>,
}

/// One step of a ramp: its number (from 1), rate, scenario and name space.
struct RampStepPlan {
    k: u32,
    rate: f64,
    scenario: Scenario,
    namespace: String,
}

/// The steps a ramp may play, in order (it stops at the first that breaks the SLO): each at
/// its rate, with fresh names `<ns>s<k>`.
fn ramp_plan(base: &Scenario, ns: &str, a: &RampArgs) -> Result<Vec<RampStepPlan>, String> {
    let mut rate = a.start.unwrap_or(base.primary_rate());
    let step = a.step.unwrap_or(rate);
    if rate <= 0.0 || step <= 0.0 || a.factor.is_some_and(|f| f <= 1.0) {
        return Err("ramp needs --start > 0, --step > 0 and --factor > 1".into());
    }
    let mut out = Vec::new();
    for k in 1..=a.max_steps {
        if rate > a.max {
            break;
        }
        out.push(RampStepPlan {
            k,
            rate,
            scenario: base.with_primary_rate(rate),
            namespace: format!("{ns}s{k}"),
        });
        rate = match a.factor {
            Some(f) => rate * f,
            None => rate + step,
        };
    }
    Ok(out)
}

/// The name spaces of a comparison's two runs: apart when both go to the same server.
fn compare_namespaces(c: &Common, target_b: SocketAddr) -> (String, String) {
    let same = target_b == c.target;
    (
        format!("{}{}", c.namespace, if same { "a" } else { "" }),
        format!("{}{}", c.namespace, if same { "b" } else { "" }),
    )
}

/// Write the users file of `runs` (scenario, name space; a name space given twice is
/// written once): every presentity and watcher with the scenario's password.
fn write_users(runs: &[(Scenario, String)], out: &mut impl std::io::Write) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    let (mut pres, mut watchers) = (0u64, 0u64);
    let mut line = Vec::with_capacity(128);
    for (s, ns) in runs {
        if !s.auth.enabled() {
            return Err(
                "no password: give --auth-password (or [auth] password in the scenario)".into(),
            );
        }
        if !seen.insert(ns.clone()) {
            continue;
        }
        // the names exactly as the run's templates write them
        let tpl = loadgen::msgs::Templates::new(0, &s.population.domain, ns, &[], false);
        let p = &s.population;
        for (kind, n) in [(b'p', p.presentities), (b'w', p.watchers)] {
            for i in 0..n {
                line.clear();
                tpl.uri(&mut line, kind, i);
                line.push(b' ');
                line.extend_from_slice(s.auth.password.as_bytes());
                line.push(b'\n');
                out.write_all(&line).map_err(|e| format!("stdout: {e}"))?;
            }
        }
        pres += p.presentities as u64;
        watchers += p.watchers as u64;
    }
    out.flush().map_err(|e| format!("stdout: {e}"))?;
    eprintln!(
        "loadgen users: {} users ({pres} presentities, {watchers} watchers) in {} name space(s)",
        pres + watchers,
        seen.len()
    );
    Ok(())
}

/// Options shared by run, ramp and compare: target, scenario, overrides, output.
#[derive(Args, Debug)]
struct Common {
    /// SIP target (UDP), loopback only: 127.0.0.0/8 or ::1.
    #[arg(long, default_value = "127.0.0.1:5060")]
    target: SocketAddr,
    /// Scenario file (TOML); without it the built-in defaults (1,000 initial PUBLISHes at 1,000/s).
    #[arg(long, short)]
    scenario: Option<PathBuf>,
    /// PID of the server, to sample its CPU and RSS (with its child processes) from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print the report as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress bar (it is drawn on stderr only when that is a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// Prefix of the user parts of every URI (sip:<ns>p1@domain), for fresh state on a server.
    #[arg(long, default_value = "")]
    namespace: String,
    /// The target's XCAP root (http://IP:PORT, loopback only) where a scenario with
    /// `[rules] enabled = true` writes its rules documents, or one with `[lists] enabled =
    /// true` its rls-services documents; overrides rules.xcap and lists.xcap.
    #[arg(long)]
    xcap: Option<String>,
    #[command(flatten)]
    over: Overrides,
}

/// Scenario overrides.
#[derive(Args, Debug, Default)]
struct Overrides {
    /// population.presentities
    #[arg(long)]
    presentities: Option<u32>,
    /// population.watchers
    #[arg(long)]
    watchers: Option<u32>,
    /// population.zipf_exponent (0 = even spread, round-robin)
    #[arg(long)]
    zipf: Option<f64>,
    /// population.seed
    #[arg(long)]
    seed: Option<u64>,
    /// population.domain
    #[arg(long)]
    domain: Option<String>,
    /// publish.rate (initial PUBLISH/s)
    #[arg(long)]
    publish_rate: Option<f64>,
    /// publish.initial (true/false)
    #[arg(long)]
    initial_publish: Option<bool>,
    /// publish.modify_rate (modify PUBLISH/s in the steady phase)
    #[arg(long)]
    modify_rate: Option<f64>,
    /// publish.expires
    #[arg(long)]
    publish_expires: Option<u32>,
    /// subscribe.rate (SUBSCRIBE/s)
    #[arg(long)]
    subscribe_rate: Option<f64>,
    /// subscribe.expires
    #[arg(long)]
    subscribe_expires: Option<u32>,
    /// subscribe.churn_rate (unsubscribe + resubscribe/s in the steady phase)
    #[arg(long)]
    churn_rate: Option<f64>,
    /// subscribe.unsubscribe_at_end (true/false)
    #[arg(long)]
    unsubscribe_at_end: Option<bool>,
    /// run.duration_secs (steady phase)
    #[arg(long)]
    duration: Option<f64>,
    /// run.max_secs (hard cap)
    #[arg(long)]
    max_secs: Option<f64>,
    /// run.max_requests (hard cap)
    #[arg(long)]
    max_requests: Option<u64>,
    /// run.timer_f_ms (RFC 3261 Timer F)
    #[arg(long)]
    timer_f_ms: Option<u64>,
    /// run.drain_secs
    #[arg(long)]
    drain_secs: Option<f64>,
    /// run.transport (udp or tcp)
    #[arg(long, value_enum)]
    transport: Option<loadgen::scenario::LinkKind>,
    /// run.sockets (local UDP sockets, or TCP connections)
    #[arg(long)]
    sockets: Option<u16>,
    /// run.tick_us (send batching quantum)
    #[arg(long)]
    tick_us: Option<u64>,
    /// run.wake_on_receive (over UDP, wake for each arriving datagram)
    #[arg(long)]
    wake_on_receive: Option<bool>,
    /// rules.enabled (write privacy rules over XCAP first; needs --xcap)
    #[arg(long)]
    rules: Option<bool>,
    /// lists.enabled (write a resource list per watcher over XCAP first and subscribe to it;
    /// needs --xcap)
    #[arg(long)]
    lists: Option<bool>,
    /// lists.members (members per list)
    #[arg(long)]
    list_members: Option<u32>,
    /// auth.password: every presentity and watcher answers SIP Digest challenges as itself
    /// with this password (the users made with `loadgen users` and `presenced user import`).
    #[arg(long, alias = "password")]
    auth_password: Option<String>,
}

impl Overrides {
    fn apply(&self, s: &mut Scenario) {
        macro_rules! set {
            ($field:ident => $($path:tt)+) => {
                if let Some(v) = self.$field.clone() {
                    s.$($path)+ = v;
                }
            };
        }
        set!(presentities => population.presentities);
        set!(watchers => population.watchers);
        set!(zipf => population.zipf_exponent);
        set!(seed => population.seed);
        set!(domain => population.domain);
        set!(publish_rate => publish.rate);
        set!(initial_publish => publish.initial);
        set!(modify_rate => publish.modify_rate);
        set!(publish_expires => publish.expires);
        set!(subscribe_rate => subscribe.rate);
        set!(subscribe_expires => subscribe.expires);
        set!(churn_rate => subscribe.churn_rate);
        set!(unsubscribe_at_end => subscribe.unsubscribe_at_end);
        set!(duration => run.duration_secs);
        set!(max_secs => run.max_secs);
        set!(max_requests => run.max_requests);
        set!(timer_f_ms => run.timer_f_ms);
        set!(drain_secs => run.drain_secs);
        set!(transport => run.transport);
        set!(sockets => run.sockets);
        set!(tick_us => run.tick_us);
        set!(wake_on_receive => run.wake_on_receive);
        set!(rules => rules.enabled);
        set!(lists => lists.enabled);
        set!(list_members => lists.members);
        set!(auth_password => auth.password);
    }
}

fn scenario(c: &Common) -> Result<Scenario, String> {
    let mut s = match &c.scenario {
        Some(p) => Scenario::load(p).map_err(|e| e.to_string())?,
        None => Scenario::default(),
    };
    c.over.apply(&mut s);
    s.validate().map_err(|e| format!("scenario: {e}"))?;
    check_loopback(&c.target)?;
    if let Some(x) = &c.xcap {
        if !s.rules.enabled && !s.lists.enabled {
            // a comparison run must not believe it went through documents it never wrote
            return Err(format!(
                "--xcap {x}: the scenario has no rules nor lists (set [rules] or [lists] enabled = true, or --rules true or --lists true)"
            ));
        }
        loadgen::rules::XcapRoot::parse(x).map_err(|e| format!("--xcap: {e}"))?;
    }
    Ok(s)
}

fn options(c: &Common, target: SocketAddr, pid: Option<u32>, ns: &str, label: &str) -> Options {
    Options {
        target,
        server_pid: pid,
        namespace: ns.to_string(),
        progress: !c.no_progress && !c.json,
        label: label.to_string(),
        xcap: c.xcap.clone(),
    }
}

fn print_json<T: Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    );
}

/// One ramp step in the report.
#[derive(Serialize)]
struct RampStep {
    rate: f64,
    held: bool,
    why: Vec<String>,
    report: Report,
}

#[derive(Serialize)]
struct RampReport {
    primary: loadgen::scenario::Primary,
    slo_p99_ms: f64,
    slo_error_pct: f64,
    highest_rate_held: Option<f64>,
    steps: Vec<RampStep>,
}

/// Why a step broke the SLO (empty when it held).
fn slo_breaks(
    r: &Report,
    primary: loadgen::scenario::Primary,
    rate: f64,
    p99: f64,
    err_pct: f64,
    min_achieved: f64,
) -> Vec<String> {
    use loadgen::scenario::Primary;
    let mut why = Vec::new();
    if r.latency_ms.p99 >= p99 {
        why.push(format!("request p99 {:.3} ms >= {p99}", r.latency_ms.p99));
    }
    if r.notify.publish_to_notify_ms.count > 0 && r.notify.publish_to_notify_ms.p99 >= p99 {
        why.push(format!(
            "PUBLISH->NOTIFY p99 {:.3} ms >= {p99}",
            r.notify.publish_to_notify_ms.p99
        ));
    }
    let list_errors = r.lists.as_ref().map_or(0, |l| l.errors());
    if let Some(l) = &r.lists
        && l.publish_to_list_notify_ms.count > 0
        && l.publish_to_list_notify_ms.p99 >= p99
    {
        why.push(format!(
            "PUBLISH->list NOTIFY p99 {:.3} ms >= {p99}",
            l.publish_to_list_notify_ms.p99
        ));
    }
    let u = &r.subscriptions;
    let bad = r.final_failed
        + r.timeouts
        + r.notify.stale_watchers
        + r.notify.missing_first_notify
        + u.unexpected_state
        + u.pending_with_body
        + list_errors;
    let pct = bad as f64 * 100.0 / r.requests_sent.max(1) as f64;
    if pct >= err_pct {
        why.push(format!(
            "errors {pct:.3}% >= {err_pct}% (failed {}, timeouts {}, stale {}, missing NOTIFY {}, unexpected subscription state {}, pending NOTIFY with a body {}, list errors {list_errors})",
            r.final_failed,
            r.timeouts,
            r.notify.stale_watchers,
            r.notify.missing_first_notify,
            u.unexpected_state,
            u.pending_with_body
        ));
    }
    let key = match primary {
        Primary::Publish => "publish_initial",
        Primary::Subscribe => "subscribe_initial",
        Primary::Modify => "publish_modify",
    };
    let achieved = r.ops.get(key).map_or(0.0, |o| o.achieved_rate);
    if achieved < rate * min_achieved {
        why.push(format!(
            "achieved {achieved:.0}/s < {:.0}% of {rate:.0}/s",
            min_achieved * 100.0
        ));
    }
    if let Some(c) = &r.cut_short {
        why.push(format!("cut short: {c}"));
    }
    why
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

fn real_main(cli: Cli) -> Result<ExitCode, String> {
    match cli.cmd {
        Cmd::Run { common } => {
            let s = scenario(&common)?;
            let o = options(
                &common,
                common.target,
                common.server_pid,
                &common.namespace,
                "run",
            );
            let r = run(&s, &o)?;
            if common.json {
                print_json(&r);
            } else {
                print!("{}", r.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Ramp { common, ramp } => {
            let base = scenario(&common)?;
            let primary = base.primary();
            let RampArgs {
                slo_p99_ms,
                slo_error_pct,
                slo_min_achieved,
                pause_secs,
                ..
            } = ramp;
            let plan = ramp_plan(&base, &common.namespace, &ramp)?;
            let mut out = RampReport {
                primary,
                slo_p99_ms,
                slo_error_pct,
                highest_rate_held: None,
                steps: Vec::new(),
            };
            for (i, st) in plan.iter().enumerate() {
                let (k, rate) = (st.k, st.rate);
                if i > 0 {
                    std::thread::sleep(Duration::from_secs_f64(pause_secs.max(0.0)));
                }
                let label = format!("step {k} {rate:.0}/s");
                let o = options(
                    &common,
                    common.target,
                    common.server_pid,
                    &st.namespace,
                    &label,
                );
                let r = run(&st.scenario, &o)?;
                let why = slo_breaks(
                    &r,
                    primary,
                    rate,
                    slo_p99_ms,
                    slo_error_pct,
                    slo_min_achieved,
                );
                let held = why.is_empty();
                if !common.json {
                    eprintln!(
                        "ramp step {k}: {primary:?} {rate:.0}/s -> {} (p99 {:.3} ms, errors {:.3}%,{} loadgen CPU {:.0}%{})",
                        if held { "held" } else { "BROKE" },
                        r.latency_ms.p99,
                        r.error_pct,
                        r.server.as_ref().map_or(String::new(), |s| format!(
                            " server CPU {:.0}% ({:.1} ms per 1k ops),",
                            s.cpu_pct, s.cpu_ms_per_1k_ops
                        )),
                        r.loadgen.cpu_pct,
                        if held {
                            String::new()
                        } else {
                            format!(": {}", why.join("; "))
                        }
                    );
                }
                if held {
                    out.highest_rate_held = Some(rate);
                }
                out.steps.push(RampStep {
                    rate,
                    held,
                    why,
                    report: r,
                });
                if !held {
                    break;
                }
            }
            if common.json {
                print_json(&out);
            } else {
                if let Some(last) = out.steps.iter().rev().find(|s| s.held) {
                    print!("{}", last.report.table());
                }
                match out.highest_rate_held {
                    Some(r) => println!(
                        "ramp: highest {primary:?} rate that held the SLO (p99 < {slo_p99_ms} ms, errors < {slo_error_pct}%): {r:.0}/s"
                    ),
                    None => println!("ramp: no step held the SLO"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare { common, cmp } => {
            let CompareArgs {
                target_b,
                server_pid_b,
                name_a,
                name_b,
                pause_secs,
                xcap_b,
            } = cmp;
            check_loopback(&target_b)?;
            let s = scenario(&common)?;
            if (s.rules.enabled || s.lists.enabled) && xcap_b.is_none() {
                return Err(
                    "the scenario has [rules] or [lists]: give the second target's XCAP root with --xcap-b"
                        .into(),
                );
            }
            let (ns_a, ns_b) = compare_namespaces(&common, target_b);
            let a = run(
                &s,
                &options(&common, common.target, common.server_pid, &ns_a, &name_a),
            )?;
            std::thread::sleep(Duration::from_secs_f64(pause_secs.max(0.0)));
            let mut ob = options(&common, target_b, server_pid_b, &ns_b, &name_b);
            if xcap_b.is_some() {
                ob.xcap = xcap_b;
            }
            let b = run(&s, &ob)?;
            let ratios = compare_ratios(&a, &b);
            if common.json {
                #[derive(Serialize)]
                struct Cmp<'a> {
                    name_a: &'a str,
                    name_b: &'a str,
                    a: &'a Report,
                    b: &'a Report,
                    ratios_b_over_a: &'a std::collections::BTreeMap<String, f64>,
                }
                print_json(&Cmp {
                    name_a: &name_a,
                    name_b: &name_b,
                    a: &a,
                    b: &b,
                    ratios_b_over_a: &ratios,
                });
            } else {
                println!("=== {name_a}");
                print!("{}", a.table());
                println!("=== {name_b}");
                print!("{}", b.table());
                println!("=== ratios {name_b}/{name_a}");
                for (k, v) in &ratios {
                    println!("{k:<40} {v:>10.3}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Users { of } => {
            let runs = match of {
                UsersOf::Run { common } => vec![(scenario(&common)?, common.namespace.clone())],
                UsersOf::Ramp { common, ramp } => {
                    let base = scenario(&common)?;
                    ramp_plan(&base, &common.namespace, &ramp)?
                        .into_iter()
                        .map(|st| (st.scenario, st.namespace))
                        .collect()
                }
                UsersOf::Compare { common, cmp } => {
                    let s = scenario(&common)?;
                    let (a, b) = compare_namespaces(&common, cmp.target_b);
                    vec![(s.clone(), a), (s, b)]
                }
            };
            let stdout = std::io::stdout();
            write_users(&runs, &mut std::io::BufWriter::new(stdout.lock()))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Responder {
            listen,
            max_secs,
            max_requests,
            status,
        } => {
            let r = Responder::bind(listen)?.answering(status)?;
            println!("loadgen responder listening sip/udp {}", r.local);
            let stop = AtomicBool::new(false);
            let stats = r
                .serve(
                    &stop,
                    Duration::from_secs_f64(max_secs.max(0.0)),
                    max_requests,
                )
                .map_err(|e| format!("responder: {e}"))?;
            eprintln!("loadgen responder: answered {:?}", stats);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// B/A for the figures worth comparing (missing or zero figures are left out).
fn compare_ratios(a: &Report, b: &Report) -> std::collections::BTreeMap<String, f64> {
    let mut m = std::collections::BTreeMap::new();
    let mut put = |k: String, x: f64, y: f64| {
        if x > 0.0 && y > 0.0 && y.is_finite() {
            m.insert(k, y / x);
        }
    };
    for (k, ra) in &a.methods {
        if let Some(rb) = b.methods.get(k) {
            put(
                format!("{k} achieved_rate"),
                ra.achieved_rate,
                rb.achieved_rate,
            );
            put(format!("{k} p50"), ra.latency_ms.p50, rb.latency_ms.p50);
            put(format!("{k} p99"), ra.latency_ms.p99, rb.latency_ms.p99);
        }
    }
    put("NOTIFY rate".into(), a.notify.rate, b.notify.rate);
    if let (Some(la), Some(lb)) = (&a.lists, &b.lists) {
        put("list NOTIFY rate".into(), la.notify_rate, lb.notify_rate);
        put(
            "list member parts rate".into(),
            la.parts_rate,
            lb.parts_rate,
        );
        put(
            "PUBLISH->list NOTIFY p99".into(),
            la.publish_to_list_notify_ms.p99,
            lb.publish_to_list_notify_ms.p99,
        );
    }
    put(
        "PUBLISH->NOTIFY p50".into(),
        a.notify.publish_to_notify_ms.p50,
        b.notify.publish_to_notify_ms.p50,
    );
    put(
        "PUBLISH->NOTIFY p99".into(),
        a.notify.publish_to_notify_ms.p99,
        b.notify.publish_to_notify_ms.p99,
    );
    put("error_pct".into(), a.error_pct, b.error_pct);
    if let (Some(sa), Some(sb)) = (&a.server, &b.server) {
        put(
            "server cpu_ms_per_1k_ops".into(),
            sa.cpu_ms_per_1k_ops,
            sb.cpu_ms_per_1k_ops,
        );
        put(
            "server rss_kb_max".into(),
            sa.rss_kb_max as f64,
            sb.rss_kb_max as f64,
        );
    }
    put(
        "loadgen cpu_pct".into(),
        a.loadgen.cpu_pct,
        b.loadgen.cpu_pct,
    );
    m
}
