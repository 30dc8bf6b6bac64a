//! Resource lists for a run (`[lists]`): which presentities each watcher's list holds, the
//! rls-services document (RFC 4826 §4) loadgen writes for it over XCAP before the load, and the
//! reader of the list NOTIFYs that come back (`body`).
//!
//! Watcher `w` owns one list, the `<service uri="sip:<ns>w<w+1>-list@<domain>">` of its own
//! rls-services document, whose members are `members` distinct presentities: consecutive ones
//! (`w·N … w·N+N-1`, modulo P) when the scenario's Zipf exponent is 0, so that every
//! presentity is on the same number of lists (W·N/P) the way the fan-out gives each the same
//! number of watchers; else drawn by popularity with the scenario's exponent, from the seed, a
//! presentity drawn twice being drawn again. Only the owner may subscribe to its list, and it
//! does so instead of subscribing to a presentity.

mod body;

use std::fmt::Write;
use std::ops::Range;

pub use body::{ListBody, read};

use crate::popularity::{Rng, Zipf};
use crate::rules::{Doc, Upload, put_each};
use crate::rules::{Names, RL_NS, XcapRoot};

/// Namespace and content type of rls-services documents (RFC 4826 §4.2, §4.4).
pub const RLS_NS: &str = "urn:ietf:params:xml:ns:rls-services";
pub const RLS_SERVICES_TYPE: &str = "application/rls-services+xml";

/// Every watcher's list, flat: list `w` is `members[w·n .. w·n+n]`, in ascending order (so a
/// NOTIFY's member is found by binary search).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lists {
    pub n: u32,
    pub members: Vec<u32>,
}

impl Lists {
    /// The lists of `watchers` watchers, `n` members each among `presentities`: consecutive
    /// ones when `zipf` is even (exponent 0), else drawn with it from `seed`.
    pub fn draw(
        watchers: u32,
        presentities: u32,
        n: u32,
        zipf: &Zipf,
        even: bool,
        seed: u64,
    ) -> Lists {
        let n = n.min(presentities);
        // a generator of its own: the lists do not move the run's other random choices
        let mut rng = Rng::new(seed ^ 0x6c69_7374_735f_6c67);
        let mut members = Vec::with_capacity(watchers as usize * n as usize);
        let mut list: Vec<u32> = Vec::with_capacity(n as usize);
        for w in 0..watchers {
            list.clear();
            if even {
                let first = (w as u64 * n as u64 % presentities as u64) as u32;
                list.extend((0..n).map(|j| (first + j) % presentities));
                list.sort_unstable();
            } else {
                draw_distinct(&mut list, n, presentities, zipf, &mut rng);
            }
            members.extend_from_slice(&list);
        }
        Lists { n, members }
    }

    /// Where list `w` sits in the flat vectors.
    pub fn range(&self, w: u32) -> Range<usize> {
        let a = w as usize * self.n as usize;
        a..a + self.n as usize
    }

    /// The members of list `w`.
    pub fn of(&self, w: u32) -> &[u32] {
        &self.members[self.range(w)]
    }

    /// On how many lists each of `presentities` is.
    pub fn memberships(&self, presentities: u32) -> Vec<u32> {
        let mut on = vec![0u32; presentities as usize];
        for &p in &self.members {
            on[p as usize] += 1;
        }
        on
    }
}

/// `n` distinct ranks by popularity into `list` (sorted). A rank drawn again is drawn anew; so
/// that a list of nearly every presentity still ends, after many repeats the rest are taken
/// in rank order.
fn draw_distinct(list: &mut Vec<u32>, n: u32, presentities: u32, zipf: &Zipf, rng: &mut Rng) {
    let mut tries = 0u32;
    while (list.len() as u32) < n && tries < 64 * n {
        tries += 1;
        let p = zipf.sample(rng);
        if let Err(at) = list.binary_search(&p) {
            list.insert(at, p);
        }
    }
    let mut p = 0;
    while (list.len() as u32) < n && p < presentities {
        if let Err(at) = list.binary_search(&p) {
            list.insert(at, p);
        }
        p += 1;
    }
}

