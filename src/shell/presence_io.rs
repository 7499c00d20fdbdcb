//! The presence side of `UserChannel` (§4.5): the user's own presence, who watches it, and the
//! document rooms the user has sockets in; changes are pushed to both.

use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Headers, Method, Request, SqlStorageValue, WebSocket};

use super::document_room::now_ms;
use super::internal::{self, call_document, call_object, Actor};
use super::user_channel::{send, ChannelSession, UserChannel};
use crate::http::{json_response, ApiError, ApiResult};
use crate::presence::{parse_watch, Presence};
use crate::protocol::{Frame, Outgoing};

#[derive(Deserialize)]
struct Row {
    value: String,
}

#[derive(Deserialize)]
struct RoomReport {
    document_id: String,
    connections: u32,
}

impl UserChannel {
    fn meta(&self, key: &str) -> Option<String> {
        let rows: Vec<Row> = self.sql.exec("SELECT value FROM meta WHERE key = ?", Some(vec![key.into()])).ok()?.to_array().ok()?;
        rows.into_iter().next().map(|r| r.value)
    }

    fn set_meta(&self, key: &str, value: &str) -> worker::Result<()> {
        self.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", Some(vec![key.into(), value.into()]))?;
        Ok(())
    }

    pub(super) fn remember_user(&self, user_id: &str) -> worker::Result<()> {
        self.set_meta("user_id", user_id)
    }

    /// Records activity now (a socket opened or closed, a room joined or left).
    pub(super) fn touch(&self) -> worker::Result<()> {
        self.set_meta("last_seen", &now_ms().to_string())
    }

    fn connected(&self) -> bool {
        let rooms: Vec<Row> = self.sql.exec("SELECT document_id AS value FROM rooms LIMIT 1", None).and_then(|c| c.to_array()).unwrap_or_default();
        !self.state.get_websockets().is_empty() || !rooms.is_empty()
    }

    /// What others see of this user.
    fn shown(&self) -> Value {
        self.shown_to(false)
    }

    fn shown_to(&self, to_self: bool) -> Value {
        let stored: Option<Presence> = self.meta("presence").and_then(|p| serde_json::from_str(&p).ok());
        let last_seen = self.meta("last_seen").and_then(|v| v.parse().ok()).unwrap_or(0);
        let user_id = self.meta("user_id").unwrap_or_default();
        Presence::shown(&user_id, stored.as_ref(), self.connected(), last_seen, to_self)
    }

    /// `GET /presence?user_id=`: what others see.
    pub(super) fn presence(&self, req: &Request) -> ApiResult {
        let user = internal::Query::of(&req.url()?).str("user_id");
        if let Some(user) = &user {
            self.remember_user(user)?;
        }
        let asker = internal::actor(req)?;
        Ok(json_response(200, &self.shown_to(user.is_some_and(|u| u == asker.user_id)))?)
    }

    pub(super) async fn set_presence(&self, req: &mut Request) -> ApiResult {
        let actor = internal::actor(req)?;
        let body: Value = internal::body_json(req).await?;
        let presence = Presence::parse(&body, now_ms())?;
        self.remember_user(&actor.user_id)?;
        self.set_meta("presence", &serde_json::to_string(&presence).unwrap_or_default())?;
        self.broadcast(&self.shown()).await;
        Ok(json_response(200, &self.shown_to(true))?)
    }

    /// Sends the presence to every watcher's channel and every room the user is in.
    async fn broadcast(&self, shown: &Value) {
        let body = json!({ "payload": shown }).to_string();
        let watchers: Vec<Row> = self.sql.exec("SELECT user_id AS value FROM watchers", None).and_then(|c| c.to_array()).unwrap_or_default();
        for w in watchers {
            let status = call_object(&self.env, "USER_CHANNEL", &w.value, Method::Post, "/push", Some(body.clone()), Headers::new())
                .await
                .map(|r| r.status_code());
            // A watcher with no socket open has stopped watching.
            if status.is_ok_and(|s| s == 410) {
                let _ = self.sql.exec("DELETE FROM watchers WHERE user_id = ?", Some(vec![w.value.into()]));
            }
        }
        let rooms: Vec<Row> = self.sql.exec("SELECT document_id AS value FROM rooms", None).and_then(|c| c.to_array()).unwrap_or_default();
        let system = Actor { user_id: "presence".into(), name: "presence".into(), can_write: false, is_service: false };
        for r in rooms {
            let _ = call_document(&self.env, &r.value, &system, Method::Post, "/presence", Some(body.clone()), None).await;
        }
    }

