//! Glue every Durable Object and the Worker share, written once: bindings, clock and ids, the
//! objects' SQLite behind a trait, typed calls between objects, sockets, HTTP errors and logs.

pub mod bindings;
pub mod clock;
pub mod rpc;
pub mod sql;

#[cfg(not(target_arch = "wasm32"))]
pub mod sql_sqlite;

#[cfg(target_arch = "wasm32")]
pub mod http;
#[cfg(target_arch = "wasm32")]
pub mod log;
#[cfg(target_arch = "wasm32")]
pub mod sockets;
#[cfg(target_arch = "wasm32")]
pub mod sql_worker;
