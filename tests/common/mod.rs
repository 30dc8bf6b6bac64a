//! Test harness: runs the real `presenced` binary on loopback and talks SIP to it over real
//! sockets. Messages from the server are read with the small independent parser below, so a
//! malformed message fails the test that received it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A running server; stopped with SIGTERM when dropped.
pub struct Server {
    child: Child,
    /// The last SIP UDP listener printed.
    pub udp: SocketAddr,
    /// Every SIP UDP listener, in the order of `sip.listen`.
    pub udp_all: Vec<SocketAddr>,
    pub tcp: SocketAddr,
    /// The HTTP (XCAP) listener, from `presenced listening http ADDR` (or `https`).
    pub http: SocketAddr,
    /// The first SIP over TLS listener, from `presenced listening sip/tls ADDR`.
    pub tls: Option<SocketAddr>,
    pub dir: PathBuf,
    /// The data directory (inside `dir` unless given to [`Server::start_on`]).
    pub data: PathBuf,
    stderr_log: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("presenced-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Server {
    /// Start on free loopback ports with the built-in defaults.
    pub fn start() -> Server {
        Server::start_with("", &[])
    }

    /// Start with extra config (TOML text, may be empty) and extra arguments.
    pub fn start_with(config: &str, args: &[&str]) -> Server {
        Server::start_on(config, args, None)
    }

    /// Start with extra config and arguments on the data directory `data` (None: a fresh one
    /// inside the server's temporary directory). A given directory outlives the server, so a
    /// second server can start on it.
    pub fn start_on(config: &str, args: &[&str], data: Option<&std::path::Path>) -> Server {
        let dir = temp_dir("srv");
        let data = data.map_or_else(|| dir.join("data"), |d| d.to_owned());
        let cfg = dir.join("presenced.toml");
        // Tests of the other entities watch presentities that have no rules: everyone may
        // watch them, as on a server run with privacy.default = "allow". Privacy tests say
        // what they want in their own [privacy] table.
        let config = if config.contains("[privacy]") {
            config.to_owned()
        } else {
            format!("{config}\n[privacy]\ndefault = \"allow\"\n")
        };
        std::fs::write(&cfg, config).unwrap();
        let stderr_log = dir.join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_presenced"))
            .arg("--config")
            .arg(&cfg)
            .args([
                "--sip",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--log",
                "warn",
                "--data",
            ])
            .arg(&data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("start presenced");
        let stdout = child.stdout.take().unwrap();
        // Lines arrive through a channel so that a server that never gets ready fails the test at
        // the deadline instead of hanging it; the reader thread keeps draining stdout after.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut udp = None;
        let mut udp_all = Vec::new();
        let mut tcp = None;
        let mut http = None;
        let mut tls = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = child.kill();
                    panic!(
                        "presenced not ready ({e}): {}",
                        std::fs::read_to_string(&stderr_log).unwrap_or_default()
                    )
                }
            };
            if let Some(a) = line.strip_prefix("presenced listening sip/udp ") {
                udp = Some(a.parse().unwrap());
                udp_all.push(a.parse().unwrap());
            } else if let Some(a) = line.strip_prefix("presenced listening sip/tcp ") {
                tcp = Some(a.parse().unwrap());
            } else if let Some(a) = line
                .strip_prefix("presenced listening http ")
                .or_else(|| line.strip_prefix("presenced listening https "))
            {
                http = Some(a.parse().unwrap());
            } else if let Some(a) = line.strip_prefix("presenced listening sip/tls ") {
                tls = tls.or(Some(a.parse().unwrap()));
            } else if line == "presenced ready" {
                break;
            }
        }
        Server {
            child,
            udp: udp.expect("udp address"),
            udp_all,
            tcp: tcp.expect("tcp address"),
            http: http.expect("http address"),
            tls,
            dir,
            data,
            stderr_log,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Send SIGTERM and wait; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }

