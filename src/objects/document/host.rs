//! The runtime side of one room (tldraw's TLSocketRoom around the pure TLSyncRoom): the room
//! rebuilt lazily from storage, the room's sockets decoded once per wake, commits (writes durable
//! before any message leaves) and the alarm time.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use worker::{State, WebSocket};

use super::storage::RoomStore;
use crate::model::{Effects, Session};
use crate::protocol::{Code, Failure, Outgoing};
use crate::room::{restore_room, DynRoom};
use crate::runtime::clock::{frame_id, now_ms};
use crate::runtime::http::ApiError;
use crate::runtime::sockets::{send, send_text};
use crate::runtime::sql_worker::ObjectSql;

pub struct RoomHost {
    state: State,
    store: RoomStore<ObjectSql>,
    room: RefCell<Option<Box<dyn DynRoom>>>,
    /// The room's sockets and their sessions, decoded once per wake instead of per message.
    sockets: RefCell<Option<Vec<(WebSocket, Session)>>>,
    /// The alarm time we know is set, so the hot path rarely asks storage.
    alarm_at: Cell<Option<u64>>,
}

impl RoomHost {
    pub fn new(state: State) -> Self {
        let store = RoomStore::new(ObjectSql::new(state.storage()));
        if let Err(e) = store.ensure_schema() {
            crate::runtime::log::error("schema", e, &[("object", "document".into())]);
        }
        RoomHost { state, store, room: RefCell::new(None), sockets: RefCell::new(None), alarm_at: Cell::new(None) }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn store(&self) -> &RoomStore<ObjectSql> {
        &self.store
    }

    /// Runs `f` on the room, loading it from storage first if this instance has none.
    pub fn with_room<T>(&self, f: impl FnOnce(&mut dyn DynRoom, &RoomStore<ObjectSql>) -> T) -> Result<T, ApiError> {
        let mut slot = self.room.borrow_mut();
        if slot.is_none() {
            let document_id = self.store.document_id()?.ok_or_else(|| ApiError::internal("room has no document id"))?;
            let mut saved = self.store.load()?;
            // Awareness and typing of sockets that vanished while we were away are stale.
            let live: Vec<String> = self.sessions().into_iter().map(|s| s.session_id).collect();
            saved.awareness.retain(|(sid, _)| live.contains(sid));
            saved.typing.retain(|(sid, _)| live.contains(sid));
            *slot = Some(restore_room(&document_id, saved).map_err(ApiError::internal)?);
        }
        let room = slot.as_mut().ok_or_else(|| ApiError::internal("room missing"))?;
        Ok(f(room.as_mut(), &self.store))
    }

    /// Forgets the in-memory room and sockets (the document was deleted).
    pub fn forget(&self) {
        *self.room.borrow_mut() = None;
        *self.sockets.borrow_mut() = None;
        self.alarm_at.set(None);
    }

    fn ensure_sockets(&self) {
        if self.sockets.borrow().is_some() {
            return;
        }
        let all = self.state.get_websockets().into_iter().filter_map(|ws| session_of(&ws).map(|s| (ws, s))).collect();
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

    /// Accepts a socket into the hibernation API with its session as attachment.
    pub fn accept(&self, ws: &WebSocket, session: &Session) -> worker::Result<()> {
        self.state.accept_web_socket(ws);
        ws.serialize_attachment(session)?;
        self.ensure_sockets();
        if let Some(all) = self.sockets.borrow_mut().as_mut() {
            all.push((ws.clone(), session.clone()));
        }
        Ok(())
    }

    pub fn remove_socket(&self, session_id: &str) {
        self.ensure_sockets();
        if let Some(all) = self.sockets.borrow_mut().as_mut() {
            all.retain(|(_, s)| s.session_id != session_id);
        }
    }

    /// Persists the effects' writes, then sends their messages. If the write fails the in-memory
    /// room is dropped (it ran ahead of storage) and the sender gets `internal`; nothing is sent.
    /// No await between the write and the sends: the output gate holds these messages until the
    /// write is durable, and no other event can slip in and reorder versions.
    pub fn commit(&self, effects: Effects, sender: Option<(&WebSocket, &Session)>) -> Result<(), String> {
        if let Err(e) = self.store.persist(&effects.writes) {
            *self.room.borrow_mut() = None;
            if let Some((ws, _)) = sender {
                send(ws, Outgoing::error(&Failure::new(Code::Internal, format!("storage write failed: {e}")), None, None));
            }
            return Err(e.to_string());
        }
        if let Some((ws, _)) = sender {
            effects.to_sender.into_iter().for_each(|m| send(ws, m));
        }
        let sender_id = sender.map(|(_, s)| s.session_id.as_str());
        if !effects.to_others.is_empty() {
            self.ensure_sockets();
            let sockets = self.sockets.borrow();
            for m in effects.to_others {
                // One frame text for every recipient.
                let frame = m.into_frame(&frame_id(), now_ms());
                for (ws, _) in sockets.iter().flatten().filter(|(_, s)| Some(s.session_id.as_str()) != sender_id) {
                    send_text(ws, &frame);
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
            send_text(ws, &frame);
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

/// The session of `ws`, from its attachment (only the sender's is decoded per message).
pub fn session_of(ws: &WebSocket) -> Option<Session> {
    ws.deserialize_attachment::<Session>().ok().flatten()
}
