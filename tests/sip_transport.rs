//! End-to-end over loopback: the SIP transport, transactions and the request checks every
//! method shares (RFC 3261 §8.2, §17, §18), on UDP and TCP.

mod common;

use std::time::Duration;

use common::{Server, TcpPeer, UdpPeer, assert_echoes};

const URI: &str = "sip:presenced@127.0.0.1";

#[test]
fn options_over_udp() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = peer.req("OPTIONS", URI);
    let resp = peer.call(&req);
    assert_eq!(resp.status(), 200, "{}", resp.text());
    assert_echoes(&resp, &req);
    let via = resp.header("Via").unwrap();
    // RFC 3581: rport filled with the source port, received with the source address
    assert!(
        via.contains(&format!("rport={}", peer.addr().port())),
        "{via}"
    );
    assert!(via.contains("received=127.0.0.1"), "{via}");
    let allow = resp.header("Allow").unwrap();
    for m in ["OPTIONS", "PUBLISH", "SUBSCRIBE"] {
        assert!(allow.contains(m), "Allow: {allow}");
    }
    // RFC 3261 §11.2: the bodies we take (PUBLISH PIDF, xcap-diff SUBSCRIBE selector lists)
    assert_eq!(
        resp.header("Accept"),
        Some("application/pidf+xml, application/resource-lists+xml"),
    );
    assert_eq!(
        resp.header("Allow-Events"),
        Some("presence, xcap-diff, presence.winfo")
    );
}

#[test]
fn options_over_tcp_and_two_messages_in_one_write() {
    let s = Server::start();
    let mut peer = TcpPeer::connect(s.tcp);
    let a = peer.req("OPTIONS", URI);
    let resp = peer.call(&a);
    assert_eq!(resp.status(), 200);
    assert_echoes(&resp, &a);
    // two requests back to back in one segment, then one request split in two writes
    let b = peer.req("OPTIONS", URI);
    let c = peer.req("OPTIONS", URI);
    let mut both = b.bytes();
    both.extend_from_slice(&c.bytes());
    peer.send(&both);
    let r1 = peer.recv(Duration::from_secs(5)).unwrap();
    let r2 = peer.recv(Duration::from_secs(5)).unwrap();
    assert_eq!(r1.header("Call-ID"), b.get("Call-ID"));
    assert_eq!(r2.header("Call-ID"), c.get("Call-ID"));
    let d = peer.req("OPTIONS", URI);
    let bytes = d.bytes();
    peer.send(&bytes[..30]);
    std::thread::sleep(Duration::from_millis(100));
    peer.send(&bytes[30..]);
    assert_eq!(
        peer.recv(Duration::from_secs(5)).unwrap().header("Call-ID"),
        d.get("Call-ID")
    );
}

#[test]
fn retransmission_gets_the_identical_response() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = peer.req("OPTIONS", URI);
    let first = peer.call(&req);
    peer.send(&req.bytes());
    let again = peer
        .recv(Duration::from_secs(5))
        .expect("retransmission answered");
    assert_eq!(
        first.raw, again.raw,
        "same bytes from the completed transaction"
    );
    // a new transaction (new branch) in the same call is processed anew
    let next = req.clone().set(
        "Via",
        &format!("SIP/2.0/UDP {};branch=z9hG4bKnext1;rport", peer.addr()),
    );
    let third = peer.call(&next);
    assert_ne!(third.header("Via"), first.header("Via"));
}

#[test]
fn method_not_allowed_lists_allow() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    for method in ["INVITE", "REGISTER", "MESSAGE"] {
        let req = peer.req(method, URI);
        let resp = peer.call(&req);
        assert_eq!(resp.status(), 405, "{method}");
        assert_echoes(&resp, &req);
        let allow = resp
            .header("Allow")
            .expect("Allow in 405 (RFC 3261 §8.2.1)");
        assert!(allow.contains("OPTIONS"));
        assert!(!allow.contains(method));
    }
}

#[test]
fn unknown_method_is_not_implemented() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = peer.req("FROBNICATE", URI);
    let resp = peer.call(&req);
    assert_eq!(resp.status(), 501);
    assert_echoes(&resp, &req);
}

#[test]
fn unsupported_require_gets_420_with_unsupported() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = peer.req("OPTIONS", URI).set("Require", "foo, bar");
    let resp = peer.call(&req);
    assert_eq!(resp.status(), 420);
    assert_echoes(&resp, &req);
    assert_eq!(resp.header("Unsupported"), Some("foo, bar"));
}

#[test]
fn max_forwards_zero_gets_483_but_options_is_answered() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let req = peer.req("INVITE", URI).set("Max-Forwards", "0");
    let resp = peer.call(&req);
    assert_eq!(resp.status(), 483);
    assert_echoes(&resp, &req);
    // RFC 3261 §11: an OPTIONS with Max-Forwards 0 is for the element itself
    assert_eq!(
        peer.call(&peer.req("OPTIONS", URI).set("Max-Forwards", "0"))
            .status(),
        200
    );
    let req = peer.req("OPTIONS", URI).set("Max-Forwards", "ten");
    let resp = peer.call(&req);
    assert_eq!(resp.status(), 400);
    assert_echoes(&resp, &req);
}

