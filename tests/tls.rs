//! SIP and XCAP over TLS (RFC 3261 §26, RFC 5630; RFC 2818), end to end with certificates made
//! at run time (rcgen) and a real TLS client stack (rustls): a subscription over TLS gets its
//! NOTIFYs back over the same connection, XCAP is served over HTTPS, client certificates are
//! checked against the configured CA, and bad key material stops the start with its name.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Msg, Req, Server, pidf, temp_dir, unique};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const ALICE: &str = "sip:alice@example.com";

/// A test CA, the server's certificate (localhost, 127.0.0.1) and a client's, as PEM files.
struct Pki {
    dir: PathBuf,
    ca_der: CertificateDer<'static>,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: Vec<u8>,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    fn new() -> Pki {
        let dir = temp_dir("pki");
        let ca = ca("presenced test CA");
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut cp = CertificateParams::new(vec!["core.example.com".to_owned()]).unwrap();
        cp.distinguished_name
            .push(DnType::CommonName, "core.example.com");
        let client = cp.signed_by(&client_key, &ca).unwrap();
        std::fs::write(dir.join("chain.pem"), server.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), server_key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki {
            dir,
            ca_der: ca.der().clone(),
            client_chain: vec![client.der().clone()],
            client_key: client_key.serialize_der(),
        }
    }

    fn config(&self, client_ca: bool) -> String {
        let p = |f: &str| self.dir.join(f).display().to_string();
        format!(
            "[sip]\ntls_listen = [\"127.0.0.1:0\"]\n[http]\ntls = true\n[tls]\ncertificate = \"{}\"\n\
private_key = \"{}\"\nclient_ca = \"{}\"\n",
            p("chain.pem"),
            p("key.pem"),
            if client_ca {
                p("ca.pem")
            } else {
                String::new()
            }
        )
    }

    /// A client trusting the test CA, presenting `cert` (chain and PKCS#8 key) if given.
    fn client(
        &self,
        cert: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        Arc::new(match cert {
            None => b.with_no_client_auth(),
            Some((chain, key)) => b
                .with_client_auth_cert(chain, PrivateKeyDer::Pkcs8(key.into()))
                .unwrap(),
        })
    }
}

/// A TLS connection to presenced, SIP messages framed by Content-Length.
struct TlsPeer {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl TlsPeer {
    fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<TlsPeer> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_millis(200)))?;
        let conn =
            rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap())
                .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // finish the handshake now (a refused certificate shows here)
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(TlsPeer {
            tls,
            buf: Vec::new(),
        })
    }

    fn local(&self) -> SocketAddr {
        self.tls.sock.local_addr().unwrap()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).unwrap();
        self.tls.flush().unwrap();
    }

    /// The next SIP message within `within`.
    fn recv(&mut self, within: Duration) -> Option<Msg> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if self.buf.len() >= end + 4 + len {
                    let m: Vec<u8> = self.buf.drain(..end + 4 + len).collect();
                    return Some(Msg::parse(&m));
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            let mut chunk = [0u8; 8192];
            match self.tls.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return None,
            }
        }
    }

    /// Send `req` and wait for its final response.
    fn call(&mut self, req: &Req) -> Msg {
        self.send(&req.bytes());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(m) = self.recv(Duration::from_millis(500))
                && m.start.starts_with("SIP/2.0 ")
                && m.status() >= 200
            {
                return m;
            }
        }
        panic!("no final response to {}", req.method)
    }

    fn req(&self, method: &str, uri: &str) -> Req {
        Req::new(method, uri, self.local(), "TLS")
    }
}

