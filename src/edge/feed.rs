//! Feed reads (§6.2 [1.2]): many posts' counts in one request, and a post's comments by page.

use futures_util::future::join_all;
use serde_json::{Map, Value};
use worker::{Env, Request};

use super::documents::{admit, answer};
use super::request::query;
use crate::auth::{Access, Identity};
use crate::feed::{parse_comments_query, parse_feed_ids, FEED_FAN_OUT};
use crate::model::Actor;
use crate::objects::document::client::{counts_cache_key as cache_key, object, ReadComments, ReadCounts};
use crate::runtime::bindings;
use crate::runtime::http::{json_response, ApiError, ApiResult};
use crate::runtime::rpc;

fn document(post_id: &str) -> String {
    format!("post:{post_id}")
}

/// `GET /api/v1/posts/engagement?ids=a,b,…` → `{"posts":{id: counts}}`: each post as its own
/// `GET …/engagement` would answer it (the same admission), KV first, the misses asked of their
/// objects at most `FEED_FAN_OUT` at a time.
pub async fn counts(req: &Request, env: &Env, who: &Identity) -> ApiResult {
    let ids = parse_feed_ids(query(req, "ids")?.as_deref()).map_err(ApiError::bad_request)?;
    let actors = ids.iter().map(|id| admit(who, &document(id), Access::Read)).collect::<Result<Vec<Actor>, ApiError>>()?;
    let kv = env.kv(bindings::ENGAGEMENT_CACHE)?;
    let keys: Vec<String> = ids.iter().map(|id| cache_key(id)).collect();
    let cached = join_all(keys.iter().map(|k| kv.get(k).text())).await;
    let mut found: Vec<Option<Value>> =
        cached.into_iter().map(|c| c.ok().flatten().and_then(|t| serde_json::from_str::<Value>(&t).ok())).collect();
    let missing: Vec<usize> = (0..ids.len()).filter(|&i| found[i].is_none()).collect();
    let actors = &actors;
    for chunk in missing.chunks(FEED_FAN_OUT) {
        let docs: Vec<String> = chunk.iter().map(|&i| document(&ids[i])).collect();
        let calls = chunk.iter().zip(&docs).map(|(&i, doc)| async move {
            let text = rpc::call_text(&object(env, doc, &actors[i]), &ReadCounts {}).await?;
            serde_json::from_str::<Value>(&text).map_err(|e| ApiError::internal(format!("unreadable counts: {e}")))
        });
        for (&i, got) in chunk.iter().zip(join_all(calls).await) {
            // A private post the caller may not read (§5.5) is `null`, not a failed feed.
            found[i] = match got {
                Ok(counts) => Some(counts),
                Err(e) if e.status == 403 => None,
                Err(e) => return Err(e),
            };
        }
    }
    let posts: Map<String, Value> = ids.into_iter().zip(found).map(|(id, c)| (id, c.unwrap_or(Value::Null))).collect();
    let hits = posts.len() - missing.len();
    let headers = worker::Headers::new();
    headers.set("x-cache-hits", &hits.to_string())?;
    Ok(json_response(200, &serde_json::json!({ "posts": posts }))?.with_headers(merge(headers)?))
}

fn merge(extra: worker::Headers) -> worker::Result<worker::Headers> {
    extra.set("content-type", "application/json")?;
    Ok(extra)
}

/// `GET /api/v1/posts/{id}/comments?limit=N&before=C` → `{"comments","next_before"}`.
pub async fn comments(req: &Request, env: &Env, who: &Identity, post_id: &str) -> ApiResult {
    let id = document(post_id);
    let actor = admit(who, &id, Access::Read)?;
    let q = parse_comments_query(query(req, "limit")?.as_deref(), query(req, "before")?.as_deref()).map_err(ApiError::bad_request)?;
    let (before_at, before_id) = match q.before {
        None => (None, None),
        Some((t, id)) => (Some(t), id),
    };
    answer(env, &id, &actor, &ReadComments { limit: q.limit, before_at, before_id }).await
}
