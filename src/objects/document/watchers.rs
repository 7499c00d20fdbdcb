//! A post's watchers (§6.2 [1.2]): the inbox shards holding channels that watch it (at most
//! 64, kept in `meta`), and the push of its latest counts to each of them at most once a second.
//! A change costs the post one call per watching shard, however many channels watch it.

use futures_util::future::join_all;
use serde_json::Value;

use super::DocumentRoom;
use crate::feed::WATCH_PUSH_EVERY_MS;
use crate::objects::inbox_shard::client::shard;
use crate::objects::inbox_shard::watch::{PostCounts, WatchAdded, WatchFrom};
use crate::runtime::clock::now_ms;
use crate::runtime::http::ApiError;
use crate::runtime::rpc;

const SHARDS_KEY: &str = "watch_shards";

impl DocumentRoom {
    fn watch_shards(&self) -> Vec<String> {
        let stored = self.host.store().meta(SHARDS_KEY).ok().flatten();
        stored.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
    }

    fn set_watch_shards(&self, shards: &[String]) -> Result<(), ApiError> {
        Ok(self.host.store().set_meta(SHARDS_KEY, &serde_json::to_string(shards).unwrap_or_default())?)
    }

    /// An inbox shard holds a channel watching this post. A private post is watched by no one
    /// (its counts go only to those who may read them, §5.5 [1.2]).
    pub(super) fn watch_from(&self, w: WatchFrom) -> Result<WatchAdded, ApiError> {
        if self.host.with_room(|r, _| r.summary().is_none())? {
            return Err(ApiError::bad_request("only posts can be watched"));
        }
        if self.is_private() {
            return Err(ApiError::forbidden("a private post cannot be watched"));
        }
        let valid = w.shard.strip_prefix("inbox-").and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n < crate::sharding::INBOX_SHARDS as u64);
        if !valid {
            return Err(ApiError::bad_request("not an inbox shard"));
        }
        let mut shards = self.watch_shards();
        if !shards.contains(&w.shard) {
            shards.push(w.shard);
            self.set_watch_shards(&shards)?;
        }
        Ok(WatchAdded { shards: shards.len() })
    }

    /// The counts changed: the watchers hear of it with the next push.
    pub(super) fn watchers_stale(&self) {
        let store = self.host.store();
        // One read per action; a write only when it was clean (a hot post writes nothing more).
        if store.meta("watch_dirty").ok().flatten().as_deref() != Some("1") {
            let _ = store.set_meta("watch_dirty", "1");
        }
    }

    /// The alarm's duty: pushes the latest counts to every watching shard if they changed and a
    /// second has passed since the last push; returns when to try again otherwise.
    pub(super) async fn push_watchers(&self) -> Option<u64> {
        let store = self.host.store();
        if store.meta("watch_dirty").ok().flatten().as_deref() != Some("1") {
            return None;
        }
        let shards = self.watch_shards();
        if shards.is_empty() || self.is_private() {
            let _ = store.set_meta("watch_dirty", "0");
            return None;
        }
        let now = now_ms();
        let due = store.meta_u64("watch_last_push").unwrap_or(0) + WATCH_PUSH_EVERY_MS;
        if now < due {
            return Some(due);
        }
        let (post_id, counts) = self.counts_json().ok()?;
        let counts: Value = serde_json::from_str(&counts).ok()?;
        let _ = store.set_meta("watch_dirty", "0");
        let _ = store.set_meta("watch_last_push", &now.to_string());
        let call = PostCounts { post_id, counts };
        let call = &call;
        let env = &self.env;
        let answers = join_all(shards.iter().map(|name| async move { rpc::call(&shard(env, name), call).await })).await;
        // A shard with no watcher left is forgotten; one that failed keeps its place.
        let kept: Vec<String> = shards.iter().zip(&answers).filter(|(_, a)| a.as_ref().map_or(true, |t| t.watching)).map(|(s, _)| s.clone()).collect();
        if kept.len() != shards.len() {
            let _ = self.set_watch_shards(&kept);
        }
        let bump = |key: &str, by: u64| {
            let _ = store.set_meta(key, &(store.meta_u64(key).unwrap_or(0) + by).to_string());
        };
        bump("watch_pushes", 1);
        bump("watch_calls", shards.len() as u64);
        bump("watch_channel_calls", answers.iter().flatten().map(|t| t.pushed as u64).sum());
        None
    }
}
