//! Adapters to the platform's storage: the object's SQLite and D1.

pub mod d1;
pub mod error_logs;
pub mod retention;
pub mod room_sql;
