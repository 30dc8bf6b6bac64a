//! XCAP documents over loopback against the real binary: the whole-document life cycle with
//! strong ETags and conditional requests for each application usage, documents and ETags kept
//! across a restart, the virtual documents (xcap-caps, the rls-services global index, the OMA
//! xcap-directory) and the error statuses. Every XML body received is validated.

mod common;

use common::{Server, Xcap, assert_status, assert_valid_xml, example, rls_services_doc, temp_dir};

const ALICE: &str = "sip:alice@example.com";

/// (AUID, MIME type, document) for each usage users write.
fn usages() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    vec![
        (
            "resource-lists",
            "application/resource-lists+xml",
            example("resource-lists.xml"),
        ),
        (
            "rls-services",
            "application/rls-services+xml",
            example("rls-services.xml"),
        ),
        (
            "pres-rules",
            "application/auth-policy+xml",
            example("pres-rules.xml"),
        ),
        (
            "org.openmobilealliance.pres-rules",
            "application/auth-policy+xml",
            example("pres-rules.xml"),
        ),
    ]
}

fn doc_path(auid: &str, xui: &str, doc: &str) -> String {
    format!("/xcap-root/{auid}/users/{xui}/{doc}")
}

/// A quoted strong entity tag.
fn assert_strong(etag: &str) {
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "not a strong ETag: {etag}"
    );
}

#[test]
fn whole_document_life_cycle_for_each_usage() {
    let srv = Server::start();
    let c = Xcap::new(srv.http);
    for (auid, mime, doc) in usages() {
        let p = doc_path(
            auid,
            ALICE,
            if auid.contains("pres-rules") {
                "pres-rules"
            } else {
                "index"
            },
        );
        assert_status(&c.get(&p), 404, auid);
        // If-Match on a missing document fails; If-None-Match: * creates.
        let r = c.req("PUT", &p, &[("If-Match", "*")], Some((mime, &doc)));
        assert_status(&r, 412, auid);
        let r = c.req("PUT", &p, &[("If-None-Match", "*")], Some((mime, &doc)));
        assert_status(&r, 201, auid);
        let e1 = r.etag();
        assert_strong(&e1);
        // GET: the document, its type and the same tag.
        let r = c.get(&p);
        assert_status(&r, 200, auid);
        assert_eq!(r.etag(), e1);
        assert_eq!(r.header("Content-Type"), Some(mime));
        assert_valid_xml(&r.body);
        // Conditional GETs.
        let r = c.req("GET", &p, &[("If-None-Match", &e1)], None);
        assert_status(&r, 304, auid);
        assert_eq!(r.etag(), e1);
        assert!(r.body.is_empty());
        assert_status(
            &c.req("GET", &p, &[("If-None-Match", "*")], None),
            304,
            auid,
        );
        assert_status(
            &c.req("GET", &p, &[("If-None-Match", "\"other\"")], None),
            200,
            auid,
        );
        assert_status(
            &c.req("GET", &p, &[("If-Match", "\"other\"")], None),
            412,
            auid,
        );
        assert_status(&c.req("GET", &p, &[("If-Match", &e1)], None), 200, auid);
        // Replace: a stale tag fails, the current one succeeds with a new tag.
        let r = c.req("PUT", &p, &[("If-None-Match", "*")], Some((mime, &doc)));
        assert_status(&r, 412, auid);
        assert_eq!(r.etag(), e1, "412 carries the current tag");
        let r = c.req("PUT", &p, &[("If-Match", "\"stale\"")], Some((mime, &doc)));
        assert_status(&r, 412, auid);
        let weak = format!("W/{e1}");
        let r = c.req("PUT", &p, &[("If-Match", &weak)], Some((mime, &doc)));
        assert_status(&r, 412, auid);
        let r = c.req("PUT", &p, &[("If-Match", &e1)], Some((mime, &doc)));
        assert_status(&r, 200, auid);
        let e2 = r.etag();
        assert_strong(&e2);
        assert_ne!(e1, e2, "every write gets a new tag");
        assert_eq!(c.get(&p).etag(), e2);
        // Delete: conditional, then gone.
        assert_status(&c.req("DELETE", &p, &[("If-Match", &e1)], None), 412, auid);
        assert_status(&c.req("DELETE", &p, &[("If-Match", &e2)], None), 200, auid);
        assert_status(&c.get(&p), 404, auid);
        assert_status(&c.delete(&p), 404, auid);
        // Created again: a tag never seen before.
        let r = c.put(&p, mime, &doc);
        assert_status(&r, 201, auid);
        assert!(r.etag() != e1 && r.etag() != e2, "tags are not reused");
    }
}