    /// Kill the process with SIGKILL (no chance to flush anything) and wait for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the server logged.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.alive() {
            self.stop();
        }
        // a failing test shows what the server said
        if std::thread::panicking() {
            eprintln!("--- presenced stderr ---\n{}", self.stderr());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The values of the headers called `name` (case-insensitive), in order.
fn headers_named<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A SIP message as the test sees it on the wire.
#[derive(Debug, Clone)]
pub struct Msg {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub raw: Vec<u8>,
}

impl Msg {
    /// Parse strictly: CRLF line ends, `Name: value` headers, Content-Length matching the body.
    pub fn parse(raw: &[u8]) -> Msg {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header end (CRLF CRLF)");
        let head = std::str::from_utf8(&raw[..end]).expect("head is UTF-8");
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap().to_owned();
        assert!(
            start.starts_with("SIP/2.0 ") || start.ends_with(" SIP/2.0"),
            "start line {start:?}"
        );
        let mut headers = Vec::new();
        for l in lines {
            assert!(
                !l.contains('\n') && !l.contains('\r'),
                "bare line end in {l:?}"
            );
            let (n, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("header line {l:?}"));
            assert!(!n.is_empty() && !n.contains(' '), "header name {n:?}");
            headers.push((n.to_owned(), v.trim().to_owned()));
        }
        let body = raw[end + 4..].to_vec();
        let m = Msg {
            start,
            headers,
            body,
            raw: raw.to_vec(),
        };
        let cl: usize = m
            .header("Content-Length")
            .expect("Content-Length")
            .parse()
            .expect("numeric Content-Length");
        assert_eq!(cl, m.body.len(), "Content-Length matches the body");
        m
    }

    /// Status code of a response.
    pub fn status(&self) -> u16 {
        assert!(
            self.start.starts_with("SIP/2.0 "),
            "not a response: {}",
            self.start
        );
        self.start[8..11].parse().unwrap()
    }

    /// Reason phrase of a response.
    pub fn reason(&self) -> &str {
        self.start.get(12..).unwrap_or("")
    }

    /// Method of a request.
    pub fn method(&self) -> &str {
        self.start.split(' ').next().unwrap()
    }

    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        headers_named(&self.headers, name).first().copied()
    }

    /// Every header with this name.
    pub fn all(&self, name: &str) -> Vec<&str> {
        headers_named(&self.headers, name)
    }

    /// Header as the text of the whole message (for error output).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// Unique tokens for Call-IDs, tags and branches.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A request under construction, with sensible defaults for every mandatory header.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    /// A request from `local` (the client's address, for Via) over `transport` (UDP/TCP).
    pub fn new(method: &str, uri: &str, local: SocketAddr, transport: &str) -> Req {
        let to = uri.to_owned();
        Req {
            method: method.into(),
            uri: uri.into(),
            headers: vec![
                (
                    "Via".into(),
                    format!(
                        "SIP/2.0/{transport} {local};branch=z9hG4bK{};rport",
                        unique("b")
                    ),
                ),
                ("Max-Forwards".into(), "70".into()),
                (
                    "From".into(),
                    format!("<sip:tester@example.com>;tag={}", unique("t")),
                ),
                ("To".into(), format!("<{to}>")),
                ("Call-ID".into(), unique("call")),
                ("CSeq".into(), format!("1 {method}")),
            ],
            body: Vec::new(),
        }
    }

    /// Replace (or add) a header.
    pub fn set(mut self, name: &str, value: &str) -> Req {
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(h) => h.1 = value.into(),
            None => self.headers.push((name.into(), value.into())),
        }
        self
    }

    /// Remove a header.
    pub fn without(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Set the body and its type.
    pub fn body(self, content_type: &str, body: &[u8]) -> Req {
        let mut r = self.set("Content-Type", content_type);
        r.body = body.to_vec();
        r
    }

    /// Value of a header.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The bytes on the wire (Content-Length added unless present).
    pub fn bytes(&self) -> Vec<u8> {
        let mut s = format!("{} {} SIP/2.0\r\n", self.method, self.uri);
        for (n, v) in &self.headers {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        if self.get("Content-Length").is_none() {
            s.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        s.push_str("\r\n");
        let mut b = s.into_bytes();
        b.extend_from_slice(&self.body);
        b
    }
}

/// Bursts in the tests must not be lost in the test's own socket: ask for 8 MB (forced past
/// rmem_max when running as root, as CI does).
fn grow_receive_buffer(sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let val: libc::c_int = 8 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: valid fd, pointer to a c_int of the stated size.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &val as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return;
        }
    }
}

/// A UDP SIP peer.
pub struct UdpPeer {
    pub sock: UdpSocket,
    pub server: SocketAddr,
}

impl UdpPeer {
    pub fn new(server: SocketAddr) -> UdpPeer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        grow_receive_buffer(&sock);
        UdpPeer { sock, server }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// A request with this peer's address in Via.
    pub fn req(&self, method: &str, uri: &str) -> Req {
        Req::new(method, uri, self.addr(), "UDP")
    }

