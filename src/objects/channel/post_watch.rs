//! `watch_posts` on the personal channel (§6.2 [1.2]): each socket's list (≤ 100 posts) lives
//! in its attachment and lapses with it; the union of the user's sockets' lists (≤ 200) is held
//! by the user's inbox shard, which registers with each post and relays its counts here. The
//! answer is the current counts of every listed post, read after the shard holds the watch, so
//! no change falls between the two.

use futures_util::future::join_all;
use serde_json::{json, Value};
use worker::{Env, WebSocket};

use super::client::{WatchTaken, WatchedCounts};
use super::object::{ChannelSession, UserChannel};
use crate::feed::{parse_watch_posts, watch_union, FEED_FAN_OUT, MAX_WATCHED_POSTS_PER_USER, WATCH_POSTS_EVERY_MS};
use crate::model::Actor;
use crate::objects::document::client::{counts_cache_key, object, ReadCounts};
use crate::objects::inbox_shard::client::call_for;
use crate::objects::inbox_shard::watch::WatchPosts;
use crate::protocol::{Code, Failure, Frame, Outgoing};
use crate::runtime::bindings;
use crate::runtime::clock::now_ms;
use crate::runtime::rpc;
use crate::runtime::sockets::send;
use crate::sharding::inbox_shard;

fn session(ws: &WebSocket) -> Option<ChannelSession> {
    ws.deserialize_attachment::<ChannelSession>().ok().flatten()
}

impl UserChannel {
    /// `watch_posts` `{"post_ids":[…]}` from one socket: replaces its list.
    pub(super) async fn watch_posts(&self, ws: &WebSocket, mut me: ChannelSession, frame: Frame) {
        let ids = match parse_watch_posts(&frame.payload) {
            Ok(ids) => ids,
            Err(f) => return send(ws, Outgoing::error(&f, frame.id, None)),
        };
        let others: Vec<Vec<String>> = self.state.get_websockets().iter().filter(|s| *s != ws).filter_map(session).map(|s| s.posts).collect();
        let union = watch_union(others.iter().map(Vec::as_slice).chain([ids.as_slice()]));
        if union.len() > MAX_WATCHED_POSTS_PER_USER {
            let f = Failure::new(Code::TooLarge, format!("your sockets together may watch at most {MAX_WATCHED_POSTS_PER_USER} posts; nothing changed"));
            return send(ws, Outgoing::error(&f, frame.id, None));
        }
        // The turn is taken only by a watch that would be accepted: a refused one costs nothing.
        match self.store.take_turn("watch_posts_at", now_ms(), WATCH_POSTS_EVERY_MS) {
            Ok(Ok(())) => {}
            Ok(Err(ms)) => {
                let f = Failure::new(Code::RateLimited, "watch_posts is accepted at most once a second");
                return send(ws, Outgoing::error_with(&f, frame.id, None, Some(ms)));
            }
            Err(e) => return send(ws, Outgoing::error(&Failure::new(Code::Internal, format!("storage: {e}")), frame.id, None)),
        }
        me.posts = ids.clone();
        let _ = ws.serialize_attachment(&me);
        if let Err(e) = tell_shard(&self.env, &me.user_id, union).await {
            let f = Failure::new(Code::Internal, format!("the watch was not registered: {}", e.message));
            return send(ws, Outgoing::error(&f, frame.id, None));
        }
        for counts in read_counts(&self.env, &me.user_id, &ids).await.into_iter().flatten() {
            send(ws, Outgoing::reply("engagement_update", frame.id.clone(), counts));
        }
    }

    /// A watched post's counts from the shard: to every socket that watches it.
    pub(super) fn watched_counts(&self, c: WatchedCounts) -> WatchTaken {
        let m = Outgoing::new("engagement_update", &c.counts);
        let mut watching = false;
        for ws in self.state.get_websockets() {
            if session(&ws).is_some_and(|s| s.posts.contains(&c.post_id)) {
                send(&ws, m.clone());
                watching = true;
            }
        }
        WatchTaken { watching }
    }

    /// A socket went: the shard holds what the remaining sockets watch.
    pub(super) async fn posts_socket_gone(&self, ws: &WebSocket) {
        let Some(gone) = session(ws) else { return };
        if gone.posts.is_empty() {
            return;
        }
        let rest: Vec<Vec<String>> = self.state.get_websockets().iter().filter(|s| *s != ws).filter_map(session).map(|s| s.posts).collect();
        let _ = tell_shard(&self.env, &gone.user_id, watch_union(rest.iter().map(Vec::as_slice))).await;
    }
}

async fn tell_shard(env: &Env, user_id: &str, post_ids: Vec<String>) -> Result<(), crate::runtime::http::ApiError> {
    let w = WatchPosts { user_id: user_id.to_string(), shard: inbox_shard(user_id), post_ids };
    call_for(env, user_id, &w).await.map(drop)
}

/// Each post's counts with its `post_id`, as the batch read finds them (KV first, then the
/// post's object on the user's behalf); None for a post the user may not read (private).
async fn read_counts(env: &Env, user_id: &str, ids: &[String]) -> Vec<Option<Value>> {
    let kv = env.kv(bindings::ENGAGEMENT_CACHE).ok();
    let mut found: Vec<Option<Value>> = match &kv {
        Some(kv) => join_all(ids.iter().map(|id| kv.get(&counts_cache_key(id)).text())).await.into_iter().map(|t| t.ok().flatten().and_then(|t| serde_json::from_str(&t).ok())).collect(),
        None => vec![None; ids.len()],
    };
    let actor = Actor { user_id: user_id.to_string(), name: String::new(), can_write: false, is_service: false, post_grant: false };
    let missing: Vec<usize> = (0..ids.len()).filter(|&i| found[i].is_none()).collect();
    for chunk in missing.chunks(FEED_FAN_OUT) {
        let docs: Vec<String> = chunk.iter().map(|&i| format!("post:{}", ids[i])).collect();
        let actor = &actor;
        let calls = docs.iter().map(|doc| async move { rpc::call_text(&object(env, doc, actor), &ReadCounts {}).await });
        for (&i, got) in chunk.iter().zip(join_all(calls).await) {
            found[i] = got.ok().and_then(|t| serde_json::from_str(&t).ok());
        }
    }
    for (v, id) in found.iter_mut().zip(ids) {
        if let Some(Value::Object(m)) = v {
            m.entry("post_id").or_insert_with(|| json!(id));
        }
    }
    found
}
