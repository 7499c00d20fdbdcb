//! [`Sql`] on an in-memory SQLite (rusqlite, native builds only): the objects' storage logic is
//! tested natively against the same engine the Durable Objects run on.

use std::cell::RefCell;

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::types::{Value as Lite, ValueRef};
use rusqlite::{Batch, Connection};

use super::sql::{Row, Sql, SqlError, SqlResult, SqlValue};

pub struct MemorySql {
    conn: Connection,
    /// Fails every statement after this many more (None: never), to test failed commits.
    fail_after: RefCell<Option<usize>>,
}

fn err(e: rusqlite::Error) -> SqlError {
    SqlError(e.to_string())
}

fn to_lite(v: SqlValue) -> Lite {
    match v {
        SqlValue::Null => Lite::Null,
        SqlValue::Int(i) => Lite::Integer(i),
        SqlValue::Real(f) => Lite::Real(f),
        SqlValue::Text(s) => Lite::Text(s),
        SqlValue::Blob(b) => Lite::Blob(b),
    }
}

fn from_lite(v: ValueRef) -> SqlValue {
    match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Int(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    }
}

impl Default for MemorySql {
    fn default() -> Self {
        MemorySql::new()
    }
}

impl MemorySql {
    pub fn new() -> MemorySql {
        let conn = Connection::open_in_memory().expect("an in-memory SQLite opens");
        MemorySql { conn, fail_after: RefCell::new(None) }
    }

    /// Makes every statement fail after the next `n` succeed (a disk that fills up).
    pub fn fail_after(&self, n: Option<usize>) {
        *self.fail_after.borrow_mut() = n;
    }

    fn tick(&self) -> SqlResult<()> {
        let mut f = self.fail_after.borrow_mut();
        match f.as_mut() {
            Some(0) => Err(SqlError("injected storage failure".into())),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Sql for MemorySql {
    fn query(&self, sql: &str, args: Vec<SqlValue>) -> SqlResult<Vec<Row>> {
        self.tick()?;
        let mut batch = Batch::new(&self.conn, sql);
        let mut args: Option<Vec<Lite>> = Some(args.into_iter().map(to_lite).collect());
        let mut rows = Vec::new();
        while let Some(mut stmt) = batch.next().map_err(err)? {
            // Parameters belong to the statement that has them (the Worker's exec binds the same way).
            let params = if stmt.parameter_count() > 0 { args.take().unwrap_or_default() } else { Vec::new() };
            let columns = stmt.column_count();
            let mut cursor = stmt.query(rusqlite::params_from_iter(params)).map_err(err)?;
            rows.clear();
            while let Some(r) = cursor.next().map_err(err)? {
                rows.push((0..columns).map(|i| r.get_ref(i).map(from_lite)).collect::<Result<Row, _>>().map_err(err)?);
            }
        }
        Ok(rows)
    }

    fn transaction(&self, f: &mut dyn FnMut() -> SqlResult<()>) -> SqlResult<()> {
        self.conn.execute_batch("SAVEPOINT tx").map_err(err)?;
        match f() {
            Ok(()) => self.conn.execute_batch("RELEASE tx").map_err(err),
            Err(e) => {
                self.conn.execute_batch("ROLLBACK TO tx; RELEASE tx").map_err(err)?;
                Err(e)
            }
        }
    }

    fn size(&self) -> u64 {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap_or(0);
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap_or(0);
        (pages * size) as u64
    }
}
