//! SIP as the engine speaks it: parsing ([`message`]), the fields read on every message
//! ([`fields`]), responses ([`response`]) and stream framing ([`framing`]).

pub mod fields;
pub mod framing;
pub mod headers;
pub mod identity;
pub mod message;
pub mod response;
pub mod scan;
pub mod syntax;
pub mod text;
pub mod uri;

pub use headers::{Head, Name};
pub use message::{HeaderLookup, Method, Parsed, Request, Response};
