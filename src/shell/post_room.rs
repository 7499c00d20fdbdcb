//! The post side of `DocumentRoom`: the owner, the KV cache of the counters (written at most once
//! a second per post, the latest counts winning) and delivery of owner notifications from the
//! durable outbox to the owner's inbox and channel.

use serde_json::{json, Value};

use super::document_room::{now_ms, DocumentRoom};
use super::internal::Actor;
use crate::doc::post::post_id;
use crate::http::{json_response, json_text_response, ApiError, ApiResult};

/// KV allows one write per second per key.
const KV_WRITE_INTERVAL_MS: u64 = 1_000;

pub fn cache_key(post_id: &str) -> String {
    format!("engagement:{post_id}")
}

impl DocumentRoom {
    /// The post id and its counts as JSON text.
    fn counts_json(&self) -> Result<(String, String), ApiError> {
        let (document_id, summary) = self.host.with_room(|r, _| (r.document_id().to_string(), r.summary()))?;
        let summary = summary.ok_or_else(|| ApiError::bad_request("this document has no counts"))?;
        Ok((post_id(&document_id).to_string(), summary.get().to_string()))
    }

    /// `GET /counts`: the truth, asked for when KV missed; KV gets it soon after.
    pub(super) async fn counts(&self) -> ApiResult {
        let (_, counts) = self.counts_json()?;
        self.counts_changed().await;
        Ok(json_text_response(200, &counts)?)
    }

    /// Marks the cached counts stale and makes sure an alarm writes them once the key may take a write.
    pub(super) async fn counts_changed(&self) {
        let _ = self.host.store.set_meta("kv_dirty", "1");
        let due = self.host.store.meta_u64("kv_last_write").unwrap_or(0) + KV_WRITE_INTERVAL_MS;
        self.host.schedule_alarm(due.max(now_ms())).await;
    }

    /// Writes the counters to KV if they are stale and the key may take a write. Returns when to
    /// try again if it could not write now.
    pub(super) async fn flush_counts_cache(&self) -> Option<u64> {
        if self.host.store.meta("kv_dirty").ok().flatten().as_deref() != Some("1") {
            return None;
        }
        let now = now_ms();
        let due = self.host.store.meta_u64("kv_last_write").unwrap_or(0) + KV_WRITE_INTERVAL_MS;
        if now < due {
            return Some(due);
        }
        let (post_id, counts) = self.counts_json().ok()?;
        // Cleared before the write: an op landing while it is in flight marks it stale again.
        let _ = self.host.store.set_meta("kv_dirty", "0");
        let _ = self.host.store.set_meta("kv_last_write", &now.to_string());
        let written = match self.env.kv("ENGAGEMENT_CACHE") {
            Ok(kv) => match kv.put(&cache_key(&post_id), counts) {
                Ok(put) => put.execute().await.is_ok(),
                Err(_) => false,
            },
            Err(_) => false,
        };
        if written {
            let n = self.host.store.meta_u64("kv_writes").unwrap_or(0) + 1;
            let _ = self.host.store.set_meta("kv_writes", &n.to_string());
            None
        } else {
            let _ = self.host.store.set_meta("kv_dirty", "1");
            Some(now + KV_WRITE_INTERVAL_MS)
        }
    }

    pub(super) async fn forget_cached_counts(&self, document_id: &str) {
        if let (Some(post_id), Ok(kv)) = (document_id.strip_prefix("post:"), self.env.kv("ENGAGEMENT_CACHE")) {
            let _ = kv.delete(&cache_key(post_id)).await;
        }
    }

    /// `PUT /owner`: the caller becomes the owner, or a service token names one. Once owned, only
    /// the owner or a service token may change it.
    pub(super) fn register_owner(&self, actor: &Actor, body: &Value) -> ApiResult {
        let owner = match body.get("owner_id") {
            None | Some(Value::Null) => actor.user_id.clone(),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
            Some(_) => return Err(ApiError::bad_request("owner_id must be a non-empty string")),
        };
        if owner != actor.user_id && !actor.is_service {
            return Err(ApiError::forbidden("only a service token may register another user as owner"));
        }
        let current = self.host.with_room(|r, _| r.owner().map(str::to_string))?;
        if current.as_ref().is_some_and(|c| *c != actor.user_id) && !actor.is_service {
            return Err(ApiError::forbidden("the post already has another owner"));
        }
        self.host.store.set_meta("owner_id", &owner)?;
        let document_id = self.host.with_room(|r, _| {
            r.set_owner(Some(owner.clone()));
            r.document_id().to_string()
        })?;
        let post_id = post_id(&document_id);
        Ok(json_response(200, &json!({"post_id": post_id, "owner_id": owner}))?)
    }

    /// Hands queued notifications to their users' inboxes; each leaves the outbox only once it
    /// is kept (and pushed if the user is online), and an event id is kept once, so every event
    /// reaches the owner once.
    pub(super) async fn deliver_outbox(&self) {
        let Ok(pending) = self.host.store.outbox() else { return };
        for n in pending {
            match super::delivery::deliver(&self.env, &n.event_id, &n.payload, std::slice::from_ref(&n.user_id)).await {
                Ok(()) => {
                    let _ = self.host.store.outbox_done(&n.event_id);
                }
                Err(e) => super::log::error("owner_notification", e, &[("event_id", n.event_id.as_str().into()), ("user_id", n.user_id.as_str().into())]),
            }
        }
    }
}
