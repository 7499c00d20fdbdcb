//! The runtime shell: the Worker entry points and the Durable Objects.

pub mod document_room;
pub mod fanout;
pub mod internal;
pub mod log;
mod delivery;
pub mod inbox;
mod inbox_legacy;
mod inbox_reads;
pub mod inbox_shard;
mod post_room;
mod presence_io;
pub mod rate_limiter;
mod room_host;
mod room_metrics;
mod worker_metrics;
mod socket_budget;
pub mod stats;
pub use worker_metrics::request as note_request;
pub mod user_channel;

pub use post_room::cache_key;

use std::cell::Cell;

use futures_util::future::{join, join_all};
use serde_json::json;
use worker::{event, Context, Date, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

thread_local! {
    /// Server frame ids: a per-instance random prefix and a counter, not a uuid per frame.
    static FRAME_IDS: (String, Cell<u64>) = (uuid::Uuid::new_v4().simple().to_string()[..8].to_string(), Cell::new(0));
}

/// A unique id for one outgoing frame.
pub fn frame_id() -> String {
    FRAME_IDS.with(|(prefix, n)| {
        n.set(n.get() + 1);
        format!("{prefix}-{}", n.get())
    })
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    crate::routes::handle(req, env, ctx).await
}

/// The cron trigger: retention of history in every shard (concurrently: each is its own
/// database) and of error reports in `DB`. One database failing does not stop the others.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let now = Date::now().as_millis();
    let names = match crate::store::shards::list(&env) {
        Ok(shards) => shards.names().to_vec(),
        Err(e) => {
            retention_logged("HISTORY_SHARDS", "operations", Err(e));
            Vec::new()
        }
    };
    let history = join_all(names.iter().map(|name| {
        let env = &env;
        async move {
            let result = match crate::store::shards::open(env, name) {
                Ok(db) => crate::store::retention::operations(&db, now).await,
                Err(e) => Err(e),
            };
            retention_logged(name, "operations", result);
        }
    }));
    let errors = async {
        let result = match env.d1("DB") {
            Ok(db) => crate::store::retention::error_reports(&db, now).await,
            Err(e) => Err(e),
        };
        retention_logged("DB", "error_logs", result);
    };
    join(history, errors).await;
}

fn retention_logged(database: &str, table: &str, result: Result<u64>) {
    let (event, outcome) = match result {
        Ok(n) => ("retention", ("removed", json!(n))),
        Err(e) => ("retention_error", ("error", json!(e.to_string()))),
    };
    log::event(event, &[("database", json!(database)), ("table", json!(table)), outcome]);
}
