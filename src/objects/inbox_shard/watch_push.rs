//! Feed watches at the shard (§6.2 [1.2]): a channel's watch list replaces its rows here, and a
//! post this shard had no watcher of is told the shard watches it; a post's counts are pushed to
//! this shard's watching channels, a few at a time. A channel with no socket watching the post
//! any more drops out, and a shard left with no watcher tells the post to forget it.

use futures_util::stream::{self, StreamExt};
use worker::Env;

use super::storage::InboxStore;
use super::watch::{PostCounts, PostCountsTaken, WatchFrom, WatchPosts, WatchesSet};
use crate::objects::channel::client::{self as channel, WatchedCounts};
use crate::runtime::bindings;
use crate::runtime::http::ApiError;
use crate::runtime::log;
use crate::runtime::rpc::{self, ObjectRef};
use crate::runtime::sql_worker::ObjectSql;

/// Channel pushes one post's counts keeps in flight (per call, as `push.rs`).
const PUSHES_IN_FLIGHT: usize = 32;
/// Posts told at once that this shard watches them.
const REGISTRATIONS_IN_FLIGHT: usize = 10;

/// Replaces a user's watches; registers this shard with the posts it newly watches.
pub async fn set_watches(env: &Env, store: &InboxStore<ObjectSql>, w: WatchPosts) -> Result<WatchesSet, ApiError> {
    if w.post_ids.len() > crate::feed::MAX_WATCHED_POSTS_PER_USER {
        return Err(ApiError::new(413, "too_large", "too many watched posts"));
    }
    let fresh = store.set_watches(&w.user_id, &w.post_ids)?;
    let shard = w.shard.as_str();
    let calls = fresh.iter().map(|post| async move {
        let document_id = format!("post:{post}");
        let target = ObjectRef { env, binding: bindings::DOCUMENT_ROOM, name: &document_id, actor: None, document_id: Some(&document_id) };
        (post, rpc::call(&target, &WatchFrom { shard: shard.to_string() }).await)
    });
    let outcomes: Vec<_> = stream::iter(calls).buffer_unordered(REGISTRATIONS_IN_FLIGHT).collect().await;
    let mut registered = Vec::new();
    for (post, outcome) in outcomes {
        match outcome {
            Ok(_) => registered.push(post.clone()),
            // A private post, or one that cannot be reached: nobody here hears of it.
            Err(e) => {
                log::error("watch_register", format!("{} {}", e.status, e.message), &[("post_id", post.as_str().into())]);
                store.drop_watch(&w.user_id, Some(post))?;
            }
        }
    }
    Ok(WatchesSet { registered })
}

/// Pushes a post's counts to every channel of this shard that watches it.
pub async fn push_counts(env: &Env, store: &InboxStore<ObjectSql>, p: PostCounts) -> Result<PostCountsTaken, ApiError> {
    let users = store.watchers(&p.post_id)?;
    let call = WatchedCounts { post_id: p.post_id.clone(), counts: p.counts };
    let call = &call;
    let pushes = users.iter().map(|u| async move { (u, channel::call(env, u, call).await) });
    let outcomes: Vec<_> = stream::iter(pushes).buffer_unordered(users.len().clamp(1, PUSHES_IN_FLIGHT)).collect().await;
    let mut pushed = 0;
    for (user, outcome) in outcomes {
        match outcome {
            Ok(taken) if taken.watching => pushed += 1,
            // The channel's sockets no longer watch it (or it has none): forget the row.
            Ok(_) => store.drop_watch(user, Some(&p.post_id))?,
            Err(e) if e.status == 410 => store.drop_watch(user, None)?,
            Err(e) => log::error("watch_push", format!("{} {}", e.status, e.message), &[("user_id", user.as_str().into())]),
        }
    }
    Ok(PostCountsTaken { watching: store.watched(&p.post_id)?, pushed })
}
