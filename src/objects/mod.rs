//! The Durable Object classes, one folder (or file) each: its `mod.rs` holds the object and its
//! router, `client.rs` the typed calls it answers (used by both ends), `storage.rs` its SQLite
//! (plain Rust, tested natively on an in-memory SQLite), and siblings named for its duties.

pub mod channel;
pub mod document;
pub mod inbox_shard;
pub mod rate_limiter;
pub mod stats;