/// One HTTPS request (HTTP/1.1, Connection: close); (status, body).
fn https(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> (u16, Vec<u8>) {
    let mut p = TlsPeer::connect(addr, config).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some((ct, b)) = body {
        req.push_str(&format!(
            "Content-Type: {ct}\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some((_, b)) = body {
        bytes.extend_from_slice(b);
    }
    p.send(&bytes);
    let mut all = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let mut chunk = [0u8; 8192];
        match p.tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&all).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP response: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.as_bytes().to_vec())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn sip_and_xcap_over_tls_with_generated_certificates() {
    let pki = Pki::new();
    let s = Server::start_with(&pki.config(false), &[]);
    let addr = s.tls.expect("presenced listening sip/tls");
    let client = pki.client(None);

    // alice publishes over TLS
    let mut alice = TlsPeer::connect(addr, client.clone()).unwrap();
    let r = alice
        .req("PUBLISH", ALICE)
        .set("From", &format!("<{ALICE}>;tag={}", unique("p")))
        .set("Event", "presence")
        .set("Expires", "600")
        .body(
            "application/pidf+xml",
            &pidf(ALICE, "t1", "open", "over tls"),
        );
    let resp = alice.call(&r);
    assert_eq!(resp.status(), 200, "{}", resp.text());

    // bob subscribes over TLS: the 200's Contact and the NOTIFY say TLS, and the NOTIFY comes
    // back over bob's own connection
    let mut bob = TlsPeer::connect(addr, client.clone()).unwrap();
    let contact = format!("<sip:bob@{};transport=tls>", bob.local());
    let r = bob
        .req("SUBSCRIBE", ALICE)
        .set(
            "From",
            &format!("<sip:bob@example.com>;tag={}", unique("w")),
        )
        .set("Event", "presence")
        .set("Accept", "application/pidf+xml")
        .set("Contact", &contact)
        .set("Expires", "600");
    let resp = bob.call(&r);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    assert!(
        resp.header("Contact")
            .is_some_and(|c| c.contains(";transport=tls")),
        "{}",
        resp.text()
    );
    let n = bob
        .recv(Duration::from_secs(5))
        .expect("a NOTIFY over the TLS connection");
    assert!(n.start.starts_with("NOTIFY "), "{}", n.text());
    assert!(
        n.header("Via")
            .is_some_and(|v| v.starts_with("SIP/2.0/TLS ")),
        "{}",
        n.text()
    );
    assert!(
        String::from_utf8_lossy(&n.body).contains("over tls"),
        "{}",
        n.text()
    );

    // XCAP over HTTPS: a document stored and read back
    let (status, _) = https(s.http, client.clone(), "GET", "/healthz", None);
    assert_eq!(status, 200);
    let path = "/xcap-root/resource-lists/users/sip:alice@example.com/index";
    let doc = common::example("resource-lists.xml");
    let (status, body) = https(
        s.http,
        client.clone(),
        "PUT",
        path,
        Some(("application/resource-lists+xml", &doc)),
    );
    assert!(
        status == 200 || status == 201,
        "{status} {}",
        String::from_utf8_lossy(&body)
    );
    let (status, body) = https(s.http, client, "GET", path, None);
    assert_eq!(status, 200);
    assert_eq!(body, doc);
    // plain HTTP on the HTTPS port gets nothing served
    let mut plain = TcpStream::connect(s.http).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"));
}

#[test]
fn client_certificates_are_checked_against_the_configured_ca() {
    let pki = Pki::new();
    let s = Server::start_with(&pki.config(true), &[]);
    let addr = s.tls.unwrap();
    // a certificate of the CA, and none at all, are served
    let with = pki.client(Some((pki.client_chain.clone(), pki.client_key.clone())));
    let mut p = TlsPeer::connect(addr, with).unwrap();
    assert_eq!(
        p.call(&p.req("OPTIONS", "sip:presenced@127.0.0.1"))
            .status(),
        200
    );
    let mut p = TlsPeer::connect(addr, pki.client(None)).unwrap();
    assert_eq!(
        p.call(&p.req("OPTIONS", "sip:presenced@127.0.0.1"))
            .status(),
        200
    );
    // one from another CA is refused in the handshake
    let other = ca("someone else");
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["intruder.example".to_owned()])
        .unwrap()
        .signed_by(&key, &other)
        .unwrap();
    let bad = pki.client(Some((vec![cert.der().clone()], key.serialize_der())));
    let refused = TlsPeer::connect(addr, bad).and_then(|mut p| {
        p.send(&p.req("OPTIONS", "sip:presenced@127.0.0.1").bytes());
        p.recv(Duration::from_secs(2))
            .map(|_| ())
            .ok_or_else(|| std::io::Error::other("no answer"))
    });
    assert!(
        refused.is_err(),
        "a foreign client certificate was accepted"
    );
}

fn start_error(config: &str) -> String {
    let dir = temp_dir("tls-bad");
    let cfg = dir.join("presenced.toml");
    std::fs::write(&cfg, config).unwrap();
    let (code, out, err) = common::presenced(&[
        "--config",
        cfg.to_str().unwrap(),
        "--sip",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--data",
        dir.join("data").to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "started with bad TLS material: {out}");
    err
}

#[test]
fn missing_or_unreadable_key_material_stops_the_start_naming_it() {
    let pki = Pki::new();
    let missing = Path::new("/nonexistent/key.pem");
    let config = pki.config(false).replace(
        &pki.dir.join("key.pem").display().to_string(),
        &missing.display().to_string(),
    );
    let err = start_error(&config);
    assert!(
        err.contains("tls.private_key") && err.contains("/nonexistent/key.pem"),
        "{err}"
    );
    // a certificate file that holds no certificate
    let junk = pki.dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let config = pki.config(false).replace(
        &pki.dir.join("chain.pem").display().to_string(),
        &junk.display().to_string(),
    );
    let err = start_error(&config);
    assert!(
        err.contains("tls.certificate") && err.contains("junk.pem"),
        "{err}"
    );
    // TLS listeners without any certificate
    let err = start_error("[sip]\ntls_listen = [\"127.0.0.1:0\"]\n");
    assert!(err.contains("tls.certificate"), "{err}");
}

#[test]
fn a_verified_client_certificate_makes_a_trusted_peer() {
    let pki = Pki::new();
    let data = temp_dir("tls-users");
    common::add_user(&data, ALICE, "wonderland");
    let s = Server::start_on(&pki.config(true), &[], Some(&data));
    let addr = s.tls.unwrap();
    let publish = |p: &TlsPeer| {
        p.req("PUBLISH", ALICE)
            .set("From", &format!("<{ALICE}>;tag={}", unique("p")))
            .set("P-Asserted-Identity", &format!("<{ALICE}>"))
            .set("Event", "presence")
            .set("Expires", "600")
            .body(
                "application/pidf+xml",
                &pidf(ALICE, "t1", "open", "asserted"),
            )
    };
    // a core proxy with a certificate of the CA: its assertion names the publisher
    let core = pki.client(Some((pki.client_chain.clone(), pki.client_key.clone())));
    let mut p = TlsPeer::connect(addr, core).unwrap();
    let resp = p.call(&publish(&p));
    assert_eq!(resp.status(), 200, "{}", resp.text());
    // the same request over TLS without a certificate proves nothing: challenged
    let mut p = TlsPeer::connect(addr, pki.client(None)).unwrap();
    let resp = p.call(&publish(&p));
    assert_eq!(resp.status(), 401, "{}", resp.text());
}
