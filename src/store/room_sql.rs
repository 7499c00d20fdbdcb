//! The document object's own SQLite storage: snapshot, log tail, client records, awareness and
//! typing. Writes of one event go through `transactionSync`, so they commit all together or not
//! at all; the runtime's output gate holds every message sent after them until they are durable.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::{js_sys, Result, SqlStorage, SqlStorageValue, Storage};

use crate::limits;
use crate::ot::engagement::{CommentRecord, UserState};
use crate::room::{ClientRecord, LogEntry, Lookup, Notification, Stored, Write};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ops (version INTEGER PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clients (client_id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS awareness (session_id TEXT PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS typing (session_id TEXT PRIMARY KEY, entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS engagement_users (user_id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS comments (comment_id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (event_id TEXT PRIMARY KEY, notification TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS strokes (stroke_id TEXT PRIMARY KEY, stroke TEXT NOT NULL);
";

#[derive(Deserialize)]
struct TextRow {
    value: String,
}

#[derive(Deserialize)]
struct KeyedRow {
    key: String,
    value: String,
}

pub struct RoomStore {
    storage: Storage,
    sql: SqlStorage,
}

fn int(v: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(v as i64)
}

fn text(s: impl Into<String>) -> SqlStorageValue {
    SqlStorageValue::String(s.into())
}

fn parse<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| worker::Error::RustError(format!("corrupt stored row: {e}")))
}

impl RoomStore {
    pub fn new(storage: Storage) -> Self {
        let sql = storage.sql();
        RoomStore { storage, sql }
    }

    pub fn ensure_schema(&self) -> Result<()> {
        self.sql.exec(SCHEMA, None)?;
        Ok(())
    }

    fn texts(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<Vec<String>> {
        let rows: Vec<TextRow> = self.sql.exec(query, Some(bindings))?.to_array()?;
        Ok(rows.into_iter().map(|r| r.value).collect())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.texts("SELECT value FROM meta WHERE key = ?", vec![text(key)])?.into_iter().next())
    }

    pub fn meta_u64(&self, key: &str) -> Result<u64> {
        Ok(self.meta(key)?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    fn put_meta(&self, key: &str, value: &str) -> Result<()> {
        put_meta(&self.sql, key, value)
    }

    pub fn remember_document_id(&self, document_id: &str) -> Result<()> {
        self.put_meta("document_id", document_id)
    }

    /// Everything a room needs to wake: the snapshot and the retained log tail. Reads a bounded
    /// number of rows whatever the history length.
    pub fn load(&self) -> Result<Stored> {
        let snapshot_version = self.meta_u64("snapshot_version")?;
        let snapshot = self.meta("snapshot")?.unwrap_or_default();
        let mut tail: Vec<LogEntry> = self
            .texts(
                "SELECT entry AS value FROM ops ORDER BY version DESC LIMIT ?",
                vec![int(limits::LOG_RETAINED_OPS)],
            )?
            .iter()
            .map(|s| parse(s))
            .collect::<Result<_>>()?;
        tail.reverse();
        let keyed = |table: &str| -> Result<Vec<(String, String)>> {
            let rows: Vec<KeyedRow> =
                self.sql.exec(&format!("SELECT session_id AS key, entry AS value FROM {table}"), None)?.to_array()?;
            Ok(rows.into_iter().map(|r| (r.key, r.value)).collect())
        };
        let awareness = keyed("awareness")?.into_iter().map(|(k, v)| Ok((k, parse(&v)?))).collect::<Result<_>>()?;
        let typing = keyed("typing")?.into_iter().map(|(k, v)| Ok((k, parse(&v)?))).collect::<Result<_>>()?;
        let owner = self.meta("owner_id")?;
        let strokes: Vec<KeyedRow> = self.sql.exec("SELECT stroke_id AS key, stroke AS value FROM strokes", None)?.to_array()?;
        let strokes = strokes.into_iter().map(|r| Ok((r.key, parse(&r.value)?))).collect::<Result<_>>()?;
        Ok(Stored { snapshot_version, snapshot, owner, strokes, tail, awareness, typing })
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.put_meta(key, value)
    }

    fn one<T: DeserializeOwned>(&self, query: &str, key: &str) -> Option<T> {
        let row = self.texts(query, vec![text(key)]).ok()?.into_iter().next()?;
        parse(&row).ok()
    }

    /// Notifications not yet accepted by their user's channel.
    pub fn outbox(&self) -> Result<Vec<Notification>> {
        self.texts("SELECT notification AS value FROM outbox ORDER BY rowid LIMIT 100", vec![])?.iter().map(|s| parse(s)).collect()
    }

    pub fn outbox_done(&self, event_id: &str) -> Result<()> {
        self.sql.exec("DELETE FROM outbox WHERE event_id = ?", Some(vec![text(event_id)]))?;
        Ok(())
    }


    /// Makes one event's writes durable as a unit.
    pub fn persist(&self, writes: Vec<Write>, now: u64) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let sql = self.storage.sql();
        let run = move || -> std::result::Result<JsValue, JsValue> {
            apply_writes(&sql, &writes, now).map_err(|e| JsValue::from_str(&e.to_string()))?;
            Ok(JsValue::UNDEFINED)
        };
        let raw: &JsValue = self.storage.as_raw().as_ref();
        let transaction_sync: js_sys::Function = js_sys::Reflect::get(raw, &"transactionSync".into())?.dyn_into()?;
        let closure = Closure::once(run);
        transaction_sync.call1(raw, closure.as_ref().unchecked_ref())?;
        Ok(())
    }

    /// Acked ops not yet copied to D1, oldest first.
    pub fn unflushed(&self, limit: usize) -> Result<Vec<LogEntry>> {
        let flushed = self.meta_u64("d1_flushed")?;
        self.texts(
            "SELECT entry AS value FROM ops WHERE version > ? ORDER BY version LIMIT ?",
            vec![int(flushed), int(limit as u64)],
        )?
        .iter()
        .map(|s| parse(s))
        .collect()
    }

    /// Records that D1 holds every op up to `version`, and drops local rows no longer needed:
    /// copied to D1 and older than the retained window.
    pub fn mark_flushed(&self, version: u64, current: u64) -> Result<()> {
        if version > self.meta_u64("d1_flushed")? {
            self.put_meta("d1_flushed", &version.to_string())?;
        }
        let keep_after = current.saturating_sub(limits::LOG_RETAINED_OPS).min(version);
        self.sql.exec("DELETE FROM ops WHERE version <= ?", Some(vec![int(keep_after)]))?;
        Ok(())
    }

    pub fn database_size(&self) -> usize {
        self.sql.database_size()
    }

}

/// Point reads for the room. A failed read counts as absent; the write that follows would then
/// fail on the primary key rather than apply twice.
impl Lookup for RoomStore {
    fn client(&self, client_id: &str) -> Option<ClientRecord> {
        self.one("SELECT record AS value FROM clients WHERE client_id = ?", client_id)
    }
    fn engagement_user(&self, user_id: &str) -> Option<UserState> {
        self.one("SELECT state AS value FROM engagement_users WHERE user_id = ?", user_id)
    }
    fn comment(&self, comment_id: &str) -> Option<CommentRecord> {
        self.one("SELECT record AS value FROM comments WHERE comment_id = ?", comment_id)
    }
}

fn put_meta(sql: &SqlStorage, key: &str, value: &str) -> Result<()> {
    sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", Some(vec![text(key), text(value)]))?;
    Ok(())
}

/// Stored rows are plain data, so serialising them cannot fail.
fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Keyed tables hold one JSON document per key.
fn upsert<T: serde::Serialize>(sql: &SqlStorage, table: &str, key_col: &str, val_col: &str, key: &str, value: &T) -> Result<()> {
    let query = format!("INSERT OR REPLACE INTO {table} ({key_col}, {val_col}) VALUES (?, ?)");
    sql.exec(&query, Some(vec![text(key), text(to_json(value))]))?;
    Ok(())
}

fn delete(sql: &SqlStorage, table: &str, key_col: &str, key: &str) -> Result<()> {
    sql.exec(&format!("DELETE FROM {table} WHERE {key_col} = ?"), Some(vec![text(key)]))?;
    Ok(())
}

fn apply_writes(sql: &SqlStorage, writes: &[Write], now: u64) -> Result<()> {
    for w in writes {
        match w {
            Write::AppendOp(e) => {
                sql.exec("INSERT INTO ops (version, entry) VALUES (?, ?)", Some(vec![int(e.version), text(to_json(e))]))?;
                put_meta(sql, "version", &e.version.to_string())?;
            }
            Write::Snapshot { version, content } => {
                put_meta(sql, "snapshot_version", &version.to_string())?;
                put_meta(sql, "snapshot", content)?;
            }
            Write::PutClient(id, rec) => upsert(sql, "clients", "client_id", "record", id, rec)?,
            Write::PutAwareness(sid, entry) => upsert(sql, "awareness", "session_id", "entry", sid, entry)?,
            Write::DeleteAwareness(sid) => delete(sql, "awareness", "session_id", sid)?,
            Write::PutTyping(sid, entry) => upsert(sql, "typing", "session_id", "entry", sid, entry)?,
            Write::DeleteTyping(sid) => delete(sql, "typing", "session_id", sid)?,
            Write::PutEngagementUser(uid, state) => upsert(sql, "engagement_users", "user_id", "state", uid, state)?,
            Write::PutComment(id, record) => upsert(sql, "comments", "comment_id", "record", id, record)?,
            Write::QueueNotification(n) => upsert(sql, "outbox", "event_id", "notification", &n.event_id, n)?,
            Write::PutStroke(id, stroke) => upsert(sql, "strokes", "stroke_id", "stroke", id, stroke)?,
            Write::RemoveStroke(id) => delete(sql, "strokes", "stroke_id", id)?,
            Write::ClearStrokes => {
                sql.exec("DELETE FROM strokes", None)?;
            }
        }
    }
    if writes.iter().any(|w| matches!(w, Write::AppendOp(_))) {
        put_meta(sql, "updated_at", &now.to_string())?;
    }
    Ok(())
}
