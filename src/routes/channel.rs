//! The personal channel (§4.5): one object per user holds their sockets, notifications and
//! presence; these routes only authenticate and forward.

use worker::{Env, Headers, Method, Request, Response};

use super::documents::relay;
use super::read_json;
use crate::auth::Identity;
use crate::http::{json_response, ApiError, ApiResult};
use crate::shell::inbox::{call_shard, parse_read, Count};
use crate::shell::internal::{actor_headers, call_object, Actor};

/// `GET /ws`: the caller's personal channel.
pub async fn channel(req: &Request, env: &Env, who: Result<Identity, ApiError>) -> ApiResult {
    let is_ws = req.headers().get("upgrade")?.is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        return Err(ApiError::new(426, "upgrade_required", "this endpoint takes WebSocket upgrades only"));
    }
    let who = who?;
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

/// `GET /api/v1/me/notifications` and `GET /api/v1/activity/timeline`: the caller's own, paged,
/// from their inbox shard.
pub async fn inbox(req: &Request, env: &Env, who: &Identity, path: &str) -> ApiResult {
    let mut query: Vec<(String, String)> = req.url()?.query_pairs().filter(|(k, _)| k != "user_id").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    query.push(("user_id".into(), who.user_id.clone()));
    let query = query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
    relay(call_shard(env, &who.user_id, Method::Get, &format!("{path}?{query}"), None).await?).await
}

/// `POST /api/v1/me/notifications/read` `{"event_ids":[…]}` or `{"all":true}` → `{"unread"}`;
/// the user's open channel tells its sockets the new count.
pub async fn mark_read(req: &mut Request, env: &Env, who: &Identity) -> ApiResult {
    #[derive(serde::Deserialize)]
    struct Answer {
        count: Count,
        generation: Option<i64>,
    }
    let body = read_json(req).await?;
    parse_read(&body)?;
    let path = format!("/read?user_id={}", encode(&who.user_id));
    let mut resp = call_shard(env, &who.user_id, Method::Post, &path, Some(body.to_string())).await?;
    if resp.status_code() != 200 {
        return relay(resp).await;
    }
    let answer: Answer = serde_json::from_str(&resp.text().await?).map_err(|e| ApiError::internal(format!("inbox answer: {e}")))?;
    if answer.generation.is_some() {
        let body = serde_json::to_string(&answer.count).unwrap_or_default();
        if let Err(e) = call_object(env, "USER_CHANNEL", &who.user_id, Method::Post, "/count", Some(body), Headers::new()).await {
            crate::shell::log::error("unread_count_push", e, &[("user_id", who.user_id.as_str().into())]);
        }
    }
    Ok(json_response(200, &serde_json::json!({ "unread": answer.count.unread }))?)
}

fn encode(s: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
}
