//! The runtime side of one room (like tldraw's TLSocketRoom around the pure TLSyncRoom): the room
//! rebuilt lazily from storage, the sockets of the room kept in memory between messages, commits
//! (writes durable before any message leaves) and the alarm.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use worker::{State, WebSocket};

use super::frame_id;
use crate::http::ApiError;
use crate::protocol::{Code, Failure, Outgoing};
use crate::room::{restore_room, AnyRoom, Effects, Session};
use crate::store::room_sql::RoomStore;

pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

pub struct RoomHost {
    pub state: State,
    pub store: RoomStore,
    room: RefCell<Option<Box<dyn AnyRoom>>>,
    /// The room's sockets and their sessions, decoded once per wake instead of per message.
    sockets: RefCell<Option<Vec<(WebSocket, Session)>>>,
    /// The alarm time we know is set, so the hot path rarely asks storage.
    alarm_at: Cell<Option<u64>>,
}

impl RoomHost {
    pub fn new(state: State) -> Self {
        let store = RoomStore::new(state.storage());
        if let Err(e) = store.ensure_schema() {
            super::log::error("schema", e, &[]);
        }
        RoomHost { state, store, room: RefCell::new(None), sockets: RefCell::new(None), alarm_at: Cell::new(None) }
    }

    /// Runs `f` on the room, loading it from storage first if this instance has none.
    pub fn with_room<T>(&self, f: impl FnOnce(&mut dyn AnyRoom, &RoomStore) -> T) -> Result<T, ApiError> {
        let mut slot = self.room.borrow_mut();
        if slot.is_none() {
            let document_id = self.store.meta("document_id")?.ok_or_else(|| ApiError::internal("room has no document id"))?;
            let mut stored = self.store.load()?;
            // Awareness and typing of sockets that vanished while we were away are stale.
            let live: Vec<String> = self.sessions().into_iter().map(|s| s.session_id).collect();
            stored.awareness.retain(|(sid, _)| live.contains(sid));
            stored.typing.retain(|(sid, _)| live.contains(sid));
            *slot = Some(restore_room(&document_id, stored).map_err(ApiError::internal)?);
        }
        let room = slot.as_mut().ok_or_else(|| ApiError::internal("room missing"))?;
        Ok(f(room.as_mut(), &self.store))
    }

    /// Forgets the in-memory room (it ran ahead of storage, or the document was deleted).
    pub fn drop_room(&self) {
        *self.room.borrow_mut() = None;
    }

    fn ensure_sockets(&self) {
        if self.sockets.borrow().is_some() {
            return;
        }
        let all = self
            .state
            .get_websockets()
            .into_iter()
            .filter_map(|ws| ws.deserialize_attachment::<Session>().ok().flatten().map(|s| (ws, s)))
            .collect();
        *self.sockets.borrow_mut() = Some(all);
    }

    /// Sessions of every socket in the room.
    pub fn sessions(&self) -> Vec<Session> {
        self.ensure_sockets();
        self.sockets.borrow().iter().flatten().map(|(_, s)| s.clone()).collect()
    }

    pub fn socket_count(&self) -> usize {
        self.ensure_sockets();
        self.sockets.borrow().as_ref().map_or(0, Vec::len)
    }

    /// The session of `ws`: only the sender's own attachment is decoded per message.
    pub fn session_of(&self, ws: &WebSocket) -> Option<Session> {
        ws.deserialize_attachment::<Session>().ok().flatten()
    }

    pub fn add_socket(&self, ws: &WebSocket, session: &Session) {
        self.ensure_sockets();
        if let Some(all) = self.sockets.borrow_mut().as_mut() {
            all.push((ws.clone(), session.clone()));
        }
    }

    pub fn remove_socket(&self, session_id: &str) {
        self.ensure_sockets();
        if let Some(all) = self.sockets.borrow_mut().as_mut() {
            all.retain(|(_, s)| s.session_id != session_id);
        }
    }

    pub fn forget_sockets(&self) {
        *self.sockets.borrow_mut() = None;
    }

    /// Persists the effects' writes, then sends their messages. If the write fails the in-memory
    /// room is dropped (it ran ahead of storage) and the sender gets `internal`; nothing is sent.
    /// No await between the write and the sends: the output gate holds these messages until the
    /// write is durable, and no other event can slip in and reorder versions.
    pub fn commit(&self, fx: Effects, sender: Option<(&WebSocket, &Session)>) -> Result<(), String> {
        if let Err(e) = self.store.persist(fx.writes) {
            self.drop_room();
            if let Some((ws, _)) = sender {
                send(ws, Outgoing::error(&Failure::new(Code::Internal, format!("storage write failed: {e}")), None, None));
            }
            return Err(e.to_string());
        }
        if let Some((ws, _)) = sender {
            for m in fx.to_sender {
                send(ws, m);
            }
        }
        let sender_id = sender.map(|(_, s)| s.session_id.as_str());
        if !fx.to_others.is_empty() {
            self.ensure_sockets();
            let sockets = self.sockets.borrow();
            for m in fx.to_others {
                // One frame text for every recipient.
                let frame = m.into_frame(&frame_id(), now_ms());
                for (ws, s) in sockets.iter().flatten() {
                    if Some(s.session_id.as_str()) != sender_id {
                        let _ = ws.send_with_str(&frame);
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends one message to every socket of the room.
    pub fn broadcast(&self, m: Outgoing) {
        let frame = m.into_frame(&frame_id(), now_ms());
        self.ensure_sockets();
        for (ws, _) in self.sockets.borrow().iter().flatten() {
            let _ = ws.send_with_str(&frame);
        }
    }

    /// Makes sure an alarm fires no later than `at` (epoch ms).
    pub async fn schedule_alarm(&self, at: u64) {
        if self.alarm_at.get().is_some_and(|t| t <= at) {
            return;
        }
        let storage = self.state.storage();
        if let Ok(Some(t)) = storage.get_alarm().await {
            if (t as u64) <= at && (t as u64) > now_ms() {
                self.alarm_at.set(Some(t as u64));
                return;
            }
        }
        let delay = at.saturating_sub(now_ms());
        if storage.set_alarm(Duration::from_millis(delay)).await.is_ok() {
            self.alarm_at.set(Some(at));
        }
    }

    /// The alarm fired (or was deleted): nothing is known to be set.
    pub fn alarm_cleared(&self) {
        self.alarm_at.set(None);
    }
}

pub fn send(ws: &WebSocket, m: Outgoing) {
    // A socket that is already closing cannot take more; its close handler cleans up.
    let _ = ws.send_with_str(m.into_frame(&frame_id(), now_ms()));
}
