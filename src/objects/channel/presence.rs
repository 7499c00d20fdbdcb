//! The presence side of `UserChannel` (§4.5, §5.6): the user's own presence and its lease, who
//! watches it and who may, the document rooms the user has sockets in (reports that lapse unless
//! renewed), and playback; changes are pushed to watchers and rooms.

use serde_json::{json, Value};
use worker::WebSocket;

use super::client::{call, AddWatcher, PresencePushed, PushPresence, ReadPresence, RoomSockets, SetAudience, Unwatch};
use super::UserChannel;
use crate::model::Actor;
use crate::objects::document;
use crate::presence::{parse_audience, parse_playback, parse_watch, unwatched, Presence};
use crate::protocol::{Code, Failure, Frame, Outgoing};
use crate::runtime::clock::now_ms;
use crate::runtime::http::ApiError;
use crate::runtime::rpc::{self, Done};
use crate::runtime::sockets::send;

impl UserChannel {
    fn sockets_open(&self) -> bool {
        !self.state.get_websockets().is_empty()
    }

    /// What others in the audience see of this user now.
    fn shown(&self) -> Result<Value, ApiError> {
        Ok(self.store.shown(self.sockets_open(), false, now_ms())?)
    }

    /// What `viewer` may see: the presence, or `offline` outside the user's audience.
    fn shown_to(&self, viewer: &str, shown: &Value) -> Result<Value, ApiError> {
        if self.store.may_see(viewer)? {
            return Ok(shown.clone());
        }
        Ok(Presence::hidden(&self.store.meta("user_id")?.unwrap_or_default()))
    }

    /// What `asker` sees (the user themselves also sees `visible`).
    pub(super) fn presence_for(&self, asker: &Actor, req: ReadPresence) -> Result<Value, ApiError> {
        self.store.remember_user(&req.user_id)?;
        if req.user_id == asker.user_id {
            return Ok(self.store.shown(self.sockets_open(), true, now_ms())?);
        }
        if asker.is_service {
            return self.shown();
        }
        self.shown_to(&asker.user_id, &self.shown()?)
    }

    /// `PUT /api/v1/me/presence`.
    pub(super) async fn set_presence(&self, actor: &Actor, req: super::client::SetPresence) -> Result<Value, ApiError> {
        let presence = Presence::parse(&req.body, now_ms())?;
        self.store_presence(&actor.user_id, &presence).await
    }

    /// Stores the user's presence, pushes it, and sets a lease's end as an alarm; answers what
    /// the user sees of themselves.
    async fn store_presence(&self, user_id: &str, presence: &Presence) -> Result<Value, ApiError> {
        self.store.remember_user(user_id)?;
        self.store.set_presence(presence)?;
        self.broadcast(&self.shown()?).await;
        self.alarm_at_next_lapse().await;
        Ok(self.store.shown(self.sockets_open(), true, now_ms())?)
    }

    /// `PUT /api/v1/users/{id}/presence-audience` (service): who may watch or read this user.
    pub(super) async fn set_audience(&self, req: SetAudience) -> Result<Value, ApiError> {
        let ids = parse_audience(&req.body)?;
        self.store.remember_user(&req.user_id)?;
        self.store.set_audience(ids.as_deref())?;
        // Watchers now outside the audience are told `offline` at once.
        self.broadcast(&self.shown()?).await;
        Ok(json!({"user_id": req.user_id, "user_ids": ids}))
    }

    /// Sends `kind` to every watcher's channel (audience applied) and, for presence, to every room
    /// the user is in.
    async fn push_to_watchers(&self, kind: &str, payload: &Value) {
        let hidden = Presence::hidden(&self.store.meta("user_id").ok().flatten().unwrap_or_default());
        for watcher in self.store.watchers().unwrap_or_default() {
            let visible = self.store.may_see(&watcher).unwrap_or(false);
            // Outside the audience: presence reads `offline`, playback is not sent at all.
            let payload = match (visible, kind) {
                (true, _) => payload.clone(),
                (false, "presence") => hidden.clone(),
                (false, _) => continue,
            };
            let pushed = call(&self.env, &watcher, &PushPresence { payload, kind: Some(kind.to_string()) }).await;
            // A watcher with no socket open has stopped watching.
            if pushed.is_err_and(|e| e.status == 410) {
                let _ = self.store.remove_watcher(&watcher);
            }
        }
    }

    /// Sends the presence to every watcher's channel and every room the user is in.
    async fn broadcast(&self, shown: &Value) {
        self.push_to_watchers("presence", shown).await;
        let system = Actor::system("presence");
        for document_id in self.store.rooms(now_ms()).unwrap_or_default() {
            let show = document::client::ShowPresence { payload: shown.clone() };
            let _ = rpc::call(&document::client::object(&self.env, &document_id, &system), &show).await;
        }
    }

    /// Another user's channel subscribes; answers what that user may see now.
    pub(super) fn add_watcher(&self, req: AddWatcher) -> Result<Value, ApiError> {
        self.store.remember_user(&req.user_id)?;
        self.store.add_watcher(&req.watcher)?;
        self.shown_to(&req.watcher, &self.shown()?)
    }

