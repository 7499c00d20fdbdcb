//! Post engagement (§4.3): REST actions go through the post's document object as `modify`
//! operations, the same path as the WebSocket.

use serde_json::{json, Value};
use worker::{Env, Method, Request};

use super::documents::{admit, answer};
use super::request::read_json;
use crate::auth::{Access, Identity};
use crate::model::Actor;
use crate::post_import::{on_behalf_of, parse_import};
use crate::objects::document::client::{counts_cache_key as cache_key, object, Apply, ImportEngagement, ReadCounts, SetOwner};
use crate::runtime::bindings;
use crate::runtime::http::{json_response, ApiError, ApiResult};
use crate::runtime::rpc;

fn post_document(post_id: &str) -> String {
    format!("post:{post_id}")
}

/// Likes, reposts, saves and comments: `(method, collection, comment_id)` → one `modify`.
pub async fn act(req: &mut Request, env: &Env, who: &Identity, post_id: &str, collection: &str, comment_id: Option<&str>) -> ApiResult {
    let id = post_document(post_id);
    let mut actor = admit(who, &id, Access::Write)?;
    let adding = req.method() == Method::Post;
    let body = optional_json(req).await?;
    // §6.3: a service token acts for the named user, in every respect.
    let on_behalf = on_behalf_of(&body, who.is_service).map_err(|(status, m)| if status == 403 { ApiError::forbidden(m) } else { ApiError::bad_request(m) })?;
    if let Some(user) = on_behalf {
        // The service vouches for the user (a private post's grant included).
        actor = Actor { name: user.clone(), user_id: user, can_write: true, is_service: false, post_grant: true };
    }
    let action = match (collection, adding) {
        ("likes", true) => "like",
        ("likes", false) => "unlike",
        ("reposts", true) => "repost",
        ("reposts", false) => "unrepost",
        ("saves", true) => "save",
        ("saves", false) => "unsave",
        ("comments", true) => "comment",
        ("comments", false) => "uncomment",
        _ => return Err(ApiError::not_found("no such engagement")),
    };
    let mut op = json!({"document_id": id, "client_id": format!("http:{}", actor.user_id), "type": "modify", "action": action});
    match action {
        "like" => {
            if let Some(e) = body.get("emoji").filter(|e| !e.is_null()) {
                op["emoji"] = e.clone();
            }
        }
        "comment" => op["text"] = body.get("text").cloned().unwrap_or(Value::Null),
        "uncomment" => op["comment_id"] = json!(comment_id.unwrap_or_default()),
        _ => {}
    }
    let operation = op.as_object().cloned().unwrap_or_default();
    let ack: Value = serde_json::from_str(&rpc::call_text(&object(env, &id, &actor), &Apply { operation }).await?)
        .map_err(|e| ApiError::internal(format!("unreadable ack: {e}")))?;
    let counts = &ack["counts"];
    let mut out = json!({
        "post_id": post_id,
        "like_count": counts["like_count"], "comment_count": counts["comment_count"],
        "repost_count": counts["repost_count"], "save_count": counts["save_count"],
        "reactions": counts["reactions"],
        "version": ack["version"],
        "changed": ack["status"] == "accepted" || ack["status"] == "transformed",
    });
    if action == "comment" {
        out["comment_id"] = ack["ops"][0]["comment_id"].clone();
    }
    Ok(json_response(if action == "comment" && out["changed"] == true { 201 } else { 200 }, &out)?)
}

/// A body that may be absent (`POST …/likes` with no emoji).
async fn optional_json(req: &mut Request) -> Result<Value, ApiError> {
    let has_body = req.headers().get("content-length")?.is_some_and(|l| l != "0") || req.headers().get("content-type")?.is_some();
    if has_body {
        read_json(req).await
    } else {
        Ok(Value::Null)
    }
}

