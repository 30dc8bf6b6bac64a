//! Privacy rules for a run (`[rules]` in the scenario): the documents loadgen writes over XCAP
//! before the load so that the server authorizes and filters every watcher, and what they
//! decide, so that the run can tell a right outcome from a wrong one.
//!
//! Per presentity `p`, two documents in the Shared XDMS of the target:
//! - resource-lists (RFC 4826) with one list `allowed`: `p`'s watchers except its last one;
//! - pres-rules (RFC 5025 on RFC 4745 common-policy, with OMA's extensions):
//!   r1: members of that list (OMA `external-list`) → `allow`, with transformations that
//!   select services, persons and devices plus notes and activities, so the server must build
//!   a filtered view (not `provide-all-attributes`, which it could pass through untouched); the
//!   published `<note>` token survives them, so PUBLISH → NOTIFY latency is still measured;
//!   r2: one identity that never subscribes → `block` (a rule the server must evaluate and
//!   find not matching for every watcher);
//!   r3: OMA `other-identity` → `confirm`: the watcher left out of the list is `pending`
//!   (its SUBSCRIBE gets 200, its NOTIFYs say `Subscription-State: pending`, carry no body,
//!   and no publish reaches it).
//!
//! The names are the ones the SIP requests use (`sip:<ns>p<i>@<domain>`, `sip:<ns>w<i>@...`),
//! so every ramp step or compare target gets its own documents.

mod xcap;

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

pub use xcap::{Doc, Upload, put_all, put_each};

/// Namespaces of the two documents.
pub const CP_NS: &str = "urn:ietf:params:xml:ns:common-policy";
pub const PR_NS: &str = "urn:ietf:params:xml:ns:pres-rules";
pub const OCP_NS: &str = "urn:oma:xml:xdm:common-policy";
pub const RL_NS: &str = "urn:ietf:params:xml:ns:resource-lists";

/// Content types of the two documents (RFC 4826 §3.4, RFC 5025 §9.3).
pub const RESOURCE_LISTS_TYPE: &str = "application/resource-lists+xml";
pub const PRES_RULES_TYPE: &str = "application/auth-policy+xml";

/// Name of the list of allowed watchers in each presentity's resource-lists document.
pub const LIST_NAME: &str = "allowed";

/// An XCAP root URI on loopback, without a trailing slash: `http://127.0.0.1:8080/xcap-root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XcapRoot(String);

impl XcapRoot {
    /// Read `http://HOST:PORT[/PATH]`; `/xcap-root` (presenced's root) when there is no path.
    /// Loopback hosts only, like the SIP target: loadgen loads nothing but this machine.
    pub fn parse(s: &str) -> Result<XcapRoot, String> {
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| format!("{s}: not an http:// URI (https is not supported)"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let addr: SocketAddr = match authority.strip_prefix("localhost:") {
            Some(port) => format!("127.0.0.1:{port}").parse(),
            None => authority.parse(),
        }
        .map_err(|_| format!("{s}: want http://IP:PORT with a numeric loopback address"))?;
        let loopback = match addr.ip() {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => v6.is_loopback(),
        };
        if !loopback {
            return Err(format!(
                "{s}: not a loopback address: loadgen only talks to 127.0.0.0/8 or ::1"
            ));
        }
        let path = path.trim_end_matches('/');
        let path = if path.is_empty() { "/xcap-root" } else { path };
        Ok(XcapRoot(format!("http://{authority}{path}")))
    }

    /// The root URI.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// URI of the `index` document of user `xui` in application usage `auid` (RFC 4825 §6).
    pub fn document(&self, auid: &str, xui: &str) -> String {
        format!("{}/{auid}/users/{xui}/index", self.0)
    }

    /// The OMA `anc` of presentity `xui`'s list `allowed`: its resource-lists document with the
    /// node selector of the list (RFC 4825 §6.3, quotes and brackets percent-encoded).
    pub fn list_anchor(&self, xui: &str) -> String {
        format!(
            "{}/~~/resource-lists/list%5B@name=%22{LIST_NAME}%22%5D",
            self.document("resource-lists", xui)
        )
    }
}

/// The users' URIs, spelt as the SIP requests spell them (`crate::msgs::Templates::uri`).
#[derive(Debug, Clone)]
pub struct Names {
    pub namespace: String,
    pub domain: String,
}

impl Names {
    /// Presentity `p` (from 0): `sip:<ns>p<p+1>@<domain>`.
    pub fn presentity(&self, p: u32) -> String {
        self.uri("p", p)
    }

