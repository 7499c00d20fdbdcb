//! Who is in the room: catching a socket up, joins and leaves, typing timeouts.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::{Room, StateOf};
use crate::model::{Effects, Lookup, Session, StrokeStream, Write};
use crate::doc::Document;
use crate::protocol::{Failure, Outgoing};

#[derive(Serialize)]
struct UserView<'a> {
    user_id: &'a str,
    name: &'a str,
    client_ids: Vec<&'a str>,
}

#[derive(Serialize)]
struct AwarenessView<'a> {
    client_id: &'a str,
    user_id: &'a str,
    state: &'a RawValue,
}

/// `initial_state`: the state field is named by the document kind, so it is written by hand.
pub(super) struct InitialState<'a, D: Document> {
    room: &'a Room<D>,
    users: Vec<UserView<'a>>,
    role: &'static str,
    session_id: &'a str,
    /// Without the state field (a canvas appends its strokes from storage).
    pub(super) without_state: bool,
}

impl<D: Document> Serialize for InitialState<'_, D> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let r = self.room;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("document_id", &r.document_id)?;
        m.serialize_entry("kind", D::KIND.as_str())?;
        m.serialize_entry("version", &r.version)?;
        if !self.without_state {
            m.serialize_entry(D::STATE_FIELD, &StateOf(&r.doc))?;
        }
        m.serialize_entry("users", &self.users)?;
        let awareness: Vec<AwarenessView> =
            r.awareness.values().map(|a| AwarenessView { client_id: &a.client_id, user_id: &a.user_id, state: &a.state }).collect();
        m.serialize_entry("awareness", &awareness)?;
        m.serialize_entry("role", self.role)?;
        m.serialize_entry("session_id", self.session_id)?;
        m.end()
    }
}

impl<D: Document> Room<D> {
    /// Messages for a socket that has just connected (or asked to `sync`): a replay since `since`
    /// when possible, else the full state; then `sync_status`. A kind whose state streams from
    /// storage (canvas) gets nothing here without a replay: see [`Room::catch_up_effects`].
    pub fn catch_up(&self, me: &Session, since: Option<u64>, present: &[Session], reply_to: Option<String>) -> Vec<Outgoing> {
        self.catch_up_effects(me, since, present, reply_to).to_sender
    }

    /// [`Room::catch_up`] as effects: for a canvas without a replay, a `StrokeStream::CatchUp`
    /// follow-up the host runs through `CanvasRoom::stream`.
    pub fn catch_up_effects(&self, me: &Session, since: Option<u64>, present: &[Session], reply_to: Option<String>) -> Effects {
        let mut out = Vec::new();
        match since.and_then(|v| self.ops_since(v)) {
            // §6.1 [1.2]: a replay is announced as `syncing` with how many operations follow.
            Some(ops) => {
                let start = out.len();
                out.push(Outgoing::new("sync_status", Value::Null));
                out.extend(ops.map(|e| e.broadcast("sync_operation", &self.document_id, reply_to.clone())));
                let pending = out.len() - start - 1;
                out[start] = Outgoing::reply("sync_status", reply_to.clone(), self.status_payload("syncing", pending));
            }
            None if D::STREAMS_STATE => {
                let mut effects = Effects::default();
                effects.follow_ups.stream = Some(StrokeStream::CatchUp { reply_to });
                return effects;
            }
            None => out.push(Outgoing::reply_sized("initial_state", reply_to.clone(), self.initial_state(me, present))),
        }
        out.push(self.sync_status(reply_to));
        Effects { to_sender: out, ..Effects::default() }
    }

    pub(super) fn sync_status(&self, reply_to: Option<String>) -> Outgoing {
        Outgoing::reply("sync_status", reply_to, self.status_payload("synced", 0))
    }

    /// `sync_status` (§3.1; `pending_count` §6.1 [1.2]: the operations the replay still sends).
    fn status_payload(&self, status: &str, pending_count: usize) -> Value {
        json!({"document_id": self.document_id, "status": status, "pending_count": pending_count, "version": self.version})
    }

    pub(super) fn initial_state<'a>(&'a self, me: &'a Session, present: &'a [Session]) -> InitialState<'a, D> {
        let mut users: Vec<UserView> = Vec::new();
        for s in present {
            match users.iter_mut().find(|u| u.user_id == s.user_id) {
                Some(u) if !u.client_ids.contains(&s.client_id.as_str()) => u.client_ids.push(&s.client_id),
                Some(_) => {}
                None => users.push(UserView { user_id: &s.user_id, name: &s.name, client_ids: vec![&s.client_id] }),
            }
        }
        InitialState { room: self, users, role: if me.can_write { "write" } else { "read" }, session_id: &me.session_id, without_state: false }
    }

    /// Checks that `me.client_id` may be used by `me.user_id` here, before the socket is
    /// accepted, so a refused client never joins. Nothing is claimed: the first operation claims
    /// (§5.1 [1.2]).
    pub fn admit(&mut self, me: &Session, now: u64, lookup: &dyn Lookup) -> Result<Effects, Failure> {
        self.check_client(&me.client_id, &me.user_id, now, lookup)?;
        Ok(Effects::default())
    }

    /// A socket joined: catch it up, and tell the others when its client is new to the room.
    pub fn connect(&self, me: &Session, since: Option<u64>, present: &[Session]) -> Effects {
        let mut effects = self.catch_up_effects(me, since, present, None);
        let already_here = present.iter().any(|s| s.client_id == me.client_id && s.session_id != me.session_id);
        if !already_here {
            effects.to_others.push(Outgoing::new("join", user_payload(me)));
        }
        effects
    }

    /// A socket left (cleanly or not). `remaining` excludes it.
    pub fn disconnect(&mut self, me: &Session, remaining: &[Session]) -> Effects {
        let mut effects = Effects::default();
        let had_state = self.awareness.remove(&me.session_id).is_some();
        if self.forget_awareness(&me.session_id) || had_state {
            effects.writes.push(Write::DeleteAwareness(me.session_id.clone()));
        }
        if self.typing.remove(&me.session_id).is_some() {
            effects.writes.push(Write::DeleteTyping(me.session_id.clone()));
            effects.to_others.push(Outgoing::new("stopped_typing", json!({"user_id": me.user_id, "name": me.name})));
        }
        if !remaining.iter().any(|s| s.client_id == me.client_id) {
            effects.to_others.push(Outgoing::new("leave", user_payload(me)));
        }
        effects
    }

    /// The earliest time the shell must call [`Room::expire_typing`].
    pub fn next_typing_deadline(&self) -> Option<u64> {
        self.typing.values().map(|t| t.deadline).min()
    }

    /// Sends `stopped_typing` for every `typing` not refreshed in time.
    pub fn expire_typing(&mut self, now: u64) -> Effects {
        let expired: Vec<String> = self.typing.iter().filter(|(_, t)| t.deadline <= now).map(|(k, _)| k.clone()).collect();
        let mut effects = Effects::default();
        for session_id in expired {
            if let Some(t) = self.typing.remove(&session_id) {
                effects.writes.push(Write::DeleteTyping(session_id));
                effects.to_others.push(Outgoing::new("stopped_typing", json!({"user_id": t.user_id, "name": t.name})));
            }
        }
        effects
    }
}

fn user_payload(s: &Session) -> Value {
    json!({"user": {"id": s.user_id, "name": s.name}, "client_id": s.client_id})
}
