//! How a commit's writes become SQL (§9): each [`Write`] is one or two statements, and a batch
//! is written in one transaction, all or nothing, keeping only the writes no later one of the
//! batch replaces (`superseded.rs`).

use crate::geom::{stroke_bbox, Rect};
use crate::limits;
use crate::model::{ClientRecord, Write};
use crate::runtime::sql::{Sql, SqlResult, SqlValue};

/// Stored rows are plain data, so serialising them cannot fail.
pub(super) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub(super) fn int(v: u64) -> SqlValue {
    SqlValue::from(v)
}

/// Writes a batch: in one transaction, or as one statement when only one is left.
pub(super) fn persist(sql: &dyn Sql, writes: &[Write]) -> SqlResult<()> {
    let live: Vec<&Write> = super::superseded::live(writes).collect();
    if let [only] = live[..] {
        if is_one_statement(only) {
            // One statement is atomic by itself; a transaction around it cost a lone writer
            // about a tenth of its time per update (profiled with `bench/yjs-profile.mjs`).
            return apply(sql, only);
        }
    }
    sql.transaction(&mut || live.iter().try_for_each(|w| apply(sql, w)))
}

/// Whether [`apply`] makes `w` with one SQL statement.
pub(super) fn is_one_statement(w: &Write) -> bool {
    match w {
        Write::Snapshot { .. } | Write::SnapshotBytes { .. } | Write::PutClient(..) => false,
        Write::AppendOp(_)
        | Write::PutAwareness(..)
        | Write::DeleteAwareness(_)
        | Write::PutTyping(..)
        | Write::DeleteTyping(_)
        | Write::PutEngagementUser(..)
        | Write::PutComment(..)
        | Write::QueueNotification(_)
        | Write::PutStroke(..)
        | Write::RemoveStroke(_)
        | Write::ClearStrokes => true,
    }
}

/// Keyed tables hold one JSON document per key.
fn upsert<T: serde::Serialize>(sql: &dyn Sql, table: &str, columns: &str, key: &str, value: &T) -> SqlResult<()> {
    sql.run(&format!("INSERT OR REPLACE INTO {table} ({columns}) VALUES (?, ?)"), vec![key.into(), to_json(value).into()])
}

fn delete(sql: &dyn Sql, table: &str, key_col: &str, key: &str) -> SqlResult<()> {
    sql.run(&format!("DELETE FROM {table} WHERE {key_col} = ?"), vec![key.into()])
}

/// A client's record; its first operation (seq 1: a fresh or lapsed record has seq 0 and seqs
/// never skip) is a new claim, after which the claims idle longest past the bound are dropped.
fn put_client(sql: &dyn Sql, id: &str, rec: &ClientRecord) -> SqlResult<()> {
    sql.run(
        "INSERT OR REPLACE INTO clients (client_id, record, last_used) VALUES (?, ?, ?)",
        vec![id.into(), to_json(rec).into(), int(rec.last_used)],
    )?;
    if rec.last_seq != 1 {
        return Ok(());
    }
    sql.run(
        "DELETE FROM clients WHERE client_id IN (SELECT client_id FROM clients ORDER BY last_used, client_id \
         LIMIT max(0, (SELECT COUNT(*) FROM clients) - ?))",
        vec![int(limits::MAX_CLIENT_CLAIMS)],
    )
}

pub(super) fn apply(sql: &dyn Sql, w: &Write) -> SqlResult<()> {
    match w {
        Write::AppendOp(e) => sql.run("INSERT INTO ops (version, entry) VALUES (?, ?)", vec![int(e.version), to_json(&**e).into()]),
        Write::Snapshot { version, content } => super::snapshot_rows::write(sql, *version, content),
        Write::SnapshotBytes { version, bytes } => super::snapshot_rows::write_bytes(sql, *version, bytes),
        Write::PutClient(id, rec) => put_client(sql, id, rec),
        Write::PutAwareness(sid, entry) => upsert(sql, "awareness", "session_id, entry", sid, entry),
        Write::DeleteAwareness(sid) => delete(sql, "awareness", "session_id", sid),
        Write::PutTyping(sid, entry) => upsert(sql, "typing", "session_id, entry", sid, entry),
        Write::DeleteTyping(sid) => delete(sql, "typing", "session_id", sid),
        Write::PutEngagementUser(uid, state) => upsert(sql, "engagement_users", "user_id, state", uid, state),
        Write::PutComment(id, record) => sql.run(
            "INSERT OR REPLACE INTO comments (comment_id, record, created_at, live) VALUES (?, ?, ?, ?)",
            vec![id.as_str().into(), to_json(record).into(), int(record.created_at), (!record.deleted).into()],
        ),
        Write::QueueNotification(n) => upsert(sql, "outbox", "event_id, notification", &n.event_id, n),
        Write::PutStroke(id, s) => {
            let b = s.bbox.or_else(|| stroke_bbox(s.data.get()));
            let coord = |f: fn(&Rect) -> f64| b.as_ref().map_or(SqlValue::Null, |r| SqlValue::Real(f(r)));
            sql.run(
                "INSERT OR REPLACE INTO strokes_v2 (stroke_id, data, min_x, min_y, max_x, max_y, version, timestamp, client_id, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    id.as_str().into(),
                    s.data.get().into(),
                    coord(|r| r.min_x),
                    coord(|r| r.min_y),
                    coord(|r| r.max_x),
                    coord(|r| r.max_y),
                    int(s.version),
                    int(s.timestamp),
                    s.client_id.as_str().into(),
                    int(s.data.get().len() as u64),
                ],
            )
        }
        Write::RemoveStroke(id) => delete(sql, "strokes_v2", "stroke_id", id),
        Write::ClearStrokes => sql.run("DELETE FROM strokes_v2", vec![]),
    }
}
