//! Ingest and dispatch: parse what came in, match it to transactions, apply the request checks
//! every method shares (RFC 3261 §8.2: method, Max-Forwards, Require), answer OPTIONS, and hand
//! each remaining request to the queue of its method.

use std::borrow::Cow;

use bytes::Bytes;

use bevy_ecs::prelude::*;

use crate::config::EngineConfig;
use crate::io::{Inbox, Outbox};
use crate::net::Outbound;
use crate::sip::message::{HexTag, Parsed, parse};
use crate::sip::response::{Echo, ResponseWriter, Shape, response_dest};
use crate::sip::{HeaderLookup, Method, Name, Request};
use crate::stats::Stats;
use crate::transaction::{
    Admission, ClientOutcomes, ClientTransactions, Responder, ServerTransactions, TxId,
    match_response,
};

/// A request admitted into a new server transaction, waiting for its method's system.
#[derive(Debug)]
pub struct Incoming {
    pub tx: TxId,
    pub req: Box<Request>,
}

/// Admitted requests waiting for routing this tick.
#[derive(Resource, Default)]
pub struct Admitted {
    pub requests: Vec<Incoming>,
}

/// What the server offers, as advertised in OPTIONS and 405/501 answers.
#[derive(Resource, Debug, Clone, Default)]
pub struct Capabilities {
    /// `Allow` header value.
    pub allow: String,
    /// `Accept` header value (bodies we take).
    pub accept: String,
    /// `Allow-Events` header value (event packages).
    pub allow_events: String,
}

impl Capabilities {
    /// Add a body type we take to `Accept`.
    pub fn add_accept(&mut self, content_type: &str) {
        if !self.accept.split(", ").any(|t| t == content_type) {
            if !self.accept.is_empty() {
                self.accept.push_str(", ");
            }
            self.accept.push_str(content_type);
        }
    }
}

/// Per-method queues of requests for the systems that handle them. A method with no queue is
/// answered 405.
#[derive(Resource, Default)]
pub struct MethodQueues {
    /// By [`slot`]; None for a method no system handles.
    queues: [Option<Vec<Incoming>>; METHODS],
}

use crate::sip::message::method_str as method_name;

/// Every method rsip models, in its declaration order: the position of a method here is its
/// discriminant, and so its queue ([`slot`]); a test checks the list against `Method::all()`.
pub const ALL: [Method; 14] = [
    Method::Ack,
    Method::Bye,
    Method::Cancel,
    Method::Info,
    Method::Invite,
    Method::Message,
    Method::Notify,
    Method::Options,
    Method::PRack,
    Method::Publish,
    Method::Refer,
    Method::Register,
    Method::Subscribe,
    Method::Update,
];

/// Number of methods rsip models.
const METHODS: usize = ALL.len();

/// The queue of a method: its place in [`ALL`].
pub fn slot(m: Method) -> usize {
    // a fieldless `Copy` enum: its discriminant is its place in the declaration
    m as usize
}

impl MethodQueues {
    /// Declare that a system handles `method`.
    pub fn register(&mut self, method: Method) {
        self.queues[slot(method)].get_or_insert_default();
    }