#[test]
fn malformed_requests_get_400_naming_the_fault() {
    let s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let cases: Vec<(common::Req, &str)> = vec![
        (
            peer.req("OPTIONS", URI)
                .without("Call-ID")
                .set("Call-ID-Missing", "x"),
            "Call-ID",
        ),
        (peer.req("OPTIONS", URI).set("CSeq", "1 INVITE"), "CSeq"),
        (peer.req("OPTIONS", URI).set("CSeq", "x OPTIONS"), "CSeq"),
        (
            peer.req("OPTIONS", URI).set("Content-Length", "500"),
            "Content-Length",
        ),
        (
            peer.req("OPTIONS", URI).set("Content-Length", "-4"),
            "Content-Length",
        ),
    ];
    for (req, word) in cases {
        let mut bytes = req.bytes();
        if req.get("Call-ID").is_none() {
            // the harness needs a Call-ID to match; read the next response instead
            peer.send(&bytes);
            let resp = peer.recv(Duration::from_secs(5)).expect("answer");
            assert_eq!(resp.status(), 400, "{}", resp.text());
            assert!(
                resp.reason().contains(word),
                "reason {:?} names {word}",
                resp.reason()
            );
            continue;
        }
        peer.send(&std::mem::take(&mut bytes));
        let resp = peer.recv(Duration::from_secs(5)).expect("answer");
        assert_eq!(resp.status(), 400, "{}", resp.text());
        assert!(
            resp.reason().contains(word),
            "reason {:?} names {word}",
            resp.reason()
        );
        assert_echoes(&resp, &req);
    }
    // a version we do not speak
    let req = peer.req("OPTIONS", URI);
    let bad = String::from_utf8(req.bytes())
        .unwrap()
        .replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1);
    peer.send(bad.as_bytes());
    let resp = peer.recv(Duration::from_secs(5)).unwrap();
    assert_eq!(resp.status(), 505);
    assert_echoes(&resp, &req);
    // a scheme we do not serve
    let req = peer.req("OPTIONS", "http://example.com/");
    let resp = peer.call(&req);
    assert_eq!(resp.status(), 416);
    assert_echoes(&resp, &req);
}

#[test]
fn garbage_neither_crashes_nor_stalls_the_server() {
    let mut s = Server::start();
    let peer = UdpPeer::new(s.udp);
    let full = peer.req("OPTIONS", URI).bytes();
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0u8; 1],
        (0..=255u8).collect(),
        vec![0xff; 1500],
        b"\r\n\r\n".to_vec(),
        full[..full.len() / 2].to_vec(),
        full[..20].to_vec(),
        b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
        b"OPTIONS sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n".to_vec(),
    ];
    for j in &junk {
        peer.send(j);
    }
    // nothing comes back for the unanswerable ones, and the server still answers
    let resp = peer.call(&peer.req("OPTIONS", URI));
    assert_eq!(resp.status(), 200);
    // TCP: binary garbage closes that connection, others keep working
    let mut bad = TcpPeer::connect(s.tcp);
    bad.send(&[0xffu8; 70_000]);
    assert!(
        bad.closed_by_server(Duration::from_secs(5)),
        "server closes an unframeable stream"
    );
    let mut good = TcpPeer::connect(s.tcp);
    assert_eq!(good.call(&good.req("OPTIONS", URI)).status(), 200);
    assert!(s.alive());
}

