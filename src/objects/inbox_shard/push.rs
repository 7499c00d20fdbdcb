//! A delivery's second half: the shard pushes to the channels of the users who are online
//! every kept item they were not pushed yet (by seq, §5.3 [1.2]), a few channels at a time.
//! Only a push a channel took moves the user's pushed seq; a push into a socket that turns out
//! half-open is made good by the client's reconnect with `since_seq`.

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
    let call = channel::client::PushNotification { items: p.items.clone(), from: p.from, transient: p.transient, count: p.count };
    match channel::client::call(env, &p.user_id, &call).await {
        Ok(_) => Pushed::Taken,
        Err(e) if e.status == 410 => Pushed::NoSocket,
        Err(e) => {
            log::error("notification_push", format!("{} {}", e.status, e.message), &[("user_id", p.user_id.as_str().into())]);
            Pushed::Failed
        }
    }
}

/// Pushes to each online user's channel, concurrently. Returns how many failed: the caller
/// fails the delivery so the queue retries it (nothing is kept twice; a channel sends each
/// socket only seqs above what it sent it).
pub async fn push_all(env: &Env, store: &InboxStore<ObjectSql>, pushes: &[PushDue]) -> SqlResult<usize> {
    let outcomes: Vec<Pushed> = stream::iter(pushes.iter().map(|p| push(env, p))).buffered(pushes.len().clamp(1, PUSHES_IN_FLIGHT)).collect().await;
    let mut failed = 0;
    for (p, outcome) in pushes.iter().zip(outcomes) {
        match outcome {
            Pushed::Taken if !p.transient => {
                let top = p.items.iter().filter_map(|i| i["seq"].as_i64()).max().unwrap_or(p.from);
                store.pushed(&p.user_id, top)?;
            }
            Pushed::Taken => {}
            // No socket after all. A connect that registered while the push was on its way
            // catches up from the shard itself; a transient event is for open sockets only.
            Pushed::NoSocket => {
                store.went_offline(&p.user_id, p.generation)?;
            }
            Pushed::Failed => failed += 1,
        }
    }
    Ok(failed)
}