/// `GET …/engagement`: KV first; on a miss the post's object answers and refreshes KV. KV never
/// holds a private post's counts (its object neither writes them nor lets them stay), so a
/// private post is always a miss, answered by the object after its check (§5.5 [1.2]).
pub async fn counts(env: &Env, who: &Identity, post_id: &str) -> ApiResult {
    let id = post_document(post_id);
    let actor = admit(who, &id, Access::Read)?;
    let kv = env.kv(bindings::ENGAGEMENT_CACHE)?;
    if let Ok(Some(cached)) = kv.get(&cache_key(post_id)).text().await {
        if let Ok(value) = serde_json::from_str::<Value>(&cached) {
            return Ok(json_response(200, &value)?.with_headers(cache_header("hit")?));
        }
    }
    Ok(answer(env, &id, &actor, &ReadCounts {}).await?.with_headers(cache_header("miss")?))
}

fn cache_header(state: &str) -> worker::Result<worker::Headers> {
    let h = worker::Headers::new();
    h.set("content-type", "application/json")?;
    h.set("x-cache", state)?;
    Ok(h)
}

/// `PUT /api/v1/posts/{id}`: registers the owner who hears of others' likes, comments and reposts.
/// Claiming a post needs the `write` grant on `post:{id}` the main backend issues with the post,
/// or a service token (§2 [1.1]): posts are open to everyone, their ownership is not.
pub async fn register(req: &mut Request, env: &Env, who: &Identity, post_id: &str) -> ApiResult {
    let id = post_document(post_id);
    let actor = admit(who, &id, Access::Write)?;
    if who.granted(&id) != Some(Access::Write) {
        return Err(ApiError::forbidden(format!("registering as the owner of {id} needs a write grant on it")));
    }
    let body = optional_json(req).await?;
    let owner_id = match body.get("owner_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => Some(s.clone()),
        Some(_) => return Err(ApiError::bad_request("owner_id must be a non-empty string")),
    };
    let visibility = match body.get("visibility") {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) if v == "public" || v == "private" => Some(v.clone()),
        Some(_) => return Err(ApiError::bad_request("visibility must be \"public\" or \"private\"")),
    };
    answer(env, &id, &actor, &SetOwner { owner_id, visibility }).await
}

/// `POST /api/v1/posts/{id}/engagement/import` (service, §6.3): registers `owner_id` if given,
/// then merges the batch as one operation → the counts, `changed`, and what was added.
pub async fn import(req: &mut Request, env: &Env, who: &Identity, post_id: &str) -> ApiResult {
    if !who.is_service {
        return Err(ApiError::forbidden("importing engagement needs a service token"));
    }
    let id = post_document(post_id);
    let actor = admit(who, &id, Access::Write)?;
    let batch = parse_import(&read_json(req).await?).map_err(|issues| {
        ApiError::new(422, "validation_failed", format!("{} problem(s) in the import; nothing was imported", issues.len()))
            .with_details(json!({ "errors": issues }))
    })?;
    if let Some(owner) = batch.owner_id.clone() {
        rpc::call(&object(env, &id, &actor), &SetOwner { owner_id: Some(owner), visibility: None }).await?;
    }
    let ack: Value = serde_json::from_str(&rpc::call_text(&object(env, &id, &actor), &ImportEngagement { batch }).await?)
        .map_err(|e| ApiError::internal(format!("unreadable ack: {e}")))?;
    let counts = &ack["counts"];
    let added = &ack["ops"][0];
    let zero = |k: &str| added.get(k).cloned().unwrap_or(json!(0));
    Ok(json_response(200, &json!({
        "post_id": post_id,
        "like_count": counts["like_count"], "comment_count": counts["comment_count"],
        "repost_count": counts["repost_count"], "save_count": counts["save_count"],
        "reactions": counts["reactions"],
        "version": ack["version"],
        "changed": ack["status"] == "accepted",
        "imported": {"likes": zero("likes"), "reposts": zero("reposts"), "saves": zero("saves"), "comments": zero("comments")},
    }))?)
}
