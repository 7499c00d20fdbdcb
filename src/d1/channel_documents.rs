//! D1's record of which documents belong to which channel (§6.4), written by the document
//! objects as each starts a life, read by the channel delete.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, Result};

use crate::channels::channel_ids_of;

/// Records `document_id` under every channel it belongs to (one batch; a repeat refreshes the time).
pub async fn register(db: &D1Database, document_id: &str, now_ms: u64) -> Result<()> {
    let sql = "INSERT OR REPLACE INTO channel_documents (channel_id, document_id, registered_at) VALUES (?1, ?2, ?3)";
    let statements = channel_ids_of(document_id)
        .into_iter()
        .map(|c| db.prepare(sql).bind(&[c.into(), document_id.into(), JsValue::from_f64(now_ms as f64)]))
        .collect::<Result<Vec<_>>>()?;
    if !statements.is_empty() {
        db.batch(statements).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct Row {
    document_id: String,
}

/// The documents recorded under `channel_id`, in id order.
pub async fn list(db: &D1Database, channel_id: &str) -> Result<Vec<String>> {
    let rows: Vec<Row> = db
        .prepare("SELECT document_id FROM channel_documents WHERE channel_id = ?1 ORDER BY document_id")
        .bind(&[channel_id.into()])?
        .all()
        .await?
        .results()?;
    Ok(rows.into_iter().map(|r| r.document_id).collect())
}

/// Forgets deleted documents (under every channel), except rows registered again since `before`.
pub async fn forget(db: &D1Database, document_ids: &[String], before_ms: u64) -> Result<()> {
    let sql = "DELETE FROM channel_documents WHERE document_id = ?1 AND registered_at <= ?2";
    let statements = document_ids
        .iter()
        .map(|d| db.prepare(sql).bind(&[d.as_str().into(), JsValue::from_f64(before_ms as f64)]))
        .collect::<Result<Vec<_>>>()?;
    if !statements.is_empty() {
        db.batch(statements).await?;
    }
    Ok(())
}
