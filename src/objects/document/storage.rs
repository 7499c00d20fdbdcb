//! The document object's own SQLite: snapshot, log tail, client records, awareness, typing,
//! a post's per-user state and comments, a canvas's strokes, and the owner outbox. One event's
//! writes commit in one transaction, all together or not at all.

use serde::de::DeserializeOwned;

use crate::geom::Rect;
use crate::limits;
use crate::model::{ClientRecord, LogEntry, Lookup, Notification, SavedRoom, StoreRead, Write};
use crate::ot::canvas::Stroke;
use crate::ot::canvas_index::StrokeRow;
use crate::ot::engagement::{CommentRecord, UserState};
use crate::runtime::sql::{meta, Sql, SqlResult, SqlValue};

use super::writes::int;

/// The document object's schema migrations, oldest first (append only; `crate::schema`).
pub const MIGRATIONS: &[&str] = &[SCHEMA_1, SCHEMA_2, SCHEMA_3, SCHEMA_4, super::snapshot_rows::SCHEMA];

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

/// 2: a canvas's strokes as an index the room keeps in memory (box, last writer, size) beside
/// the data it reads from storage when a socket needs it (§8). Rows of the first table are
/// converted on the next load (`convert_v1_strokes`): the box is computed from the data.
const SCHEMA_2: &str = "
CREATE TABLE IF NOT EXISTS strokes_v2 (
  stroke_id TEXT PRIMARY KEY,
  data      TEXT NOT NULL,
  min_x REAL, min_y REAL, max_x REAL, max_y REAL,
  version   INTEGER NOT NULL,
  timestamp INTEGER NOT NULL,
  client_id TEXT NOT NULL,
  bytes     INTEGER NOT NULL
);
";

/// 3 (§5.1, §5.5 [1.2]): when each client last sent an operation, so the claims idle longest go
/// first when a document holds too many; users refused until a time (revocations).
const SCHEMA_3: &str = "
ALTER TABLE clients ADD COLUMN last_used INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS clients_by_use ON clients (last_used);
CREATE TABLE IF NOT EXISTS revoked (user_id TEXT PRIMARY KEY, until INTEGER NOT NULL);
";

/// 4: a post's comments listed newest first without reading them all (§6.2): their time and
/// whether they are live, as columns beside the record, filled in for comments stored before.
const SCHEMA_4: &str = "
ALTER TABLE comments ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE comments ADD COLUMN live INTEGER NOT NULL DEFAULT 1;
UPDATE comments SET created_at = COALESCE(json_extract(record, '$.created_at'), 0),
  live = CASE WHEN json_extract(record, '$.deleted') THEN 0 ELSE 1 END;
CREATE INDEX IF NOT EXISTS comments_by_time ON comments (live, created_at, comment_id);
";

fn parse<T: DeserializeOwned>(s: &str) -> SqlResult<T> {
    Ok(serde_json::from_str(s)?)
}

fn parse_all<T: DeserializeOwned>(rows: Vec<(String, String)>) -> SqlResult<Vec<(String, T)>> {
    rows.into_iter().map(|(k, v)| Ok((k, parse(&v)?))).collect()
}

pub struct RoomStore<S: Sql> {
    sql: S,
}

impl<S: Sql> RoomStore<S> {
    pub fn new(sql: S) -> Self {
        RoomStore { sql }
    }

    pub fn sql(&self) -> &S {
        &self.sql
    }

    /// Brings the tables to this build's schema (after a `deleteAll` this creates them afresh).
    pub fn ensure_schema(&self) -> Result<u32, String> {
        crate::runtime::sql::migrate(&self.sql, MIGRATIONS)
    }

    pub fn meta(&self, key: &str) -> SqlResult<Option<String>> {
        meta::get(&self.sql, key)
    }

