//! Back-end subscriptions to members in other domains (RFC 4662 §4.4.1): presenced is then an
//! ordinary subscriber (RFC 6665 §4.1): a SUBSCRIBE on behalf of the list's subscriber (From
//! and P-Asserted-Identity name them), to `rls.outbound_proxy` or, without one, to the member's
//! host when it is an address; the dialog's NOTIFYs are answered and their PIDF becomes the
//! member's part; the subscription is refreshed before it expires and ended (Expires: 0) with
//! its list.

use std::collections::HashMap;
use std::net::SocketAddr;

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemState;
use bytes::Bytes;

use super::{ListWatch, RlsConfig};
use crate::net::{AddrText, Dest, Outbound, Transport};
use crate::presence::PIDF;
use crate::router::{Answer, MethodQueues, Replies, answer_response};
use crate::sip::fields::{self, uri_of};
use crate::sip::{HeaderLookup, Method, Name};
use crate::subscription::{Content, Reason, SourceUri};
use crate::time::Clock;
use crate::timers::{DueTimers, TimerKind, Timers};
use crate::transaction::{ClientOutcomes, Outcome, Owner, Requester};

/// Where a back-end subscription to another domain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteState {
    /// Asked; no NOTIFY yet (RFC 4662 §4.5: the member is listed without an instance).
    Trying,
    Pending,
    Active,
    /// Unsubscribed with its list; forgotten at its last NOTIFY or answer.
    Closing,
}

/// A back-end subscription to a member in another domain: our client-side dialog.
#[derive(Component, Debug)]
pub struct Remote {
    pub list_sub: Entity,
    pub slot: u32,
    /// The member (Request-URI until the dialog has a target, and To).
    pub uri: Box<str>,
    /// Who watches: the list's subscriber (From, P-Asserted-Identity).
    pub identity: Box<str>,
    pub call_id: Box<str>,
    pub local_tag: Box<str>,
    pub remote_tag: Option<Box<str>>,
    /// The notifier's Contact (RFC 6665 §4.1.2.1: the target of requests in the dialog).
    pub target: Option<Box<str>>,
    pub cseq: u32,
    pub dest: Dest,
    pub state: RemoteState,
}

/// Back-end dialogs by Call-ID, and the address they are sent from.
#[derive(Resource, Default)]
pub struct Remotes {
    by_call_id: HashMap<Box<str>, Entity>,
    /// Our SIP address (the shell's first listener): Via and Contact name it.
    pub local: Option<SocketAddr>,
    next: u64,
}

impl Remotes {
    /// No dialogs yet; SUBSCRIBEs go from `local`.
    pub fn new(local: Option<SocketAddr>) -> Remotes {
        Remotes {
            local,
            ..Default::default()
        }
    }
}

/// Where SUBSCRIBEs to `uri`'s domain go: the outbound proxy, else the host when it is an
/// address (names need DNS, RFC 3263, which the engine does not do).
fn destination(world: &World, uri: &crate::sip::uri::Uri) -> Option<Dest> {
    let local = world.resource::<Remotes>().local?;
    let addr = match world.resource::<RlsConfig>().outbound_proxy {
        Some(p) => p,
        None => {
            let host = uri.host.trim_start_matches('[').trim_end_matches(']');
            SocketAddr::new(host.parse().ok()?, uri.port.unwrap_or(5060))
        }
    };
    Some(Dest {
        transport: Transport::Udp,
        addr,
        local,
        conn: None,
    })
}

/// Open a back-end subscription to `uri`, a member in another domain.
pub fn open(
    world: &mut World,
    list_sub: Entity,
    slot: u32,
    uri: &crate::sip::uri::Uri,
    identity: &str,
) -> Result<Entity, Reason> {
    let Some(dest) = destination(world, uri) else {
        return Err(Reason::Noresource);
    };
    let seed = world.resource::<crate::EngineConfig>().seed;
    let n = {
        let mut r = world.resource_mut::<Remotes>();
        r.next += 1;
        r.next
    };
    let call_id = format!("rls.{seed:x}.{n:x}@presenced");
    let local_tag = crate::sip::message::derived_tag(seed, [call_id.as_str(), "rls"]);
    let e = world
        .spawn((
            Remote {
                list_sub,
                slot,
                uri: uri.raw.as_str().into(),
                identity: identity.into(),
                call_id: call_id.as_str().into(),
                local_tag: local_tag.as_str().into(),
                remote_tag: None,
                target: None,
                cseq: 0,
                dest,
                state: RemoteState::Trying,
            },
            SourceUri(uri.raw.as_str().into()),
        ))
        .id();
    world
        .resource_mut::<Remotes>()
        .by_call_id
        .insert(call_id.into(), e);
    let expires = world.resource::<RlsConfig>().back_end_expires;
    send_subscribe(world, e, expires);
    Ok(e)
}

