//! Dispatch of client frames (§3.2) to the room.

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::Room;
use crate::model::{AwarenessEntry, Effects, Lookup, OpRequest, Session, StrokeStream, TypingEntry, Write};
use crate::doc::Document;
use crate::limits;
use crate::protocol::{opt_u64, parse_frame, Code, Failure, Frame, Outgoing};

impl<D: Document> Room<D> {
    /// Handles one text frame from `me`. `present` lists every socket in the room, `me` included.
    pub fn on_frame(&mut self, me: &Session, text: &str, now: u64, present: &[Session], lookup: &dyn Lookup) -> Effects {
        if let Some((reply_to, req)) = D::parse_frame_fast(text, &me.client_id) {
            return match self.submit_frame(me, req, reply_to.clone(), now, lookup) {
                Ok(effects) => effects,
                Err((f, op_id)) => Effects::reply(Outgoing::error(&f, reply_to, op_id)),
            };
        }
        let frame = match parse_frame(text) {
            Ok(f) => f,
            Err((f, id)) => return Effects::reply(Outgoing::error(&f, id, None)),
        };
        let reply_to = frame.id.clone();
        if D::STREAMS_STATE && frame.kind == "operation" && frame.payload.is_empty() {
            if let Some(effects) = self.plan_frame(me, text, reply_to.clone(), now, lookup) {
                return effects;
            }
        }
        match self.dispatch(me, frame, now, present, lookup) {
            Ok(effects) => effects,
            Err((f, op_id)) => Effects::reply(Outgoing::error(&f, reply_to, op_id)),
        }
    }

    fn dispatch(&mut self, me: &Session, frame: Frame, now: u64, present: &[Session], lookup: &dyn Lookup) -> Result<Effects, (Failure, Option<String>)> {
        let reply_to = frame.id.clone();
        let p = &frame.payload;
        match frame.kind.as_str() {
            "operation" => {
                let nested = crate::plugin_shapes::unnest_operation(p).map_err(|f| (f, None))?;
                let req = OpRequest::parse::<D>(nested.as_ref().unwrap_or(p), Some(&me.client_id)).map_err(|f| (f, None))?;
                self.submit_frame(me, req, reply_to, now, lookup)
            }
            "sync" => {
                let since = opt_u64(p, "since").map_err(|f| (f, None))?;
                let since = since.ok_or_else(|| (Failure::bad("since is required"), None))?;
                self.ensure_log(since, lookup).map_err(|f| (f, None))?;
                Ok(self.catch_up_effects(me, Some(since), present, reply_to))
            }
            "awareness" => self.awareness_frame(me, p, now),
            "typing" => {
                let entry = TypingEntry { user_id: me.user_id.clone(), name: me.name.clone(), deadline: now + limits::TYPING_TIMEOUT_MS };
                let was_typing = self.typing.insert(me.session_id.clone(), entry.clone()).is_some();
                let deadline = entry.deadline;
                let mut effects = Effects { writes: vec![Write::PutTyping(me.session_id.clone(), entry)], ..Effects::default() };
                effects.follow_ups.typing_deadline = Some(deadline);
                if !was_typing {
                    effects.to_others.push(Outgoing::new("typing", typing_payload(me)));
                }
                Ok(effects)
            }
            "stopped_typing" => {
                let mut effects = Effects::default();
                if self.typing.remove(&me.session_id).is_some() {
                    effects.writes.push(Write::DeleteTyping(me.session_id.clone()));
                    effects.to_others.push(Outgoing::new("stopped_typing", typing_payload(me)));
                }
                Ok(effects)
            }
            "ping" => Ok(Effects::reply(Outgoing::reply("pong", reply_to, json!({})))),
            // The host streams what entered the view (`CanvasRoom::stream`) and keeps the new
            // viewport in the socket's attachment.
            "viewport" if D::STREAMS_STATE => {
                let to = super::viewport::parse_viewport_payload(p).map_err(|f| (f, None))?;
                let mut effects = Effects::default();
                effects.follow_ups.stream = Some(StrokeStream::Viewport { to, reply_to });
                Ok(effects)
            }
            "viewport" => Err((Failure::new(Code::UnknownType, "viewport is a canvas message"), None)),
            other => Err((Failure::new(Code::UnknownType, format!("unknown message type {other:?}")), None)),
        }
    }

    /// `awareness`: a state of at most 2 KiB (or null to clear it), relayed to the others.
    fn awareness_frame(&mut self, me: &Session, p: &serde_json::Map<String, serde_json::Value>, now: u64) -> Result<Effects, (Failure, Option<String>)> {
        let state = p.get("state").ok_or_else(|| (Failure::bad("state is required"), None))?;
        if !(state.is_object() || state.is_null()) {
            return Err((Failure::bad("state must be an object or null"), None));
        }
        let text = state.to_string();
        if text.len() > limits::MAX_AWARENESS_BYTES {
            return Err((Failure::new(Code::TooLarge, "awareness state exceeds 2 KiB"), None));
        }
        let state = RawValue::from_string(text).map_err(|e| (Failure::bad(e.to_string()), None))?;
        if self.relay.on {
            let state = (state.get() != "null").then_some(state);
            return Ok(self.awareness_coalesced(me, state, now));
        }
        let mut effects = Effects::default();
        if state.get() == "null" {
            if self.awareness.remove(&me.session_id).is_some() {
                effects.writes.push(Write::DeleteAwareness(me.session_id.clone()));
            }
        } else {
            let entry = AwarenessEntry { client_id: me.client_id.clone(), user_id: me.user_id.clone(), state: state.clone() };
            self.awareness.insert(me.session_id.clone(), entry.clone());
            effects.writes.push(Write::PutAwareness(me.session_id.clone(), entry));
        }
        effects.to_others.push(Outgoing::new(
            "awareness",
            json!({"client_id": me.client_id, "user_id": me.user_id, "state": state}),
        ));
        Ok(effects)
    }
}

impl<D: Document> Room<D> {
    /// The canvas plan's `operation` shape (§8, `doc::canvas_plan`); `None` if the frame is not one.
    fn plan_frame(&mut self, me: &Session, text: &str, reply_to: Option<String>, now: u64, lookup: &dyn Lookup) -> Option<Effects> {
        let frame: serde_json::Map<String, Value> = serde_json::from_str(text).ok()?;
        let op = crate::doc::canvas_plan::plan_operation(&frame, &me.client_id)?;
        let submitted = op.and_then(|op| OpRequest::parse::<D>(&op, None)).map_err(|f| (f, None));
        Some(match submitted.and_then(|req| self.submit_frame(me, req, reply_to.clone(), now, lookup)) {
            Ok(effects) => effects,
            Err((f, op_id)) => Effects::reply(Outgoing::error(&f, reply_to, op_id)),
        })
    }

    fn submit_frame(&mut self, me: &Session, req: OpRequest<D::Op>, reply_to: Option<String>, now: u64, lookup: &dyn Lookup) -> Result<Effects, (Failure, Option<String>)> {
        let actor = me.actor();
        let seq = req.seq;
        let done = self.submit(&actor, req, now, lookup).map_err(|f| (f, seq.map(|s| format!("{}:{s}", me.client_id))))?;
        // The ack comes first; an `engagement_update` follows it.
        let mut ack = done.ack;
        ack.reply_to = reply_to;
        let mut effects = done.effects;
        effects.to_sender.insert(0, ack);
        Ok(effects)
    }
}

fn typing_payload(me: &Session) -> Value {
    json!({"user_id": me.user_id, "name": me.name})
}