    pub fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).unwrap();
    }

    /// The next message, or None after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Msg> {
        self.sock.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = vec![0u8; 65536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(Msg::parse(&buf[..n])),
            Err(_) => None,
        }
    }

    /// Send a request and wait for its final response (provisional ones skipped).
    pub fn call(&self, req: &Req) -> Msg {
        self.send(&req.bytes());
        final_response(req, |t| self.recv(t))
    }
}

/// Wait (up to 5 s) for the final response to `req` among the messages `recv` yields.
fn final_response(req: &Req, mut recv: impl FnMut(Duration) -> Option<Msg>) -> Msg {
    let call_id = req.get("Call-ID").unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(m) = recv(Duration::from_millis(500))
            && m.start.starts_with("SIP/2.0 ")
            && m.header("Call-ID") == Some(&call_id)
            && m.status() >= 200
        {
            return m;
        }
    }
    panic!("no final response to {} {}", req.method, call_id)
}

/// A SUBSCRIBE to `uri`'s presence from bob at `peer` (a fresh From tag, PIDF accepted).
pub fn presence_subscribe(peer: &UdpPeer, uri: &str, expires: u32) -> Req {
    peer.req("SUBSCRIBE", uri)
        .set(
            "From",
            &format!("<sip:bob@example.com>;tag={}", unique("w")),
        )
        .set("Event", "presence")
        .set("Accept", "application/pidf+xml")
        .set("Contact", &format!("<sip:bob@{}>", peer.addr()))
        .set("Expires", &expires.to_string())
}

