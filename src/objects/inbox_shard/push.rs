//! A delivery's second half: the shard pushes the kept event to the channels of the users who
//! are online, a few at a time, and only a push a socket took marks the event handed over.

use futures_util::stream::{self, StreamExt};
use worker::Env;

use super::storage::{InboxStore, PushDue};
use crate::objects::channel;
use crate::runtime::log;
use crate::runtime::sql::SqlResult;
use crate::runtime::sql_worker::ObjectSql;

/// Pushes one delivery keeps in flight. Per call, not per isolate: a limiter shared by the
/// objects of one isolate would wake one object's task from another's I/O context, which the
/// runtime refuses ("Cannot perform I/O on behalf of a different Durable Object").
const PUSHES_IN_FLIGHT: usize = 16;

/// How one push ended.
enum Pushed {
    Taken,
    /// The channel has no socket open (its user went offline without the shard hearing yet).
    NoSocket,
    Failed,
}

async fn push(env: &Env, p: &PushDue) -> Pushed {
    let call = channel::client::PushNotification { item: p.item.clone(), count: p.count };
    match channel::client::call(env, &p.user_id, &call).await {
        Ok(_) => Pushed::Taken,
        Err(e) if e.status == 410 => Pushed::NoSocket,
        Err(e) => {
            log::error("notification_push", format!("{} {}", e.status, e.message), &[("user_id", p.user_id.as_str().into())]);
            Pushed::Failed
        }
    }
}

/// Pushes each event to its user's channel, concurrently. Returns how many failed: the caller
/// fails the delivery so the queue retries it (nothing is kept or shown twice).
pub async fn push_all(env: &Env, store: &InboxStore<ObjectSql>, event_id: &str, pushes: &[PushDue]) -> SqlResult<usize> {
    let outcomes: Vec<Pushed> = stream::iter(pushes.iter().map(|p| push(env, p))).buffered(pushes.len().clamp(1, PUSHES_IN_FLIGHT)).collect().await;
    let mut failed = 0;
    for (p, outcome) in pushes.iter().zip(outcomes) {
        match outcome {
            // Until a socket took it, the next connect hands it over (and the channel drops a
            // second copy by its id).
            Pushed::Taken => store.mark_handed_over(&p.user_id, &[event_id])?,
            // No socket after all. A connect that registered while the push was on its way may
            // have missed it: fail, so the queue's retry pushes to that socket.
            Pushed::NoSocket => failed += store.went_offline(&p.user_id, p.generation)? as usize,
            Pushed::Failed => failed += 1,
        }
    }
    Ok(failed)
}
