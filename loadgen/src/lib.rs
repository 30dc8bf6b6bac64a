//! loadgen: an open-loop SIP presence load generator (RFC 3903 PUBLISH, RFC 6665/3856
//! SUBSCRIBE/NOTIFY) for capacity planning against presenced, Kamailio or any presence server
//! on loopback, resource-list subscriptions (RFC 4662) and SIP Digest authentication of every
//! user (`[auth]`) included. One thread, one mio `Poll`, batched UDP I/O
//! (`recvmmsg`/`sendmmsg`), pre-formatted request templates and hdrhistogram latencies
//! measured from each request's scheduled send time. See `loadgen --help` and
//! `config/loadgen-*.toml`.

pub mod digest;
pub mod lists;
pub mod msgs;
pub mod popularity;
pub mod procstat;
pub mod responder;
pub mod rules;
pub mod run;
pub mod scenario;
pub mod sipmsg;
pub mod stats;
pub mod udp;