    /// Take this tick's requests of `method`.
    pub fn take(&mut self, method: Method) -> Vec<Incoming> {
        self.queues[slot(method)]
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// This tick's requests of `method` so far, for a system that screens them before
    /// their method's system (authentication).
    pub fn queue_mut(&mut self, method: Method) -> Option<&mut Vec<Incoming>> {
        self.queues[slot(method)].as_mut()
    }

    /// True when a system handles `method`.
    fn handles(&self, method: Method) -> bool {
        self.queues[slot(method)].is_some()
    }

    fn push(&mut self, inc: Incoming) -> Result<(), Incoming> {
        match &mut self.queues[slot(inc.req.method)] {
            Some(q) => {
                q.push(inc);
                Ok(())
            }
            None => Err(inc),
        }
    }

    /// The `Allow` value: OPTIONS plus every registered method.
    pub fn allow(&self) -> String {
        let mut names: Vec<&str> = ALL
            .into_iter()
            .filter(|&m| self.handles(m))
            .map(method_name)
            .collect();
        names.sort_unstable();
        let mut allow = String::from("OPTIONS");
        for n in names {
            if n != "OPTIONS" {
                allow.push_str(", ");
                allow.push_str(n);
            }
        }
        allow
    }
}

/// A header value of an [`Answer`]: text (borrowed for the `'static` ones) or a number,
/// written straight into the response (no `String` per value).
#[derive(Debug, Clone)]
pub enum Value {
    Text(Cow<'static, str>),
    Num(u64),
}

impl From<&'static str> for Value {
    fn from(v: &'static str) -> Value {
        Value::Text(Cow::Borrowed(v))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(Cow::Owned(v))
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Num(v as u64)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Num(v)
    }
}

/// Extra headers of an answer kept inline (more go to a `Vec`).
const INLINE_HEADERS: usize = 2;

/// A final answer built by a handler: status, reason and extra headers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: u16,
    pub reason: Cow<'static, str>,
    inline: [Option<(&'static str, Value)>; INLINE_HEADERS],
    more: Vec<(&'static str, Value)>,
}

impl Answer {
    pub fn new(code: u16, reason: impl Into<Cow<'static, str>>) -> Answer {
        Answer {
            code,
            reason: reason.into(),
            inline: Default::default(),
            more: Vec::new(),
        }
    }

    /// Add a header.
    pub fn with(mut self, name: &'static str, value: impl Into<Value>) -> Answer {
        let h = (name, value.into());
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(h),
            None => self.more.push(h),
        }
        self
    }

    /// The extra headers, in the order they were added.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.inline
            .iter()
            .flatten()
            .chain(&self.more)
            .map(|(n, v)| (*n, v))
    }
}

/// The final response of `inc`'s transaction that `answer` makes (for [`Replies`]): the To tag
/// is `to_tag` when a dialog was created, else one derived from the request; `seed` is the
/// engine's.
pub fn answer_response(
    inc: &Incoming,
    answer: Answer,
    to_tag: Option<&str>,
    seed: u64,
) -> (Bytes, Shape) {
    let derived;
    let tag = match to_tag {
        Some(t) => t,
        None => {
            derived = local_tag(&inc.req, seed);
            derived.as_str()
        }
    };
    let mut w = respond(&inc.req, answer.code, &answer.reason, tag);
    for (n, v) in answer.headers() {
        match v {
            Value::Text(t) => w.header(n, t),
            Value::Num(x) => w.header_num(n, *x),
        };
    }
    w.finish_shaped()
}

/// Final responses of a batch, sent together at its end ([`answer_response`] for each): the
/// transaction table and the outbox are looked up once per batch, not once per request.
#[derive(Default)]
pub struct Replies {
    answered: Vec<(Incoming, (Bytes, Shape))>,
    out: Vec<Outbound>,
}

impl Replies {
    /// Queue the final response of `inc` (from [`answer_response`]) for the end of the batch.
    pub fn push(&mut self, inc: Incoming, response: (Bytes, Shape)) {
        self.answered.push((inc, response));
    }