#[test]
fn overload_gets_503_with_retry_after_and_loses_nothing() {
    // the engine on its own thread, with an inbox of 8 messages: a burst must overflow it
    let s = Server::start_with(
        "[engine]\ninline = false\ninbox_capacity = 8\nretry_after_secs = 7\n",
        &[],
    );
    let peer = UdpPeer::new(s.udp);
    let n = 400;
    let reqs: Vec<_> = (0..n).map(|_| peer.req("OPTIONS", URI)).collect();
    let wire: Vec<Vec<u8>> = reqs.iter().map(|r| r.bytes()).collect();
    // read on another thread while the burst goes out, so our own socket buffer never drops
    let rx = UdpPeer {
        sock: peer.sock.try_clone().unwrap(),
        server: s.udp,
    };
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while let Some(m) = rx.recv(Duration::from_secs(3)) {
            got.push(m);
            if got.len() == 400 {
                break;
            }
        }
        got
    });
    for w in &wire {
        peer.send(w);
    }
    let mut ok = 0;
    let mut busy = 0;
    let mut seen = std::collections::HashSet::new();
    for m in reader.join().unwrap() {
        assert!(
            seen.insert(m.header("Call-ID").unwrap().to_owned()),
            "one final response per request"
        );
        match m.status() {
            200 => ok += 1,
            503 => {
                assert_eq!(m.header("Retry-After"), Some("7"));
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
        if ok + busy == n {
            break;
        }
    }
    assert_eq!(ok + busy, n, "every request answered: {ok} OK, {busy} busy");
    assert!(busy > 0, "the burst overflowed the inbox");
    assert!(ok >= 8, "what was accepted was answered");
}

#[test]
fn sigterm_stops_cleanly() {
    let mut s = Server::start();
    assert_eq!(s.stop(), Some(0), "exit 0 on SIGTERM: {}", s.stderr());
}

#[test]
fn invalid_config_names_the_key_and_exits_nonzero() {
    let f = common::temp_dir("cfg").join("bad.toml");
    let config = f.to_str().unwrap();
    for (text, key) in [
        ("[engine]\nt1_ms = 0\n", "engine.t1_ms"),
        ("[sip]\nlisten = 5060\n", "listen"),
    ] {
        std::fs::write(&f, text).unwrap();
        let (code, _, err) = common::presenced(&["--config", config]);
        assert_ne!(code, 0, "{text}");
        assert!(err.contains(key), "{err}");
    }
    let (_, help, _) = common::presenced(&["--help"]);
    for flag in ["--config", "--sip", "--http", "--data", "--log"] {
        assert!(help.contains(flag), "--help documents {flag}");
    }
}

#[test]
fn ipv6_udp_and_tcp() {
    if let Err(e) = std::net::UdpSocket::bind("[::1]:0") {
        common::skip_unless_ci(
            "ipv6_udp_and_tcp",
            &format!("no IPv6 loopback ([::1]: {e})"),
        );
        return;
    }
    // one IPv4 and one IPv6 listener side by side
    let s = Server::start_with("", &["--sip", "[::1]:0"]);
    let (u6, t6) = (s.udp, s.tcp);
    assert!(
        u6.is_ipv6() && t6.is_ipv6(),
        "the last --sip address wins the harness's slots: {u6} {t6}"
    );
    let sock = std::net::UdpSocket::bind("[::1]:0").unwrap();
    let peer = UdpPeer { sock, server: u6 };
    let resp = peer.call(&peer.req("OPTIONS", "sip:presenced@[::1]"));
    assert_eq!(resp.status(), 200);
    assert!(
        resp.header("Via").unwrap().contains("received=::1"),
        "{:?}",
        resp.header("Via")
    );
    let mut tcp = TcpPeer::connect(t6);
    assert_eq!(
        tcp.call(&tcp.req("OPTIONS", "sip:presenced@[::1]"))
            .status(),
        200
    );
}

#[test]
fn bursts_from_many_peers_are_read_and_answered_in_batches() {
    // A long coalescing window and a small message limit: the burst below is read with
    // recvmmsg in batches and answered with sendmmsg, each response to its own peer, and an
    // oversized datagram in the middle is dropped without disturbing the others.
    let mut s = Server::start_with(
        "[engine]\nbatch_window_us = 20000\n[sip]\nmax_message_bytes = 2000\n",
        &[],
    );
    let peers: Vec<UdpPeer> = (0..3).map(|_| UdpPeer::new(s.udp)).collect();
    let per_peer = 100;
    let mut readers = Vec::new();
    let mut sent = Vec::new();
    for p in &peers {
        let rx = UdpPeer {
            sock: p.sock.try_clone().unwrap(),
            server: s.udp,
        };
        readers.push(std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Some(m) = rx.recv(Duration::from_secs(3)) {
                got.push(m);
                if got.len() == per_peer {
                    break;
                }
            }
            got
        }));
        sent.push(
            (0..per_peer)
                .map(|_| p.req("OPTIONS", URI))
                .collect::<Vec<_>>(),
        );
    }
    for i in 0..per_peer {
        for (p, reqs) in peers.iter().zip(&sent) {
            p.send(&reqs[i].bytes());
        }
        if i == per_peer / 2 {
            let mut big = peers[0].req("OPTIONS", URI);
            big.body = vec![b'x'; 3000];
            peers[0].send(&big.bytes());
        }
    }
    for ((reader, reqs), p) in readers.into_iter().zip(&sent).zip(&peers) {
        let got = reader.join().unwrap();
        let want: std::collections::HashSet<&str> =
            reqs.iter().map(|r| r.get("Call-ID").unwrap()).collect();
        let seen: std::collections::HashSet<String> = got
            .iter()
            .map(|m| {
                assert_eq!(m.status(), 200, "{}", m.text());
                m.header("Call-ID").unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            got.len(),
            per_peer,
            "peer {} got every answer once",
            p.addr()
        );
        assert_eq!(seen.len(), per_peer);
        assert!(
            seen.iter().all(|c| want.contains(c.as_str())),
            "answers went to the sender"
        );
    }
    // the oversized request got nothing back (it cannot be read whole)
    assert!(peers[0].recv(Duration::from_millis(300)).is_none());
    assert!(s.alive());
}