/// End a back-end subscription with its list (or member): unsubscribe when it has a dialog.
pub fn close(world: &mut World, e: Entity) {
    let Some(mut r) = world.get_mut::<Remote>(e) else {
        return;
    };
    if r.remote_tag.is_none() {
        forget(world, e);
        return;
    }
    r.state = RemoteState::Closing;
    send_subscribe(world, e, 0);
    // forgotten at the latest when a transaction could still be answered
    let at = world
        .resource::<Clock>()
        .now
        .plus_ms(world.resource::<crate::EngineConfig>().timer_64t1());
    world
        .resource_mut::<Timers>()
        .arm(TimerKind::BackEndRefresh, e.to_bits(), at);
}

fn forget(world: &mut World, e: Entity) {
    if let Some(r) = world.get::<Remote>(e) {
        let call_id = r.call_id.clone();
        world.resource_mut::<Remotes>().by_call_id.remove(&call_id);
    }
    world.despawn(e);
}

/// Send the dialog's next SUBSCRIBE (the first, a refresh, or Expires 0).
fn send_subscribe(world: &mut World, e: Entity, expires: u32) {
    let Some(mut r) = world.get_mut::<Remote>(e) else {
        return;
    };
    r.cseq += 1;
    let mut state: SystemState<Requester> = SystemState::new(world);
    let branch = {
        let Ok(mut req) = state.get_mut(world) else {
            return;
        };
        req.new_branch()
    };
    let r = world.get::<Remote>(e).expect("live");
    let local = AddrText::socket(r.dest.local);
    let to_tag = r
        .remote_tag
        .as_deref()
        .map(|t| format!(";tag={t}"))
        .unwrap_or_default();
    let target = r.target.as_deref().unwrap_or(&r.uri);
    let head = format!(
        "SUBSCRIBE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={};rport\r\n\
Max-Forwards: 70\r\nFrom: <{}>;tag={}\r\nTo: <{}>{to_tag}\r\nCall-ID: {}\r\nCSeq: {} SUBSCRIBE\r\n\
Contact: <sip:{local}>\r\nEvent: presence\r\nAccept: {PIDF}\r\nExpires: {expires}\r\n\
P-Asserted-Identity: <{}>\r\nUser-Agent: {}\r\nContent-Length: 0\r\n\r\n",
        &*branch,
        r.identity,
        r.local_tag,
        r.uri,
        r.call_id,
        r.cseq,
        r.identity,
        crate::sip::response::SERVER,
        local = local.as_str(),
    );
    let message = Outbound {
        dest: r.dest,
        head: Bytes::from(head),
        body: Bytes::new(),
    };
    if let Ok(mut req) = state.get_mut(world) {
        req.send(Owner(e.to_bits()), Method::Subscribe, &branch, message);
    }
    state.apply(world);
}

/// The back-end subscription ended (`reason`): its slot reports it (and may subscribe again,
/// [`super::lists::back_end_ended`]).
fn ended(world: &mut World, e: Entity, reason: Reason) {
    let Some(r) = world.get::<Remote>(e) else {
        return;
    };
    let (list_sub, slot, closing) = (r.list_sub, r.slot, r.state == RemoteState::Closing);
    forget(world, e);
    if closing {
        return;
    }
    super::lists::back_end_ended(world, list_sub, slot, e, reason);
    super::notify::touch(world, &[list_sub]);
}

/// The reason of a terminated state, as RFC 6665 names it.
fn reason_of(token: Option<&str>) -> Reason {
    match token.map(str::to_ascii_lowercase).as_deref() {
        Some("deactivated") => Reason::Deactivated,
        Some("probation") => Reason::Probation,
        Some("rejected") => Reason::Rejected,
        Some("timeout") => Reason::Timeout,
        Some("noresource") => Reason::Noresource,
        Some("invariant") => Reason::Invariant,
        _ => Reason::Giveup,
    }
}

