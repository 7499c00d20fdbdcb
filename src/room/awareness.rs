//! Coalesced awareness (§8: cursors at 20–60 Hz). Each socket's state is relayed at most once
//! per `AWARENESS_RELAY_MS`, the latest state winning, and nothing is written per frame: changed
//! states reach storage in one checkpoint at most every `AWARENESS_CHECKPOINT_MS`, so a room
//! woken from hibernation still shows the cursors of sockets that are still there (the host
//! drops stored states of sessions with no live socket before restoring).
//!
//! Off until the host turns it on (`Room::coalesce_awareness`): the host must then honour
//! `FollowUps::awareness_due` by calling [`Room::tick_awareness`] at that time, or delayed
//! relays would never leave.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use serde_json::value::RawValue;

use super::Room;
use crate::doc::Document;
use crate::limits;
use crate::model::{AwarenessEntry, Effects, Session, Write};
use crate::protocol::Outgoing;

#[derive(Default)]
pub(super) struct Coalescer {
    pub(super) on: bool,
    sockets: BTreeMap<String, Relay>,
    /// Sessions whose state changed since the last checkpoint.
    dirty: BTreeSet<String>,
    checkpoint_due: Option<u64>,
}

struct Relay {
    client_id: String,
    user_id: String,
    last_sent: u64,
    pending: bool,
}

impl Relay {
    fn due(&self) -> Option<u64> {
        self.pending.then_some(self.last_sent + limits::AWARENESS_RELAY_MS)
    }
}

impl Coalescer {
    fn next_due(&self) -> Option<u64> {
        self.sockets.values().filter_map(Relay::due).chain(self.checkpoint_due).min()
    }
}

fn relay(client_id: &str, user_id: &str, state: Option<&RawValue>) -> Outgoing {
    Outgoing::new("awareness", json!({"client_id": client_id, "user_id": user_id, "state": state}))
}

impl<D: Document> Room<D> {
    /// Turns coalesced awareness on (the host then runs [`Room::tick_awareness`] when asked).
    pub fn coalesce_awareness(&mut self, on: bool) {
        self.relay.on = on;
    }

    /// A valid awareness frame in coalesced mode: the state is kept in memory and relayed now
    /// if this socket's last relay is old enough, else when it is due.
    pub(super) fn awareness_coalesced(&mut self, me: &Session, state: Option<Box<RawValue>>, now: u64) -> Effects {
        match &state {
            Some(s) => {
                let entry = AwarenessEntry { client_id: me.client_id.clone(), user_id: me.user_id.clone(), state: s.clone() };
                self.awareness.insert(me.session_id.clone(), entry);
            }
            None => {
                self.awareness.remove(&me.session_id);
            }
        }
        let c = &mut self.relay;
        c.dirty.insert(me.session_id.clone());
        c.checkpoint_due.get_or_insert(now + limits::AWARENESS_CHECKPOINT_MS);
        let mut effects = Effects::default();
        match c.sockets.get_mut(&me.session_id) {
            Some(r) if r.pending => {}
            Some(r) if now < r.last_sent + limits::AWARENESS_RELAY_MS => r.pending = true,
            _ => {
                let r = Relay { client_id: me.client_id.clone(), user_id: me.user_id.clone(), last_sent: now, pending: false };
                c.sockets.insert(me.session_id.clone(), r);
                effects.to_others.push(relay(&me.client_id, &me.user_id, state.as_deref()));
            }
        }
        effects.follow_ups.awareness_due = c.next_due();
        effects
    }

    /// Sends the relays that are due (each socket's latest state) and, when due, checkpoints the
    /// changed states in one set of writes; `follow_ups.awareness_due` says when to call again.
    pub fn tick_awareness(&mut self, now: u64) -> Effects {
        let mut effects = Effects::default();
        for (session_id, r) in &mut self.relay.sockets {
            if r.due().is_some_and(|t| t <= now) {
                let state = self.awareness.get(session_id).map(|a| &*a.state);
                effects.to_others.push(relay(&r.client_id, &r.user_id, state));
                r.pending = false;
                r.last_sent = now;
            }
        }
        if self.relay.checkpoint_due.is_some_and(|t| t <= now) {
            for session_id in std::mem::take(&mut self.relay.dirty) {
                effects.writes.push(match self.awareness.get(&session_id) {
                    Some(entry) => Write::PutAwareness(session_id, entry.clone()),
                    None => Write::DeleteAwareness(session_id),
                });
            }
            self.relay.checkpoint_due = None;
        }
        effects.follow_ups.awareness_due = self.relay.next_due();
        effects
    }

    /// A socket left: its pending relay is dropped (the others get `leave`); whether its stored
    /// row must go (it may have been checkpointed before its state was cleared).
    pub(super) fn forget_awareness(&mut self, session_id: &str) -> bool {
        self.relay.sockets.remove(session_id);
        let was_dirty = self.relay.dirty.remove(session_id);
        if self.relay.dirty.is_empty() {
            self.relay.checkpoint_due = None;
        }
        was_dirty
    }
}
