//! `DocumentRoom`: the Durable Object of one document. It adapts the pure [`Room`] to hibernating
//! sockets, SQLite storage and alarms, and holds nothing in memory that storage cannot rebuild.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use serde_json::{json, Value};
use worker::{
    durable_object, Date, DurableObject, Env, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage,
    WebSocketPair,
};

use super::internal::{self, Actor};
use super::socket_budget::Budgets;
use crate::http::{json_response, ApiError, ApiResult};
use crate::limits;
use crate::ot::text::diff;
use crate::protocol::{Code, Failure, Outgoing};
use crate::room::{self, Effects, OpRequest, Room, Session, Write};
use crate::store::d1;
use crate::store::room_sql::RoomStore;

/// Close code sent to sockets of a deleted document.
const CLOSE_DELETED: u16 = 4404;

#[durable_object]
pub struct DocumentRoom {
    pub(super) state: State,
    pub(super) env: Env,
    pub(super) store: RoomStore,
    pub(super) room: RefCell<Option<Room>>,
    /// The alarm time we know is set, so the hot path rarely asks storage.
    alarm_at: Cell<Option<u64>>,
    budgets: Budgets,
}

pub(super) fn now_ms() -> u64 {
    Date::now().as_millis()
}

impl DurableObject for DocumentRoom {
    fn new(state: State, env: Env) -> Self {
        // The bare ping is answered by the runtime without waking the object.
        if let Ok(pair) = worker::WebSocketRequestResponsePair::new(r#"{"type":"ping"}"#, r#"{"type":"pong"}"#) {
            state.set_websocket_auto_response(&pair);
        }
        let store = RoomStore::new(state.storage());
        if let Err(e) = store.ensure_schema() {
            worker::console_error!("schema: {e}");
        }
        let budgets = Budgets::from_env(&env);
        DocumentRoom { state, env, store, room: RefCell::new(None), alarm_at: Cell::new(None), budgets }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match self.route(req).await {
            Ok(r) => Ok(r),
            Err(e) => e.into_response(),
        }
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        let Some(me) = ws.deserialize_attachment::<Session>().ok().flatten() else {
            let _ = ws.close(Some(1011), Some("socket has no session"));
            return Ok(());
        };
        let text = match message {
            WebSocketIncomingMessage::String(s) => s,
            WebSocketIncomingMessage::Binary(_) => {
                let f = Failure::bad("binary frames are not supported; send JSON text");
                send(&ws, &Outgoing::error(&f, None, None));
                return Ok(());
            }
        };
        if !self.budgets.admit(&ws, &me.session_id, &text) {
            return Ok(());
        }
        let present = self.sessions();
        let fx = self.with_room(|room, store| Ok(room.on_frame(&me, &text, now_ms(), &sessions_of(&present), store)));
        match fx {
            Ok(fx) => {
                self.commit(fx, Some((&ws, &me)), &present).await;
            }
            Err(e) => send(&ws, &Outgoing::error(&Failure::new(Code::Internal, e.message), None, None)),
        }
        Ok(())
    }

