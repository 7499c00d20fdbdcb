//! `DocumentRoom`: the Durable Object of one document. It adapts the pure room to hibernating
//! sockets, SQLite storage and alarms, and holds nothing in memory that storage cannot rebuild.

use serde_json::{json, Value};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage, WebSocketPair};

use super::internal::{self, body_json, Actor};
pub use super::room_host::now_ms;
use super::room_host::{send, RoomHost};
use super::room_metrics::{clock_ms, RoomMetrics, REPORT_INTERVAL_MS};
use super::socket_budget::Budgets;
use crate::http::{json_response, json_text_response, ApiError, ApiResult};
use crate::limits;
use crate::metrics::Report;
use crate::ot::text::diff;
use crate::protocol::{Failure, Outgoing};
use crate::room::{self, Session};
use crate::store::{d1, shards};

/// Close code sent to sockets of a deleted document.
const CLOSE_DELETED: u16 = 4404;

#[durable_object]
pub struct DocumentRoom {
    pub(super) env: Env,
    pub(super) host: RoomHost,
    budgets: Budgets,
    metrics: RoomMetrics,
}

fn room_actor(a: &Actor) -> room::Actor {
    room::Actor { user_id: a.user_id.clone(), name: a.name.clone(), can_write: a.can_write, is_service: a.is_service }
}

impl DurableObject for DocumentRoom {
    fn new(state: State, env: Env) -> Self {
        // The bare ping is answered by the runtime without waking the object.
        if let Ok(pair) = worker::WebSocketRequestResponsePair::new(r#"{"type":"ping"}"#, r#"{"type":"pong"}"#) {
            state.set_websocket_auto_response(&pair);
        }
        let budgets = Budgets::from_env(&env);
        DocumentRoom { env, host: RoomHost::new(state), budgets, metrics: RoomMetrics::default() }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match self.route(req).await {
            Ok(r) => Ok(r),
            Err(e) => e.into_response(),
        }
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        let Some(me) = self.host.session_of(&ws) else {
            let _ = ws.close(Some(1011), Some("socket has no session"));
            return Ok(());
        };
        let text = match message {
            WebSocketIncomingMessage::String(s) => s,
            WebSocketIncomingMessage::Binary(_) => {
                send(&ws, Outgoing::error(&Failure::bad("binary frames are not supported; send JSON text"), None, None));
                return Ok(());
            }
        };
        if !self.budgets.admit(&ws, &me.session_id, &text) {
            return Ok(());
        }
        let started = clock_ms();
        let present = self.host.sessions();
        match self.host.with_room(|room, store| room.on_frame(&me, &text, now_ms(), &present, store)) {
            Ok(fx) => {
                self.after_commit(fx, Some((&ws, &me))).await;
            }
            Err(e) => send(&ws, Outgoing::error(&Failure::new(crate::protocol::Code::Internal, e.message), None, None)),
        }
        self.metrics.message(clock_ms() - started);
        if self.metrics.needs_alarm() {
            self.host.schedule_alarm(now_ms() + REPORT_INTERVAL_MS).await;
        }
        Ok(())
    }

    async fn websocket_close(&self, ws: WebSocket, code: usize, _reason: String, clean: bool) -> Result<()> {
        if let Some(me) = self.host.session_of(&ws) {
            let document_id = self.host.store.meta("document_id").ok().flatten();
            super::log::event("close", &[
                ("document_id", json!(document_id)),
                ("user_id", json!(me.user_id)),
                ("client_id", json!(me.client_id)),
                ("code", json!(code)),
                ("clean", json!(clean)),
            ]);
        }
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
        self.host.alarm_cleared();
        let mut next = None;
        // Typing timeouts need the room; a room that cannot load must not block history or KV.
        if let Ok(fx) = self.host.with_room(|room, _| room.expire_typing(now_ms())) {
            let _ = self.host.commit(fx, None);
            next = self.host.with_room(|room, _| room.next_typing_deadline()).ok().flatten();
        }
        self.deliver_outbox().await;
        if let Some(at) = self.flush_counts_cache().await {
            next = Some(next.map_or(at, |t: u64| t.min(at)));
        }
        let flushed = self.flush_history().await;
        if let Err(e) = &flushed {
            super::log::error("history_flush", format!("{e}; retrying"), &[]);
        }
        if flushed.is_err() || !self.host.store.unflushed(1)?.is_empty() || !self.host.store.outbox()?.is_empty() {
            let retry = now_ms() + 5_000;
            next = Some(next.map_or(retry, |t| t.min(retry)));
        }
        if let Some(at) = next {
            self.host.schedule_alarm(at).await;
        }
        self.report_tally().await;
        Response::ok("")
    }
}

