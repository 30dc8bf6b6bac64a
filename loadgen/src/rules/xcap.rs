//! Writing documents over XCAP (RFC 4825 §8.2.1) before the load starts: the rules documents
//! of `[rules]` (two per presentity) and the rls-services documents of `[lists]` (one per
//! watcher). A few worker threads share one `ureq` agent, so each keeps its connection alive and
//! a thousand documents take a second or two; the first non-2xx answer (or transport error)
//! stops the upload and fails the run, since a run whose documents are not all in place
//! measures something else than it says.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Membership, Names, PRES_RULES_TYPE, RESOURCE_LISTS_TYPE, XcapRoot};

/// What an upload did.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    /// Documents written.
    pub documents: u64,
    pub secs: f64,
}

/// One document to PUT.
pub struct Doc {
    pub uri: String,
    pub content_type: &'static str,
    pub body: String,
}

/// PUT every presentity's resource-lists then pres-rules document under `root`, with
/// `concurrency` requests in flight at once.
pub fn put_all(
    root: &XcapRoot,
    names: &Names,
    members: &Membership,
    concurrency: u32,
) -> Result<Upload, String> {
    let presentities = members.lists.len() as u32;
    put_each("rules", presentities, concurrency, |p| {
        presentity_docs(root, names, members, p)
    })
}

/// PUT the documents `docs(i)` of each item `i` in `0..items`, in their order (an item's
/// later documents may name its earlier ones), with `concurrency` requests in flight at once.
/// `what` names the upload in an error.
pub fn put_each(
    what: &str,
    items: u32,
    concurrency: u32,
    docs: impl Fn(u32) -> Vec<Doc> + Sync,
) -> Result<Upload, String> {
    let started = Instant::now();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        // statuses are judged here, with the server's explanation in the message
        .http_status_as_error(false)
        // loopback only: an HTTP_PROXY in the environment must not take the requests away
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .max_idle_connections_per_host(concurrency as usize)
        .build()
        .into();
    let next = AtomicU32::new(0);
    let written = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..concurrency.min(items).max(1) {
            let agent = agent.clone();
            s.spawn(|| {
                let agent = agent;
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items {
                        break;
                    }
                    for d in docs(i) {
                        if let Err(e) = put(&agent, &d.uri, d.content_type, d.body) {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                            break;
                        }
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(format!("{what} upload failed: {e}"));
    }
    Ok(Upload {
        documents: written.into_inner(),
        secs: started.elapsed().as_secs_f64(),
    })
}

/// The two documents of presentity `p`: the list first, so the rules never name a list that
/// is not there yet.
fn presentity_docs(root: &XcapRoot, names: &Names, members: &Membership, p: u32) -> Vec<Doc> {
    let xui = names.presentity(p);
    vec![
        Doc {
            uri: root.document("resource-lists", &xui),
            content_type: RESOURCE_LISTS_TYPE,
            body: super::resource_lists(names, &members.lists[p as usize]),
        },
        Doc {
            uri: root.document("pres-rules", &xui),
            content_type: PRES_RULES_TYPE,
            body: super::pres_rules(root, names, p),
        },
    ]
}

/// One PUT; Err names the URI, the status and the start of the server's answer.
fn put(agent: &ureq::Agent, uri: &str, content_type: &str, body: String) -> Result<(), String> {
    let mut resp = agent
        .put(uri)
        .header("Content-Type", content_type)
        .send(body)
        .map_err(|e| format!("PUT {uri}: {e}"))?;
    let status = resp.status();
    // read the body in any case, so the connection can carry the next request
    let text = resp
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| format!("(unreadable body: {e})"));
    if status.is_success() {
        Ok(())
    } else {
        let text: String = text.chars().take(400).collect();
        Err(format!("PUT {uri}: HTTP {status}: {}", text.trim()))
    }
}