    async fn websocket_close(&self, ws: WebSocket, code: usize, _reason: String, _clean: bool) -> Result<()> {
        self.drop_socket(&ws).await;
        // Complete the closing handshake; the socket may already be gone.
        let _ = ws.close(Some(if code == 1005 || code == 1006 { 1000 } else { code as u16 }), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.drop_socket(&ws).await;
        Ok(())
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        let present = self.sessions();
        if let Ok(fx) = self.with_room(|room, _| Ok(room.expire_typing(now_ms()))) {
            self.commit(fx, None, &present).await;
        }
        self.deliver_outbox().await;
        let kv_next = self.flush_counts_cache().await;
        let flushed = self.flush_history().await;
        if let Err(e) = &flushed {
            worker::console_error!("history flush failed, retrying: {e}");
        }
        let mut next = self.room.borrow().as_ref().and_then(Room::next_typing_deadline);
        if let Some(at) = kv_next {
            next = Some(next.map_or(at, |t| t.min(at)));
        }
        if flushed.is_err() || !self.store.unflushed(1)?.is_empty() || !self.store.outbox()?.is_empty() {
            let retry = now_ms() + 5_000;
            next = Some(next.map_or(retry, |t| t.min(retry)));
        }
        if let Some(at) = next {
            self.schedule_alarm(at).await;
        }
        Response::ok("")
    }
}

impl DocumentRoom {
    async fn route(&self, mut req: Request) -> ApiResult {
        let document_id = internal::document_id(&req)?;
        if self.store.meta("document_id")?.is_none() {
            self.store.remember_document_id(&document_id)?;
        }
        let actor = internal::actor(&req)?;
        let url = req.url()?;
        match (req.method(), url.path()) {
            (worker::Method::Get, "/connect") => self.open_socket(&req, actor).await,
            (worker::Method::Post, "/apply") => {
                let body: Value = req.json().await.map_err(|e| ApiError::bad_request(e.to_string()))?;
                let op = body.get("operation").and_then(Value::as_object).ok_or_else(|| ApiError::bad_request("operation must be an object"))?;
                let parsed = OpRequest::parse(op, None, crate::protocol::DocKind::of(&document_id))?;
                let ack = self.submit(actor, parsed).await?;
                Ok(json_response(202, &ack)?)
            }
            (worker::Method::Put, "/text") => {
                let body: Value = req.json().await.map_err(|e| ApiError::bad_request(e.to_string()))?;
                self.replace_text(actor, &body).await
            }
            (worker::Method::Get, "/document") => {
                let updated_at = self.store.meta_u64("updated_at")?;
                let (version, kind, (field, state)) = self.with_room(|r, _| Ok((r.version(), r.kind(), r.state_field())))?;
                Ok(json_response(200, &json!({
                    "document_id": document_id, "kind": kind.as_str(), "version": version,
                    field: state, "updated_at": updated_at,
                }))?)
            }
            (worker::Method::Get, "/counts") => self.counts().await,
            (worker::Method::Post, "/presence") => {
                let body: Value = req.json().await.map_err(|e| ApiError::bad_request(e.to_string()))?;
                let frame = frame_text(&Outgoing::new("presence", body["payload"].clone()));
                for ws in self.state.get_websockets() {
                    let _ = ws.send_with_str(&frame);
                }
                Ok(json_response(200, &json!({"ok": true}))?)
            }
            (worker::Method::Put, "/owner") => {
                let body: Value = req.json().await.map_err(|e| ApiError::bad_request(e.to_string()))?;
                self.register_owner(&actor, &body)
            }
            (worker::Method::Get, "/history") => {
                let q = internal::Query::of(&url);
                let since = q.u64("since")?.unwrap_or(0);
                let limit = q.u64("limit")?.unwrap_or(limits::HISTORY_DEFAULT_LIMIT);
                if limit == 0 || limit > limits::HISTORY_MAX_LIMIT {
                    return Err(ApiError::new(400, "bad_request", "limit must be between 1 and 1000"));
                }
                // Whatever is acked is copied first, so a reader sees every acked op.
                self.flush_history().await?;
                let db = self.env.d1("DB")?;
                let (operations, has_more) = d1::read_history(&db, &document_id, since, limit).await?;
                let next_since = operations.last().and_then(|o| o["version"].as_u64()).unwrap_or(since);
                Ok(json_response(200, &json!({
                    "document_id": document_id, "operations": operations,
                    "next_since": next_since, "has_more": has_more,
                }))?)
            }
            (worker::Method::Get, "/metrics") => {
                let (version, retained) = self.with_room(|r, _| Ok((r.version(), r.retained_ops())))?;
                Ok(json_response(200, &json!({
                    "document_id": document_id,
                    "connections": self.state.get_websockets().len(),
                    "version": version,
                    "operations_retained": retained,
                    "storage_bytes": self.store.database_size(),
                    "last_activity": self.store.meta_u64("updated_at")?,
                    "kv_writes": self.store.meta_u64("kv_writes")?,
                }))?)
            }
            (worker::Method::Delete, "/document") => self.delete(&document_id).await,
            _ => Err(ApiError::not_found("no such document endpoint")),
        }
    }

    /// Runs `f` on the room, loading it from storage first if this instance has none.
    pub(super) fn with_room<T>(&self, f: impl FnOnce(&mut Room, &RoomStore) -> Result<T>) -> std::result::Result<T, ApiError> {
        let mut slot = self.room.borrow_mut();
        if slot.is_none() {
            let document_id = self.store.meta("document_id")?.ok_or_else(|| ApiError::internal("room has no document id"))?;
            let mut stored = self.store.load()?;
            // Awareness and typing of sockets that vanished while we were away are stale.
            let live: Vec<String> = self.sessions().into_iter().map(|(_, s)| s.session_id).collect();
            stored.awareness.retain(|(sid, _)| live.contains(sid));
            stored.typing.retain(|(sid, _)| live.contains(sid));
            *slot = Some(Room::restore(&document_id, stored).map_err(ApiError::internal)?);
        }
        let room = slot.as_mut().ok_or_else(|| ApiError::internal("room missing"))?;
        Ok(f(room, &self.store)?)
    }

