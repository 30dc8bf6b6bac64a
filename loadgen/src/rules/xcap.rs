//! Writing the rules documents: two XCAP PUTs per presentity (RFC 4825 §8.2.1), before the load
//! starts. A few worker threads share one `ureq` agent, so each keeps its connection alive and
//! a thousand presentities take seconds; the first non-2xx answer (or transport error) stops
//! the upload and fails the run, since a run whose rules are not all in place measures
//! something else than it says.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{Membership, Names, PRES_RULES_TYPE, RESOURCE_LISTS_TYPE, XcapRoot};

/// What an upload did.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    /// Documents written (two per presentity).
    pub documents: u64,
    pub secs: f64,
}

/// PUT every presentity's resource-lists then pres-rules document under `root`, with
/// `concurrency` requests in flight at once.
pub fn put_all(
    root: &XcapRoot,
    names: &Names,
    members: &Membership,
    concurrency: u32,
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
    let presentities = members.lists.len() as u32;
    let next = AtomicU32::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..concurrency.min(presentities).max(1) {
            let agent = agent.clone();
            s.spawn(|| {
                let agent = agent;
                while !failed.load(Ordering::Relaxed) {
                    let p = next.fetch_add(1, Ordering::Relaxed);
                    if p >= presentities {
                        break;
                    }
                    if let Err(e) = put_presentity(&agent, root, names, members, p) {
                        failed.store(true, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(format!("rules upload failed: {e}"));
    }
    Ok(Upload {
        documents: 2 * presentities as u64,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// The two documents of presentity `p`: the list first, so the rules never name a list that
/// is not there yet.
fn put_presentity(
    agent: &ureq::Agent,
    root: &XcapRoot,
    names: &Names,
    members: &Membership,
    p: u32,
) -> Result<(), String> {
    let xui = names.presentity(p);
    let list = super::resource_lists(names, &members.lists[p as usize]);
    put(
        agent,
        &root.document("resource-lists", &xui),
        RESOURCE_LISTS_TYPE,
        list,
    )?;
    let rules = super::pres_rules(root, names, p);
    put(
        agent,
        &root.document("pres-rules", &xui),
        PRES_RULES_TYPE,
        rules,
    )
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
