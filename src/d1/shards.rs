//! The D1 databases of operation history (`crate::history_shards` picks a document's shard),
//! resolved from the bindings named by the `HISTORY_SHARDS` var. Error reports stay in `DB`.

use worker::{D1Database, Env, Error, Result};

use crate::history_shards::HistoryShards;

/// The configured shard list; a malformed `HISTORY_SHARDS` is an error, never a guess.
pub fn list(env: &Env) -> Result<HistoryShards> {
    let spec = env.var(crate::runtime::bindings::HISTORY_SHARDS).ok().map(|v| v.to_string());
    HistoryShards::parse(spec.as_deref()).map_err(Error::RustError)
}

/// The database bound as `name`, with an error that says which shard binding is missing.
pub fn open(env: &Env, name: &str) -> Result<D1Database> {
    env.d1(name).map_err(|e| {
        Error::RustError(format!("history shard {name}: {e} (every name in HISTORY_SHARDS needs a [[d1_databases]] binding)"))
    })
}

/// The database that holds `document_id`'s history.
pub fn for_document(env: &Env, document_id: &str) -> Result<D1Database> {
    open(env, list(env)?.for_document(document_id))
}
