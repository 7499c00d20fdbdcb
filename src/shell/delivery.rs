//! Delivering one event to users who share an inbox shard (from the publish queue, or a post's
//! owner outbox) is one call: the shard keeps it for each of them (once per event id) and pushes
//! it to those with a channel socket open (`push_all`, called by the shard).

use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use worker::{Env, Headers, Method};

use super::inbox::call_shard;
use super::inbox_shard::{Delivery, Push};
use super::internal::call_object;

/// Pushes one delivery keeps in flight. Per call, not per isolate: a limiter shared by the
/// objects of one isolate would wake one object's task from another's I/O context, which the
/// runtime refuses ("Cannot perform I/O on behalf of a different Durable Object").
const PUSHES_IN_FLIGHT: usize = 16;

/// Delivers `item` (a notification) as `event_id` to `user_ids`, who must share one inbox shard.
/// Ok once the shard kept it for each of them and every online channel took it.
pub async fn deliver(env: &Env, event_id: &str, item: &Value, user_ids: &[String]) -> Result<(), String> {
    let Some(first) = user_ids.first() else { return Ok(()) };
    let body = serde_json::to_string(&Delivery { event_id: event_id.to_string(), item: item.clone(), user_ids: user_ids.to_vec() }).map_err(|e| e.to_string())?;
    let mut resp = call_shard(env, first, Method::Post, "/deliver", Some(body)).await.map_err(|e| format!("inbox shard: {e}"))?;
    match resp.status_code() {
        200 => Ok(()),
        s => Err(format!("inbox shard answered {s}: {}", resp.text().await.unwrap_or_default())),
    }
}

/// How one push ended.
pub enum Pushed {
    Taken,
    /// The channel has no socket open (its user went offline without the shard hearing yet).
    NoSocket,
    Failed,
}

/// Pushes each event to its user's channel, concurrently; outcomes in the order of `pushes`.
pub async fn push_all(env: &Env, pushes: &[Push]) -> Vec<Pushed> {
    stream::iter(pushes.iter().map(|p| push(env, p))).buffered(pushes.len().clamp(1, PUSHES_IN_FLIGHT)).collect().await
}

async fn push(env: &Env, p: &Push) -> Pushed {
    let body = serde_json::to_string(p).unwrap_or_default();
    match call_object(env, "USER_CHANNEL", &p.user_id, Method::Post, "/notification", Some(body), Headers::new()).await.map(|r| r.status_code()) {
        Ok(200) => Pushed::Taken,
        Ok(410) => Pushed::NoSocket,
        Ok(s) => {
            super::log::error("notification_push", format!("status {s}"), &[("user_id", p.user_id.as_str().into())]);
            Pushed::Failed
        }
        Err(e) => {
            super::log::error("notification_push", e, &[("user_id", p.user_id.as_str().into())]);
            Pushed::Failed
        }
    }
}
