//! Who is in the room: catching a socket up, joins and leaves, typing timeouts.

use serde_json::{json, Value};

use super::{Effects, Room, Session, Write};
use crate::protocol::Outgoing;

impl Room {
    /// Messages for a socket that has just connected (or asked to `sync`): a replay since `since`
    /// when possible, else the full state; then `sync_status`.
    pub fn catch_up(&self, me: &Session, since: Option<u64>, present: &[Session], reply_to: Option<String>) -> Vec<Outgoing> {
        let mut out = Vec::new();
        match since.and_then(|v| self.ops_since(v)) {
            Some(ops) => out.extend(
                ops.map(|e| Outgoing::reply("sync_operation", reply_to.clone(), e.broadcast_payload(&self.document_id))),
            ),
            None => out.push(Outgoing::reply("initial_state", reply_to.clone(), self.initial_state(me, present))),
        }
        out.push(Outgoing::reply(
            "sync_status",
            reply_to,
            json!({"document_id": self.document_id, "status": "synced", "version": self.version}),
        ));
        out
    }

    fn initial_state(&self, me: &Session, present: &[Session]) -> Value {
        let mut users: Vec<(String, String, Vec<String>)> = Vec::new();
        for s in present {
            match users.iter_mut().find(|(u, _, _)| *u == s.user_id) {
                Some((_, _, ids)) if !ids.contains(&s.client_id) => ids.push(s.client_id.clone()),
                Some(_) => {}
                None => users.push((s.user_id.clone(), s.name.clone(), vec![s.client_id.clone()])),
            }
        }
        let users: Vec<Value> = users
            .into_iter()
            .map(|(user_id, name, client_ids)| json!({"user_id": user_id, "name": name, "client_ids": client_ids}))
            .collect();
        let awareness: Vec<Value> = self
            .awareness
            .values()
            .map(|a| json!({"client_id": a.client_id, "user_id": a.user_id, "state": a.state}))
            .collect();
        let (field, state) = self.state_field();
        json!({
            "document_id": self.document_id,
            "kind": self.kind.as_str(),
            "version": self.version,
            field: state,
            "users": users,
            "awareness": awareness,
            "role": if me.can_write { "write" } else { "read" },
            "session_id": me.session_id,
        })
    }

    /// A socket joined: catch it up, and tell the others when its client is new to the room.
    pub fn connect(&self, me: &Session, since: Option<u64>, present: &[Session]) -> Effects {
        let mut fx = Effects { to_sender: self.catch_up(me, since, present, None), ..Effects::default() };
        let already_here = present.iter().any(|s| s.client_id == me.client_id && s.session_id != me.session_id);
        if !already_here {
            fx.to_others.push(Outgoing::new("join", user_payload(me)));
        }
        fx
    }

    /// A socket left (cleanly or not). `remaining` excludes it.
    pub fn disconnect(&mut self, me: &Session, remaining: &[Session]) -> Effects {
        let mut fx = Effects::default();
        if self.awareness.remove(&me.session_id).is_some() {
            fx.writes.push(Write::DeleteAwareness(me.session_id.clone()));
        }
        if self.typing.remove(&me.session_id).is_some() {
            fx.writes.push(Write::DeleteTyping(me.session_id.clone()));
            fx.to_others.push(Outgoing::new("stopped_typing", json!({"user_id": me.user_id, "name": me.name})));
        }
        if !remaining.iter().any(|s| s.client_id == me.client_id) {
            fx.to_others.push(Outgoing::new("leave", user_payload(me)));
        }
        fx
    }

    /// The earliest time the shell must call [`Room::expire_typing`].
    pub fn next_typing_deadline(&self) -> Option<u64> {
        self.typing.values().map(|t| t.deadline).min()
    }

    /// Sends `stopped_typing` for every `typing` not refreshed in time.
    pub fn expire_typing(&mut self, now: u64) -> Effects {
        let expired: Vec<String> =
            self.typing.iter().filter(|(_, t)| t.deadline <= now).map(|(k, _)| k.clone()).collect();
        let mut fx = Effects::default();
        for session_id in expired {
            if let Some(t) = self.typing.remove(&session_id) {
                fx.writes.push(Write::DeleteTyping(session_id));
                fx.to_others.push(Outgoing::new("stopped_typing", json!({"user_id": t.user_id, "name": t.name})));
            }
        }
        fx
    }
}

fn user_payload(s: &Session) -> Value {
    json!({"user": {"id": s.user_id, "name": s.name}, "client_id": s.client_id})
}
