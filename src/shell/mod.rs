//! The runtime shell: the Worker entry points and the Durable Objects.

pub mod document_room;
pub mod internal;
mod post_room;
mod presence_io;
pub mod rate_limiter;
mod socket_budget;
pub mod stats;
pub mod user_channel;

pub use post_room::cache_key;

use worker::{event, Context, Date, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    crate::routes::handle(req, env).await
}

/// The cron trigger: retention of D1 history and error reports.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let result = match env.d1("DB") {
        Ok(db) => crate::store::retention::run(&db, Date::now().as_millis()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((ops, errors)) => worker::console_log!("retention: removed {ops} operations, {errors} error reports"),
        Err(e) => worker::console_error!("retention failed: {e}"),
    }
}