    fn sessions(&self) -> Vec<(WebSocket, Session)> {
        self.state
            .get_websockets()
            .into_iter()
            .filter_map(|ws| ws.deserialize_attachment::<Session>().ok().flatten().map(|s| (ws, s)))
            .collect()
    }

    /// Persists the effects' writes, then sends their messages. If the write fails the in-memory
    /// room is dropped (it ran ahead of storage) and the sender gets `internal`; nothing is sent.
    async fn commit(&self, fx: Effects, sender: Option<(&WebSocket, &Session)>, present: &[(WebSocket, Session)]) -> bool {
        let now = now_ms();
        let appended = fx.writes.iter().any(|w| matches!(w, Write::AppendOp(_)));
        let typing = fx.writes.iter().any(|w| matches!(w, Write::PutTyping(..)));
        let notify = fx.writes.iter().any(|w| matches!(w, Write::QueueNotification(_)));
        let is_post = self.room.borrow().as_ref().is_some_and(|r| r.kind() == crate::protocol::DocKind::Engagement);
        // No await between the write and the sends: the output gate holds these messages until
        // the write is durable, and no other event can slip in and reorder versions.
        if let Err(e) = self.store.persist(fx.writes, now) {
            *self.room.borrow_mut() = None;
            if let Some((ws, _)) = sender {
                send(ws, &Outgoing::error(&Failure::new(Code::Internal, format!("storage write failed: {e}")), None, None));
            }
            return false;
        }
        if let Some((ws, _)) = sender {
            for m in &fx.to_sender {
                send(ws, m);
            }
        }
        let sender_id = sender.map(|(_, s)| s.session_id.as_str());
        for m in &fx.to_others {
            let frame = frame_text(m);
            for (ws, s) in present {
                if Some(s.session_id.as_str()) != sender_id {
                    let _ = ws.send_with_str(&frame);
                }
            }
        }
        if appended {
            self.schedule_alarm(now + limits::HISTORY_FLUSH_DELAY_MS).await;
        }
        if appended && is_post {
            self.counts_changed().await;
        }
        if notify {
            self.deliver_outbox().await;
        }
        if typing {
            self.schedule_alarm(now + limits::TYPING_TIMEOUT_MS).await;
        }
        true
    }

