//! List subscriptions (RFC 4662) against the real presenced binary when it has been built
//! (`cargo build -p presenced`; `cargo test --workspace` builds it): config/loadgen-lists-smoke.toml
//! writes 50 lists of 5 members over 100 presentities over XCAP, subscribes to each once,
//! modifies for 2 s and unsubscribes; every member update must arrive, with no error, one
//! full-state NOTIFY per list and one final one.

mod common;

use common::{presenced_binary, start_presenced};
use std::path::PathBuf;

use loadgen::scenario::Scenario;

#[test]
fn list_subscriptions_against_presenced() {
    let Some(bin) = presenced_binary() else {
        // `cargo test --workspace` (the CI command) always builds it: a skip there would hide
        // that nothing was checked
        assert!(
            std::env::var_os("CI").is_none(),
            "presenced not built (cargo build -p presenced)"
        );
        eprintln!("SKIP: presenced not built (cargo build -p presenced)");
        return;
    };
    let (server, sip, http) = start_presenced(&bin);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/loadgen-lists-smoke.toml");
    let s = Scenario::load(&path).unwrap();
    assert_eq!(
        (
            s.population.presentities,
            s.population.watchers,
            s.lists.members
        ),
        (100, 50, 5)
    );
    let opts = loadgen::run::Options {
        target: sip,
        server_pid: Some(server.pid()),
        namespace: String::new(),
        progress: false,
        label: "lists".into(),
        xcap: Some(format!("http://{http}")),
    };
    let r = loadgen::run::run(&s, &opts).unwrap();
    drop(server);
    let l = r.lists.as_ref().expect("lists report");
    // the server took every document (it checks them against the schema)
    assert_eq!(
        (l.documents, l.lists, l.members_per_list),
        (50, 50, 5),
        "{l:#?}"
    );
    assert_eq!((l.memberships_min, l.memberships_max), (2, 3), "{l:#?}");
    // no error of any kind
    assert!(r.cut_short.is_none(), "{r:#?}");
    assert_eq!((r.final_failed, r.timeouts), (0, 0), "{r:#?}");
    assert!(r.errors_by_status.is_empty(), "{r:#?}");
    assert_eq!(r.requests_sent, r.final_ok, "{r:#?}");
    assert_eq!(r.loadgen.parse_errors, 0, "{r:#?}");
    assert_eq!(r.ops["subscribe_initial"].ok, 50);
    assert_eq!(r.ops["unsubscribe"].ok, 50);
    assert_eq!(r.notify.missing_first_notify, 0, "{r:#?}");
    assert_eq!(r.subscriptions.unexpected_state, 0, "{r:#?}");
    // one full-state NOTIFY per list at its start (nothing refreshed or edited), one at its end
    assert_eq!(l.full_state, 50, "{l:#?}");
    assert_eq!(l.terminal, 50, "{l:#?}");
    assert_eq!(l.notifies, l.full_state + l.partial + l.terminal, "{l:#?}");
    assert_eq!(l.missing_in_first_notify, 0, "{l:#?}");
    assert_eq!(
        (
            l.malformed,
            l.no_body,
            l.foreign_parts,
            l.parts_without_token
        ),
        (0, 0, 0, 0)
    );
    // every member is active (privacy default allow)
    assert_eq!(
        (l.instances_pending, l.instances_terminated),
        (0, 0),
        "{l:#?}"
    );
    // every modify reached every list holding its presentity: 100 modifies round-robin, p1-p50
    // on 3 lists, p51-p100 on 2
    assert_eq!(r.ops["publish_modify"].ok, 100, "{r:#?}");
    assert_eq!(l.expected_member_updates, 250, "{l:#?}");
    assert_eq!(l.lost_member_updates, 0, "{l:#?}");
    assert_eq!(
        l.delivered_member_updates, l.expected_member_updates,
        "{l:#?}"
    );
    assert_eq!((l.stale_members, l.stale_lists), (0, 0), "{l:#?}");
    assert_eq!(l.publish_to_list_notify_ms.count, l.new_member_parts);
    assert!(l.notify_rate > 0.0 && l.parts_rate > 0.0, "{l:#?}");
    assert!(r.table().contains("lost 0;"), "{}", r.table());
}