    /// Watcher `w` (from 0).
    pub fn watcher(&self, w: u32) -> String {
        self.uri("w", w)
    }

    /// The identity presentity `p`'s rule r2 blocks; no watcher has it.
    pub fn blocked(&self, p: u32) -> String {
        self.uri("blocked-", p)
    }

    /// Watcher `w`'s own resource list (`[lists]`, a `<service>` URI): `sip:<ns>w<w+1>-list@…`.
    pub fn list(&self, w: u32) -> String {
        format!("sip:{}w{}-list@{}", self.namespace, w + 1, self.domain)
    }

    fn uri(&self, kind: &str, idx: u32) -> String {
        format!("sip:{}{kind}{}@{}", self.namespace, idx + 1, self.domain)
    }
}

/// Who is on which list: each presentity's allowed watchers, and for each watcher the
/// presentity whose list holds it (`u32::MAX` for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub lists: Vec<Vec<u32>>,
    pub listed_in: Vec<u32>,
}

impl Membership {
    /// Watchers on no list, whose first subscription the rules leave pending: the last
    /// watcher of each presentity that has any.
    pub fn expected_pending(&self) -> u64 {
        self.listed_in.iter().filter(|&&p| p == u32::MAX).count() as u64
    }
}

/// The lists for watchers aimed at `targets` (watcher `w` at presentity `targets[w]`) among
/// `presentities`: every presentity's watchers in index order, but its last one.
pub fn membership(targets: &[u32], presentities: u32) -> Membership {
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); presentities as usize];
    for (w, &p) in targets.iter().enumerate() {
        lists[p as usize].push(w as u32);
    }
    let mut listed_in = vec![u32::MAX; targets.len()];
    for (p, l) in lists.iter_mut().enumerate() {
        l.pop();
        for &w in l.iter() {
            listed_in[w as usize] = p as u32;
        }
    }
    Membership { lists, listed_in }
}

/// A presentity's resource-lists document: the list `allowed` of watchers `members`.
pub fn resource_lists(names: &Names, members: &[u32]) -> String {
    let mut s = String::with_capacity(128 + members.len() * 48);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(s, "<resource-lists xmlns=\"{RL_NS}\">");
    let _ = writeln!(s, "  <list name=\"{LIST_NAME}\">");
    for &w in members {
        let _ = writeln!(s, "    <entry uri=\"{}\"/>", names.watcher(w));
    }
    s.push_str("  </list>\n</resource-lists>\n");
    s
}