    pub fn meta_u64(&self, key: &str) -> SqlResult<u64> {
        meta::get_u64(&self.sql, key)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> SqlResult<()> {
        meta::set(&self.sql, key, value)
    }

    pub fn document_id(&self) -> SqlResult<Option<String>> {
        self.meta("document_id")
    }

    pub fn incarnation(&self) -> SqlResult<String> {
        Ok(self.meta("incarnation")?.unwrap_or_default())
    }

    /// Starts a life of the document id in empty storage: history rows, comment ids and
    /// notification ids carry the incarnation, so a deleted id that is reused never mixes with
    /// its past. (Documents from before incarnations keep the empty one.)
    pub fn begin_incarnation(&self, document_id: &str, incarnation: &str) -> SqlResult<()> {
        let fresh = self.last_version()? == 0 && self.meta("snapshot_version")?.is_none();
        self.set_meta("document_id", document_id)?;
        if fresh {
            self.set_meta("incarnation", incarnation)?;
        }
        Ok(())
    }

    /// Everything a room needs to wake: the snapshot and the log tail after it; the older
    /// entries within the log's budgets stay in storage until a client needs them (a long
    /// history wakes as fast as an empty one). Reads a bounded amount whatever the history length.
    pub fn load(&self) -> SqlResult<SavedRoom> {
        let snapshot_version = self.meta_u64("snapshot_version")?;
        let snapshot = super::snapshot_rows::read(&self.sql, self.meta("snapshot")?)?;
        let tail = self.sql.texts("SELECT entry FROM ops WHERE version > ? ORDER BY version", vec![int(snapshot_version)])?;
        let tail = tail.iter().map(|s| parse(s)).collect::<SqlResult<_>>()?;
        let keyed = |query: &str| -> SqlResult<Vec<(String, String)>> {
            let rows = self.sql.query(query, vec![])?;
            Ok(rows.into_iter().filter_map(|r| Some((r.first()?.text()?.to_string(), r.get(1)?.text()?.to_string()))).collect())
        };
        Ok(SavedRoom {
            incarnation: self.incarnation()?,
            snapshot_version,
            snapshot,
            snapshot_bytes: super::snapshot_rows::read_bytes(&self.sql)?,
            owner: self.meta("owner_id")?,
            stroke_rows: self.stroke_rows()?,
            tail,
            // Storage keeps the last LOG_RETAINED_OPS versions (`mark_flushed`); the room reads
            // them within the log's budgets, and gives up on any it finds trimmed.
            retained_after: Some(snapshot_version.saturating_sub(limits::LOG_RETAINED_OPS)).filter(|&v| v < snapshot_version),
            awareness: parse_all(keyed("SELECT session_id, entry FROM awareness")?)?,
            typing: parse_all(keyed("SELECT session_id, entry FROM typing")?)?,
        })
    }

    /// A canvas's index rows, never the stroke data (100,000 strokes are ~20 MiB of index and
    /// up to 64 MiB of data).
    fn stroke_rows(&self) -> SqlResult<Vec<StrokeRow>> {
        self.convert_v1_strokes()?;
        let rows = self.sql.query("SELECT stroke_id, min_x, min_y, max_x, max_y, version, timestamp, client_id, bytes FROM strokes_v2", vec![])?;
        Ok(rows.into_iter().filter_map(stroke_row).collect())
    }

    /// Strokes stored before the index (one JSON row each) move to `strokes_v2`, once.
    fn convert_v1_strokes(&self) -> SqlResult<()> {
        if self.sql.first_int("SELECT 1 FROM strokes LIMIT 1", vec![])?.is_none() {
            return Ok(());
        }
        let old = self.sql.query("SELECT stroke_id, stroke FROM strokes", vec![])?;
        let writes: Vec<Write> = old
            .into_iter()
            .filter_map(|r| {
                let id = r.first()?.text()?.to_string();
                let stroke: Stroke = serde_json::from_str(r.get(1)?.text()?).ok()?;
                Some(Write::PutStroke(id, stroke))
            })
            .collect();
        self.sql.transaction(&mut || {
            writes.iter().try_for_each(|w| super::writes::apply(&self.sql, w))?;
            self.sql.run("DELETE FROM strokes", vec![])
        })
    }

    /// The newest version in the log (0 when it is empty).
    pub fn last_version(&self) -> SqlResult<u64> {
        Ok(self.sql.first_int("SELECT MAX(version) FROM ops", vec![])?.unwrap_or(0) as u64)
    }

    fn one<T: DeserializeOwned>(&self, query: &str, key: &str) -> StoreRead<T> {
        let row = self.sql.first_text(query, vec![key.into()]).map_err(|e| e.0)?;
        row.map(|text| serde_json::from_str(&text).map_err(|e| format!("corrupt stored row: {e}"))).transpose()
    }

    /// Notifications not yet accepted by their user's inbox, oldest first.
    pub fn outbox(&self) -> SqlResult<Vec<Notification>> {
        self.sql.texts("SELECT notification FROM outbox ORDER BY rowid LIMIT 100", vec![])?.iter().map(|s| parse(s)).collect()
    }

    pub fn outbox_done(&self, event_id: &str) -> SqlResult<()> {
        self.sql.run("DELETE FROM outbox WHERE event_id = ?", vec![event_id.into()])
    }

    /// Makes a batch's writes durable as a unit (one transaction), skipping those a later write
    /// of the same batch replaces.
    pub fn persist(&self, writes: &[Write]) -> SqlResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        super::writes::persist(&self.sql, writes)
    }