/// A TCP SIP peer.
pub struct TcpPeer {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl TcpPeer {
    /// A peer on a connection someone else opened (accepted from a listener of ours).
    #[allow(dead_code)]
    pub fn from_stream(stream: TcpStream) -> TcpPeer {
        stream.set_nodelay(true).unwrap();
        TcpPeer {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn connect(server: SocketAddr) -> TcpPeer {
        let stream = TcpStream::connect(server).unwrap();
        stream.set_nodelay(true).unwrap();
        TcpPeer {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    pub fn req(&self, method: &str, uri: &str) -> Req {
        Req::new(method, uri, self.addr(), "TCP")
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next framed message, or None after `timeout` (or when the server closed).
    pub fn recv(&mut self, timeout: Duration) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let cl: usize = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("Content-Length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .expect("Content-Length on TCP");
                if self.buf.len() >= end + 4 + cl {
                    let raw: Vec<u8> = self.buf.drain(..end + 4 + cl).collect();
                    return Some(Msg::parse(&raw));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return None,
            }
        }
    }

    /// True when the server has closed the connection (reads EOF within `timeout`).
    pub fn closed_by_server(&mut self, timeout: Duration) -> bool {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let mut chunk = [0u8; 1024];
        matches!(self.stream.read(&mut chunk), Ok(0))
            || matches!(self.stream.read(&mut chunk), Ok(0))
    }

    pub fn call(&mut self, req: &Req) -> Msg {
        self.send(&req.bytes());
        final_response(req, |t| self.recv(t))
    }
}

/// For a test whose tool or platform feature is missing: under CI (`CI` set, as `.ci/run`
/// does) the test fails with `why`; elsewhere it says loudly that it is skipped and the caller
/// returns.
pub fn skip_unless_ci(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}; CI must provide it");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// Validate an XML document with the repository's schemas (`tests/schemas`); panics with
/// xmllint's complaint when invalid.
pub fn assert_valid_xml(doc: &[u8]) {
    presenced_systems::schema_check::assert_valid(doc);
}

/// The response a client sends to a request it received (e.g. our 200 to a NOTIFY).
pub fn response_to(req: &Msg, code: u16, reason: &str) -> Vec<u8> {
    let mut s = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.all("Via") {
        s.push_str(&format!("Via: {v}\r\n"));
    }
    for h in ["From", "To", "Call-ID", "CSeq"] {
        s.push_str(&format!("{h}: {}\r\n", req.header(h).unwrap()));
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s.into_bytes()
}

/// A small PIDF document with one tuple.
pub fn pidf(entity: &str, tuple: &str, basic: &str, note: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{entity}\">\
<tuple id=\"{tuple}\"><status><basic>{basic}</basic></status><note>{note}</note></tuple></presence>"
    )
    .into_bytes()
}

/// The `tag` parameter of a From/To value.
pub fn tag_of(v: &str) -> Option<String> {
    let after = v.rsplit_once('>').map_or(v, |(_, a)| a);
    after
        .split(';')
        .find_map(|p| p.trim().strip_prefix("tag=").map(str::to_owned))
}

/// An HTTP response as an XCAP test sees it.
#[derive(Debug, Clone)]
pub struct HttpResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResp {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        headers_named(&self.headers, name).first().copied()
    }

    /// Every header with this name.
    pub fn all(&self, name: &str) -> Vec<&str> {
        headers_named(&self.headers, name)
    }

    /// The ETag header, which must be there.
    pub fn etag(&self) -> String {
        self.header("ETag")
            .unwrap_or_else(|| panic!("no ETag in {self:?}"))
            .to_owned()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking XCAP client over a real HTTP stack (ureq), answering digest challenges with an
/// independent implementation (the `digest_auth` crate).
pub struct Xcap {
    agent: ureq::Agent,
    pub base: String,
    /// (username, password, "SHA-256" or "MD5")
    pub creds: Option<(String, String, &'static str)>,
    /// Sent with every request (e.g. an asserted identity).
    pub extra: Vec<(String, String)>,
}

impl Xcap {
    /// A client of the server at `addr`.
    pub fn new(addr: SocketAddr) -> Xcap {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Xcap {
            agent,
            base: format!("http://{addr}"),
            creds: None,
            extra: Vec::new(),
        }
    }

    /// Answer 401s as this user, with this digest algorithm.
    pub fn with_auth(mut self, user: &str, password: &str, alg: &'static str) -> Xcap {
        self.creds = Some((user.into(), password.into(), alg));
        self
    }

    /// Send `header` with every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Xcap {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// One exchange, no authentication retry. `path` is the request target (already
    /// percent-encoded).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> HttpResp {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (n, v) in &self.extra {
            b = b.header(n.as_str(), v.as_str());
        }
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let resp = match body {
            Some((ct, bytes)) => self
                .agent
                .run(b.header("Content-Type", ct).body(bytes.to_vec()).unwrap()),
            None => self.agent.run(b.body(()).unwrap()),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let status = resp.status().as_u16();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            resp.body_mut().read_to_vec().unwrap()
        };
        HttpResp {
            status,
            headers,
            body,
        }
    }

    /// The Authorization value answering the challenge for `alg` among `challenges`.
    pub fn authorization(
        challenges: &[&str],
        alg: &str,
        user: &str,
        password: &str,
        method: &str,
        path: &str,
    ) -> String {
        let ch = challenges
            .iter()
            .find(|c| c.contains(&format!("algorithm={alg}")))
            .unwrap_or_else(|| panic!("no {alg} challenge in {challenges:?}"));
        let mut prompt = digest_auth::parse(ch).expect("challenge parses");
        let ctx = digest_auth::AuthContext::new_with_method(
            user,
            password,
            path,
            None::<&[u8]>,
            digest_auth::HttpMethod(method.to_owned().into()),
        );
        prompt.respond(&ctx).expect("digest").to_header_string()
    }

    /// A request, answering a 401 once with the client's credentials (if any).
    pub fn req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> HttpResp {
        let r = self.raw(method, path, headers, body);
        let Some((user, pw, alg)) = &self.creds else {
            return r;
        };
        if r.status != 401 {
            return r;
        }
        let auth = Xcap::authorization(&r.all("WWW-Authenticate"), alg, user, pw, method, path);
        let mut h = headers.to_vec();
        h.push(("Authorization", &auth));
        self.raw(method, path, &h, body)
    }

    pub fn get(&self, path: &str) -> HttpResp {
        self.req("GET", path, &[], None)
    }

    pub fn put(&self, path: &str, content_type: &str, body: &[u8]) -> HttpResp {
        self.req("PUT", path, &[], Some((content_type, body)))
    }

    pub fn delete(&self, path: &str) -> HttpResp {
        self.req("DELETE", path, &[], None)
    }
}

/// Run `presenced` with these arguments (e.g. `user add ...`) and return (exit code, stdout,
/// stderr).
pub fn presenced(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_presenced"))
        .args(args)
        .output()
        .expect("run presenced");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Add an XCAP user to the data directory `data` with the CLI.
pub fn add_user(data: &std::path::Path, uri: &str, password: &str) {
    let d = data.to_str().unwrap();
    let (code, out, err) = presenced(&["user", "add", uri, "--password", password, "--data", d]);
    assert_eq!(code, 0, "user add failed: {out}{err}");
}

/// A test document of an application usage, from `tests/schemas/examples`.
pub fn example(name: &str) -> Vec<u8> {
    presenced_systems::schema_check::example(name)
}

/// RFC 3261 §8.2.6.2: a response copies Call-ID, CSeq, From and the Via headers (the top one
/// with its branch; received/rport may be added, RFC 3581), and To gets a tag (the one the
/// request carried, if any).
pub fn assert_echoes(resp: &Msg, req: &Req) {
    for name in ["Call-ID", "CSeq", "From"] {
        assert_eq!(
            resp.header(name),
            req.get(name),
            "{name} echoed:\n{}",
            resp.text()
        );
    }
    let via = resp.header("Via").expect("Via");
    let req_via = req.get("Via").unwrap();
    let (sent_by, branch) = req_via
        .split_once(";branch=")
        .expect("request Via has a branch");
    let branch = branch.split(';').next().unwrap();
    assert!(
        via.starts_with(sent_by) && via.contains(&format!(";branch={branch}")),
        "Via {via:?} echoes {req_via:?}"
    );
    let to = resp.header("To").expect("To");
    let req_to = req.get("To").unwrap();
    if req_to.contains(";tag=") {
        assert_eq!(to, req_to, "To (with its tag) echoed unchanged");
    } else {
        assert!(to.starts_with(req_to), "To {to:?} echoes {req_to:?}");
        let tag = to.split(";tag=").nth(1).unwrap_or("");
        assert!(!tag.is_empty(), "To tag added: {to}");
    }
}

/// Fail with the response's body and headers unless it has `status`.
pub fn assert_status(r: &HttpResp, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {} {:?}", r.text(), r.headers);
}

/// An rls-services document with one service `uri` listing sip:carol@example.com for presence.
pub fn rls_services_doc(service: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\" xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\"><service uri=\"{service}\"><list name=\"l\"><rl:entry uri=\"sip:carol@example.com\"/></list><packages><package>presence</package></packages></service></rls-services>"
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Privacy and watcher information (tests/privacy.rs, tests/winfo.rs)

/// The content type of pres-rules documents (RFC 5025 §9.3).
pub const AUTH_POLICY: &str = "application/auth-policy+xml";

/// The XCAP path of `owner`'s pres-rules document (`users/<owner>/index`).
pub fn pres_rules_path(owner: &str) -> String {
    format!("/xcap-root/pres-rules/users/{owner}/index")
}

/// A pres-rules document holding `rules` (the text of `<cr:rule>` elements). The prefixes `cr`
/// (common-policy), `pr` (pres-rules) and `ocp` (OMA common-policy) are declared.
pub fn pres_rules_doc(rules: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cr:ruleset xmlns:cr=\"urn:ietf:params:xml:ns:common-policy\" \
xmlns:pr=\"urn:ietf:params:xml:ns:pres-rules\" xmlns:ocp=\"urn:oma:xml:xdm:common-policy\">{rules}</cr:ruleset>"
    )
    .into_bytes()
}

/// One `<cr:rule>`: its conditions (inner XML of `<cr:conditions>`, omitted when empty), its
/// `sub-handling` (omitted when None) and its transformations (inner XML, omitted when empty).
pub fn pres_rule(
    id: &str,
    conditions: &str,
    handling: Option<&str>,
    transformations: &str,
) -> String {
    let mut r = format!("<cr:rule id=\"{id}\">");
    if !conditions.is_empty() {
        r += &format!("<cr:conditions>{conditions}</cr:conditions>");
    }
    if let Some(h) = handling {
        r += &format!("<cr:actions><pr:sub-handling>{h}</pr:sub-handling></cr:actions>");
    }
    if !transformations.is_empty() {
        r += &format!("<cr:transformations>{transformations}</cr:transformations>");
    }
    r + "</cr:rule>"
}

/// An identity condition naming exactly `uri`.
pub fn identity_one(uri: &str) -> String {
    format!("<cr:identity><cr:one id=\"{uri}\"/></cr:identity>")
}

/// Transformations that grant everything (RFC 5025: all services, persons and devices, all
/// attributes).
pub const PROVIDE_EVERYTHING: &str = "<pr:provide-services><pr:all-services/></pr:provide-services>\
<pr:provide-persons><pr:all-persons/></pr:provide-persons>\
<pr:provide-devices><pr:all-devices/></pr:provide-devices>\
<pr:provide-all-attributes/>";

/// PUT `owner`'s pres-rules document holding `rules`; panics unless the server stored it.
pub fn put_pres_rules(xcap: &Xcap, owner: &str, rules: &str) {
    let r = xcap.put(&pres_rules_path(owner), AUTH_POLICY, &pres_rules_doc(rules));
    assert!(
        r.status == 200 || r.status == 201,
        "PUT pres-rules: {} {}",
        r.status,
        r.text()
    );
}

/// A subscriber in one dialog over UDP, of any event package.
pub struct Subscriber {
    pub peer: UdpPeer,
    pub sub: Req,
    pub to_tag: String,
    pub cseq: u32,
}

impl Subscriber {
    /// SUBSCRIBE from `from` (a URI, or a name-addr without tag) to `uri` for `event`, accepting
    /// `accept`; `f` may change the request (extra headers). Returns the subscriber and the
    /// final response.
    pub fn subscribe(
        server: &Server,
        uri: &str,
        from: &str,
        event: &str,
        accept: &str,
        expires: u32,
        f: impl FnOnce(Req) -> Req,
    ) -> (Subscriber, Msg) {
        let peer = UdpPeer::new(server.udp);
        let from = if from.contains('<') {
            from.to_owned()
        } else {
            format!("<{from}>")
        };
        let user = unique("c");
        let sub = peer
            .req("SUBSCRIBE", uri)
            .set("From", &format!("{from};tag={}", unique("w")))
            .set("Event", event)
            .set("Accept", accept)
            .set("Contact", &format!("<sip:{user}@{}>", peer.addr()))
            .set("Expires", &expires.to_string());
        let sub = f(sub);
        let resp = peer.call(&sub);
        let to_tag = resp.header("To").and_then(tag_of).unwrap_or_default();
        (
            Subscriber {
                peer,
                sub,
                to_tag,
                cseq: 1,
            },
            resp,
        )
    }

    /// The next NOTIFY of this dialog, without answering it; its body (PIDF or watcherinfo)
    /// validated against the schemas.
    pub fn next_notify(&self, within: Duration) -> Option<Msg> {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let m = self.peer.recv(left)?;
            if !m.start.starts_with("NOTIFY ") {
                continue;
            }
            assert_eq!(
                m.header("Call-ID"),
                self.sub.get("Call-ID"),
                "NOTIFY in our dialog:\n{}",
                m.text()
            );
            let event = self
                .sub
                .get("Event")
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim();
            assert!(
                m.header("Contact").is_some(),
                "NOTIFY carries Contact (RFC 6665 §4.1.2.1):\n{}",
                m.text()
            );
            assert_eq!(
                m.header("Event")
                    .map(|e| e.split(';').next().unwrap().trim()),
                Some(event),
                "{}",
                m.text()
            );
            assert!(m.header("Subscription-State").is_some(), "{}", m.text());
            if !m.body.is_empty() {
                let ct = m.header("Content-Type").expect("Content-Type with a body");
                assert!(
                    ct.eq_ignore_ascii_case(self.sub.get("Accept").unwrap()),
                    "Content-Type {ct} is what we accept:\n{}",
                    m.text()
                );
                assert_valid_xml(&m.body);
            }
            return Some(m);
        }
        None
    }

    /// The next NOTIFY (within 5 s), answered 200.
    pub fn notify(&self) -> Msg {
        let n = self
            .next_notify(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("a NOTIFY for {}", self.sub.get("From").unwrap()));
        self.peer.send(&response_to(&n, 200, "OK"));
        n
    }

    /// Fails if a NOTIFY arrives within `within`.
    pub fn assert_no_notify(&self, within: Duration) {
        if let Some(n) = self.next_notify(within) {
            panic!("unexpected NOTIFY:\n{}", n.text());
        }
    }

    /// A SUBSCRIBE in the dialog (refresh, or unsubscribe with 0).
    pub fn resubscribe(&mut self, expires: u32) -> Msg {
        self.cseq += 1;
        let to = format!("{};tag={}", self.sub.get("To").unwrap(), self.to_tag);
        let r = self
            .sub
            .clone()
            .set("To", &to)
            .set("CSeq", &format!("{} SUBSCRIBE", self.cseq))
            .set(
                "Via",
                &format!(
                    "SIP/2.0/UDP {};branch=z9hG4bK{};rport",
                    self.peer.addr(),
                    unique("r")
                ),
            )
            .set("Expires", &expires.to_string());
        self.peer.call(&r)
    }
}

/// The `Subscription-State` of a NOTIFY, split into its value and parameters.
pub fn subscription_state(n: &Msg) -> (String, Vec<(String, String)>) {
    let v = n.header("Subscription-State").expect("Subscription-State");
    let mut parts = v.split(';').map(str::trim);
    let state = parts.next().unwrap().to_ascii_lowercase();
    let params = parts
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_owned()),
            None => (p.to_ascii_lowercase(), String::new()),
        })
        .collect();
    (state, params)
}

/// A PUBLISH of `body` (PIDF) for `aor`'s presence from `peer`; returns the response.
pub fn publish_pidf(peer: &UdpPeer, aor: &str, body: &[u8]) -> Msg {
    let r = peer
        .req("PUBLISH", aor)
        .set("From", &format!("<{aor}>;tag={}", unique("p")))
        .set("Event", "presence")
        .set("Expires", "3600")
        .body("application/pidf+xml", body);
    let resp = peer.call(&r);
    assert_eq!(resp.status(), 200, "PUBLISH: {}", resp.text());
    resp
}

/// An element of a parsed XML document (namespace-resolved), for assertions on bodies that do
/// not depend on the prefixes a server chose.
#[derive(Debug, Clone, Default)]
pub struct XmlEl {
    pub ns: String,
    pub local: String,
    /// Attributes without a prefix (and not `xmlns`), by local name.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<XmlEl>,
    /// The element's own text (not its children's), trimmed.
    pub text: String,
}

impl XmlEl {
    /// An unprefixed attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The children `{ns}local`.
    pub fn kids<'a>(&'a self, ns: &'a str, local: &'a str) -> impl Iterator<Item = &'a XmlEl> {
        self.children
            .iter()
            .filter(move |c| c.ns == ns && c.local == local)
    }

