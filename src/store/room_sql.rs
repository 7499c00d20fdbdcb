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
use crate::room::{ClientRecord, Found, LogEntry, Lookup, Notification, Stored, Write};

/// The document object's schema migrations, oldest first (append only).
const MIGRATIONS: &[&str] = &[SCHEMA_1];

const SCHEMA_1: &str = "
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

    /// Brings the object's tables to this build's schema version (`schema.rs`); after a
    /// `deleteAll` this creates them afresh.
    pub fn ensure_schema(&self) -> Result<()> {
        super::object_schema::ensure(&self.storage, "document", MIGRATIONS);
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

    /// Starts a life of the document id in empty storage: history rows, comment ids and
    /// notification ids carry the incarnation, so a deleted id that is reused never mixes with
    /// its past. (Documents from before incarnations keep the empty one.)
    pub fn begin_incarnation(&self, document_id: &str, incarnation: &str) -> Result<()> {
        let fresh = self.last_version()? == 0 && self.meta("snapshot_version")?.is_none();
        self.put_meta("document_id", document_id)?;
        if fresh {
            self.put_meta("incarnation", incarnation)?;
        }
        Ok(())
    }

    /// Everything a room needs to wake: the snapshot and the log tail after it, plus older
    /// entries up to the log's byte budget. Reads a bounded amount whatever the history length.
    pub fn load(&self) -> Result<Stored> {
        let snapshot_version = self.meta_u64("snapshot_version")?;
        let snapshot = self.meta("snapshot")?.unwrap_or_default();
        let cut = self.tail_start(snapshot_version)?;
        let tail: Vec<LogEntry> = self
            .texts("SELECT entry AS value FROM ops WHERE version > ? ORDER BY version", vec![int(cut)])?
            .iter()
            .map(|s| parse(s))
            .collect::<Result<_>>()?;
        let keyed = |table: &str| -> Result<Vec<(String, String)>> {
            let rows: Vec<KeyedRow> =
                self.sql.exec(&format!("SELECT session_id AS key, entry AS value FROM {table}"), None)?.to_array()?;
            Ok(rows.into_iter().map(|r| (r.key, r.value)).collect())
        };
        let awareness = keyed("awareness")?.into_iter().map(|(k, v)| Ok((k, parse(&v)?))).collect::<Result<_>>()?;
        let typing = keyed("typing")?.into_iter().map(|(k, v)| Ok((k, parse(&v)?))).collect::<Result<_>>()?;
        let owner = self.meta("owner_id")?;
        let incarnation = self.meta("incarnation")?.unwrap_or_default();
        let strokes: Vec<KeyedRow> = self.sql.exec("SELECT stroke_id AS key, stroke AS value FROM strokes", None)?.to_array()?;
        let strokes = strokes.into_iter().map(|r| Ok((r.key, parse(&r.value)?))).collect::<Result<_>>()?;
        Ok(Stored { incarnation, snapshot_version, snapshot, owner, strokes, tail, awareness, typing })
    }

    /// The version after which the wake tail starts: every entry after the snapshot, and older
    /// ones while they fit the log's count and byte budgets.
    fn tail_start(&self, snapshot_version: u64) -> Result<u64> {
        #[derive(Deserialize)]
        struct Sized {
            version: f64,
            bytes: f64,
        }
        let rows: Vec<Sized> = self
            .sql
            .exec(
                "SELECT version, length(entry) AS bytes FROM ops ORDER BY version DESC LIMIT ?",
                Some(vec![int(limits::LOG_RETAINED_OPS)]),
            )?
            .to_array()?;
        let mut total = 0usize;
        let mut cut = rows.last().map_or(0, |r| r.version as u64 - 1);
        for r in &rows {
            total += r.bytes as usize;
            if total > limits::LOG_RETAINED_BYTES && (r.version as u64) <= snapshot_version {
                cut = r.version as u64;
                break;
            }
        }
        Ok(cut)
    }

    /// The newest version in the log (0 when it is empty).
    pub fn last_version(&self) -> Result<u64> {
        #[derive(Deserialize)]
        struct Max {
            v: Option<f64>,
        }
        let rows: Vec<Max> = self.sql.exec("SELECT MAX(version) AS v FROM ops", None)?.to_array()?;
        Ok(rows.first().and_then(|r| r.v).map_or(0, |v| v as u64))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.put_meta(key, value)
    }

    fn one<T: DeserializeOwned>(&self, query: &str, key: &str) -> Found<T> {
        let rows = self.texts(query, vec![text(key)]).map_err(|e| e.to_string())?;
        rows.first().map(|row| serde_json::from_str(row).map_err(|e| format!("corrupt stored row: {e}"))).transpose()
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
    pub fn persist(&self, writes: Vec<Write>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let sql = self.storage.sql();
        let run = move || -> std::result::Result<JsValue, JsValue> {
            apply_writes(&sql, &writes).map_err(|e| JsValue::from_str(&e.to_string()))?;
            Ok(JsValue::UNDEFINED)
        };
        let raw: &JsValue = self.storage.as_raw().as_ref();
        let transaction_sync: js_sys::Function = js_sys::Reflect::get(raw, &"transactionSync".into())?.dyn_into()?;
        let closure = Closure::once(run);
        transaction_sync.call1(raw, closure.as_ref().unchecked_ref())?;
        Ok(())
    }

    /// Acked ops not yet copied to D1, oldest first: at most `limit` of them and about
    /// `HISTORY_BATCH_BYTES` of JSON (always at least one).
    pub fn unflushed(&self, limit: usize) -> Result<Vec<LogEntry>> {
        let flushed = self.meta_u64("d1_flushed")?;
        let mut out = Vec::new();
        let mut bytes = 0;
        let rows = self.sql.exec(
            "SELECT entry AS value FROM ops WHERE version > ? ORDER BY version LIMIT ?",
            Some(vec![int(flushed), int(limit as u64)]),
        )?;
        for row in rows.next::<TextRow>() {
            let row = row?;
            bytes += row.value.len();
            out.push(parse(&row.value)?);
            if bytes >= limits::HISTORY_BATCH_BYTES {
                break;
            }
        }
        Ok(out)
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

/// Point reads for the room. A failed read is an error, never "absent": the room then fails the
/// operation (`internal`) rather than count a like twice or apply a seq again.
impl Lookup for RoomStore {
    fn client(&self, client_id: &str) -> Found<ClientRecord> {
        self.one("SELECT record AS value FROM clients WHERE client_id = ?", client_id)
    }
    fn engagement_user(&self, user_id: &str) -> Found<UserState> {
        self.one("SELECT state AS value FROM engagement_users WHERE user_id = ?", user_id)
    }
    fn comment(&self, comment_id: &str) -> Found<CommentRecord> {
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

fn apply_writes(sql: &SqlStorage, writes: &[Write]) -> Result<()> {
    for w in writes {
        match w {
            // One statement: the version and the last activity are read back from the log.
            Write::AppendOp(e) => {
                sql.exec("INSERT INTO ops (version, entry) VALUES (?, ?)", Some(vec![int(e.version), text(to_json(&**e))]))?;
            }
            Write::Snapshot { version, content } => {
                sql.exec(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('snapshot_version', ?), ('snapshot', ?)",
                    Some(vec![text(version.to_string()), text(content.as_str())]),
                )?;
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
    Ok(())
}
