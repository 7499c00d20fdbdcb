//! The presence side of `UserChannel` (§4.5): the user's own presence, who watches it, and the
//! document rooms the user has sockets in; changes are pushed to both.

use serde_json::{json, Value};
use worker::WebSocket;

use super::client::{call, AddWatcher, PresencePushed, PushPresence, ReadPresence, RoomSockets, Unwatch};
use super::UserChannel;
use crate::model::Actor;
use crate::objects::document;
use crate::presence::{parse_watch, unwatched, Presence};
use crate::protocol::{Frame, Outgoing};
use crate::runtime::clock::now_ms;
use crate::runtime::http::ApiError;
use crate::runtime::rpc::{self, Done};
use crate::runtime::sockets::send;

impl UserChannel {
    fn sockets_open(&self) -> bool {
        !self.state.get_websockets().is_empty()
    }

    /// What others see of this user.
    fn shown(&self) -> Result<Value, ApiError> {
        Ok(self.store.shown(self.sockets_open(), false)?)
    }

    /// What `asker` sees (the user themselves also sees `visible`).
    pub(super) fn presence_for(&self, asker: &Actor, req: ReadPresence) -> Result<Value, ApiError> {
        self.store.remember_user(&req.user_id)?;
        Ok(self.store.shown(self.sockets_open(), req.user_id == asker.user_id)?)
    }

    pub(super) async fn set_presence(&self, actor: &Actor, req: super::client::SetPresence) -> Result<Value, ApiError> {
        let presence = Presence::parse(&req.body, now_ms())?;
        self.store.remember_user(&actor.user_id)?;
        self.store.set_presence(&presence)?;
        self.broadcast(&self.shown()?).await;
        Ok(self.store.shown(self.sockets_open(), true)?)
    }

    /// Sends the presence to every watcher's channel and every room the user is in.
    async fn broadcast(&self, shown: &Value) {
        for watcher in self.store.watchers().unwrap_or_default() {
            let pushed = call(&self.env, &watcher, &PushPresence { payload: shown.clone() }).await;
            // A watcher with no socket open has stopped watching.
            if pushed.is_err_and(|e| e.status == 410) {
                let _ = self.store.remove_watcher(&watcher);
            }
        }
        let system = Actor::system("presence");
        for document_id in self.store.rooms().unwrap_or_default() {
            let show = document::client::ShowPresence { payload: shown.clone() };
            let _ = rpc::call(&document::client::object(&self.env, &document_id, &system), &show).await;
        }
    }

    /// Another user's channel subscribes; answers the current presence.
    pub(super) fn add_watcher(&self, req: AddWatcher) -> Result<Value, ApiError> {
        self.store.remember_user(&req.user_id)?;
        self.store.add_watcher(&req.watcher)?;
        self.shown()
    }

    /// Another user's channel stopped watching this user.
    pub(super) fn remove_watcher(&self, req: Unwatch) -> Result<Done, ApiError> {
        self.store.remove_watcher(&req.watcher)?;
        Ok(Done {})
    }

    /// A watched user's presence, for this user's sockets.
    pub(super) fn push_presence(&self, req: PushPresence) -> Result<PresencePushed, ApiError> {
        let sockets = self.state.get_websockets();
        if sockets.is_empty() {
            return Err(ApiError::new(410, "gone", "no socket is watching"));
        }
        let m = Outgoing::new("presence", &req.payload);
        sockets.iter().for_each(|ws| send(ws, m.clone()));
        Ok(PresencePushed { delivered: sockets.len() })
    }

    /// How many sockets the user has in a room; watchers hear when that makes them offline.
    pub(super) async fn room_sockets(&self, r: RoomSockets) -> Result<Done, ApiError> {
        self.store.remember_user(&r.user_id)?;
        let was_connected = self.sockets_open() || self.store.in_any_room()?;
        self.store.set_room(&r.document_id, r.connections)?;
        self.store.touch(now_ms())?;
        if was_connected && !(self.sockets_open() || self.store.in_any_room()?) {
            self.broadcast(&self.shown()?).await;
        }
        Ok(Done {})
    }

    /// `watch_presence` from one of this user's sockets: the list replaces the last one (§5.1
    /// [1.2]); subscribe to each user, send what they show now.
    pub(super) async fn watch(&self, ws: &WebSocket, me: &str, frame: Frame) {
        let ids = match parse_watch(&frame.payload) {
            Ok(ids) => ids,
            Err(f) => return send(ws, Outgoing::error(&f, frame.id, None)),
        };
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

    /// A socket of this user closed: note the time, and tell watchers if the user is now offline.
    pub(super) async fn socket_gone(&self, ws: &WebSocket) {
        let _ = self.store.touch(now_ms());
        let others = self.state.get_websockets().into_iter().filter(|s| s != ws).count();
        if others == 0 && !self.store.in_any_room().unwrap_or(true) {
            if let Ok(mut shown) = self.shown() {
                shown["status"] = json!("offline");
                self.broadcast(&shown).await;
            }
        }
    }
}
