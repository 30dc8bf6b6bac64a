//! A differential check for work on the SIP parser: writes, for the RFC 4475 vectors and every
//! one-byte mutation of them (substitutions, deletions, inserted folds), what `parse` makes of
//! the message (request fields and a hash of a 200 built from it, or the reject's status line
//! and a hash of its bytes, or the drop reason). Run it on two revisions and compare the files:
//!
//! ```sh
//! PARSE_DUMP=/tmp/a.txt cargo test --release -p presenced-systems --test parse_differential -- --ignored
//! ```
//!
//! Ignored by default: it is a tool, not a check (the outcome of a mutation may change on
//! purpose).

use std::io::Write;

use bytes::Bytes;
use presenced_systems::sip::message::{Parsed, parse};
use presenced_systems::{Inbound, Source, Transport};

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn outcome(bytes: &[u8], transport: Transport) -> String {
    let inbound = Inbound {
        source: Source {
            transport,
            peer: "192.0.2.10:5060".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
            verified_peer: false,
        },
        bytes: Bytes::copy_from_slice(bytes),
    };
    match parse(&inbound, "OPTIONS", false) {
        Parsed::Request(r) => {
            let reply = presenced_systems::router::respond(&r, 200, "OK", "t1").finish();
            format!(
                "REQ {:?} {} {:?} {:?} {} {} body={} resp#{:x}",
                r.method,
                r.call_id(),
                r.from_tag(),
                r.to_tag(),
                r.cseq,
                r.via.branch(),
                r.body.len(),
                fnv(&reply)
            )
        }
        Parsed::Response(r) => format!(
            "RESP {} {} {:?} {} body={}",
            r.code,
            r.call_id(),
            r.to_tag(),
            r.cseq,
            r.body.len()
        ),
        Parsed::Rejected { code, reply } => {
            let text = String::from_utf8_lossy(&reply.head);
            let first = text.lines().next().unwrap_or("");
            format!("REJ {code} {first} #{:x}", fnv(&reply.head))
        }
        Parsed::Dropped(d) => format!("DROP {d:?}"),
    }
}

#[test]
#[ignore]
fn dump_parse_outcomes() {
    let Ok(out) = std::env::var("PARSE_DUMP") else {
        eprintln!("set PARSE_DUMP to the output file");
        return;
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/rfc4475");
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sip"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    let mid_dialog = b"NOTIFY sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKn1\r\n\
Max-Forwards: 70\r\nFrom: <sip:c@d>;tag=y2\r\nTo: <sip:a@b>;tag=x1\r\nCall-ID: cid@h\r\n\
CSeq: 3 NOTIFY\r\nEvent: presence\r\nSubscription-State: active;expires=10\r\nl: 0\r\n\r\n";
    let response = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc.1\r\n\
From: <sip:a@b>;tag=x1\r\nTo: <sip:c@d>;tag=y2\r\nCall-ID: cid@h\r\nCSeq: 3 NOTIFY\r\n\
Content-Length: 0\r\n\r\n";
    inputs.push(("notify".into(), mid_dialog.to_vec()));
    inputs.push(("response".into(), response.to_vec()));
    inputs.sort();
    let subs: &[&[u8]] = &[
        b"\0", b" ", b":", b"<", b">", b"\"", b"\r", b"\n", b"\xff", b",", b";", b"=", b"\t", b"",
        b"\r\n ", b"@", b"\\", b"/", b"A",
    ];
    for (name, bytes) in &inputs {
        for t in [Transport::Udp, Transport::Tcp] {
            writeln!(f, "{name} {t:?} orig: {}", outcome(bytes, t)).unwrap();
        }
        for i in 0..bytes.len().min(1500) {
            for (k, s) in subs.iter().enumerate() {
                let mut m = bytes[..i].to_vec();
                m.extend_from_slice(s);
                m.extend_from_slice(&bytes[i + 1..]);
                writeln!(f, "{name} {i} {k}: {}", outcome(&m, Transport::Udp)).unwrap();
            }
        }
    }
}
