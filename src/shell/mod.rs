//! The runtime shell: the Worker entry points and the Durable Objects.

pub mod document_room;
pub mod fanout;
pub mod internal;
pub mod log;
mod delivery;
pub mod inbox;
pub mod inbox_shard;
mod post_room;
mod presence_io;
pub mod rate_limiter;
mod room_host;
mod socket_budget;
pub mod stats;
pub mod user_channel;

pub use post_room::cache_key;

use std::cell::Cell;

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