    /// Makes sure an alarm fires no later than `at` (epoch ms).
    pub(super) async fn schedule_alarm(&self, at: u64) {
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

    async fn open_socket(&self, req: &Request, actor: Actor) -> ApiResult {
        let q = internal::Query::of(&req.url()?);
        let client_id = q.str("client_id").ok_or_else(|| ApiError::bad_request("client_id is required"))?;
        let since = q.u64("since")?;
        let pair = WebSocketPair::new()?;
        let server = pair.server;
        let me = Session {
            session_id: uuid::Uuid::new_v4().to_string(),
            client_id,
            user_id: actor.user_id,
            name: actor.name,
            can_write: actor.can_write,
        };
        self.state.accept_web_socket(&server);
        server.serialize_attachment(&me)?;
        let present = self.sessions();
        let fx = self.with_room(|room, _| Ok(room.connect(&me, since, &sessions_of(&present))))?;
        self.commit(fx, Some((&server, &me)), &present).await;
        self.report_connections(present.len()).await;
        self.report_user_in_room(&me.user_id, &present).await;
        Ok(Response::from_websocket(pair.client)?)
    }

    async fn drop_socket(&self, ws: &WebSocket) {
        let Some(me) = ws.deserialize_attachment::<Session>().ok().flatten() else { return };
        self.budgets.forget(&me.session_id);
        let remaining: Vec<(WebSocket, Session)> =
            self.sessions().into_iter().filter(|(_, s)| s.session_id != me.session_id).collect();
        if let Ok(fx) = self.with_room(|room, _| Ok(room.disconnect(&me, &sessions_of(&remaining)))) {
            self.commit(fx, None, &remaining).await;
        }
        self.report_connections(remaining.len()).await;
        self.report_user_in_room(&me.user_id, &remaining).await;
    }

    /// The HTTP submit path: same engine, broadcast to every socket.
    async fn submit(&self, actor: Actor, req: OpRequest) -> std::result::Result<Value, ApiError> {
        let present = self.sessions();
        let done = self.with_room(|room, store| {
            let actor = room::Actor { user_id: actor.user_id.clone(), name: actor.name.clone(), can_write: actor.can_write, is_service: actor.is_service };
            Ok(room.submit(&actor, req, now_ms(), store))
        })??;
        if !self.commit(done.effects, None, &present).await {
            return Err(ApiError::internal("storage write failed; the operation was not applied"));
        }
        Ok(done.ack)
    }

    async fn replace_text(&self, actor: Actor, body: &Value) -> ApiResult {
        let text = body.get("text").and_then(Value::as_str).ok_or_else(|| ApiError::bad_request("text must be a string"))?;
        let expected = match body.get("version") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| ApiError::bad_request("version must be a non-negative integer"))?),
        };
        let (version, current) = self.with_room(|r, _| Ok((r.version(), r.content())))?;
        if let Some(v) = expected {
            if v > version {
                return Err(Failure::new(Code::VersionAhead, format!("version {v} is ahead of the document (version {version})")).into());
            }
            if v < version {
                return Err(ApiError::new(409, "version_conflict", format!("the description changed since version {v} (now {version}); reload and retry")));
            }
        }
        let prims = diff(&current, text);
        if prims.is_empty() {
            return Ok(json_response(200, &json!({"status": "unchanged", "version": version, "content": current}))?);
        }
        let op = OpRequest {
            document_id: None,
            client_id: format!("http:{}", actor.user_id),
            seq: None,
            version: Some(version),
            timestamp: None,
            body: room::OpBody::Text(prims),
        };
        let ack = self.submit(actor, op).await?;
        let content = self.with_room(|r, _| Ok(r.content()))?;
        Ok(json_response(200, &json!({"status": ack["status"], "version": ack["version"], "content": content}))?)
    }

    async fn delete(&self, document_id: &str) -> ApiResult {
        for ws in self.state.get_websockets() {
            let _ = ws.close(Some(CLOSE_DELETED), Some("document deleted"));
        }
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await?;
        self.alarm_at.set(None);
        *self.room.borrow_mut() = None;
        self.store.ensure_schema()?;
        self.store.remember_document_id(document_id)?;
        self.report_connections(0).await;
        d1::delete_history(&self.env.d1("DB")?, document_id).await?;
        self.forget_cached_counts(document_id).await;
        Ok(json_response(200, &json!({"document_id": document_id, "deleted": true}))?)
    }

    /// Copies acked ops to D1 in batches and lets storage drop what it no longer needs.
    async fn flush_history(&self) -> Result<()> {
        let Some(document_id) = self.store.meta("document_id")? else { return Ok(()) };
        let db = self.env.d1("DB")?;
        loop {
            let batch = self.store.unflushed(limits::HISTORY_BATCH_OPS)?;
            let Some(last) = batch.last().map(|e| e.version) else { return Ok(()) };
            d1::write_history(&db, &document_id, &batch).await?;
            let current = self.store.meta_u64("version")?;
            self.store.mark_flushed(last, current)?;
            if batch.len() < limits::HISTORY_BATCH_OPS {
                return Ok(());
            }
        }
    }
}

impl DocumentRoom {
    /// Tells the user's channel how many sockets they hold here, so presence reaches this room.
    async fn report_user_in_room(&self, user_id: &str, present: &[(WebSocket, Session)]) {
        let Ok(Some(document_id)) = self.store.meta("document_id") else { return };
        let connections = present.iter().filter(|(_, s)| s.user_id == user_id).count();
        let body = json!({"document_id": document_id, "connections": connections}).to_string();
        let actor = Actor { user_id: user_id.to_string(), name: user_id.to_string(), can_write: false, is_service: false };
        let sent = match internal::actor_headers(&actor, None) {
            Ok(headers) => internal::call_object(&self.env, "USER_CHANNEL", user_id, worker::Method::Post, "/rooms", Some(body), headers).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            worker::console_error!("room presence report failed: {e}");
        }
    }

    async fn report_connections(&self, connections: usize) {
        if let Ok(Some(id)) = self.store.meta("document_id") {
            super::stats::report(&self.env, &id, connections, now_ms()).await;
        }
    }
}

fn sessions_of(present: &[(WebSocket, Session)]) -> Vec<Session> {
    present.iter().map(|(_, s)| s.clone()).collect()
}

fn frame_text(m: &Outgoing) -> String {
    m.to_frame(&uuid::Uuid::new_v4().simple().to_string(), now_ms())
}

fn send(ws: &WebSocket, m: &Outgoing) {
    // A socket that is already closing cannot take more; its close handler cleans up.
    let _ = ws.send_with_str(frame_text(m));
}
