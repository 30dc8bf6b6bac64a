//! CPU and memory of a process tree from /proc (the server's, by `--server-pid`), and
//! loadgen's own CPU from getrusage.

use std::time::Duration;

/// CPU time and resident memory of a process and all its descendants at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// user + system CPU, all threads, all processes of the tree.
    pub cpu: Duration,
    /// Sum of RSS over the tree, KiB.
    pub rss_kb: u64,
    /// Processes found.
    pub procs: u32,
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

fn page_kb() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 / 1024 } else { 4 }
}

/// (ppid, utime+stime ticks, rss pages) from /proc/PID/stat.
fn read_stat(pid: u32) -> Option<(u32, u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name may hold spaces and parentheses: fields start after the last ')'
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // rest[0] is field 3 (state); ppid = field 4, utime 14, stime 15, rss 24
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let rss: u64 = f.get(21)?.parse().ok()?;
    Some((ppid, utime + stime, rss))
}

/// Sample `pid` and its descendants; `None` when the process is gone.
pub fn sample_tree(pid: u32) -> Option<Sample> {
    let (_, ticks, rss) = read_stat(pid)?;
    let mut total_ticks = ticks;
    let mut total_rss = rss;
    let mut procs = 1;
    // children: walk /proc once, then follow the parent links
    let mut all: Vec<(u32, u32, u64, u64)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok())
                && p != pid
                && let Some((pp, t, r)) = read_stat(p)
            {
                all.push((p, pp, t, r));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for &(p, pp, t, r) in &all {
            if pp == parent {
                tree.push(p);
                total_ticks += t;
                total_rss += r;
                procs += 1;
            }
        }
        i += 1;
    }
    Some(Sample {
        cpu: Duration::from_nanos(total_ticks * 1_000_000_000 / clock_ticks()),
        rss_kb: total_rss * page_kb(),
        procs,
    })
}

/// This process's user + system CPU time.
pub fn self_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_self() {
        let s = sample_tree(std::process::id()).unwrap();
        assert!(s.rss_kb > 0);
        assert!(s.procs >= 1);
        assert!(sample_tree(u32::MAX - 1).is_none());
        let _ = self_cpu();
    }
}