    /// `POST /watch {watcher}`: another user's channel subscribes; answers the current presence.
    pub(super) async fn add_watcher(&self, req: &mut Request) -> ApiResult {
        let body: Value = internal::body_json(req).await?;
        let watcher = body["watcher"].as_str().ok_or_else(|| ApiError::bad_request("watcher is required"))?;
        if let Some(user) = body["user_id"].as_str() {
            self.remember_user(user)?;
        }
        self.sql.exec("INSERT OR IGNORE INTO watchers (user_id) VALUES (?)", Some(vec![SqlStorageValue::from(watcher.to_string())]))?;
        Ok(json_response(200, &self.shown())?)
    }

    /// `POST /push {payload}`: a watched user's presence, for this user's sockets.
    pub(super) async fn push(&self, req: &mut Request) -> ApiResult {
        let body: Value = internal::body_json(req).await?;
        let sockets = self.state.get_websockets();
        if sockets.is_empty() {
            return Err(ApiError::new(410, "gone", "no socket is watching"));
        }
        let m = Outgoing::new("presence", body["payload"].clone());
        for ws in &sockets {
            send(ws, &m);
        }
        Ok(json_response(200, &json!({"delivered": sockets.len()}))?)
    }

    /// `POST /rooms {document_id, connections}`: how many sockets the user has in a room.
    pub(super) async fn room_count(&self, req: &mut Request) -> ApiResult {
        let r: RoomReport = internal::body_json(req).await?;
        let actor = internal::actor(req)?;
        self.remember_user(&actor.user_id)?;
        let was_connected = self.connected();
        if r.connections == 0 {
            self.sql.exec("DELETE FROM rooms WHERE document_id = ?", Some(vec![r.document_id.into()]))?;
        } else {
            self.sql.exec(
                "INSERT OR REPLACE INTO rooms (document_id, connections) VALUES (?, ?)",
                Some(vec![r.document_id.into(), (r.connections as i32).into()]),
            )?;
        }
        self.touch()?;
        if was_connected && !self.connected() {
            self.broadcast(&self.shown()).await;
        }
        Ok(json_response(200, &json!({"ok": true}))?)
    }

    /// `watch_presence` from one of this user's sockets: subscribe to each user, send what they show now.
    pub(super) async fn watch(&self, ws: &WebSocket, frame: Frame) {
        let ids = match parse_watch(&frame.payload) {
            Ok(ids) => ids,
            Err(f) => return send(ws, &Outgoing::error(&f, frame.id, None)),
        };
        let Some(me) = ws.deserialize_attachment::<ChannelSession>().ok().flatten() else { return };
        for id in ids {
            let body = json!({"watcher": me.user_id, "user_id": id}).to_string();
            let shown = match call_object(&self.env, "USER_CHANNEL", &id, Method::Post, "/watch", Some(body), Headers::new()).await {
                Ok(mut resp) => resp.json::<Value>().await,
                Err(e) => Err(e),
            };
            if let Ok(shown) = shown {
                send(ws, &Outgoing::reply("presence", frame.id.clone(), shown));
            }
        }
    }

    /// A socket of this user closed: note the time, and tell watchers if the user is now offline.
    pub(super) async fn socket_gone(&self, ws: &WebSocket) {
        let _ = self.touch();
        let others = self.state.get_websockets().into_iter().filter(|s| s != ws).count();
        let rooms: Vec<Row> = self.sql.exec("SELECT document_id AS value FROM rooms LIMIT 1", None).and_then(|c| c.to_array()).unwrap_or_default();
        if others == 0 && rooms.is_empty() {
            let mut shown = self.shown();
            shown["status"] = json!("offline");
            self.broadcast(&shown).await;
        }
    }
}
