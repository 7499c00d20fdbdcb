//! [`Sql`] on a Durable Object's SQLite storage. Transactions go through `transactionSync`: on
//! SQLite-backed objects everything inside commits atomically, and the runtime's output gate holds
//! every message sent afterwards until the commit is durable.

use std::rc::Rc;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::{js_sys, SqlStorage, SqlStorageValue, Storage};

use super::sql::{Row, Sql, SqlError, SqlResult, SqlValue};

/// Cheap to clone: the handles are shared.
#[derive(Clone)]
pub struct ObjectSql {
    storage: Rc<Storage>,
    sql: SqlStorage,
}

impl ObjectSql {
    pub fn new(storage: Storage) -> ObjectSql {
        let sql = storage.sql();
        ObjectSql { storage: Rc::new(storage), sql }
    }
}

impl From<SqlError> for worker::Error {
    fn from(e: SqlError) -> Self {
        worker::Error::RustError(format!("storage: {e}"))
    }
}

fn to_worker(v: SqlValue) -> SqlStorageValue {
    match v {
        SqlValue::Null => SqlStorageValue::Null,
        SqlValue::Int(i) => SqlStorageValue::Integer(i),
        SqlValue::Real(f) => SqlStorageValue::Float(f),
        SqlValue::Text(s) => SqlStorageValue::String(s),
        SqlValue::Blob(b) => SqlStorageValue::Blob(b),
    }
}

fn from_worker(v: SqlStorageValue) -> SqlValue {
    match v {
        SqlStorageValue::Null => SqlValue::Null,
        SqlStorageValue::Boolean(b) => SqlValue::Int(b as i64),
        SqlStorageValue::Integer(i) => SqlValue::Int(i),
        SqlStorageValue::Float(f) => SqlValue::Real(f),
        SqlStorageValue::String(s) => SqlValue::Text(s),
        SqlStorageValue::Blob(b) => SqlValue::Blob(b),
    }
}

/// Storage errors are logged where they happen: clients only ever hear "internal error" (§5.7).
fn err(e: impl std::fmt::Display) -> SqlError {
    super::log::error("storage", &e, &[]);
    SqlError(e.to_string())
}

impl Sql for ObjectSql {
    fn query(&self, sql: &str, args: Vec<SqlValue>) -> SqlResult<Vec<Row>> {
        let args = if args.is_empty() { None } else { Some(args.into_iter().map(to_worker).collect()) };
        let cursor = self.sql.exec(sql, args).map_err(err)?;
        cursor.raw().map(|row| row.map(|r| r.into_iter().map(from_worker).collect()).map_err(err)).collect()
    }

    fn transaction(&self, f: &mut dyn FnMut() -> SqlResult<()>) -> SqlResult<()> {
        let mut failure: Option<SqlError> = None;
        let mut body = || -> Result<JsValue, JsValue> {
            f().map(|()| JsValue::UNDEFINED).map_err(|e| {
                let js = JsValue::from_str(&e.0);
                failure = Some(e);
                js
            })
        };
        let raw: &JsValue = self.storage.as_raw().as_ref();
        let transaction_sync: js_sys::Function =
            js_sys::Reflect::get(raw, &"transactionSync".into()).and_then(|f| f.dyn_into()).map_err(|e| SqlError(format!("{e:?}")))?;
        let boxed: Box<dyn FnMut() -> Result<JsValue, JsValue> + '_> = Box::new(&mut body);
        // SAFETY: `transactionSync` calls the function synchronously and keeps no reference to it;
        // the closure is dropped (and its JS function invalidated) before `body` goes out of scope.
        let boxed: Box<dyn FnMut() -> Result<JsValue, JsValue> + 'static> = unsafe { std::mem::transmute(boxed) };
        let closure = Closure::wrap(boxed);
        let outcome = transaction_sync.call1(raw, closure.as_ref().unchecked_ref());
        drop(closure);
        match (outcome, failure) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(SqlError(format!("{e:?}"))),
            (Ok(_), None) => Ok(()),
        }
    }

    fn size(&self) -> u64 {
        self.sql.database_size() as u64
    }
}
