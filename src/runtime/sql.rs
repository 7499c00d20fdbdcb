//! The objects' SQLite behind one small trait, so every object's storage logic is plain Rust:
//! the Worker implements it on a Durable Object's `ctx.storage.sql` (`sql_worker.rs`), native
//! tests on an in-memory SQLite (`sql_sqlite.rs`). Rows come back as values in column order.

/// One SQLite value, as bound or read.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Int(v)
    }
}
impl From<u64> for SqlValue {
    fn from(v: u64) -> Self {
        SqlValue::Int(v.min(i64::MAX as u64) as i64)
    }
}
impl From<bool> for SqlValue {
    fn from(v: bool) -> Self {
        SqlValue::Int(v as i64)
    }
}
impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_string())
    }
}
impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}
impl From<&String> for SqlValue {
    fn from(v: &String) -> Self {
        SqlValue::Text(v.clone())
    }
}
impl From<Vec<u8>> for SqlValue {
    fn from(v: Vec<u8>) -> Self {
        SqlValue::Blob(v)
    }
}
impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

impl SqlValue {
    /// An integer column; the Worker's SQLite hands every number over as a JS number.
    pub fn int(&self) -> Option<i64> {
        match self {
            SqlValue::Int(i) => Some(*i),
            SqlValue::Real(f) if f.fract() == 0.0 => Some(*f as i64),
            SqlValue::Text(s) => s.parse().ok(),
            _ => None,
        }
    }
    pub fn text(&self) -> Option<&str> {
        match self {
            SqlValue::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn into_text(self) -> Option<String> {
        match self {
            SqlValue::Text(s) => Some(s),
            SqlValue::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }
    pub fn into_blob(self) -> Option<Vec<u8>> {
        match self {
            SqlValue::Blob(b) => Some(b),
            _ => None,
        }
    }
}

pub type Row = Vec<SqlValue>;

#[derive(Clone, Debug, PartialEq)]
pub struct SqlError(pub String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

impl From<serde_json::Error> for SqlError {
    fn from(e: serde_json::Error) -> Self {
        SqlError(format!("corrupt stored row: {e}"))
    }
}

pub type SqlResult<T> = Result<T, SqlError>;

/// An object's SQLite. Synchronous: the object's database answers in place.
pub trait Sql {
    /// Runs one statement with `?` parameters; its rows, columns in the statement's order.
    fn query(&self, sql: &str, args: Vec<SqlValue>) -> SqlResult<Vec<Row>>;
    /// Runs `f` so that every statement in it commits together or not at all.
    fn transaction(&self, f: &mut dyn FnMut() -> SqlResult<()>) -> SqlResult<()>;
    /// Bytes the database takes.
    fn size(&self) -> u64;

    /// Runs statements (any rows are dropped).
    fn run(&self, sql: &str, args: Vec<SqlValue>) -> SqlResult<()> {
        self.query(sql, args).map(drop)
    }
    /// The first column of the first row, if any.
    fn first(&self, sql: &str, args: Vec<SqlValue>) -> SqlResult<Option<SqlValue>> {
        Ok(self.query(sql, args)?.into_iter().next().and_then(|r| r.into_iter().next()).filter(|v| *v != SqlValue::Null))
    }
    fn first_int(&self, sql: &str, args: Vec<SqlValue>) -> SqlResult<Option<i64>> {
        Ok(self.first(sql, args)?.and_then(|v| v.int()))
    }
    fn first_text(&self, sql: &str, args: Vec<SqlValue>) -> SqlResult<Option<String>> {
        Ok(self.first(sql, args)?.and_then(SqlValue::into_text))
    }
    /// The first column of every row, as text.
    fn texts(&self, sql: &str, args: Vec<SqlValue>) -> SqlResult<Vec<String>> {
        Ok(self.query(sql, args)?.into_iter().filter_map(|r| r.into_iter().next().and_then(SqlValue::into_text)).collect())
    }
}

/// A `meta (key TEXT PRIMARY KEY, value)` table, which every object keeps for small settings.
pub mod meta {
    use super::{Sql, SqlResult};

    pub fn get(sql: &dyn Sql, key: &str) -> SqlResult<Option<String>> {
        sql.first_text("SELECT value FROM meta WHERE key = ?", vec![key.into()])
    }
    pub fn get_u64(sql: &dyn Sql, key: &str) -> SqlResult<u64> {
        Ok(get(sql, key)?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }
    pub fn set(sql: &dyn Sql, key: &str, value: &str) -> SqlResult<()> {
        sql.run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", vec![key.into(), value.into()])
    }
}

/// Object schemas are migrated through the same trait (`crate::schema`).
struct Schema<'a>(&'a dyn Sql);

impl crate::schema::SchemaStore for Schema<'_> {
    fn version(&self) -> Result<u32, String> {
        let sql = self.0;
        sql.run("CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 0), version INTEGER NOT NULL)", vec![])
            .map_err(|e| e.0)?;
        Ok(sql.first_int("SELECT version FROM schema_version WHERE id = 0", vec![]).map_err(|e| e.0)?.unwrap_or(0) as u32)
    }

    fn apply(&self, migration: &str, version: u32) -> Result<(), String> {
        let sql = self.0;
        sql.transaction(&mut || {
            sql.run(migration, vec![])?;
            sql.run("INSERT OR REPLACE INTO schema_version (id, version) VALUES (0, ?)", vec![(version as i64).into()])
        })
        .map_err(|e| e.0)
    }
}

/// Brings an object's storage to the latest of `migrations` (`crate::schema::upgrade`).
pub fn migrate(sql: &dyn Sql, migrations: &[&str]) -> Result<u32, String> {
    crate::schema::upgrade(&Schema(sql), migrations)
}

impl From<SqlError> for crate::protocol::Failure {
    fn from(e: SqlError) -> Self {
        crate::protocol::Failure::new(crate::protocol::Code::Internal, format!("storage: {e}"))
    }
}