    /// Another user's channel stopped watching this user.
    pub(super) fn remove_watcher(&self, req: Unwatch) -> Result<Done, ApiError> {
        self.store.remove_watcher(&req.watcher)?;
        Ok(Done {})
    }

    /// A watched user's presence or playback, for this user's sockets.
    pub(super) fn push_presence(&self, req: PushPresence) -> Result<PresencePushed, ApiError> {
        let sockets = self.state.get_websockets();
        if sockets.is_empty() {
            return Err(ApiError::new(410, "gone", "no socket is watching"));
        }
        let kind = match req.kind.as_deref() {
            Some("playback_started") => "playback_started",
            Some("playback_stopped") => "playback_stopped",
            _ => "presence",
        };
        let m = Outgoing::new(kind, &req.payload);
        sockets.iter().for_each(|ws| send(ws, m.clone()));
        Ok(PresencePushed { delivered: sockets.len() })
    }

    /// How many sockets the user has in a room, reported on every change and renewed by the room
    /// at least once a minute; watchers hear when that makes them offline.
    pub(super) async fn room_sockets(&self, r: RoomSockets) -> Result<Done, ApiError> {
        self.store.remember_user(&r.user_id)?;
        let now = now_ms();
        let was_connected = self.store.live(self.sockets_open(), now)?;
        self.store.set_room(&r.document_id, r.connections, now)?;
        if r.connections == 0 {
            self.store.touch(now)?;
        }
        if was_connected && !self.store.live(self.sockets_open(), now)? {
            self.broadcast(&self.shown()?).await;
        }
        self.alarm_at_next_lapse().await;
        Ok(Done {})
    }

    /// The alarm: a lease or a room report lapsed; watchers hear `offline` if nothing else holds.
    pub(super) async fn lapse(&self) {
        let now = now_ms();
        if !self.store.live(self.sockets_open(), now).unwrap_or(true) {
            let _ = self.store.touch(now);
            if let Ok(shown) = self.shown() {
                self.broadcast(&shown).await;
            }
        }
        self.alarm_at_next_lapse().await;
    }

    async fn alarm_at_next_lapse(&self) {
        let Ok(Some(at)) = self.store.next_lapse(now_ms()) else { return };
        let storage = self.state.storage();
        let current = storage.get_alarm().await.ok().flatten();
        if current.is_none_or(|c| c as u64 > at) {
            let _ = storage.set_alarm(std::time::Duration::from_millis(at.saturating_sub(now_ms()))).await;
        }
    }

    /// `watch_presence` from one of this user's sockets: the list replaces the last one (§5.1
    /// [1.2]); subscribe to each user, send what they show now.
    pub(super) async fn watch(&self, ws: &WebSocket, me: &str, frame: Frame) {
        let ids = match parse_watch(&frame.payload) {
            Ok(ids) => ids,
            Err(f) => return send(ws, Outgoing::error(&f, frame.id, None)),
        };
        // Once a second (§5.1 [1.2]); a watch refused above takes no turn.
        if let Err((f, ms)) = self.watch_allowed() {
            return send(ws, Outgoing::error_with(&f, frame.id, None, Some(ms)));
        }
        let old = self.store.watching().unwrap_or_default();
        for gone in unwatched(&old, &ids) {
            let _ = call(&self.env, gone, &Unwatch { watcher: me.to_string(), user_id: gone.clone() }).await;
        }
        let _ = self.store.set_watching(&ids);
        for id in ids {
            let watch = AddWatcher { watcher: me.to_string(), user_id: id.clone() };
            if let Ok(shown) = call(&self.env, &id, &watch).await {
                send(ws, Outgoing::reply("presence", frame.id.clone(), shown));
            }
        }
    }

    /// `presence` from one of this user's sockets: as `PUT /api/v1/me/presence`.
    pub(super) async fn presence_frame(&self, ws: &WebSocket, me: &str, frame: Frame) {
        let presence = match Presence::parse(&Value::Object(frame.payload), now_ms()) {
            Ok(p) => p,
            Err(f) => return send(ws, Outgoing::error(&f, frame.id, None)),
        };
        match self.store_presence(me, &presence).await {
            Ok(own) => send(ws, Outgoing::reply("presence", frame.id, own)),
            Err(_) => send(ws, Outgoing::error(&Failure::new(Code::Internal, "presence was not stored"), frame.id, None)),
        }
    }

    /// `playback` from one of this user's sockets: pushed to watchers in the audience, not kept.
    pub(super) async fn playback(&self, ws: &WebSocket, me: &str, frame: Frame) {
        match parse_playback(me, &frame.payload) {
            Ok((kind, payload)) => self.push_to_watchers(kind, &payload).await,
            Err(f) => send(ws, Outgoing::error(&f, frame.id, None)),
        }
    }

    /// A socket of this user closed: note the time, and tell watchers if the user is now offline.
    pub(super) async fn socket_gone(&self, ws: &WebSocket) {
        let now = now_ms();
        let _ = self.store.touch(now);
        let others = self.state.get_websockets().into_iter().filter(|s| s != ws).count();
        if others == 0 && !self.store.live(false, now).unwrap_or(true) {
            if let Ok(mut shown) = self.shown() {
                shown["status"] = json!("offline");
                self.broadcast(&shown).await;
            }
        }
    }
}
