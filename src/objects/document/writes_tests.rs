//! The writes of a commit as SQL (`writes.rs`), checked against the document schema on an
//! in-memory SQLite: what is called one statement is one, and a batch is all or nothing.

use std::cell::Cell;
use std::rc::Rc;

use super::storage::RoomStore;
use super::writes::{apply, is_one_statement, persist};
use crate::model::LogEntry;
use crate::model::{ClientRecord, Write};
use crate::runtime::sql::{Row, Sql, SqlResult, SqlValue};
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
