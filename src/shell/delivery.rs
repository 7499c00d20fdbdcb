//! Delivering one event to users who share an inbox shard (from the publish queue, or a post's
//! owner outbox) is one call: the shard keeps it for each of them (once per event id) and pushes
//! it to those with a channel socket open (`push_all`, called by the shard).

use std::collections::BTreeMap;

use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use worker::{Env, Headers, Method};

use super::inbox_shard::{Delivery, Push};
use super::internal::call_object;
use crate::sharding::inbox_shard;

/// Pushes one delivery keeps in flight. Per call, not per isolate: a limiter shared by the
/// objects of one isolate would wake one object's task from another's I/O context, which the
/// runtime refuses ("Cannot perform I/O on behalf of a different Durable Object").
const PUSHES_IN_FLIGHT: usize = 16;

/// Delivers `item` (a notification) as `event_id` to `user_ids`: one call per inbox shard they
/// live in (one, for a queue message made by `Publish::split`; regrouped anyway, so a message
/// from any older layout still reaches the right shards). Ok once every shard kept it for each
/// of them and every online channel took it.
pub async fn deliver(env: &Env, event_id: &str, item: &Value, user_ids: &[String]) -> Result<(), String> {
    let mut by_shard: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for u in user_ids {
        by_shard.entry(inbox_shard(u)).or_default().push(u.clone());
    }
    for (shard, users) in by_shard {
        let body = serde_json::to_string(&Delivery { event_id: event_id.to_string(), item: item.clone(), user_ids: users, shard: shard.clone() })
            .map_err(|e| e.to_string())?;
        let mut resp = call_object(env, "INBOX_SHARD", &shard, Method::Post, "/deliver", Some(body), Headers::new()).await.map_err(|e| format!("{shard}: {e}"))?;
        if resp.status_code() != 200 {
            return Err(format!("{shard} answered {}: {}", resp.status_code(), resp.text().await.unwrap_or_default()));
        }
    }
    Ok(())
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