/// Watcher `w`'s rls-services document: one `<service>`, its list, presence only.
pub fn rls_services(names: &Names, w: u32, members: &[u32]) -> String {
    let mut s = String::with_capacity(256 + members.len() * 48);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(s, "<rls-services xmlns=\"{RLS_NS}\" xmlns:rl=\"{RL_NS}\">");
    let _ = writeln!(s, "  <service uri=\"{}\">", names.list(w));
    s.push_str("    <list>\n");
    for &p in members {
        let _ = writeln!(s, "      <rl:entry uri=\"{}\"/>", names.presentity(p));
    }
    s.push_str("    </list>\n    <packages><package>presence</package></packages>\n");
    s.push_str("  </service>\n</rls-services>\n");
    s
}

/// PUT every watcher's rls-services document under `root`, `concurrency` at a time.
pub fn put_all(
    root: &XcapRoot,
    names: &Names,
    lists: &Lists,
    concurrency: u32,
) -> Result<Upload, String> {
    let watchers = (lists.members.len() / lists.n.max(1) as usize) as u32;
    put_each("lists", watchers, concurrency, |w| {
        vec![Doc {
            uri: root.document("rls-services", &names.watcher(w)),
            content_type: RLS_SERVICES_TYPE,
            body: rls_services(names, w, lists.of(w)),
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use presenced_systems::schema_check::assert_valid;

    fn names() -> Names {
        Names {
            namespace: "s1".into(),
            domain: "example.com".into(),
        }
    }

    #[test]
    fn even_lists_are_consecutive_and_spread_evenly() {
        let z = Zipf::new(20, 0.0);
        let l = Lists::draw(8, 20, 5, &z, true, 1);
        assert_eq!(l.of(0), &[0, 1, 2, 3, 4]);
        assert_eq!(l.of(3), &[15, 16, 17, 18, 19]);
        // wraps around, sorted
        assert_eq!(l.of(4), &[0, 1, 2, 3, 4]);
        assert!(l.memberships(20).iter().all(|&c| c == 2));
        let odd = Lists::draw(3, 7, 5, &z, true, 1);
        assert_eq!(odd.of(1), &[0, 1, 2, 5, 6]);
    }

    #[test]
    fn drawn_lists_are_distinct_skewed_and_repeatable() {
        let z = Zipf::new(1000, 1.0);
        let a = Lists::draw(200, 1000, 50, &z, false, 7);
        assert_eq!(a, Lists::draw(200, 1000, 50, &z, false, 7));
        assert_ne!(a, Lists::draw(200, 1000, 50, &z, false, 8));
        for w in 0..200 {
            let l = a.of(w);
            assert!(
                l.windows(2).all(|x| x[0] < x[1]),
                "sorted, no duplicates: {l:?}"
            );
        }
        let on = a.memberships(1000);
        // the most popular presentity is on nearly every list, a tail one on few
        assert!(on[0] > 190 && on[999] < 20, "{} {}", on[0], on[999]);
        // a list of every presentity still ends
        let all = Lists::draw(2, 60, 60, &Zipf::new(60, 3.0), false, 1);
        assert_eq!(all.of(1), (0..60).collect::<Vec<_>>().as_slice());
    }

    #[test]
    fn rls_services_document_validates() {
        let doc = rls_services(&names(), 6, &[0, 4]);
        assert!(
            doc.contains("<service uri=\"sip:s1w7-list@example.com\">"),
            "{doc}"
        );
        assert!(
            doc.contains("<rl:entry uri=\"sip:s1p5@example.com\"/>"),
            "{doc}"
        );
        assert_valid(doc.as_bytes());
        let root = XcapRoot::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            root.document("rls-services", &names().watcher(6)),
            "http://127.0.0.1:8080/xcap-root/rls-services/users/sip:s1w7@example.com/index"
        );
    }
}