    /// Complete each transaction and queue its response, in order.
    pub fn send(&mut self, world: &mut World) {
        if self.answered.is_empty() {
            return;
        }
        let mut txs = world.resource_mut::<ServerTransactions>();
        for (inc, response) in self.answered.drain(..) {
            self.out.extend(txs.finish(inc.tx, &inc.req, response));
        }
        world
            .resource_mut::<Outbox>()
            .messages
            .append(&mut self.out);
    }
}

/// Build a final response to `req`.
pub fn respond(req: &Request, code: u16, reason: &str, to_tag: &str) -> ResponseWriter {
    // (the echoed values and the tag of the first To, found at parse time)
    let echo = Echo::from_request(req);
    ResponseWriter::new(code, reason, &echo, &req.via, &req.source, Some(to_tag))
}

/// A To tag for responses outside a dialog: derived from the request so that it is stable.
pub fn local_tag(req: &Request, seed: u64) -> HexTag {
    crate::sip::message::derived_tag(seed, [req.call_id(), req.from_tag().unwrap_or("")])
}

/// Parse the inbox; responses go to client transactions, requests through server-transaction
/// matching into [`Admitted`].
#[allow(clippy::too_many_arguments)]
pub fn ingest(
    mut inbox: ResMut<Inbox>,
    caps: Res<Capabilities>,
    mut outbox: ResMut<Outbox>,
    mut stxs: ResMut<ServerTransactions>,
    mut ctxs: ResMut<ClientTransactions>,
    mut outcomes: ResMut<ClientOutcomes>,
    mut admitted: ResMut<Admitted>,
    mut stats: ResMut<Stats>,
    config: Res<EngineConfig>,
) {
    let stats = &mut *stats;
    let force_rport = config.force_rport;
    for inbound in inbox.messages.drain(..) {
        stats.messages_in += 1;
        match parse(&inbound, &caps.allow, force_rport) {
            Parsed::Request(req) => {
                stats.requests += 1;
                stats.requests_by_method[crate::stats::method_index(req.method)] += 1;
                match req.method {
                    // ACK only exists for INVITE, which we never accept: nothing to do (§17.2.1).
                    Method::Ack => {}
                    // §9.2: CANCEL matches the transaction it cancels; ours are final at once.
                    Method::Cancel => {
                        // RFC 3261 §9.2: same branch and sent-by as the request it cancels; that
                        // request's method is not in the CANCEL, so try the ones we serve.
                        let exists = [
                            Method::Publish,
                            Method::Subscribe,
                            Method::Options,
                            Method::Notify,
                        ]
                        .into_iter()
                        .any(|m| {
                            let k = stxs.key(&req, m);
                            stxs.contains(&k)
                        });
                        let (code, reason) = if exists {
                            (200, "OK")
                        } else {
                            (481, "Call/Transaction Does Not Exist")
                        };
                        let tag = local_tag(&req, config.seed);
                        let bytes = respond(&req, code, reason, &tag).finish();
                        outbox.push(Outbound::whole(response_dest(&req.via, &req.source), bytes));
                    }
                    _ => {
                        if let Admission::New(tx) = stxs.admit(&req, &mut outbox, stats) {
                            admitted.requests.push(Incoming { tx, req });
                        }
                    }
                }
            }
            Parsed::Response(resp) => {
                stats.responses += 1;
                if !match_response(resp, config.seed, &mut ctxs, &mut outcomes) {
                    stats.stray_responses += 1;
                }
            }
            Parsed::Rejected { code, reply } => {
                stats.rejected += 1;
                tracing::debug!(
                    target: "presenced::rejected",
                    status = code,
                    peer = %inbound.source.peer,
                    "request refused at parse time"
                );
                outbox.push(reply);
            }
            Parsed::Dropped(why) => {
                stats.dropped += 1;
                tracing::debug!(
                    target: "presenced::rejected",
                    reason = ?why,
                    peer = %inbound.source.peer,
                    "message dropped unanswered"
                );
            }
        }
    }
}

/// The checks of RFC 3261 §8.2 shared by every method, OPTIONS, and routing to method queues.
pub fn dispatch(
    mut admitted: ResMut<Admitted>,
    caps: Res<Capabilities>,
    mut queues: ResMut<MethodQueues>,
    mut responder: Responder,
) {
    let seed = responder.config.seed;
    for inc in admitted.requests.drain(..) {
        let req = &inc.req;
        // only refusals and OPTIONS are answered here: derive their To tag only then
        let tag = || local_tag(req, seed);
        // §16.3 item 3 / Kamailio's mf_process_maxfwd_header: 0 hops left is 483, but an OPTIONS
        // with Max-Forwards 0 is answered by us as the UAS (RFC 3261 §11).
        match req
            .header(Name::MaxForwards)
            .map(|v| v.trim().parse::<u32>())
        {
            Some(Err(_)) => {
                responder.reply_to(
                    inc.tx,
                    req,
                    respond(req, 400, "Malformed Max-Forwards", &tag()),
                );
                continue;
            }
            Some(Ok(0)) if req.method != Method::Options => {
                responder.reply_to(inc.tx, req, respond(req, 483, "Too Many Hops", &tag()));
                continue;
            }
            _ => {}
        }
        // §8.2.1: method inspection comes first.
        if req.method != Method::Options && !queues.handles(req.method) {
            let mut w = respond(req, 405, "Method Not Allowed", &tag());
            w.header("Allow", &caps.allow);
            responder.reply_to(inc.tx, req, w);
            continue;
        }
        // §8.2.2.3: option tags in Require we do not support.
        let unsupported: Vec<&str> = req
            .header_values(Name::Require)
            .filter(|t| {
                !responder
                    .config
                    .supported
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(t))
            })
            .collect();
        if !unsupported.is_empty() {
            let mut w = respond(req, 420, "Bad Extension", &tag());
            w.header("Unsupported", &unsupported.join(", "));
            responder.reply_to(inc.tx, req, w);
            continue;
        }
        if req.method == Method::Options {
            // §11.2: what we allow, accept and support.
            let mut w = respond(req, 200, "OK", &tag());
            w.header("Allow", &caps.allow);
            if !caps.accept.is_empty() {
                w.header("Accept", &caps.accept);
            }
            w.header("Accept-Encoding", "identity");
            w.header("Accept-Language", "en");
            if !responder.config.supported.is_empty() {
                w.header("Supported", &responder.config.supported.join(", "));
            }
            if !caps.allow_events.is_empty() {
                w.header("Allow-Events", &caps.allow_events);
            }
            responder.reply_to(inc.tx, req, w);
            continue;
        }
        if let Err(inc) = queues.push(inc) {
            // registered above; unreachable in practice, but never lose a transaction
            let tag = local_tag(&inc.req, seed);
            let w = respond(&inc.req, 500, "Server Internal Error", &tag);
            responder.reply_to(inc.tx, &inc.req, w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_table_lists_every_method_at_its_slot() {
        // fails when rsip gains, loses or reorders a method and ALL is not brought along
        assert_eq!(ALL.to_vec(), Method::all());
        for (i, m) in ALL.into_iter().enumerate() {
            assert_eq!(slot(m), i, "{m}");
        }
    }
}
