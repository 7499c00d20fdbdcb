//! What a post's object does besides its counters: the owner who hears of others' actions, the
//! KV cache of the counts (written at most once a second per post, the latest counts winning),
//! and delivery of owner notifications from the durable outbox to the owner's inbox.

use super::client::{counts_cache_key as cache_key, OwnerSet, SetOwner};
use super::DocumentRoom;
use crate::doc::post::post_id;
use crate::model::Actor;
use crate::objects::inbox_shard;
use crate::runtime::bindings;
use crate::runtime::clock::now_ms;
use crate::runtime::http::ApiError;
use crate::runtime::log;
use crate::runtime::rpc::RawJson;

/// KV allows one write per second per key.
const KV_WRITE_INTERVAL_MS: u64 = 1_000;

impl DocumentRoom {
    /// The post id and its counts as JSON text.
    pub(super) fn counts_json(&self) -> Result<(String, String), ApiError> {
        let (document_id, summary) = self.host.with_room(|r, _| (r.document_id().to_string(), r.summary()))?;
        let summary = summary.ok_or_else(|| ApiError::bad_request("this document has no counts"))?;
        Ok((post_id(&document_id).to_string(), summary.get().to_string()))
    }

    /// The counts, asked for when KV missed; KV gets them soon after.
    pub(super) async fn counts(&self) -> Result<RawJson, ApiError> {
        let (_, counts) = self.counts_json()?;
        self.counts_changed().await;
        Ok(RawJson(counts))
    }

    /// Marks the cached counts stale and makes sure an alarm writes them once the key may take a write.
    pub(super) async fn counts_changed(&self) {
        // Once per cache write, not once per action: a hot post's actions write nothing more here
        // and touch no alarm (an alarm call closes the input gate and splits the group commit).
        if self.host.kv_dirty.replace(true) {
            return;
        }
        let store = self.host.store();
        let _ = store.set_meta("kv_dirty", "1");
        let due = store.meta_u64("kv_last_write").unwrap_or(0) + KV_WRITE_INTERVAL_MS;
        self.host.schedule_alarm(due.max(now_ms())).await;
    }

    /// Writes the counters to KV if they are stale and the key may take a write. Returns when to
    /// try again if it could not write now.
    pub(super) async fn flush_counts_cache(&self) -> Option<u64> {
        let store = self.host.store();
        // A private post's counts are never cached where others could read them (§5.5 [1.2]).
        if store.meta("kv_dirty").ok().flatten().as_deref() != Some("1") || self.is_private() {
            return None;
        }
        let now = now_ms();
        let due = store.meta_u64("kv_last_write").unwrap_or(0) + KV_WRITE_INTERVAL_MS;
        if now < due {
            return Some(due);
        }
        let (post_id, counts) = self.counts_json().ok()?;
        // Cleared before the write: an op landing while it is in flight marks it stale again.
        let _ = store.set_meta("kv_dirty", "0");
        self.host.kv_dirty.set(false);
        let _ = store.set_meta("kv_last_write", &now.to_string());
        let written = match self.env.kv(bindings::ENGAGEMENT_CACHE) {
            Ok(kv) => match kv.put(&cache_key(&post_id), counts) {
                Ok(put) => put.execute().await.is_ok(),
                Err(_) => false,
            },
            Err(_) => false,
        };
        if written {
            let _ = store.set_meta("kv_writes", &(store.meta_u64("kv_writes").unwrap_or(0) + 1).to_string());
            None
        } else {
            let _ = store.set_meta("kv_dirty", "1");
            self.host.kv_dirty.set(true);
            Some(now + KV_WRITE_INTERVAL_MS)
        }
    }

    pub(super) async fn forget_cached_counts(&self, document_id: &str) {
        if let (Some(post_id), Ok(kv)) = (document_id.strip_prefix("post:"), self.env.kv(bindings::ENGAGEMENT_CACHE)) {
            let _ = kv.delete(&cache_key(post_id)).await;
        }
    }

    /// The caller becomes the owner, or a service token names one. Once owned, only the owner or
    /// a service token may change it.
    pub(super) fn register_owner(&self, actor: &Actor, req: SetOwner) -> Result<OwnerSet, ApiError> {
        let owner = req.owner_id.unwrap_or_else(|| actor.user_id.clone());
        if owner != actor.user_id && !actor.is_service {
            return Err(ApiError::forbidden("only a service token may register another user as owner"));
        }
        let current = self.host.with_room(|r, _| r.owner().map(str::to_string))?;
        if current.as_ref().is_some_and(|c| *c != actor.user_id) && !actor.is_service {
            return Err(ApiError::forbidden("the post already has another owner"));
        }
        self.host.store().set_meta("owner_id", &owner)?;
        let document_id = self.host.with_room(|r, _| {
            r.set_owner(Some(owner.clone()));
            r.document_id().to_string()
        })?;
        Ok(OwnerSet { post_id: post_id(&document_id).to_string(), owner_id: owner })
    }

    /// Hands queued notifications to their users' inboxes, in order; each leaves the outbox only
    /// once it is kept (and pushed if the user is online). The inbox merges it into the owner's
    /// unread item of the same post and kind (§5.2 [1.2]) and recognises a redelivery. Stops at
    /// the first failure, so a later like never lands before an earlier one. Returns when to
    /// retry what is left.
    ///
    /// One delivery runs at a time: notifications queued meanwhile (a hot post) wait for the next
    /// round, instead of every action's handler sending the whole outbox again.
    pub(super) async fn deliver_outbox(&self) -> Option<u64> {
        if self.host.outbox_busy.replace(true) {
            self.host.outbox_again.set(true);
            return None;
        }
        'rounds: loop {
            self.host.outbox_again.set(false);
            for n in self.host.store().outbox().unwrap_or_default() {
                let group = owner_group(&n.payload);
                match inbox_shard::client::deliver(&self.env, &n.event_id, &n.payload, std::slice::from_ref(&n.user_id), group.as_deref(), true).await {
                    Ok(()) => {
                        let _ = self.host.store().outbox_done(&n.event_id);
                    }
                    Err(e) => {
                        log::error("owner_notification", e, &[("event_id", n.event_id.as_str().into()), ("user_id", n.user_id.as_str().into())]);
                        break 'rounds;
                    }
                }
            }
            if !self.host.outbox_again.get() {
                break;
            }
        }
        self.host.outbox_busy.set(false);
        self.outbox_retry()
    }
}

/// The aggregation group of an owner notification: its post and kind.
fn owner_group(payload: &serde_json::Value) -> Option<String> {
    Some(format!("{}|{}", payload["post_id"].as_str()?, payload["kind"].as_str()?))
}