#[test]
fn documents_and_etags_survive_a_restart() {
    let data = temp_dir("restart").join("data");
    let p = doc_path("resource-lists", ALICE, "index");
    let doc = example("resource-lists.xml");
    let (etag, etag2);
    {
        let srv = Server::start_on("", &[], Some(&data));
        let c = Xcap::new(srv.http);
        etag = c.put(&p, "application/resource-lists+xml", &doc).etag();
        let r = c.put(
            &doc_path("pres-rules", ALICE, "pres-rules"),
            "application/auth-policy+xml",
            &example("pres-rules.xml"),
        );
        etag2 = r.etag();
    }
    let srv = Server::start_on("", &[], Some(&data));
    let c = Xcap::new(srv.http);
    let r = c.get(&p);
    assert_status(&r, 200, "after restart");
    assert_eq!(r.body, doc);
    assert_eq!(r.etag(), etag);
    assert_eq!(
        c.get(&doc_path("pres-rules", ALICE, "pres-rules")).etag(),
        etag2
    );
    assert_status(
        &c.req("GET", &p, &[("If-None-Match", &etag)], None),
        304,
        "tag kept",
    );
    let r = c.req(
        "PUT",
        &p,
        &[("If-Match", &etag)],
        Some(("application/resource-lists+xml", &doc)),
    );
    assert_status(&r, 200, "conditional write on a kept tag");
}

#[test]
fn xcap_caps_index() {
    let srv = Server::start();
    let c = Xcap::new(srv.http);
    let r = c.get("/xcap-root/xcap-caps/global/index");
    assert_status(&r, 200, "xcap-caps");
    assert_eq!(r.header("Content-Type"), Some("application/xcap-caps+xml"));
    assert_valid_xml(&r.body);
    let t = r.text();
    for auid in [
        "resource-lists",
        "rls-services",
        "pres-rules",
        "org.openmobilealliance.pres-rules",
        "xcap-caps",
        "org.openmobilealliance.xcap-directory",
    ] {
        assert!(t.contains(&format!("<auid>{auid}</auid>")), "{auid} in {t}");
    }
    let e = r.etag();
    assert_strong(&e);
    assert_status(
        &c.req(
            "GET",
            "/xcap-root/xcap-caps/global/index",
            &[("If-None-Match", &e)],
            None,
        ),
        304,
        "caps",
    );
    assert_status(
        &c.get("/xcap-root/xcap-caps/global/other"),
        404,
        "caps other",
    );
    assert_status(
        &c.get(&doc_path("xcap-caps", ALICE, "index")),
        404,
        "caps in a user tree",
    );
    let r = c.put(
        &doc_path("xcap-caps", ALICE, "index"),
        "application/xcap-caps+xml",
        &r.body,
    );
    assert!(r.status == 404 || r.status == 405, "{}", r.status);
}

#[test]
fn rls_services_global_index_is_composed_at_request_time() {
    let srv = Server::start();
    let c = Xcap::new(srv.http);
    let idx = "/xcap-root/rls-services/global/index";
    let r = c.get(idx);
    assert_status(&r, 200, "empty index");
    assert_valid_xml(&r.body);
    let e0 = r.etag();
    let mime = "application/rls-services+xml";
    assert_status(
        &c.put(
            &doc_path("rls-services", ALICE, "index"),
            mime,
            &rls_services_doc("sip:alice-friends@example.com"),
        ),
        201,
        "alice",
    );
    assert_status(
        &c.put(
            &doc_path("rls-services", "sip:bob@example.com", "index"),
            mime,
            &rls_services_doc("sip:bob-friends@example.com"),
        ),
        201,
        "bob",
    );
    let r = c.get(idx);
    assert_status(&r, 200, "index");
    assert_eq!(r.header("Content-Type"), Some(mime));
    assert_valid_xml(&r.body);
    let t = r.text();
    assert!(
        t.contains("sip:alice-friends@example.com") && t.contains("sip:bob-friends@example.com"),
        "{t}"
    );
    let e1 = r.etag();
    assert_ne!(e0, e1, "the index tag follows its content");
    assert_status(
        &c.req("GET", idx, &[("If-None-Match", &e1)], None),
        304,
        "unchanged index",
    );
    assert_status(
        &c.delete(&doc_path("rls-services", "sip:bob@example.com", "index")),
        200,
        "bob deletes",
    );
    let r = c.get(idx);
    assert!(!r.text().contains("bob-friends"));
    assert_ne!(r.etag(), e1);
    let r = c.put(idx, mime, &rls_services_doc("sip:x@example.com"));
    assert_status(&r, 405, "index is read-only");
    assert_eq!(r.header("Allow"), Some("GET"));
}