impl DocumentRoom {
    async fn route(&self, mut req: Request) -> ApiResult {
        let document_id = internal::document_id(&req)?;
        let store = &self.host.store;
        if store.meta("document_id")?.is_none() {
            store.begin_incarnation(&document_id, &new_incarnation())?;
        }
        let actor = internal::actor(&req)?;
        let url = req.url()?;
        match (req.method(), url.path()) {
            (Method::Get, "/connect") => self.open_socket(&req, actor).await,
            (Method::Post, "/apply") => {
                let body: Value = body_json(&mut req).await?;
                let op = body.get("operation").and_then(Value::as_object).ok_or_else(|| ApiError::bad_request("operation must be an object"))?;
                let done = self.host.with_room(|room, store| room.submit_json(&room_actor(&actor), op, now_ms(), store))??;
                let room::Submitted { ack, effects } = done;
                if !self.after_commit(effects, None).await {
                    return Err(ApiError::internal("storage write failed; the operation was not applied"));
                }
                Ok(json_text_response(202, ack.payload_json())?)
            }
            (Method::Put, "/text") => self.replace_text(actor, &body_json::<Value>(&mut req).await?).await,
            (Method::Get, "/document") => {
                let (version, kind, (field, state), updated_at) =
                    self.host.with_room(|r, _| (r.version(), r.kind(), r.state(), r.updated_at()))?;
                let head = json!({"document_id": document_id, "kind": kind.as_str(), "version": version, "updated_at": updated_at});
                // The state is spliced in as JSON text: a large canvas is not parsed again.
                let head = head.to_string();
                let body = format!("{},{}:{}}}", &head[..head.len() - 1], json!(field), state);
                Ok(json_text_response(200, &body)?)
            }
            (Method::Get, "/counts") => self.counts().await,
            (Method::Post, "/broadcast") => {
                let event = crate::publish::parse_broadcast(&body_json::<Value>(&mut req).await?)?;
                self.host.broadcast(Outgoing::new("room_event", &event));
                Ok(json_response(202, &json!({"document_id": document_id, "sockets": self.host.socket_count()}))?)
            }
            (Method::Post, "/presence") => {
                let body: Value = body_json(&mut req).await?;
                self.host.broadcast(Outgoing::new("presence", &body["payload"]));
                Ok(json_response(200, &json!({"ok": true}))?)
            }
            (Method::Put, "/owner") => self.register_owner(&actor, &body_json::<Value>(&mut req).await?),
            (Method::Get, "/history") => {
                let q = internal::Query::of(&url);
                let since = q.u64("since")?.unwrap_or(0);
                let limit = q.u64("limit")?.unwrap_or(limits::HISTORY_DEFAULT_LIMIT);
                if limit == 0 || limit > limits::HISTORY_MAX_LIMIT {
                    return Err(ApiError::new(400, "bad_request", "limit must be between 1 and 1000"));
                }
                // Whatever is acked is copied first, so a reader sees every acked op.
                self.flush_history().await?;
                let incarnation = self.host.store.meta("incarnation")?.unwrap_or_default();
                let (operations, has_more) = d1::read_history(&shards::for_document(&self.env, &document_id)?, &document_id, &incarnation, since, limit).await?;
                #[derive(serde::Serialize)]
                struct Page<'a> {
                    document_id: &'a str,
                    operations: Vec<d1::HistoryOp>,
                    next_since: u64,
                    has_more: bool,
                }
                let next_since = operations.last().map_or(since, |o| o.version);
                let page = Page { document_id: &document_id, operations, next_since, has_more };
                Ok(json_text_response(200, &serde_json::to_string(&page).map_err(|e| ApiError::internal(e.to_string()))?)?)
            }
            (Method::Get, "/metrics") => {
                let (version, retained, retained_bytes, updated_at) =
                    self.host.with_room(|r, _| (r.version(), r.retained_ops(), r.retained_bytes(), r.updated_at()))?;
                Ok(json_response(200, &json!({
                    "document_id": document_id,
                    "connections": self.host.socket_count(),
                    "version": version,
                    "operations_retained": retained,
                    "operations_retained_bytes": retained_bytes,
                    "storage_bytes": self.host.store.database_size(),
                    "last_activity": updated_at,
                    "kv_writes": self.host.store.meta_u64("kv_writes")?,
                    "since_wake": self.metrics.document_json(),
                }))?)
            }
            (Method::Delete, "/document") => self.delete(&document_id).await,
            _ => Err(ApiError::not_found("no such document endpoint")),
        }
    }

    /// Commits the effects, then schedules what follows an accepted operation.
    pub(super) async fn after_commit(&self, fx: room::Effects, sender: Option<(&WebSocket, &Session)>) -> bool {
        let appended = fx.writes.iter().any(|w| matches!(w, room::Write::AppendOp(_)));
        let typing = fx.writes.iter().any(|w| matches!(w, room::Write::PutTyping(..)));
        let notify = fx.writes.iter().any(|w| matches!(w, room::Write::QueueNotification(_)));
        let has_summary = appended && self.host.with_room(|r, _| r.summary().is_some()).unwrap_or(false);
        self.metrics.observe(&fx);
        if self.host.commit(fx, sender).is_err() {
            return false;
        }
        let now = now_ms();
        if appended {
            self.host.schedule_alarm(now + limits::HISTORY_FLUSH_DELAY_MS).await;
        }
        if has_summary {
            self.counts_changed().await;
        }
        if notify {
            self.deliver_outbox().await;
        }
        if typing {
            self.host.schedule_alarm(now + limits::TYPING_TIMEOUT_MS).await;
        }
        true
    }

    async fn open_socket(&self, req: &Request, actor: Actor) -> ApiResult {
        let q = internal::Query::of(&req.url()?);
        let client_id = q.str("client_id").ok_or_else(|| ApiError::bad_request("client_id is required"))?;
        let since = q.u64("since")?;
        let me = Session { session_id: new_session_id(), client_id, user_id: actor.user_id, name: actor.name, can_write: actor.can_write };
        // The client_id is checked and claimed before the socket is accepted (§1 [1.1]).
        let claimed = match self.host.with_room(|room, store| room.admit(&me, store))? {
            Ok(fx) => fx,
            Err(f) => {
                self.metrics.refused_connection(f.code.as_str());
                if self.metrics.needs_alarm() {
                    self.host.schedule_alarm(now_ms() + REPORT_INTERVAL_MS).await;
                }
                return Err(f.into());
            }
        };
        self.host.commit(claimed, None).map_err(ApiError::internal)?;
        let pair = WebSocketPair::new()?;
        let server = pair.server;
        self.host.state.accept_web_socket(&server);
        server.serialize_attachment(&me)?;
        self.host.add_socket(&server, &me);
        let present = self.host.sessions();
        let fx = self.host.with_room(|room, _| room.connect(&me, since, &present))?;
        self.after_commit(fx, Some((&server, &me))).await;
        self.report_presence(&me.user_id, &present);
        Ok(Response::from_websocket(pair.client)?)
    }

    async fn drop_socket(&self, ws: &WebSocket) {
        let Some(me) = self.host.session_of(ws) else { return };
        self.budgets.forget(&me.session_id);
        self.host.remove_socket(&me.session_id);
        let remaining = self.host.sessions();
        if let Ok(fx) = self.host.with_room(|room, _| room.disconnect(&me, &remaining)) {
            self.after_commit(fx, None).await;
        }
        self.report_presence(&me.user_id, &remaining);
    }

    async fn replace_text(&self, actor: Actor, body: &Value) -> ApiResult {
        let text = body.get("text").and_then(Value::as_str).ok_or_else(|| ApiError::bad_request("text must be a string"))?;
        let expected = match body.get("version") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| ApiError::bad_request("version must be a non-negative integer"))?),
        };
        let (version, current) = self.host.with_room(|r, _| (r.version(), r.text()))?;
        let current = current.ok_or_else(|| ApiError::bad_request("this document is not text"))?;
        if let Some(v) = expected {
            if v > version {
                return Err(Failure::new(crate::protocol::Code::VersionAhead, format!("version {v} is ahead of the document (version {version})")).into());
            }
            if v < version {
                return Err(ApiError::new(409, "version_conflict", format!("the description changed since version {v} (now {version}); reload and retry")));
            }
        }
        let prims = diff(&current, text);
        if prims.is_empty() {
            return Ok(json_response(200, &json!({"status": "unchanged", "version": version, "content": current}))?);
        }
        let client_id = format!("http:{}", actor.user_id);
        let done = self.host.with_room(|room, store| room.submit_text(&room_actor(&actor), &client_id, version, prims, now_ms(), store))??;
        if !self.after_commit(done.effects.clone(), None).await {
            return Err(ApiError::internal("storage write failed; the operation was not applied"));
        }
        let ack = done.ack();
        let content = self.host.with_room(|r, _| r.text())?.unwrap_or_default();
        Ok(json_response(200, &json!({"status": ack["status"], "version": ack["version"], "content": content}))?)
    }

    async fn delete(&self, document_id: &str) -> ApiResult {
        for ws in self.host.state.get_websockets() {
            let _ = ws.close(Some(CLOSE_DELETED), Some("document deleted"));
        }
        let storage = self.host.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await?;
        self.host.alarm_cleared();
        self.host.drop_room();
        self.host.forget_sockets();
        self.host.store.ensure_schema()?;
        // A new life for the id: its history, comment ids and notification ids never mix with
        // the old one's, even if a flush of the old one is still in flight.
        self.host.store.begin_incarnation(document_id, &new_incarnation())?;
        d1::delete_history(&shards::for_document(&self.env, document_id)?, document_id).await?;
        self.forget_cached_counts(document_id).await;
        Ok(json_response(200, &json!({"document_id": document_id, "deleted": true}))?)
    }

    /// Copies acked ops to the document's history shard in batches and lets storage drop what it
    /// no longer needs. The incarnation is checked after every await: a delete that ran meanwhile
    /// owns the storage now.
    async fn flush_history(&self) -> Result<()> {
        let store = &self.host.store;
        let Some(document_id) = store.meta("document_id")? else { return Ok(()) };
        let incarnation = store.meta("incarnation")?.unwrap_or_default();
        let db = shards::for_document(&self.env, &document_id)?;
        loop {
            let batch = store.unflushed(limits::HISTORY_BATCH_OPS)?;
            let Some(last) = batch.last().map(|e| e.version) else { return Ok(()) };
            d1::write_history(&db, &document_id, &incarnation, &batch).await?;
            if store.meta("incarnation")?.unwrap_or_default() != incarnation {
                // Deleted while the batch was in flight: those rows belong to the old life.
                return d1::delete_incarnation(&db, &document_id, &incarnation).await;
            }
            store.mark_flushed(last, store.last_version()?)?;
            if batch.len() < limits::HISTORY_BATCH_OPS {
                return Ok(());
            }
        }
    }

    /// Tells the user's channel how many sockets they hold here (so presence reaches this room)
    /// and the stats how many sockets the room holds — after the response, never before it.
    fn report_presence(&self, user_id: &str, present: &[Session]) {
        let Ok(Some(document_id)) = self.host.store.meta("document_id") else { return };
        let connections = present.iter().filter(|s| s.user_id == user_id).count();
        let report = Report { document_id: document_id.clone(), connections: Some(present.len() as u32), at: now_ms(), tally: self.metrics.take() };
        let env = self.env.clone();
        let user_id = user_id.to_string();
        self.host.state.wait_until(async move {
            let body = json!({"document_id": document_id, "connections": connections}).to_string();
            let actor = Actor { user_id: user_id.clone(), name: user_id.clone(), can_write: false, is_service: false };
            let sent = match internal::actor_headers(&actor, None) {
                Ok(headers) => internal::call_object(&env, "USER_CHANNEL", &user_id, Method::Post, "/rooms", Some(body), headers).await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                super::log::error("room_presence_report", e, &[("user_id", user_id.as_str().into())]);
            }
            super::stats::report(&env, &report).await;
        });
    }

    /// The alarm's report of what the room handled since the last one.
    async fn report_tally(&self) {
        let tally = self.metrics.take();
        let Ok(Some(document_id)) = self.host.store.meta("document_id") else { return };
        if !tally.is_empty() {
            super::stats::report(&self.env, &Report { document_id, connections: None, at: now_ms(), tally }).await;
        }
    }
}

fn new_session_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn new_incarnation() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}