    /// Every element `{ns}local` at or below this one.
    pub fn all<'a>(&'a self, ns: &str, local: &str) -> Vec<&'a XmlEl> {
        let mut out = Vec::new();
        fn walk<'a>(e: &'a XmlEl, ns: &str, local: &str, out: &mut Vec<&'a XmlEl>) {
            if e.ns == ns && e.local == local {
                out.push(e);
            }
            for c in &e.children {
                walk(c, ns, local, out);
            }
        }
        walk(self, ns, local, &mut out);
        out
    }

    /// Whether an element `{ns}local` is at or below this one.
    pub fn has(&self, ns: &str, local: &str) -> bool {
        !self.all(ns, local).is_empty()
    }
}

/// Parse `doc` into its root [`XmlEl`] (panics when not namespace-well-formed).
pub fn parse_xml(doc: &[u8]) -> XmlEl {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    fn ns_of(r: &ResolveResult<'_>) -> String {
        match r {
            ResolveResult::Bound(n) => n.0.to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => panic!("unknown prefix {p:?}"),
        }
    }
    let text = std::str::from_utf8(doc).expect("UTF-8 document");
    let mut reader = quick_xml::reader::NsReader::from_str(text);
    let mut stack: Vec<XmlEl> = Vec::new();
    let mut root = None;
    loop {
        let (res, event) = reader
            .read_resolved_event()
            .unwrap_or_else(|e| panic!("not well-formed ({e}):\n{text}"));
        let ns = ns_of(&res);
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let mut el = XmlEl {
                    ns,
                    local: e.local_name().into_inner().to_owned(),
                    ..XmlEl::default()
                };
                for a in e.attributes() {
                    let a = a.expect("attribute");
                    let key = a.key.0.to_owned();
                    if key == "xmlns" || key.contains(':') {
                        continue;
                    }
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map(|v| v.into_owned())
                        .unwrap_or_else(|_| a.value.to_string());
                    el.attrs.push((key, v));
                }
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(p) => p.children.push(el),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let mut el = stack.pop().expect("balanced");
                el.text = el.text.trim().to_owned();
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let name = r.into_inner();
                    top.text.push_str(match &*name {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "?",
                    });
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c.xml10_content());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    root.expect("a root element")
}
