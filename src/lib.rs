//! Sidechain edge realtime: a Cloudflare Worker with one Durable Object per collaborative document.
//!
//! The functional core (`protocol`, `ot`, `doc`, `room`, `auth`, `limits`, `ratelimit`,
//! `error_reports`, `history_shards`) is plain Rust and tested
//! natively; the shell (`shell`, `routes`, `store`, `http`) adapts it to the Workers runtime and
//! only compiles for wasm32.

pub mod auth;
pub mod doc;
pub mod error_reports;
pub mod geom;
pub mod history_shards;
pub mod model;
pub mod plugin_shapes;
pub mod limits;
pub mod metrics;
pub mod ot;
pub mod presence;
pub mod protocol;
pub mod publish;
pub mod ratelimit;
pub mod room;
pub mod schema;
pub mod sharding;

#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
mod routes;
#[cfg(target_arch = "wasm32")]
mod shell;
#[cfg(target_arch = "wasm32")]
mod store;
