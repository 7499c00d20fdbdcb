//! The publish API's delivery ledger in D1 (§5.4 [1.2]): how many fan-out queue messages were
//! accepted and not yet delivered or dead-lettered, and the dead letters kept for replay.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, Result};

fn num(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

/// Adds `delta` (negative: settled) to the pending count.
pub async fn add_pending(db: &D1Database, delta: i64) -> Result<()> {
    if delta == 0 {
        return Ok(());
    }
    db.prepare("INSERT INTO notify_counters (name, value) VALUES ('pending', ?1) ON CONFLICT (name) DO UPDATE SET value = MAX(0, value + ?1)")
        .bind(&[num(delta)])?
        .run()
        .await?;
    Ok(())
}

/// One message that exhausted its retries.
pub struct DeadLetter {
    pub message_id: String,
    pub event_id: String,
    pub body: String,
    pub recipients: i64,
}

/// Keeps dead letters (a redelivered one once) and takes each new one off the pending count in
/// the same transaction, so the metrics never show a letter both pending and dead. Returns how
/// many were new.
pub async fn keep_dead(db: &D1Database, letters: &[DeadLetter], now_ms: u64) -> Result<i64> {
    if letters.is_empty() {
        return Ok(0);
    }
    let mut statements = Vec::with_capacity(letters.len() * 2);
    for l in letters {
        statements.push(
            db.prepare("INSERT OR IGNORE INTO notify_dead_letters (message_id, event_id, body, recipients, failed_at) VALUES (?, ?, ?, ?, ?)")
                .bind(&[l.message_id.as_str().into(), l.event_id.as_str().into(), l.body.as_str().into(), num(l.recipients), num(now_ms as i64)])?,
        );
        // changes() is the insert's row count: 0 for a redelivered letter.
        statements.push(db.prepare("UPDATE notify_counters SET value = MAX(0, value - changes()) WHERE name = 'pending'"));
    }
    let results = db.batch(statements).await?;
    let mut fresh = 0;
    for r in results.iter().step_by(2) {
        fresh += r.meta()?.and_then(|m| m.changes).unwrap_or(0).min(1) as i64;
    }
    Ok(fresh)
}

#[derive(Deserialize)]
struct Totals {
    pending: Option<f64>,
    dead: Option<f64>,
}

/// `(notify_pending, notify_dead_lettered)`: dead letters not replayed yet.
pub async fn totals(db: &D1Database) -> Result<(i64, i64)> {
    let t: Option<Totals> = db
        .prepare("SELECT (SELECT value FROM notify_counters WHERE name = 'pending') AS pending, (SELECT COUNT(*) FROM notify_dead_letters WHERE replayed_at IS NULL) AS dead")
        .first(None)
        .await?;
    let t = t.unwrap_or(Totals { pending: None, dead: None });
    Ok((t.pending.unwrap_or(0.0) as i64, t.dead.unwrap_or(0.0) as i64))
}

#[derive(Deserialize)]
struct Open {
    id: f64,
    body: String,
}

/// Takes up to `limit` dead letters not replayed yet, marking them replayed; their bodies.
pub async fn take_for_replay(db: &D1Database, limit: u32, now_ms: u64) -> Result<Vec<String>> {
    let rows: Vec<Open> = db
        .prepare("SELECT id, body FROM notify_dead_letters WHERE replayed_at IS NULL ORDER BY id LIMIT ?")
        .bind(&[num(limit as i64)])?
        .all()
        .await?
        .results()?;
    let mut statements = Vec::with_capacity(rows.len());
    for r in &rows {
        statements.push(db.prepare("UPDATE notify_dead_letters SET replayed_at = ? WHERE id = ?").bind(&[num(now_ms as i64), num(r.id as i64)])?);
    }
    if !statements.is_empty() {
        db.batch(statements).await?;
    }
    Ok(rows.into_iter().map(|r| r.body).collect())
}