#[test]
fn xcap_directory_lists_the_users_documents() {
    let srv = Server::start();
    let c = Xcap::new(srv.http);
    let rl = c
        .put(
            &doc_path("resource-lists", ALICE, "index"),
            "application/resource-lists+xml",
            &example("resource-lists.xml"),
        )
        .etag();
    let pr = c
        .put(
            &doc_path("pres-rules", ALICE, "pres-rules"),
            "application/auth-policy+xml",
            &example("pres-rules.xml"),
        )
        .etag();
    c.put(
        &doc_path("resource-lists", "sip:bob@example.com", "index"),
        "application/resource-lists+xml",
        &example("resource-lists.xml"),
    );
    let dir = doc_path(
        "org.openmobilealliance.xcap-directory",
        ALICE,
        "directory.xml",
    );
    let r = c.get(&dir);
    assert_status(&r, 200, "directory");
    assert_valid_xml(&r.body);
    let t = r.text();
    assert!(
        t.contains("<folder auid=\"resource-lists\">")
            && t.contains("<folder auid=\"pres-rules\">"),
        "{t}"
    );
    assert!(
        t.contains(&format!("etag=\"{}\"", rl.trim_matches('"'))),
        "{t}"
    );
    assert!(
        t.contains(&format!("etag=\"{}\"", pr.trim_matches('"'))),
        "{t}"
    );
    assert!(
        t.contains("/xcap-root/resource-lists/users/sip:alice@example.com/index"),
        "{t}"
    );
    assert!(!t.contains("bob"), "only alice's documents: {t}");
    let e = r.etag();
    assert_status(
        &c.req("GET", &dir, &[("If-None-Match", &e)], None),
        304,
        "directory unchanged",
    );
    assert_status(
        &c.put(&dir, "application/vnd.oma.xcap-directory+xml", &r.body),
        405,
        "directory is read-only",
    );
    assert_status(
        &c.get(&doc_path(
            "org.openmobilealliance.xcap-directory",
            ALICE,
            "other.xml",
        )),
        404,
        "other",
    );
}

#[test]
fn error_statuses() {
    let srv = Server::start();
    let c = Xcap::new(srv.http);
    let p = doc_path("resource-lists", ALICE, "index");
    // Wrong MIME type: 415.
    assert_status(
        &c.put(&p, "text/plain", &example("resource-lists.xml")),
        415,
        "mime",
    );
    // Not well-formed: 409 with an xcap-error body.
    let r = c.put(&p, "application/resource-lists+xml", b"this is not xml");
    assert_status(&r, 409, "not well-formed");
    assert_eq!(r.header("Content-Type"), Some("application/xcap-error+xml"));
    assert_valid_xml(&r.body);
    assert!(r.text().contains("not-well-formed"), "{}", r.text());
    // Unknown AUID, outside the root, bad trees: 404.
    assert_status(
        &c.get(&doc_path("no-such-auid", ALICE, "index")),
        404,
        "auid",
    );
    assert_status(&c.get("/elsewhere"), 404, "outside the root");
    assert_status(
        &c.get("/xcap-root/resource-lists/people/x/index"),
        404,
        "tree",
    );
    // Methods XCAP does not define: 405 with Allow.
    let r = c.req(
        "POST",
        &p,
        &[],
        Some(("application/resource-lists+xml", b"<x/>")),
    );
    assert_status(&r, 405, "POST");
    let allow = r.header("Allow").unwrap_or_default().to_owned();
    for m in ["GET", "PUT", "DELETE"] {
        assert!(allow.contains(m), "{allow}");
    }
    // Too large a body: 413.
    let big = vec![b' '; 2 << 20];
    assert_status(
        &c.put(&p, "application/resource-lists+xml", &big),
        413,
        "size",
    );
    // HEAD answers like GET without a body.
    c.put(
        &p,
        "application/resource-lists+xml",
        &example("resource-lists.xml"),
    );
    let r = c.req("HEAD", &p, &[], None);
    assert_status(&r, 200, "HEAD");
    assert_strong(&r.etag());
}
