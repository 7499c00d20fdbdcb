//! The personal channel (§4.5): one object per user holds their sockets, notifications and
//! presence; these routes only authenticate and forward.

use worker::{Env, Method, Request, Response};

use super::authenticate;
use super::documents::relay;
use super::read_json;
use crate::auth::Identity;
use crate::http::{ApiError, ApiResult};
use crate::shell::internal::{actor_headers, call_object, Actor};

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

/// `GET /api/v1/me/notifications` and `GET /api/v1/activity/timeline`: the caller's own, paged.
pub async fn inbox(req: &Request, env: &Env, who: &Identity, path: &str) -> ApiResult {
    let actor = Actor { user_id: who.user_id.clone(), name: who.name.clone(), can_write: false, is_service: who.is_service };
    let query = req.url()?.query().map(|q| format!("?{q}")).unwrap_or_default();
    channel_call(env, &who.user_id, &actor, Method::Get, &format!("{path}{query}"), None, None).await
}

/// `POST /api/v1/me/notifications/read` `{"event_ids":[…]}` or `{"all":true}`.
pub async fn mark_read(req: &mut Request, env: &Env, who: &Identity) -> ApiResult {
    let body = read_json(req).await?;
    let actor = Actor { user_id: who.user_id.clone(), name: who.name.clone(), can_write: true, is_service: who.is_service };
    channel_call(env, &who.user_id, &actor, Method::Post, "/read", Some(body.to_string()), None).await
}
