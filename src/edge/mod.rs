//! The Worker's entry points, together: `fetch` (the REST API and WebSocket upgrades, routed in
//! `router`), `scheduled` (retention of D1 rows) and `queue` (the publish API's fan-out).

mod channels;
mod documents;
mod errors;
mod feed;
mod health;
mod me;
mod notify_queue;
mod posts;
mod publish;
mod request;
mod request_metrics;
mod router;

use futures_util::future::{join, join_all};
use serde_json::json;
use worker::{event, Context, Env, MessageBatch, Request, Response, Result, ScheduleContext, ScheduledEvent};

use crate::d1::{history, retention};
use crate::runtime::bindings;
use crate::runtime::clock::now_ms;
use crate::runtime::log;

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    router::handle(req, env, ctx).await
}

#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
    notify_queue::consume(batch, env).await
}

/// The cron trigger: retention of history in every shard (concurrently: each is its own
/// database) and of error reports in `DB`. One database failing does not stop the others.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let now = now_ms();
    let names = match history::list(&env) {
        Ok(list) => list.names().to_vec(),
        Err(e) => {
            retention_logged(bindings::HISTORY_SHARDS, "operations", Err(e));
            Vec::new()
        }
    };
    let history = join_all(names.iter().map(|name| {
        let env = &env;
        async move {
            let result = match history::open(env, name) {
                Ok(db) => retention::operations(&db, now).await,
                Err(e) => Err(e),
            };
            retention_logged(name, "operations", result);
        }
    }));
    let errors = async {
        let result = match env.d1(bindings::DB) {
            Ok(db) => retention::error_reports(&db, now).await,
            Err(e) => Err(e),
        };
        retention_logged(bindings::DB, "error_logs", result);
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
