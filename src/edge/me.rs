//! The caller's own things (§4.5, §4.8): the personal channel socket, presence, the inbox and
//! the activity timeline. One object per user holds the sockets and presence, the user's inbox
//! shard the notifications; these routes only authenticate and forward.

use serde_json::json;
use worker::{Env, Request};

use super::documents::relay_upgrade;
use super::request::{query_u64, read_json};
use crate::auth::Identity;
use crate::model::Actor;
use crate::objects::channel::client::{self as channel, object, ImportLegacy, ReadPresence, SetAudience, SetPresence, TellCount};
use crate::objects::channel::mark_read as mark_read_in_shard;
use crate::objects::inbox_shard::client::{call_for, MarkRead, ReadPage};
use crate::runtime::http::{json_response, ApiError, ApiResult};
use crate::runtime::log;
use crate::runtime::rpc;

fn actor(who: &Identity, can_write: bool) -> Actor {
    Actor { user_id: who.user_id.clone(), name: who.name.clone(), can_write, is_service: who.is_service, post_grant: false }
}

/// `GET /ws`: the caller's personal channel.
/// Without `Upgrade`, a probe of the same checks (§5.5 [1.2]).
pub async fn channel(req: &Request, env: &Env, who: Result<Identity, crate::runtime::http::ApiError>) -> ApiResult {
    let who = who?;
    let me = actor(&who, true);
    // §5.3 [1.2]: the client's cursor; what it has not seen is handed over on connect.
    let path = match query_u64(req, "since_seq")? {
        Some(n) if n <= (1 << 53) => format!("{}?exp={}&since_seq={n}", channel::CONNECT_PATH, who.exp),
        Some(_) => return Err(crate::runtime::http::ApiError::bad_request("since_seq must be an integer between 0 and 2^53")),
        None => format!("{}?exp={}", channel::CONNECT_PATH, who.exp),
    };
    relay_upgrade(rpc::upgrade(&object(env, &who.user_id, Some(&me)), &path, req).await?).await
}

/// `PUT /api/v1/me/presence`: stored on the caller's channel, pushed to watchers and rooms.
pub async fn set_presence(req: &mut Request, env: &Env, who: &Identity) -> ApiResult {
    let body = read_json(req).await?;
    let me = actor(who, true);
    let shown = rpc::call(&object(env, &who.user_id, Some(&me)), &SetPresence { body }).await?;
    Ok(json_response(200, &shown)?)
}

/// `PUT /api/v1/users/{id}/presence-audience` (service, §5.6): who may watch or read the
/// user's presence (`{"user_ids":[…]}`), or everyone (`null`).
pub async fn set_audience(req: &mut Request, env: &Env, who: &Identity, user_id: &str) -> ApiResult {
    if !who.is_service {
        return Err(ApiError::forbidden("only a service token sets a presence audience"));
    }
    let body = read_json(req).await?;
    crate::presence::parse_audience(&body)?;
    let set = SetAudience { user_id: user_id.to_string(), body };
    Ok(json_response(200, &channel::call(env, user_id, &set).await?)?)
}

/// `GET /api/v1/users/{id}/presence`.
pub async fn get_presence(env: &Env, who: &Identity, user_id: &str) -> ApiResult {
    let asker = actor(who, false);
    let shown = rpc::call(&object(env, user_id, Some(&asker)), &ReadPresence { user_id: user_id.to_string() }).await?;
    Ok(json_response(200, &shown)?)
}

/// `GET /api/v1/me/notifications` and `GET /api/v1/activity/timeline`: the caller's own, paged,
/// from their inbox shard.
pub async fn inbox_page(req: &Request, env: &Env, who: &Identity, timeline: bool) -> ApiResult {
    let page = ReadPage { user_id: who.user_id.clone(), limit: query_u64(req, "limit")?, before: query_u64(req, "before")?, timeline };
    let mut body = call_for(env, &who.user_id, &page).await?;
    if body.get("legacy_checked") == Some(&json!(false)) {
        // The user's first read: a pre-shard inbox is handed over first, so REST and the socket
        // see the same inbox (§5.3 [1.2]).
        channel::call(env, &who.user_id, &ImportLegacy { user_id: who.user_id.clone() }).await?;
        body = call_for(env, &who.user_id, &page).await?;
    }
    if let Some(o) = body.as_object_mut() {
        o.remove("legacy_checked");
    }
    Ok(json_response(200, &body)?)
}

/// `POST /api/v1/me/notifications/read` `{"event_ids":[…]}` or `{"all":true}` → `{"unread"}`;
/// the user's open channel tells its sockets the new count.
pub async fn mark_read(req: &mut Request, env: &Env, who: &Identity) -> ApiResult {
    let body = read_json(req).await?;
    let marked = mark_read_in_shard(env, &MarkRead::parse(&who.user_id, &body)?).await?;
    if marked.generation.is_some() {
        if let Err(e) = channel::call(env, &who.user_id, &TellCount { count: marked.count }).await {
            log::error("unread_count_push", e.message, &[("user_id", who.user_id.as_str().into())]);
        }
    }
    Ok(json_response(200, &json!({ "unread": marked.count.unread }))?)
}
