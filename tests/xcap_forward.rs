//! The Aggregation Proxy forwarding an application usage to an XDMS on its own address
//! (`xcap.forward.<auid>`): two presenced processes, the proxy authenticating with digest and
//! the XDMS believing the proxy's asserted identity.

mod common;

use common::{Server, Xcap, add_user, assert_valid_xml, example, temp_dir};

const ALICE: &str = "sip:alice@example.com";
const RL: &str = "/xcap-root/resource-lists/users/sip:alice@example.com/index";
const PR: &str = "/xcap-root/pres-rules/users/sip:alice@example.com/pres-rules";

#[test]
fn proxy_forwards_by_auid_to_another_xdms() {
    // The Shared XDMS (resource-lists): trusts the proxy on 127.0.0.1, has users of its own so
    // that nobody else gets in.
    let xdms_data = temp_dir("xdms").join("data");
    add_user(&xdms_data, "sip:admin@example.com", "root");
    let xdms = Server::start_on(
        "[xcap]\ntrusted_peers = [\"127.0.0.1\"]\n",
        &[],
        Some(&xdms_data),
    );
    // The proxy: users, resource-lists sent on to the Shared XDMS, the rest in-process.
    let proxy_data = temp_dir("proxy").join("data");
    add_user(&proxy_data, ALICE, "wonderland");
    let cfg = format!(
        "[xcap.forward]\nresource-lists = \"http://{}\"\n",
        xdms.http
    );
    let proxy = Server::start_on(&cfg, &[], Some(&proxy_data));

    let anon = Xcap::new(proxy.http);
    assert_eq!(
        anon.get(RL).status,
        401,
        "the proxy authenticates before forwarding"
    );
    let alice = Xcap::new(proxy.http).with_auth("alice@example.com", "wonderland", "SHA-256");
    let doc = example("resource-lists.xml");
    let r = alice.put(RL, "application/resource-lists+xml", &doc);
    assert_eq!(r.status, 201, "{}", r.text());
    let etag = r.etag();
    let r = alice.get(RL);
    assert_eq!((r.status, r.etag()), (200, etag.clone()));
    assert_eq!(r.body, doc);
    assert_valid_xml(&r.body);
    // Conditional requests pass through unchanged.
    assert_eq!(
        alice
            .req("GET", RL, &[("If-None-Match", &etag)], None)
            .status,
        304
    );
    // The document lives on the XDMS, not on the proxy.
    let direct =
        Xcap::new(xdms.http).with_header("X-XCAP-Asserted-Identity", "<sip:alice@example.com>");
    let r = direct.get(RL);
    assert_eq!((r.status, r.etag()), (200, etag));
    // Pres-rules stays on the proxy's own Presence XDMS.
    let r = alice.put(
        PR,
        "application/auth-policy+xml",
        &example("pres-rules.xml"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(direct.get(PR).status, 404, "pres-rules was not forwarded");
    // Authorization happens at the proxy: bob's tree is not alice's, forwarded or not.
    let bob_rl = "/xcap-root/resource-lists/users/sip:bob@example.com/index";
    assert_eq!(alice.get(bob_rl).status, 403);
    // The XDMS's errors come back as they are.
    let r = alice.put(RL, "application/resource-lists+xml", b"not xml");
    assert_eq!(r.status, 409);
    assert_eq!(r.header("Content-Type"), Some("application/xcap-error+xml"));
    assert_valid_xml(&r.body);
    // A client's own asserted identities are not passed on: the XDMS reads the 3GPP header
    // first, so a forged one that got through would make alice's DELETE of her own document
    // bob's (403 there).
    let forged = Xcap::new(proxy.http)
        .with_auth("alice@example.com", "wonderland", "MD5")
        .with_header("X-3GPP-Asserted-Identity", "<sip:bob@example.com>")
        .with_header("X-XCAP-Asserted-Identity", "<sip:bob@example.com>");
    assert_eq!(forged.get(bob_rl).status, 403);
    assert_eq!(forged.get(RL).status, 200);
    assert_eq!(forged.delete(RL).status, 200);
    assert_eq!(direct.get(RL).status, 404);
}

#[test]
fn unreachable_xdms_is_a_bad_gateway() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let cfg = format!("[xcap.forward]\nrls-services = \"http://{addr}\"\n");
    let proxy = Server::start_with(&cfg, &[]);
    let r = Xcap::new(proxy.http).get("/xcap-root/rls-services/users/sip:alice@example.com/index");
    assert_eq!(r.status, 502, "{}", r.text());
}