    /// Acked ops not yet copied to D1, oldest first: at most `limit` of them and about
    /// `HISTORY_BATCH_BYTES` of JSON (always at least one).
    pub fn unflushed(&self, limit: usize) -> SqlResult<Vec<LogEntry>> {
        let flushed = self.meta_u64("d1_flushed")?;
        let rows = self.sql.texts("SELECT entry FROM ops WHERE version > ? ORDER BY version LIMIT ?", vec![int(flushed), int(limit as u64)])?;
        let mut out = Vec::new();
        let mut bytes = 0;
        for row in rows {
            bytes += row.len();
            out.push(parse(&row)?);
            if bytes >= limits::HISTORY_BATCH_BYTES {
                break;
            }
        }
        Ok(out)
    }

    /// Records that D1 holds every op up to `version`, and drops local rows no longer needed:
    /// copied to D1 and older than the retained window.
    pub fn mark_flushed(&self, version: u64, current: u64) -> SqlResult<()> {
        if version > self.meta_u64("d1_flushed")? {
            self.set_meta("d1_flushed", &version.to_string())?;
        }
        let keep_after = current.saturating_sub(limits::LOG_RETAINED_OPS).min(version);
        self.sql.run("DELETE FROM ops WHERE version <= ?", vec![int(keep_after)])
    }

    /// Refuses `user_id` here until `until` (ms; §5.5 [1.2]).
    pub fn revoke(&self, user_id: &str, until: u64) -> SqlResult<()> {
        self.sql.run("INSERT OR REPLACE INTO revoked (user_id, until) VALUES (?, ?)", vec![user_id.into(), int(until)])
    }

    /// Until when `user_id` is refused, if they are at `now`.
    pub fn revoked_until(&self, user_id: &str, now: u64) -> SqlResult<Option<u64>> {
        let until = self.sql.first_int("SELECT until FROM revoked WHERE user_id = ?", vec![user_id.into()])?;
        Ok(until.map(|u| u as u64).filter(|u| *u > now))
    }

    /// How many client_ids are claimed here.
    pub fn claims(&self) -> SqlResult<u64> {
        Ok(self.sql.first_int("SELECT COUNT(*) FROM clients", vec![])?.unwrap_or(0) as u64)
    }

