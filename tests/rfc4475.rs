//! RFC 4475 torture messages (§3.1, plus the §3.2–3.4 extras) sent byte-exact over UDP.
//! `tests/vectors/rfc4475/manifest.tsv` says what each must get: parsed and answered as its
//! method deserves, a named error status, or dropped unanswered. The server must keep serving
//! throughout. The server runs with `force_rport`, so that answers come back to the test's
//! socket whatever host the vectors' Via headers name; several vectors share a branch and
//! sent-by (one transaction by §17.2.3), so each gets a server of its own.

mod common;

use std::time::Duration;

use common::{Server, UdpPeer};

struct Vector {
    name: String,
    class: String,
    kind: String,
    method: String,
    expect: String,
    bytes: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/rfc4475");
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    manifest
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Vector {
                name: f[0].into(),
                class: f[2].into(),
                kind: f[3].into(),
                method: f[4].into(),
                expect: f[5].into(),
                bytes: std::fs::read(dir.join(format!("{}.sip", f[0]))).unwrap(),
            }
        })
        .collect()
}

/// What a parsed request of this method gets from presenced.
fn answer_for(method: &str) -> u16 {
    match method {
        "OPTIONS" => 200,
        "INVITE" | "REGISTER" | "MESSAGE" | "BYE" | "ACK" | "CANCEL" | "INFO" | "UPDATE"
        | "REFER" | "PRACK" => 405,
        "SUBSCRIBE" | "PUBLISH" | "NOTIFY" => 0, // any non-parse-error status
        _ => 501,
    }
}

#[test]
fn torture_messages_get_what_rfc4475_says() {
    let vs = vectors();
    assert!(vs.len() >= 32, "all of §3.1 is there");
    let mut failures = Vec::new();
    let mut server = Server::start_with("[sip]\nforce_rport = true\n", &[]);
    for v in &vs {
        server = Server::start_with("[sip]\nforce_rport = true\n", &[]);
        let peer = UdpPeer::new(server.udp);
        peer.send(&v.bytes);
        let got = peer.recv(Duration::from_millis(
            if v.expect == "drop" || v.kind == "response" {
                300
            } else {
                3000
            },
        ));
        let want: Option<u16> = match (v.expect.as_str(), v.kind.as_str()) {
            ("drop", _) | ("parse", "response") => None,
            ("parse", _) => Some(answer_for(&v.method)),
            (code, _) => Some(code.parse().unwrap()),
        };
        let ok = match (&got, want) {
            (None, None) => true,
            (Some(m), Some(0)) => ![400, 416, 505].contains(&m.status()),
            (Some(m), Some(code)) => m.status() == code,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{} ({} {}): wanted {:?}, got {:?}",
                v.name,
                v.class,
                v.kind,
                want,
                got.as_ref().map(|m| m.start.clone())
            ));
        }
        // the server survives it and still serves
        let probe = UdpPeer::new(server.udp);
        assert_eq!(
            probe
                .call(&probe.req("OPTIONS", "sip:presenced@127.0.0.1"))
                .status(),
            200,
            "after {}",
            v.name
        );
        assert!(server.alive(), "server died on {}", v.name);
    }
    // still serving
    let peer = UdpPeer::new(server.udp);
    assert_eq!(
        peer.call(&peer.req("OPTIONS", "sip:presenced@127.0.0.1"))
            .status(),
        200
    );
    assert!(
        failures.is_empty(),
        "{} vectors answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A response is never answered, so over the wire a parsed one and a dropped one look alike:
/// the parser itself must take each valid response (with its status code, CSeq method and
/// Call-ID) and drop each invalid one (RFC 3261 §18.1.2).
#[test]
fn torture_responses_parse_as_rfc4475_says() {
    use presenced_systems::sip::message::{DropReason, Parsed, parse};
    let responses: Vec<Vector> = vectors()
        .into_iter()
        .filter(|v| v.kind == "response")
        .collect();
    assert!(
        responses.len() >= 5,
        "§3.1.1.12-13, §3.1.2.5, §3.1.2.19, §3.3.10"
    );
    for v in &responses {
        let inbound = presenced_systems::Inbound {
            source: presenced_systems::Source {
                transport: presenced_systems::Transport::Udp,
                peer: "192.0.2.10:5060".parse().unwrap(),
                local: "127.0.0.1:5060".parse().unwrap(),
                conn: None,
                verified_peer: false,
            },
            bytes: bytes::Bytes::from(v.bytes.clone()),
        };
        let parsed = parse(&inbound, "OPTIONS", false);
        match (v.expect.as_str(), parsed) {
            ("parse", Parsed::Response(r)) => {
                let status_line = String::from_utf8_lossy(&v.bytes);
                let code: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
                assert_eq!(r.code, code, "{}", v.name);
                assert_eq!(
                    presenced_systems::sip::message::method_str(r.cseq_method),
                    v.method,
                    "{}",
                    v.name
                );
                let call_id = status_line
                    .lines()
                    .find_map(|l| l.strip_prefix("Call-ID:"))
                    .map(str::trim)
                    .unwrap();
                assert_eq!(r.call_id(), call_id, "{}", v.name);
            }
            // A status code past 999 does not even make a status line.
            ("drop", Parsed::Dropped(DropReason::BadResponse | DropReason::Garbage)) => {}
            (want, got) => panic!("{}: wanted {want}, got {got:?}", v.name),
        }
    }
}