/// Presentity `p`'s pres-rules document (rules r1, r2, r3 above), its list found at `root`.
pub fn pres_rules(root: &XcapRoot, names: &Names, p: u32) -> String {
    let anchor = root.list_anchor(&names.presentity(p));
    let blocked = names.blocked(p);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns:cr="{CP_NS}" xmlns:pr="{PR_NS}" xmlns:ocp="{OCP_NS}">
  <cr:rule id="r1">
    <cr:conditions>
      <ocp:external-list><ocp:entry anc="{anchor}"/></ocp:external-list>
    </cr:conditions>
    <cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions>
    <cr:transformations>
      <pr:provide-services><pr:all-services/></pr:provide-services>
      <pr:provide-persons><pr:all-persons/></pr:provide-persons>
      <pr:provide-devices><pr:all-devices/></pr:provide-devices>
      <pr:provide-note>true</pr:provide-note>
      <pr:provide-activities>true</pr:provide-activities>
    </cr:transformations>
  </cr:rule>
  <cr:rule id="r2">
    <cr:conditions>
      <cr:identity><cr:one id="{blocked}"/></cr:identity>
    </cr:conditions>
    <cr:actions><pr:sub-handling>block</pr:sub-handling></cr:actions>
  </cr:rule>
  <cr:rule id="r3">
    <cr:conditions><ocp:other-identity/></cr:conditions>
    <cr:actions><pr:sub-handling>confirm</pr:sub-handling></cr:actions>
  </cr:rule>
</cr:ruleset>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgs::Templates;
    use presenced_systems::privacy::{
        Attribute, Context, ListMembership, Requester, RuleSet, Selection, SubHandling, decide,
    };
    use presenced_systems::schema_check::assert_valid;

    fn names() -> Names {
        Names {
            namespace: "s2".into(),
            domain: "example.com".into(),
        }
    }

    #[test]
    fn xcap_root_is_loopback_http_with_a_path() {
        let r = XcapRoot::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(r.as_str(), "http://127.0.0.1:8080/xcap-root");
        assert_eq!(
            XcapRoot::parse("http://[::1]:80/x/").unwrap().as_str(),
            "http://[::1]:80/x"
        );
        assert_eq!(
            XcapRoot::parse("http://localhost:9/").unwrap().as_str(),
            "http://localhost:9/xcap-root"
        );
        assert!(XcapRoot::parse("https://127.0.0.1:1").is_err());
        assert!(XcapRoot::parse("http://127.0.0.1").is_err());
        let e = XcapRoot::parse("http://10.1.2.3:80").unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        assert_eq!(
            r.list_anchor("sip:p1@example.com"),
            "http://127.0.0.1:8080/xcap-root/resource-lists/users/sip:p1@example.com/index/~~/resource-lists/list%5B@name=%22allowed%22%5D"
        );
        assert_eq!(
            r.document("pres-rules", "sip:p1@example.com"),
            "http://127.0.0.1:8080/xcap-root/pres-rules/users/sip:p1@example.com/index"
        );
    }

    #[test]
    fn names_are_the_sip_requests_names() {
        let n = names();
        let tpl = Templates::new(1, &n.domain, &n.namespace, &[], false);
        for (kind, idx, ours) in [(b'p', 4, n.presentity(4)), (b'w', 0, n.watcher(0))] {
            let mut b = Vec::new();
            tpl.uri(&mut b, kind, idx);
            assert_eq!(String::from_utf8(b).unwrap(), ours);
        }
        assert_eq!(n.blocked(0), "sip:s2blocked-1@example.com");
    }

    #[test]
    fn every_presentity_but_its_last_watcher_is_listed() {
        // watchers 0..7 round-robin over 3 presentities, and a presentity nobody watches
        let targets = [0, 1, 2, 0, 1, 2, 0];
        let m = membership(&targets, 4);
        assert_eq!(m.lists, vec![vec![0, 3], vec![1], vec![2], vec![]]);
        assert_eq!(m.listed_in, vec![0, 1, 2, 0, u32::MAX, u32::MAX, u32::MAX]);
        assert_eq!(m.expected_pending(), 3);
    }

    /// The list `anc` holding one identity.
    struct List(String, String);

    impl ListMembership for List {
        fn contains(&self, anc: &str, identity: &str) -> bool {
            anc == self.0 && identity == self.1
        }
    }

    #[test]
    fn documents_validate_against_the_schemas() {
        let n = names();
        let root = XcapRoot::parse("http://127.0.0.1:8080").unwrap();
        let rl = resource_lists(&n, &[0, 3, 7]);
        assert!(rl.contains("<entry uri=\"sip:s2w8@example.com\"/>"), "{rl}");
        assert_valid(rl.as_bytes());
        assert_valid(resource_lists(&n, &[]).as_bytes());
        let pr = pres_rules(&root, &n, 2);
        let anchor = root.list_anchor("sip:s2p3@example.com");
        assert!(pr.contains(&anchor), "{pr}");
        assert!(pr.contains("sip:s2blocked-3@example.com"), "{pr}");
        assert!(!pr.contains("provide-all-attributes"));
        assert_valid(pr.as_bytes());

        // the engine's own reading: members allowed with a filtering view, the one left out
        // pending, the named identity blocked
        let doc = presenced_systems::xcap::dom::parse_document(pr.as_bytes()).unwrap();
        let set = RuleSet::from_document(&doc);
        assert_eq!(set.external_lists().collect::<Vec<_>>(), [anchor.as_str()]);
        let lists = List(anchor.clone(), n.watcher(0));
        let d = |uri: &str| {
            let cx = Context {
                requester: Requester::Identity(uri),
                now_unix: 1_800_000_000,
                sphere: None,
            };
            decide(&set, &cx, &lists, SubHandling::Allow)
        };
        let member = d(&n.watcher(0));
        assert_eq!(member.handling, SubHandling::Allow);
        let p = &member.permissions;
        assert!(!p.all_attributes, "the view must be a real filter");
        assert_eq!(p.services, Selection::All);
        assert_eq!(p.persons, Selection::All);
        assert_eq!(p.devices, Selection::All);
        assert!(p.shows(Attribute::Note) && p.shows(Attribute::Activities));
        assert!(!p.shows(Attribute::Mood));
        // decided by the rules whatever the server's default (given as allow here)
        assert_eq!(d(&n.watcher(1)).handling, SubHandling::Confirm);
        assert_eq!(d(&n.blocked(2)).handling, SubHandling::Block);
    }
}