/// The Lists set: answers to our SUBSCRIBEs (taken out before the NOTIFY layer reads the
/// rest), refresh timers, and NOTIFYs in our back-end dialogs.
pub fn drive(world: &mut World, mut replies: Local<Replies>) {
    // answers
    let done = std::mem::take(&mut world.resource_mut::<ClientOutcomes>().done);
    let (ours, others): (Vec<_>, Vec<_>) = done.into_iter().partition(|(o, _)| {
        Entity::try_from_bits(o.0).is_some_and(|e| world.get::<Remote>(e).is_some())
    });
    world.resource_mut::<ClientOutcomes>().done = others;
    let now = world.resource::<Clock>().now;
    for (owner, outcome) in ours {
        let e = Entity::from_bits(owner.0);
        match outcome {
            Outcome::Final(resp) if (200..300).contains(&resp.code) => {
                let closing = world
                    .get::<Remote>(e)
                    .is_some_and(|r| r.state == RemoteState::Closing);
                if closing {
                    continue; // its final NOTIFY, or the timer, forgets it
                }
                let granted = resp
                    .header(Name::Expires)
                    .and_then(fields::delta_seconds)
                    .unwrap_or(world.resource::<RlsConfig>().back_end_expires);
                let mut r = world.get_mut::<Remote>(e).expect("checked");
                if r.remote_tag.is_none() {
                    r.remote_tag = resp.to_tag().map(Into::into);
                }
                if let Some(c) = resp.header_values(Name::Contact).next() {
                    r.target = Some(uri_of(c).into());
                }
                // refresh at nine tenths of the interval (RFC 6665 §4.1.2.2)
                let at = now.plus_ms(u64::from(granted) * 900);
                world
                    .resource_mut::<Timers>()
                    .arm(TimerKind::BackEndRefresh, e.to_bits(), at);
            }
            Outcome::Final(resp) => {
                let reason = match resp.code {
                    403 | 603 => Reason::Rejected,
                    404 | 480 | 481 | 489 => Reason::Noresource,
                    _ => Reason::Giveup,
                };
                ended(world, e, reason);
            }
            Outcome::Timeout => ended(world, e, Reason::Giveup),
        }
    }
    // refreshes
    let due: Vec<Entity> = world
        .resource::<DueTimers>()
        .of(TimerKind::BackEndRefresh)
        .filter_map(|d| Entity::try_from_bits(d.key))
        .collect();
    for e in due {
        match world.get::<Remote>(e).map(|r| r.state) {
            Some(RemoteState::Closing) => forget(world, e),
            Some(_) => {
                let expires = world.resource::<RlsConfig>().back_end_expires;
                send_subscribe(world, e, expires);
            }
            None => {}
        }
    }
    // NOTIFYs
    let batch = world.resource_mut::<MethodQueues>().take(Method::Notify);
    if batch.is_empty() {
        return;
    }
    let seed = world.resource::<crate::EngineConfig>().seed;
    for inc in batch {
        let req = &inc.req;
        let e = world
            .resource::<Remotes>()
            .by_call_id
            .get(req.call_id())
            .copied()
            .filter(|&e| {
                world
                    .get::<Remote>(e)
                    .is_some_and(|r| req.to_tag() == Some(&*r.local_tag))
            });
        let answer = match e {
            None => Answer::new(481, "Subscription Does Not Exist"),
            Some(e) => {
                notified(world, e, req);
                Answer::new(200, "OK")
            }
        };
        let tag = req.to_tag().map(str::to_owned);
        let response = answer_response(&inc, answer, tag.as_deref(), seed);
        replies.push(inc, response);
    }
    replies.send(world);
}

/// A NOTIFY in back-end dialog `e`: its state, and its document as the member's part.
fn notified(world: &mut World, e: Entity, req: &crate::sip::Request) {
    let state = req.header("Subscription-State").unwrap_or("active");
    let token = fields::media_type(state).to_ascii_lowercase();
    let body = (!req.body.is_empty()).then(|| req.body.clone());
    let mut r = world.get_mut::<Remote>(e).expect("matched");
    if r.remote_tag.is_none() {
        r.remote_tag = req.from_tag().map(Into::into);
    }
    if let Some(c) = req.header_values(Name::Contact).next() {
        r.target = Some(uri_of(c).into());
    }
    let (list_sub, slot, closing) = (r.list_sub, r.slot, r.state == RemoteState::Closing);
    if token == "terminated" {
        ended(world, e, reason_of(fields::param(state, "reason")));
        return;
    }
    if closing {
        return;
    }
    let mut r = world.get_mut::<Remote>(e).expect("matched");
    r.state = if token == "pending" {
        RemoteState::Pending
    } else {
        RemoteState::Active
    };
    if let Some(body) = body {
        world.entity_mut(e).insert(Content {
            content_type: PIDF.into(),
            body,
        });
    }
    if let Some(mut w) = world.get_mut::<ListWatch>(list_sub) {
        w.changed.push(super::notify::Changed::slot(slot));
    }
    super::notify::touch(world, &[list_sub]);
}
