//! Post engagement (§4.3) and the personal channel (§4.5): REST actions go through the post's
//! document object as `modify` operations, the same path as the WebSocket.

use serde_json::{json, Value};
use worker::{Env, Method, Request, Response};

use super::documents::{admit, call_json, relay};
use super::{authenticate, read_json};
use crate::auth::{Access, Identity};
use crate::http::{json_response, ApiError, ApiResult};
use crate::shell::cache_key;
use crate::shell::internal::{actor_headers, call_document, call_object, Actor};

fn post_document(post_id: &str) -> String {
    format!("post:{post_id}")
}

/// Likes, reposts, saves and comments: `(method, collection, comment_id)` → one `modify`.
pub async fn act(req: &mut Request, env: &Env, who: &Identity, post_id: &str, collection: &str, comment_id: Option<&str>) -> ApiResult {
    let id = post_document(post_id);
    let actor = admit(who, &id, Access::Write)?;
    let adding = req.method() == Method::Post;
    let body = if adding && collection != "saves" && collection != "reposts" { optional_json(req).await? } else { Value::Null };
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
    let mut op = json!({"document_id": id, "client_id": format!("http:{}", who.user_id), "type": "modify", "action": action});
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
    let (status, ack) = call_json(env, &id, &actor, Method::Post, "/apply", Some(json!({ "operation": op }))).await?;
    if status != 202 {
        return Ok(json_response(status, &ack)?);
    }
    let counts = &ack["counts"];
    let mut out = json!({
        "post_id": post_id,
        "like_count": counts["like_count"], "comment_count": counts["comment_count"],
        "repost_count": counts["repost_count"], "save_count": counts["save_count"],
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

/// `GET …/engagement`: KV first; on a miss the post's object answers and refreshes KV.
pub async fn counts(env: &Env, who: &Identity, post_id: &str) -> ApiResult {
    let id = post_document(post_id);
    let actor = admit(who, &id, Access::Read)?;
    let kv = env.kv("ENGAGEMENT_CACHE")?;
    if let Ok(Some(cached)) = kv.get(&cache_key(post_id)).text().await {
        if let Ok(value) = serde_json::from_str::<Value>(&cached) {
            return Ok(json_response(200, &value)?.with_headers(cache_header("hit")?));
        }
    }
    let (status, body) = call_json(env, &id, &actor, Method::Get, "/counts", None).await?;
    Ok(json_response(status, &body)?.with_headers(cache_header("miss")?))
}

fn cache_header(state: &str) -> worker::Result<worker::Headers> {
    let h = worker::Headers::new();
    h.set("content-type", "application/json")?;
    h.set("x-cache", state)?;
    Ok(h)
}

/// `PUT /api/v1/posts/{id}`: registers the owner who hears of others' likes, comments and reposts.
pub async fn register(req: &mut Request, env: &Env, who: &Identity, post_id: &str) -> ApiResult {
    let id = post_document(post_id);
    let actor = admit(who, &id, Access::Write)?;
    let body = optional_json(req).await?;
    relay(call_document(env, &id, &actor, Method::Put, "/owner", Some(body.to_string()), None).await?).await
}

/// `GET /ws`: the caller's personal channel.
pub async fn channel(req: &Request, env: &Env) -> ApiResult {
    let is_ws = req.headers().get("upgrade")?.is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        return Err(ApiError::new(426, "upgrade_required", "this endpoint takes WebSocket upgrades only"));
    }
    let who = authenticate(req, env, true)?;
    let actor = Actor { user_id: who.user_id.clone(), name: who.name.clone(), can_write: true, is_service: who.is_service };
    channel_call(env, &who.user_id, &actor, Method::Get, "/connect", None, Some(req)).await
}

/// `PUT /api/v1/me/presence`: stored on the caller's channel, pushed to watchers and rooms.
pub async fn set_presence(req: &mut Request, env: &Env, who: &Identity) -> ApiResult {
    let body = read_json(req).await?;
    let actor = Actor { user_id: who.user_id.clone(), name: who.name.clone(), can_write: true, is_service: who.is_service };
    channel_call(env, &who.user_id, &actor, Method::Put, "/presence", Some(body.to_string()), None).await
}

/// `GET /api/v1/users/{id}/presence`.
pub async fn get_presence(env: &Env, who: &Identity, user_id: &str) -> ApiResult {
    let actor = Actor { user_id: who.user_id.clone(), name: who.name.clone(), can_write: false, is_service: who.is_service };
    let path = format!("/presence?user_id={}", percent_encoding::utf8_percent_encode(user_id, percent_encoding::NON_ALPHANUMERIC));
    channel_call(env, user_id, &actor, Method::Get, &path, None, None).await
}

/// A request to a user's channel object; `upgrade` carries a WebSocket upgrade's headers along.
async fn channel_call(env: &Env, user_id: &str, actor: &Actor, method: Method, path: &str, body: Option<String>, upgrade: Option<&Request>) -> ApiResult {
    let headers = actor_headers(actor, upgrade)?;
    let resp: Response = call_object(env, "USER_CHANNEL", user_id, method, path, body, headers).await?;
    if resp.status_code() == 101 {
        Ok(resp)
    } else {
        relay(resp).await
    }
}