    /// A page of live comments, newest first (ties: greater id first), strictly before `before`.
    pub fn comments_page(&self, limit: u64, before: Option<(u64, Option<&str>)>) -> SqlResult<Vec<(String, CommentRecord)>> {
        let (filter, mut args): (&str, Vec<SqlValue>) = match before {
            None => ("", vec![]),
            Some((t, None)) => (" AND created_at < ?", vec![int(t)]),
            Some((t, Some(id))) => (" AND (created_at < ? OR (created_at = ? AND comment_id < ?))", vec![int(t), int(t), id.into()]),
        };
        args.push(int(limit));
        let rows = self.sql.query(
            &format!("SELECT comment_id, record FROM comments WHERE live = 1{filter} ORDER BY created_at DESC, comment_id DESC LIMIT ?"),
            args,
        )?;
        let pairs = rows
            .into_iter()
            .filter_map(|r| {
                let mut cols = r.into_iter();
                Some((cols.next()?.into_text()?, cols.next()?.into_text()?))
            })
            .collect();
        parse_all(pairs)
    }

    pub fn database_size(&self) -> u64 {
        self.sql.size()
    }
}

/// Point reads for the room. A failed read is an error, never "absent": the room then fails the
/// operation (`internal`) rather than count a like twice or apply a seq again.
impl<S: Sql> Lookup for RoomStore<S> {
    fn client(&self, client_id: &str) -> StoreRead<ClientRecord> {
        self.one("SELECT record FROM clients WHERE client_id = ?", client_id)
    }
    fn engagement_user(&self, user_id: &str) -> StoreRead<UserState> {
        self.one("SELECT state FROM engagement_users WHERE user_id = ?", user_id)
    }
    fn comment(&self, comment_id: &str) -> StoreRead<CommentRecord> {
        self.one("SELECT record FROM comments WHERE comment_id = ?", comment_id)
    }
    /// Only the newest that fit `budget` (bytes, not characters), sized before any is read, so
    /// memory stays bounded however large the operations were.
    fn log_entries(&self, after: u64, upto: u64, budget: usize) -> Result<Vec<LogEntry>, String> {
        let range = || vec![int(after), int(upto)];
        let sizes = self.sql.query("SELECT version, length(CAST(entry AS BLOB)) FROM ops WHERE version > ? AND version <= ? ORDER BY version DESC", range()).map_err(|e| e.0)?;
        let mut bytes = 0usize;
        let mut cut = after;
        for r in &sizes {
            let (Some(version), Some(len)) = (r.first().and_then(SqlValue::int), r.get(1).and_then(SqlValue::int)) else { break };
            bytes += len as usize;
            if bytes > budget {
                cut = version as u64;
                break;
            }
        }
        let rows = self.sql.texts("SELECT entry FROM ops WHERE version > ? AND version <= ? ORDER BY version", vec![int(cut), int(upto)]).map_err(|e| e.0)?;
        rows.iter().map(|s| parse(s).map_err(|e| e.0)).collect()
    }
    fn strokes(&self, ids: &[&str], each: &mut dyn FnMut(&str, &str)) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        let marks = vec!["?"; ids.len()].join(",");
        let args = ids.iter().map(|&id| SqlValue::from(id)).collect();
        let rows = self.sql.query(&format!("SELECT stroke_id, data FROM strokes_v2 WHERE stroke_id IN ({marks})"), args).map_err(|e| e.0)?;
        for r in &rows {
            if let (Some(id), Some(data)) = (r.first().and_then(SqlValue::text), r.get(1).and_then(SqlValue::text)) {
                each(id, data);
            }
        }
        Ok(())
    }
}

/// An index row read back (`stroke_rows`).
fn stroke_row(r: Vec<SqlValue>) -> Option<StrokeRow> {
    let real = |i: usize| match r.get(i)? {
        SqlValue::Real(f) => Some(*f),
        SqlValue::Int(n) => Some(*n as f64),
        _ => None,
    };
    let bbox = match (real(1), real(2), real(3), real(4)) {
        (Some(a), Some(b), Some(c), Some(d)) => Rect::new(a, b, c, d),
        _ => None,
    };
    Some(StrokeRow {
        stroke_id: r.first()?.text()?.to_string(),
        bbox,
        version: r.get(5)?.int()? as u64,
        timestamp: r.get(6)?.int()? as u64,
        client_id: r.get(7)?.text()?.to_string(),
        bytes: r.get(8)?.int()? as u32,
    })
}
