//! The engine's edges: messages in ([`Inbox`]) and messages out ([`Outbox`]).

use bevy_ecs::prelude::Resource;

use crate::net::{Inbound, Outbound};

/// Messages handed in for the next tick.
#[derive(Resource, Default)]
pub struct Inbox {
    pub messages: Vec<Inbound>,
}

/// Messages produced by this tick, for the shell to send.
#[derive(Resource, Default)]
pub struct Outbox {
    pub messages: Vec<Outbound>,
}

impl Outbox {
    /// Queue one message.
    pub fn push(&mut self, m: Outbound) {
        self.messages.push(m);
    }
}
