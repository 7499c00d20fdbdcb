//! D1: the long-term operation history, each document's in its shard (`super::shards`). Written
//! in batches by the document object, off the ack path; `INSERT OR IGNORE` on (document_id,
//! incarnation, version) makes a retried batch harmless, so every op lands exactly once.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use worker::{D1Database, Env, Error, Result};
use wasm_bindgen::JsValue;

use crate::history_shards::HistoryShards;
use crate::model::LogEntry;

const INSERT: &str = "INSERT OR IGNORE INTO operations \
    (document_id, incarnation, version, operation_id, client_id, user_id, seq, timestamp, server_timestamp, ops) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Many rows from one JSON array `?3` of `[version, operation_id, client_id, user_id, seq,
/// timestamp, server_timestamp, ops text]`.
const INSERT_MANY: &str = "INSERT OR IGNORE INTO operations \
    (document_id, incarnation, version, operation_id, client_id, user_id, seq, timestamp, server_timestamp, ops) \
    SELECT ?1, ?2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), \
    json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), json_extract(value, '$[6]'), \
    json_extract(value, '$[7]') FROM json_each(?3)";

fn num(v: u64) -> JsValue {
    // D1 cannot bind BigInt; every value here is far below 2^53.
    JsValue::from_f64(v as f64)
}

pub async fn write_history(db: &D1Database, document_id: &str, incarnation: &str, entries: &[LogEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut statements = Vec::new();
    for group in row_groups(entries) {
        let statement = match group {
            Rows::Many(json) => db.prepare(INSERT_MANY).bind(&[document_id.into(), incarnation.into(), json.into()]),
            Rows::One(e) => db.prepare(INSERT).bind(&[
                document_id.into(),
                incarnation.into(),
                num(e.version),
                e.operation_id().into(),
                e.client_id.as_str().into(),
                e.user_id.as_str().into(),
                num(e.seq),
                num(e.timestamp),
                num(e.server_timestamp),
                e.ops.get().into(),
            ]),
        };
        statements.push(statement?);
    }
    db.batch(statements).await?;
    Ok(())
}

/// Rows of one statement: many as one JSON array of row arrays (one prepare and three bound
/// values however many rows: the per-row bindings cost the object more CPU than the rows), or
/// one large row on its own (D1 binds at most 2 MB per value).
enum Rows<'a> {
    Many(String),
    One(&'a LogEntry),
}

/// Largest JSON text bound for a group of rows.
const GROUP_BYTES: usize = 256 * 1024;

fn row_groups(entries: &[LogEntry]) -> Vec<Rows<'_>> {
    let mut groups = Vec::new();
    let mut json = String::new();
    for e in entries {
        let row = serde_json::json!([e.version, e.operation_id(), e.client_id, e.user_id, e.seq, e.timestamp, e.server_timestamp, e.ops.get()]).to_string();
        if row.len() > GROUP_BYTES {
            groups.push(Rows::One(e));
            continue;
        }
        if json.len() + row.len() + 2 > GROUP_BYTES {
            groups.push(Rows::Many(std::mem::take(&mut json) + "]"));
        }
        json.push(if json.is_empty() { '[' } else { ',' });
        json.push_str(&row);
    }
    if !json.is_empty() {
        groups.push(Rows::Many(json + "]"));
    }
    groups
}

#[derive(Deserialize)]
struct Row {
    operation_id: String,
    version: f64,
    client_id: String,
    user_id: String,
    seq: f64,
    timestamp: f64,
    server_timestamp: f64,
    ops: String,
}

/// One operation of `GET /operations/history` (§4.1); `ops` is relayed as stored.
#[derive(Serialize)]
pub struct HistoryOp {
    pub id: String,
    pub version: u64,
    pub client_id: String,
    pub user_id: String,
    pub seq: u64,
    pub timestamp: u64,
    pub server_timestamp: u64,
    pub ops: Box<RawValue>,
}

/// One page of history after `since`: the operations and whether more follow. The page is cut
/// by count and by bytes (§5.1 [1.2]), measured in D1 before any operation is read.
pub async fn read_history(db: &D1Database, document_id: &str, incarnation: &str, since: u64, limit: u64) -> Result<(Vec<HistoryOp>, bool)> {
    #[derive(Deserialize)]
    struct Size {
        bytes: f64,
    }
    let sizes: Vec<Size> = db
        .prepare(
            "SELECT length(CAST(ops AS BLOB)) AS bytes FROM operations \
             WHERE document_id = ?1 AND incarnation = ?2 AND version > ?3 ORDER BY version LIMIT ?4",
        )
        .bind(&[document_id.into(), incarnation.into(), num(since), num(limit + 1)])?
        .all()
        .await?
        .results()?;
    let sizes: Vec<usize> = sizes.iter().map(|s| s.bytes as usize).collect();
    let (take, has_more) = crate::history_shards::page_cut(&sizes, limit as usize, crate::limits::HISTORY_PAGE_BYTES);
    let result = db
        .prepare(
            "SELECT operation_id, version, client_id, user_id, seq, timestamp, server_timestamp, ops \
             FROM operations WHERE document_id = ?1 AND incarnation = ?2 AND version > ?3 ORDER BY version LIMIT ?4",
        )
        .bind(&[document_id.into(), incarnation.into(), num(since), num(take as u64)])?
        .all()
        .await?;
    let rows: Vec<Row> = result.results()?;
    let ops = rows
        .into_iter()
        .map(|r| HistoryOp {
            id: r.operation_id,
            version: r.version as u64,
            client_id: r.client_id,
            user_id: r.user_id,
            seq: r.seq as u64,
            timestamp: r.timestamp as u64,
            server_timestamp: r.server_timestamp as u64,
            ops: RawValue::from_string(r.ops).unwrap_or_else(|_| crate::doc::raw_json(&Value::Null)),
        })
        .collect();
    Ok((ops, has_more))
}

/// Removes the rows one life of the document wrote (a flush that lost the race with a delete).
pub async fn delete_incarnation(db: &D1Database, document_id: &str, incarnation: &str) -> Result<()> {
    db.prepare("DELETE FROM operations WHERE document_id = ?1 AND incarnation = ?2")
        .bind(&[document_id.into(), incarnation.into()])?
        .run()
        .await?;
    Ok(())
}

pub async fn delete_history(db: &D1Database, document_id: &str) -> Result<()> {
    db.prepare("DELETE FROM operations WHERE document_id = ?1").bind(&[document_id.into()])?.run().await?;
    Ok(())
}

// The shards: the databases named by `HISTORY_SHARDS`, in order (`crate::history_shards`
// picks a document's). Error reports stay in `DB`.

/// The configured shard list; a malformed `HISTORY_SHARDS` is an error, never a guess.
pub fn list(env: &Env) -> Result<HistoryShards> {
    let spec = env.var(crate::runtime::bindings::HISTORY_SHARDS).ok().map(|v| v.to_string());
    HistoryShards::parse(spec.as_deref()).map_err(Error::RustError)
}

/// The database bound as `name`, with an error that says which shard binding is missing.
pub fn open(env: &Env, name: &str) -> Result<D1Database> {
    env.d1(name).map_err(|e| {
        Error::RustError(format!("history shard {name}: {e} (every name in HISTORY_SHARDS needs a [[d1_databases]] binding)"))
    })
}

/// The database that holds `document_id`'s history.
pub fn for_document(env: &Env, document_id: &str) -> Result<D1Database> {
    open(env, list(env)?.for_document(document_id))
}
