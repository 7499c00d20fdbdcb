//! Adapters to the platform's storage: the object's SQLite and D1 (history sharded by document).

pub mod d1;
pub mod error_logs;
pub mod object_schema;
pub mod retention;
pub mod room_sql;
pub mod shards;
