//! `UserChannel`: one Durable Object per user holding that user's personal-channel sockets
//! (hibernating). Notifications are kept in the user's inbox shard (`inbox_shard.rs`); the
//! channel pushes them to its sockets (`inbox.rs`) and holds the user's presence
//! (`presence_io.rs`).

use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use super::document_room::now_ms;
use super::internal;
use super::socket_budget::Budgets;
use crate::http::{ApiError, ApiResult};
use crate::protocol::{parse_frame, Code, Failure, Outgoing};
use super::inbox_shard::Push;

/// The channel's schema migrations, oldest first (append only; `schema.rs`).
const MIGRATIONS: &[&str] = &[
    // 1: the channel as first versioned, when it also kept the inbox.
    "CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, payload TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS seen (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE);
     CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS watchers (user_id TEXT PRIMARY KEY);
     CREATE TABLE IF NOT EXISTS rooms (document_id TEXT PRIMARY KEY, connections INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, created_at INTEGER NOT NULL, read INTEGER NOT NULL, delivered INTEGER NOT NULL, item TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS activities (seq INTEGER PRIMARY KEY AUTOINCREMENT, created_at INTEGER NOT NULL, item TEXT NOT NULL);",
    // 2: the inbox moved to the inbox shards; what the channel kept is handed over on the next
    // connect (`inbox.rs`, `import_legacy`) and then dropped.
    "DROP INDEX IF EXISTS inbox_by_time;
     DROP INDEX IF EXISTS activities_by_time;
     ALTER TABLE inbox RENAME TO legacy_inbox;
     ALTER TABLE activities RENAME TO legacy_activities;",
];

#[derive(Serialize, Deserialize)]
pub(super) struct ChannelSession {
    pub(super) user_id: String,
    pub(super) session_id: String,
}

#[derive(Deserialize)]
struct PendingRow {
    payload: String,
}

#[durable_object]
pub struct UserChannel {
    pub(super) state: State,
    pub(super) env: Env,
    pub(super) sql: SqlStorage,
    budgets: Budgets,
}

pub(super) fn send(ws: &WebSocket, m: &Outgoing) {
    let _ = ws.send_with_str(m.to_frame(&super::frame_id(), now_ms()));
}

impl DurableObject for UserChannel {
    fn new(state: State, env: Env) -> Self {
        if let Ok(pair) = worker::WebSocketRequestResponsePair::new(r#"{"type":"ping"}"#, r#"{"type":"pong"}"#) {
            state.set_websocket_auto_response(&pair);
        }
        crate::store::object_schema::ensure(&state.storage(), "channel", MIGRATIONS);
        let sql = state.storage().sql();
        let budgets = Budgets::from_env(&env);
        UserChannel { state, env, sql, budgets }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.url()?.path().to_string();
        let result: ApiResult = match (req.method(), path.as_str()) {
            (_, "/connect") => self.open_socket(&req),
            (worker::Method::Post, "/notification") => match internal::body_json::<Push>(&mut req).await {
                Ok(p) => self.receive(&p),
                Err(e) => Err(e),
            },
            (worker::Method::Post, "/count") => match internal::body_json(&mut req).await {
                Ok(c) => {
                    self.tell_count(c);
                    Ok(Response::empty()?.with_status(204))
                }
                Err(e) => Err(e),
            },
            (worker::Method::Get, "/presence") => self.presence(&req),
            (worker::Method::Put, "/presence") => self.set_presence(&mut req).await,
            (_, "/watch") => self.add_watcher(&mut req).await,
            (_, "/push") => self.push(&mut req).await,
            (_, "/rooms") => self.room_count(&mut req).await,
            _ => Err(ApiError::not_found("no such channel endpoint")),
        };
        result.or_else(ApiError::into_response)
    }

    async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        let WebSocketIncomingMessage::String(text) = message else {
            send(&ws, &Outgoing::error(&Failure::bad("binary frames are not supported"), None, None));
            return Ok(());
        };
        let session = ws.deserialize_attachment::<ChannelSession>().ok().flatten();
        let (user_id, session) = session.map(|s| (s.user_id, s.session_id)).unwrap_or_default();
        if !self.budgets.admit(&ws, &session, &text) {
            return Ok(());
        }
        match parse_frame(&text) {
            Err((f, id)) => send(&ws, &Outgoing::error(&f, id, None)),
            Ok(frame) if frame.kind == "ping" => send(&ws, &Outgoing::reply("pong", frame.id, json!({}))),
            Ok(frame) if frame.kind == "watch_presence" => self.watch(&ws, frame).await,
            Ok(frame) if frame.kind == "notification_read" => {
                self.read_from_socket(&ws, &user_id, &serde_json::Value::Object(frame.payload), frame.id).await;
            }
            Ok(frame) => {
                let f = Failure::new(Code::UnknownType, format!("{:?} is not handled on the personal channel", frame.kind));
                send(&ws, &Outgoing::error(&f, frame.id, None));
            }
        }
        Ok(())
    }

    async fn websocket_close(&self, ws: WebSocket, code: usize, _reason: String, _clean: bool) -> Result<()> {
        let _ = ws.close(Some(if code == 1005 || code == 1006 { 1000 } else { code as u16 }), Some("closed"));
        self.closed(&ws).await;
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.closed(&ws).await;
        Ok(())
    }

    async fn alarm(&self) -> Result<Response> {
        Response::ok("")
    }
}

impl UserChannel {
    /// A socket went: the user may be offline for presence, and for deliveries.
    async fn closed(&self, ws: &WebSocket) {
        if self.state.get_websockets().iter().all(|s| s == ws) {
            if let Some(me) = ws.deserialize_attachment::<ChannelSession>().ok().flatten() {
                self.detach(&me.user_id);
            }
        }
        self.socket_gone(ws).await;
    }

    /// Opens a socket and hands it whatever was kept while the user had none open.
    fn open_socket(&self, req: &Request) -> ApiResult {
        let actor = internal::actor(req)?;
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        pair.server.serialize_attachment(ChannelSession { user_id: actor.user_id.clone(), session_id: uuid::Uuid::new_v4().to_string() })?;
        self.remember_user(&actor.user_id)?;
        self.touch()?;
        // Rows kept by the channel before the inbox existed go out once, then the inbox's.
        let kept: Vec<PendingRow> = self.sql.exec("SELECT payload FROM pending ORDER BY seq", None)?.to_array()?;
        for row in kept {
            let payload: serde_json::Value = serde_json::from_str(&row.payload).unwrap_or_default();
            send(&pair.server, &Outgoing::new("notification", payload));
        }
        self.sql.exec("DELETE FROM pending", None)?;
        self.attach(&pair.server, &actor.user_id)?;
        Ok(Response::from_websocket(pair.client)?)
    }
}
