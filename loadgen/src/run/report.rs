//! What a run shows and reports: a progress bar while it plays, the server's RSS and process
//! count sampled once a second, and at the end the report of the run's counters with loadgen's
//! own cost and the server's CPU and memory from /proc.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::schedule::Phase;
use super::{MS, Options, Runner, SEC};
use crate::procstat::{self, Sample};
use crate::scenario::Scenario;
use crate::stats::{Report, SelfReport, ServerReport, Stats};

/// Watches one run: the progress bar and the samples of the server and of loadgen itself.
pub(super) struct Monitor {
    pb: ProgressBar,
    server_pid: Option<u32>,
    server_start: Option<Sample>,
    cpu_start: Duration,
    /// Run clock (ns) of the next progress update, and of the next server sample.
    next_ui: u64,
    next_sample: u64,
    rss_max: u64,
    procs: u32,
    /// The server's CPU when the steady phase started and when it ended.
    steady_cpu: [Option<Duration>; 2],
}

impl Monitor {
    /// Take the starting samples (an error when `--server-pid` names no process) and set up
    /// the progress bar.
    pub(super) fn start(scn: &Scenario, opts: &Options) -> Result<Monitor, String> {
        let server_start = opts.server_pid.and_then(procstat::sample_tree);
        if let (Some(pid), None) = (opts.server_pid, server_start) {
            return Err(format!("--server-pid {pid}: no such process"));
        }
        let cpu_start = procstat::self_cpu();
        Ok(Monitor {
            pb: progress_bar(scn, opts),
            server_pid: opts.server_pid,
            server_start,
            cpu_start,
            next_ui: 0,
            next_sample: 0,
            rss_max: server_start.map_or(0, |s| s.rss_kb),
            procs: server_start.map_or(0, |s| s.procs),
            steady_cpu: [None, None],
        })
    }

    /// When the run must wake up next to update the display.
    pub(super) fn next_update(&self) -> u64 {
        self.next_ui
    }

    /// Update the display every 250 ms, and sample the server at most once a second and as
    /// the steady phase starts and ends.
    pub(super) fn update(&mut self, now: u64, r: &Runner<'_>) {
        let edge = match r.phase {
            Phase::Steady => 0,
            p if p > Phase::Steady => 1,
            _ => 2,
        };
        if let (Some(pid), Some(None)) = (self.server_pid, self.steady_cpu.get(edge)) {
            self.steady_cpu[edge] = procstat::sample_tree(pid).map(|s| s.cpu);
        }
        if now < self.next_ui {
            return;
        }
        self.next_ui = now + 250 * MS;
        self.pb.set_position(now / MS);
        let st = &r.stats;
        let ok: u64 = st.ops.iter().map(|o| o.ok).sum();
        let bad: u64 = st.ops.iter().map(|o| o.failed + o.timeouts).sum();
        self.pb.set_message(format!(
            "{:?} sent {} ok {} err {} notify {} inflight {}",
            r.phase, r.requests_started, ok, bad, st.notify.received, r.inflight
        ));
        if let Some(pid) = self.server_pid
            && now >= self.next_sample
            && let Some(s) = procstat::sample_tree(pid)
        {
            self.next_sample = now + SEC;
            self.rss_max = self.rss_max.max(s.rss_kb);
            self.procs = self.procs.max(s.procs);
        }
    }

    /// The run has stopped playing: take the bar off the terminal.
    pub(super) fn stop(&self) {
        self.pb.finish_and_clear();
    }

    /// The report of a run that ended at `end` (run clock, ns), on sockets with the given
    /// (receive, send) buffer sizes.
    pub(super) fn report(
        &self,
        r: &Runner<'_>,
        end: u64,
        opts: &Options,
        bufs: (usize, usize),
    ) -> Report {
        let cpu = procstat::self_cpu().saturating_sub(self.cpu_start);
        let wall = end as f64 / 1e9;
        let mut rep = Report {
            scenario: r.scn.name.clone(),
            target: opts.target.to_string(),
            wall_secs: wall,
            cut_short: r.cut_short.clone(),
            ..Report::default()
        };
        rep.fill(&r.stats, r.steady_span);
        if r.auth.is_some() {
            rep.fill_auth(&r.stats);
        }
        rep.rules = r.rules.clone();
        rep.lists = r.lists.as_ref().map(|l| {
            let mut x = l.written.clone();
            x.fill(&r.stats.lists, r.steady_span);
            x
        });
        rep.loadgen = self_report(&r.stats, cpu, wall, r.scn.run.sockets, bufs);
        if let Some(e) = &r.stats.first_parse_error {
            eprintln!("loadgen: first unreadable datagram: {e}");
        }
        rep.server = self.server_report(rep.server_ops(), wall);
        if let (Some(s), [Some(a), Some(b)], Some((t0, t1))) =
            (&mut rep.server, self.steady_cpu, r.steady_span)
        {
            let cpu = b.saturating_sub(a).as_secs_f64();
            s.steady_cpu_secs = cpu;
            s.steady_cpu_pct = cpu * 100.0 / ((t1.saturating_sub(t0)) as f64 / 1e9).max(1e-9);
            let n = rep.notify.steady_received;
            s.cpu_ms_per_1k_steady_notifies = if n > 0 { cpu * 1e6 / n as f64 } else { 0.0 };
        }
        rep
    }

    /// The server's cost over the run, when it was sampled.
    fn server_report(&self, ops: u64, wall: f64) -> Option<ServerReport> {
        let (Some(pid), Some(s0)) = (self.server_pid, self.server_start) else {
            return None;
        };
        let s1 = procstat::sample_tree(pid).unwrap_or(s0);
        let cpu = s1.cpu.saturating_sub(s0.cpu).as_secs_f64();
        Some(ServerReport {
            pid,
            processes: self.procs.max(s1.procs),
            cpu_secs: cpu,
            cpu_pct: cpu * 100.0 / wall.max(1e-9),
            rss_kb_start: s0.rss_kb,
            rss_kb_end: s1.rss_kb,
            rss_kb_max: self.rss_max.max(s1.rss_kb),
            ops,
            cpu_ms_per_1k_ops: if ops > 0 {
                cpu * 1000.0 * 1000.0 / ops as f64
            } else {
                0.0
            },
            ..ServerReport::default()
        })
    }
}

/// A progress bar on stderr when asked for, else a hidden one.
fn progress_bar(scn: &Scenario, opts: &Options) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(
        Some((scn.estimated_secs() * 1000.0) as u64),
        ProgressDrawTarget::stderr(),
    );
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_prefix(opts.label.clone());
    pb
}

/// loadgen's own cost: `cpu` spent over `wall` seconds on `sockets` sockets.
fn self_report(
    s: &Stats,
    cpu: Duration,
    wall: f64,
    sockets: u16,
    (rcv, snd): (usize, usize),
) -> SelfReport {
    let msgs = s.msgs_sent + s.msgs_received;
    SelfReport {
        cpu_secs: cpu.as_secs_f64(),
        cpu_pct: cpu.as_secs_f64() * 100.0 / wall.max(1e-9),
        msgs_sent: s.msgs_sent,
        msgs_received: s.msgs_received,
        msgs_per_sec: msgs as f64 / wall.max(1e-9),
        msgs_per_cpu_sec: msgs as f64 / cpu.as_secs_f64().max(1e-9),
        sockets,
        socket_rcvbuf: rcv,
        socket_sndbuf: snd,
        parse_errors: s.parse_errors,
        send_errors: s.send_errors,
        stray_responses: s.stray_responses,
        publish_coalesced: s.publish_coalesced,
    }
}
