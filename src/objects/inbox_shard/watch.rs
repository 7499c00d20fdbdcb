//! Feed watches (§6.2 [1.2]) as an inbox shard holds them: which of its users' channels watch
//! which posts. A post's object knows only the shards that hold a watcher of it (at most 64),
//! so a change costs the post one call per such shard, however many channels watch it; the
//! shard then pushes to its own watching channels, as it pushes notifications.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::storage::InboxStore;
use crate::call;
use crate::runtime::sql::{Sql, SqlResult, SqlValue};

/// A channel's whole watch list now (the union of its sockets'; empty: none).
#[derive(Serialize, Deserialize)]
pub struct WatchPosts {
    pub user_id: String,
    /// The shard the user lives in (`crate::sharding::inbox_shard`), named by the caller.
    pub shard: String,
    pub post_ids: Vec<String>,
}
#[derive(Serialize, Deserialize)]
pub struct WatchesSet {
    /// Posts this shard had no watcher of before, which it registered with.
    pub registered: Vec<String>,
}
call!(WatchPosts, "/watch-posts", WatchesSet);

/// A post's latest counts, for this shard's channels that watch it.
#[derive(Serialize, Deserialize)]
pub struct PostCounts {
    pub post_id: String,
    pub counts: Value,
}
#[derive(Serialize, Deserialize)]
pub struct PostCountsTaken {
    /// False once no channel of this shard watches the post: the post forgets the shard.
    pub watching: bool,
    pub pushed: usize,
}
call!(PostCounts, "/post-counts", PostCountsTaken);

/// A post's object learns that `shard` holds watchers of it.
#[derive(Serialize, Deserialize)]
pub struct WatchFrom {
    pub shard: String,
}
#[derive(Serialize, Deserialize)]
pub struct WatchAdded {
    pub shards: usize,
}
call!(WatchFrom, "/watch-from", WatchAdded);

impl<S: Sql> InboxStore<S> {
    /// Replaces `user_id`'s watches by `post_ids`; returns the posts no user of this shard
    /// watched before (the shard registers with those).
    pub fn set_watches(&self, user_id: &str, post_ids: &[String]) -> SqlResult<Vec<String>> {
        let sql = &self.sql;
        let mut fresh = Vec::new();
        sql.transaction(&mut || {
            fresh.clear();
            sql.run("DELETE FROM post_watchers WHERE user_id = ?", vec![user_id.into()])?;
            for post in post_ids {
                if sql.first_int("SELECT 1 FROM post_watchers WHERE post_id = ? LIMIT 1", vec![post.as_str().into()])?.is_none() {
                    fresh.push(post.clone());
                }
                sql.run("INSERT OR IGNORE INTO post_watchers (post_id, user_id) VALUES (?, ?)", vec![post.as_str().into(), user_id.into()])?;
            }
            Ok(())
        })?;
        Ok(fresh)
    }

    /// The users of this shard watching `post_id`.
    pub fn watchers(&self, post_id: &str) -> SqlResult<Vec<String>> {
        self.sql.texts("SELECT user_id FROM post_watchers WHERE post_id = ? ORDER BY user_id", vec![post_id.into()])
    }

    /// Forgets one user's watch of one post (its channel no longer watches it), or all of the
    /// user's (`None`: no socket open).
    pub fn drop_watch(&self, user_id: &str, post_id: Option<&str>) -> SqlResult<()> {
        match post_id {
            Some(p) => self.sql.run("DELETE FROM post_watchers WHERE user_id = ? AND post_id = ?", vec![user_id.into(), p.into()]),
            None => self.sql.run("DELETE FROM post_watchers WHERE user_id = ?", vec![SqlValue::from(user_id)]),
        }
    }

    /// Whether any user of this shard still watches `post_id`.
    pub fn watched(&self, post_id: &str) -> SqlResult<bool> {
        Ok(self.sql.first_int("SELECT 1 FROM post_watchers WHERE post_id = ? LIMIT 1", vec![post_id.into()])?.is_some())
    }
}
