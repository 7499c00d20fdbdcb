//! Sidechain edge realtime: a Cloudflare Worker with one Durable Object per collaborative document.
//!
//! The functional core is plain Rust, tested natively: `protocol` (wire types), `model` (the
//! vocabulary of the core), `ot` (transforms), `doc` (document kinds), `room` (the room state
//! machine), `auth`, `limits`, `ratelimit`, `presence`, `publish`, `metrics`, `sharding`,
//! `history_shards`, `error_reports`, `schema`, `plugin_shapes`, `dialect`. The runtime half adapts it to
//! Cloudflare: `objects` (one folder per Durable Object class; their storage logic is plain Rust
//! over `runtime::sql`, tested natively too), `runtime` (glue they share), `d1` and `edge` (the
//! Worker's entry points and routes), the last two only for wasm32. `docs/architecture.md` maps it.

pub mod auth;
pub mod channels;
pub mod dialect;
pub mod doc;
pub mod error_reports;
pub mod feed;
pub mod geom;
pub mod history_shards;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod objects;
pub mod ot;
pub mod plugin_shapes;
pub mod post_import;
pub mod presence;
pub mod protocol;
pub mod publish;
pub mod ratelimit;
pub mod room;
pub mod runtime;
pub mod schema;
pub mod sharding;

#[cfg(target_arch = "wasm32")]
mod d1;
#[cfg(target_arch = "wasm32")]
mod edge;
