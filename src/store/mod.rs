//! Adapters to the platform's storage: the object's SQLite and D1.

pub mod d1;
pub mod room_sql;
