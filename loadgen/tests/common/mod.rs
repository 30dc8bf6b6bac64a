//! The real presenced for loadgen's integration tests: found where `cargo build -p presenced`
//! put it, started on free loopback ports, stopped (and its data removed) when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// presenced as built by `cargo build -p presenced` (debug first, then release).
pub fn presenced_binary() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join("presenced"))
        .find(|p| p.is_file())
}

pub struct Server(Child, PathBuf);

impl Server {
    /// The server's process id (for loadgen's `--server-pid`).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                let _ = std::fs::remove_dir_all(&self.1);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// A fresh presenced: the server, its SIP (UDP and TCP) address and its HTTP address.
#[allow(dead_code)]
pub fn start_presenced(bin: &PathBuf) -> (Server, SocketAddr, SocketAddr) {
    start_presenced_with(bin, |_, _| Vec::new())
}

/// A fresh presenced after `prepare` has seen its (empty) working directory and data
/// directory (to import users, write a configuration...) and said which arguments to add.
#[allow(dead_code)]
pub fn start_presenced_with(
    bin: &PathBuf,
    prepare: impl FnOnce(&Path, &Path) -> Vec<std::ffi::OsString>,
) -> (Server, SocketAddr, SocketAddr) {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("loadgen-smoke-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let extra = prepare(&dir, &dir.join("data"));
    let mut child = Command::new(bin)
        .args(extra)
        .args([
            "--sip",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--log",
            "warn",
            // the watchers have no pres-rules: let everyone watch, as a server without privacy
            "--privacy-default",
            "allow",
            "--data",
        ])
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start presenced");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child, dir);
    // lines come through a channel so that a server that never gets ready fails the test at
    // the deadline instead of hanging it
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut udp, mut http) = (None, None);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("presenced ready within 30 s");
        if let Some(a) = line.strip_prefix("presenced listening sip/udp ") {
            udp = Some(a.parse().unwrap());
        } else if let Some(a) = line.strip_prefix("presenced listening http ") {
            http = Some(a.parse().unwrap());
        } else if line == "presenced ready" {
            break;
        }
    }
    (
        server,
        udp.expect("presenced printed its UDP address"),
        http.expect("presenced printed its HTTP address"),
    )
}
