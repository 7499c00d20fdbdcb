//! The calls the Worker makes to a document (`client.rs`): REST operations, the text of a
//! description, the state, room events, presence, metrics and deletion.

use serde_json::{json, Value};

use super::client::{Apply, Broadcast, Broadcasted, Deleted, ReplaceText, ShowPresence, TextReplaced};
use super::DocumentRoom;
use crate::d1::history;
use crate::model::Actor;
use crate::ot::text::diff;
use crate::protocol::{Code, Failure, Outgoing};
use crate::runtime::clock::{new_incarnation, now_ms};
use crate::runtime::http::{json_text_response, ApiError, ApiResult};
use crate::runtime::rpc::{Done, RawJson};
use crate::runtime::sockets::close;

fn not_applied() -> ApiError {
    ApiError::internal("storage write failed; the operation was not applied")
}

impl DocumentRoom {
    /// An operation over REST: the same engine and guarantees as a socket's; 202 with the ack.
    pub(super) async fn apply(&self, actor: &Actor, req: Apply) -> ApiResult {
        let done = self.host.with_room(|room, store| room.submit_json(actor, &req.operation, now_ms(), store))??;
        let ack = done.ack.payload_json().to_string();
        if !self.commit(done.effects, None).await {
            return Err(not_applied());
        }
        Ok(json_text_response(202, &ack)?)
    }

    /// Turns the new text into operations against the current text (a diff) and applies them.
    pub(super) async fn replace_text(&self, actor: &Actor, req: ReplaceText) -> Result<TextReplaced, ApiError> {
        let (version, current) = self.host.with_room(|r, _| (r.version(), r.text()))?;
        let current = current.ok_or_else(|| ApiError::bad_request("this document is not text"))?;
        if let Some(v) = req.version {
            if v > version {
                return Err(Failure::new(Code::VersionAhead, format!("version {v} is ahead of the document (version {version})")).into());
            }
            if v < version {
                return Err(ApiError::new(409, "version_conflict", format!("the description changed since version {v} (now {version}); reload and retry")));
            }
        }
        let prims = diff(&current, &req.text);
        if prims.is_empty() {
            return Ok(TextReplaced { status: "unchanged".into(), version, content: current });
        }
        let client_id = format!("http:{}", actor.user_id);
        let done = self.host.with_room(|room, store| room.submit_text(actor, &client_id, version, prims, now_ms(), store))??;
        let ack = done.ack();
        if !self.commit(done.effects, None).await {
            return Err(not_applied());
        }
        let content = self.host.with_room(|r, _| r.text())?.unwrap_or_default();
        Ok(TextReplaced { status: ack["status"].as_str().unwrap_or_default().into(), version: ack["version"].as_u64().unwrap_or(version), content })
    }

    /// The state with its version; the state is spliced in as JSON text, never parsed again.
    pub(super) fn read_document(&self, document_id: &str) -> Result<RawJson, ApiError> {
        let (version, kind, updated_at) = self.host.with_room(|r, _| (r.version(), r.kind(), r.updated_at()))?;
        let head = json!({"document_id": document_id, "kind": kind.as_str(), "version": version, "updated_at": updated_at}).to_string();
        let mut body = format!("{},", &head[..head.len() - 1]);
        self.host.with_room(|r, store| match r.as_canvas() {
            // A canvas's strokes are read from storage, page by page, never held whole.
            Some(canvas) => {
                body.push_str("\"strokes\":");
                canvas.write_state(None, store, &mut |chunk| body.push_str(chunk))
            }
            None => {
                let (field, state) = r.state();
                body.push_str(&format!("{}:{}", json!(field), state));
                Ok(())
            }
        })??;
        body.push('}');
        Ok(RawJson(body))
    }

    pub(super) fn broadcast(&self, document_id: &str, req: Broadcast) -> Broadcasted {
        self.host.broadcast(Outgoing::new("room_event", &req.event));
        Broadcasted { document_id: document_id.to_string(), sockets: self.host.socket_count() }
    }

    pub(super) fn show_presence(&self, req: ShowPresence) -> Done {
        self.host.broadcast(Outgoing::new("presence", &req.payload));
        Done {}
    }

    pub(super) fn read_metrics(&self, document_id: &str) -> Result<Value, ApiError> {
        let (version, retained, retained_bytes, updated_at) =
            self.host.with_room(|r, _| (r.version(), r.retained_ops(), r.retained_bytes(), r.updated_at()))?;
        let store = self.host.store();
        Ok(json!({
            "document_id": document_id,
            "connections": self.host.socket_count(),
            "version": version,
            "operations_retained": retained,
            "operations_retained_bytes": retained_bytes,
            "storage_bytes": store.database_size(),
            "last_activity": updated_at,
            "kv_writes": store.meta_u64("kv_writes")?,
            // §6.2: the shards watching a post, and the calls its pushes made.
            "watch_shards": store.meta("watch_shards")?.and_then(|s| serde_json::from_str::<Vec<String>>(&s).ok()).map_or(0, |s| s.len()),
            "watch_pushes": store.meta_u64("watch_pushes")?,
            "watch_calls": store.meta_u64("watch_calls")?,
            "watch_channel_calls": store.meta_u64("watch_channel_calls")?,
            "since_wake": self.host.metrics.document_json(),
        }))
    }

    /// Closes every socket with 4404, empties storage, starts a new life of the id, and removes
    /// the history and the cached counts.
    pub(super) async fn delete(&self, document_id: &str) -> Result<Deleted, ApiError> {
        let state = self.host.state();
        for ws in state.get_websockets() {
            let _ = ws.close(Some(close::DELETED), Some("document deleted"));
        }
        let storage = state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await?;
        self.host.forget();
        let store = self.host.store();
        store.ensure_schema().map_err(ApiError::internal)?;
        // A new life for the id: its history, comment ids and notification ids never mix with
        // the old one's, even if a flush of the old one is still in flight.
        store.begin_incarnation(document_id, &new_incarnation())?;
        history::delete_history(&history::for_document(&self.env, document_id)?, document_id).await?;
        self.forget_cached_counts(document_id).await;
        Ok(Deleted { document_id: document_id.to_string(), deleted: true })
    }
}
