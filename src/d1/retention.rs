//! The scheduled retention job: old operation history (in every shard) and old error reports
//! leave D1 in bounded batches, so one run never holds a database for long.

use wasm_bindgen::JsValue;
use worker::{D1Database, Result};

use crate::limits;

/// Deletes rows of `table` whose `column` is older than `cutoff_ms`, at most `batch` per query
/// and `max_batches` queries, so one run stays bounded. Returns the rows deleted.
async fn delete_older(db: &D1Database, table: &str, column: &str, cutoff_ms: u64, batch: u32, max_batches: u32) -> Result<u64> {
    let sql = format!("DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {column} < ?1 LIMIT ?2)");
    let mut total = 0;
    for _ in 0..max_batches {
        let res = db.prepare(&sql).bind(&[JsValue::from_f64(cutoff_ms as f64), JsValue::from(batch)])?.run().await?;
        let changed = res.meta()?.and_then(|m| m.changes).unwrap_or(0) as u64;
        total += changed;
        if changed < batch as u64 {
            break;
        }
    }
    Ok(total)
}

const DAY_MS: u64 = 24 * 3600 * 1000;

/// Removes operations older than 30 days from one history shard. Returns the count.
pub async fn operations(db: &D1Database, now_ms: u64) -> Result<u64> {
    let cutoff = now_ms.saturating_sub(limits::HISTORY_RETENTION_DAYS * DAY_MS);
    delete_older(db, "operations", "server_timestamp", cutoff, limits::RETENTION_BATCH_ROWS, limits::RETENTION_MAX_BATCHES).await
}

/// Removes error reports older than 90 days (they live in `DB` only). Returns the count.
pub async fn error_reports(db: &D1Database, now_ms: u64) -> Result<u64> {
    let cutoff = now_ms.saturating_sub(limits::ERROR_RETENTION_DAYS * DAY_MS);
    delete_older(db, "error_logs", "last_seen", cutoff, limits::RETENTION_BATCH_ROWS, limits::RETENTION_MAX_BATCHES).await
}
