//! How a commit's writes become SQL (§9): each [`Write`] is one or two statements, and a batch
//! is written in one transaction, all or nothing, keeping only the writes no later one of the
//! batch replaces (`superseded.rs`).

use crate::geom::{stroke_bbox, Rect};
use crate::limits;
use crate::model::{ClientRecord, Write};
use crate::runtime::sql::{Sql, SqlResult, SqlValue};

use super::storage::{int, to_json};

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
fn is_one_statement(w: &Write) -> bool {
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;
    use crate::model::LogEntry;
    use crate::objects::document::storage::RoomStore;
    use crate::runtime::sql::Row;
    use crate::runtime::sql_sqlite::MemorySql;

    /// The document schema on an in-memory SQLite, counting statements and transactions.
    struct Counting {
        inner: MemorySql,
        statements: Cell<usize>,
        transactions: Cell<usize>,
    }

    impl Sql for Counting {
        fn query(&self, sql: &str, args: Vec<SqlValue>) -> SqlResult<Vec<Row>> {
            self.statements.set(self.statements.get() + 1);
            self.inner.query(sql, args)
        }
        fn transaction(&self, f: &mut dyn FnMut() -> SqlResult<()>) -> SqlResult<()> {
            self.transactions.set(self.transactions.get() + 1);
            self.inner.transaction(f)
        }
        fn size(&self) -> u64 {
            self.inner.size()
        }
    }

    fn counting() -> RoomStore<Counting> {
        let store = RoomStore::new(Counting {
            inner: MemorySql::new(),
            statements: Cell::new(0),
            transactions: Cell::new(0),
        });
        store.ensure_schema().unwrap();
        store.sql().statements.set(0);
        store.sql().transactions.set(0);
        store
    }

    fn op(version: u64) -> Write {
        Write::AppendOp(Rc::new(LogEntry {
            version,
            client_id: "c".into(),
            user_id: "u".into(),
            seq: version,
            timestamp: 1,
            server_timestamp: 1,
            base_version: version - 1,
            ops: crate::doc::raw_json(&"AQ=="),
            original_position: None,
            transformed_position: None,
        }))
    }

    #[test]
    fn writes_called_one_statement_are_one_statement() {
        let first_claim = Write::PutClient(
            "c".into(),
            ClientRecord {
                last_seq: 1,
                ..Default::default()
            },
        );
        let writes = [
            op(1),
            Write::DeleteAwareness("s".into()),
            Write::DeleteTyping("s".into()),
            Write::RemoveStroke("x".into()),
            Write::ClearStrokes,
            first_claim,
        ];
        for w in &writes {
            let store = counting();
            let sql = store.sql();
            apply(sql, w).unwrap();
            if is_one_statement(w) {
                assert_eq!(sql.statements.get(), 1, "{w:?}");
            } else {
                assert!(
                    sql.statements.get() > 1,
                    "{w:?} is written with several statements"
                );
            }
        }
    }

    #[test]
    fn a_lone_statement_goes_without_a_transaction_and_a_batch_in_one() {
        let store = counting();
        let sql = store.sql();
        persist(sql, &[op(1)]).unwrap();
        assert_eq!(sql.transactions.get(), 0);
        persist(sql, &[op(2), op(3)]).unwrap();
        assert_eq!(sql.transactions.get(), 1);
        // A failing batch leaves nothing: version 3 is taken, so 4 is rolled back with it.
        assert!(persist(sql, &[op(4), op(3)]).is_err());
        let stored = sql
            .inner
            .first_int("SELECT COUNT(*) FROM ops", vec![])
            .unwrap();
        assert_eq!(stored, Some(3));
        // And a lone failing statement changes nothing either.
        assert!(persist(sql, &[op(2)]).is_err());
        assert_eq!(
            sql.inner
                .first_int("SELECT MAX(version) FROM ops", vec![])
                .unwrap(),
            Some(3)
        );
    }
}
