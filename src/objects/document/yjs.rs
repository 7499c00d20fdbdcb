//! The socket and REST side of a Yjs room (§7 [1.2]): binary frames in and out, the room's
//! writes made durable by the group commit (§9, `group_commit.rs`: the updates that arrive while
//! a commit is made durable go together in the next one) before any frame leaves, awareness
//! removed with its socket, and REST updates relayed to every socket.

use serde_json::json;
use worker::{Request, WebSocket, WebSocketPair};

use super::client::{ApplyYjsUpdate, YjsApplied};
use super::delivery::YFrames;
use super::host::Attachment;
use super::DocumentRoom;
use crate::doc::ydoc::{b64, unb64, YFail};
use crate::model::{Actor, Session};
use crate::room::YEffects;
use crate::runtime::clock::{new_session_id, now_ms};
use crate::runtime::http::{ApiError, ApiResult};
use crate::runtime::sockets::{close, is_upgrade, probe_ok};

fn not_yjs() -> ApiError {
    ApiError::internal("the room is not a Yjs room")
}

impl DocumentRoom {
    /// Connect: the same checks as every socket, then sync step 1 and the others' awareness.
    /// `client_id` is optional here: the Yjs client id inside updates is the identity.
    pub(super) async fn open_yjs_socket(&self, req: &Request, actor: Actor) -> ApiResult {
        let url = req.url()?;
        let get = |k: &str| url.query_pairs().find(|(key, _)| key == k).map(|(_, v)| v.into_owned());
        let client_id = get("client_id").filter(|c| !c.is_empty()).unwrap_or_else(|| format!("y-{}", new_session_id()));
        let exp = get("exp").and_then(|v| v.parse().ok()).unwrap_or(0);
        let me = Session { session_id: new_session_id(), client_id, user_id: actor.user_id.clone(), name: actor.name.clone(), can_write: actor.can_write };
        self.admit_socket(&actor, &me).await?;
        if !is_upgrade(req) {
            return probe_ok();
        }
        let pair = WebSocketPair::new()?;
        let order = self.host.next_order();
        self.host.accept(&pair.server, &Attachment { session: me.clone(), viewport: None, batch: false, plugin: false, exp }, order)?;
        if let Some(due) = self.expiry_due(exp) {
            self.host.schedule_alarm(due).await;
        }
        let greeting = self.host.with_room(|room, _| room.as_yjs().map(|y| y.y_connect()))?.ok_or_else(not_yjs)?;
        // What is queued is committed first: the greeting's state vector holds it.
        let frames = YFrames { to_sender: greeting, ..YFrames::default() };
        if let Ok(follow) = self.host.commit_now(order, Default::default(), frames, (&pair.server, &me)) {
            self.schedule(follow).await;
        }
        self.report_room_change(&me.user_id);
        Ok(crate::runtime::sockets::upgraded_uncompressed(pair.client)?)
    }

    /// One binary frame of a Yjs socket, within its budget (60 a second, bursts of 200).
    pub(super) async fn on_yjs_frame(&self, ws: &WebSocket, me: &Session, frame: Vec<u8>) {
        if !self.ybudgets.admit_binary(ws, &me.user_id) {
            return;
        }
        let started = crate::runtime::clock::clock_ms();
        let outcome = self.host.with_room(|room, _| room.as_yjs().map(|y| y.y_message(me, &frame, now_ms())));
        match outcome {
            Ok(Some(fx)) => {
                self.commit_yjs(fx, Some(me)).await;
            }
            _ => {
                let _ = ws.close(Some(close::UNAVAILABLE), Some("the room could not be loaded; reconnect"));
            }
        }
        self.host.metrics.message(crate::runtime::clock::clock_ms() - started);
        self.report_soon().await;
    }

    /// A Yjs socket left: its awareness clients are removed and the others told.
    pub(super) async fn close_yjs_socket(&self, me: &Session) {
        if let Ok(Some(fx)) = self.host.with_room(|room, _| room.as_yjs().map(|y| y.y_disconnect(me))) {
            self.commit_yjs(fx, None).await;
        }
    }

    /// Commits the writes with the group commit, then sends: the sender its replies, every
    /// other socket the relays. A failed commit sends nothing; the room is rebuilt from storage
    /// and its sockets closed, so their clients reconnect and sync what storage holds.
    async fn commit_yjs(&self, fx: YEffects, sender: Option<&Session>) -> bool {
        let YEffects { to_sender, to_others, updates, effects, close, applied: _ } = fx;
        self.commit_with(effects, YFrames { to_sender, to_others, updates, close }, sender).await
    }

    /// `POST /documents/ydoc:{id}/update`: applied and relayed like a socket's → `{"version"}`.
    pub(super) async fn apply_yjs_update(&self, actor: &Actor, req: ApplyYjsUpdate) -> Result<YjsApplied, ApiError> {
        if !actor.can_write {
            return Err(ApiError::forbidden("no write grant for this document"));
        }
        let update = unb64(&req.update).map_err(ApiError::bad_request)?;
        let client_id = format!("http:{}", actor.user_id);
        // Its version (the current one for a duplicate), whatever arrives during its commit.
        let (outcome, version) = self.host.with_room(|room, _| {
            let outcome = room.as_yjs().map(|y| y.y_update(&actor.user_id, &client_id, &update, now_ms()));
            (outcome, room.version())
        })?;
        let fx = match outcome.ok_or_else(not_yjs)? {
            Ok(fx) => fx,
            Err(YFail::TooLarge) => return Err(ApiError::new(413, "too_large", "the encoded Yjs document would pass 16 MiB; nothing was applied")),
            Err(YFail::Malformed(m)) => return Err(ApiError::new(400, "bad_request", m)),
        };
        if !self.commit_yjs(fx, None).await {
            return Err(ApiError::internal("storage write failed; the update was not applied"));
        }
        Ok(YjsApplied { version })
    }

    /// `GET /documents/ydoc:{id}`: version, state vector and the whole update (base64 v1),
    /// and with `?text=NAME` the plain content of that `Y.Text`.
    pub(super) fn read_yjs(&self, document_id: &str, text: Option<&str>) -> Result<serde_json::Value, ApiError> {
        self.host.with_room(|room, _| {
            let (version, updated_at) = (room.version(), room.updated_at());
            let y = room.as_yjs()?;
            let (sv, update) = y.y_state();
            let mut body = json!({"document_id": document_id, "kind": "yjs", "version": version,
                "state_vector": b64(&sv), "update": b64(&update), "updated_at": updated_at});
            if let Some(name) = text {
                body["text"] = json!(y.y_text(name));
            }
            Some(body)
        })?
        .ok_or_else(not_yjs)
    }
}
