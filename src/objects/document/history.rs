//! The document's history in D1: acked operations are copied to the document's history shard in
//! batches, off the ack path (the alarm), and read back a page at a time. Flushing is the only
//! way rows reach D1; a read flushes first, so a reader sees every acked operation.

use serde::Serialize;

use super::client::ReadHistory;
use super::DocumentRoom;
use crate::d1::history;
use crate::limits;
use crate::protocol::DocKind;
use crate::runtime::http::ApiError;
use crate::runtime::rpc::RawJson;

#[derive(Serialize)]
struct Page<'a> {
    document_id: &'a str,
    operations: Vec<history::HistoryOp>,
    next_since: u64,
    has_more: bool,
}

impl DocumentRoom {
    /// Copies acked ops to the history shard and lets storage drop what it no longer needs. The
    /// incarnation is checked after every await: a delete that ran meanwhile owns the storage now.
    pub(super) async fn flush_history(&self) -> worker::Result<()> {
        let store = self.host.store();
        let Some(document_id) = store.document_id()? else { return Ok(()) };
        let incarnation = store.incarnation()?;
        let db = history::for_document(&self.env, &document_id)?;
        loop {
            let batch = store.unflushed(limits::HISTORY_BATCH_OPS)?;
            let Some(last) = batch.last().map(|e| e.version) else { return Ok(()) };
            history::write_history(&db, &document_id, &incarnation, &batch).await?;
            if store.incarnation()? != incarnation {
                // Deleted while the batch was in flight: those rows belong to the old life.
                return history::delete_incarnation(&db, &document_id, &incarnation).await;
            }
            store.mark_flushed(last, store.last_version()?)?;
            self.host.flushed_hint.set(Some(last));
            // A batch is cut by count or by bytes (large ops): go on while anything is left, so a
            // read sees every acked op (#15 point 9).
            if store.unflushed(1)?.is_empty() {
                return Ok(());
            }
        }
    }

    /// One page of history after `since`.
    pub(super) async fn read_history(&self, document_id: &str, q: ReadHistory) -> Result<RawJson, ApiError> {
        if q.limit == 0 || q.limit > limits::HISTORY_MAX_LIMIT {
            return Err(ApiError::bad_request("limit must be between 1 and 1000"));
        }
        // Whatever is acked is copied first, so a reader sees every acked op.
        self.flush_history().await?;
        let incarnation = self.host.store().incarnation()?;
        let db = history::for_document(&self.env, document_id)?;
        let (operations, has_more) = history::read_history(&db, document_id, &incarnation, q.since, q.limit).await?;
        let next_since = operations.last().map_or(q.since, |o| o.version);
        if DocKind::is_yjs(document_id) {
            return yjs_page(document_id, operations, next_since, has_more);
        }
        let page = Page { document_id, operations, next_since, has_more };
        Ok(RawJson(serde_json::to_string(&page).map_err(|e| ApiError::internal(e.to_string()))?))
    }
}

/// A Yjs document's history page (§7): each update as base64, with who and when.
fn yjs_page(document_id: &str, operations: Vec<history::HistoryOp>, next_since: u64, has_more: bool) -> Result<RawJson, ApiError> {
    #[derive(Serialize)]
    struct Update<'a> {
        version: u64,
        user_id: &'a str,
        update: &'a serde_json::value::RawValue,
        server_timestamp: u64,
    }
    let updates: Vec<Update> =
        operations.iter().map(|o| Update { version: o.version, user_id: &o.user_id, update: &o.ops, server_timestamp: o.server_timestamp }).collect();
    let page = serde_json::json!({"document_id": document_id, "operations": updates, "next_since": next_since, "has_more": has_more});
    Ok(RawJson(page.to_string()))
}
