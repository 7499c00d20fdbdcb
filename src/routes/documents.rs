//! Document routes: WebSocket upgrades, operations, history, documents and channel descriptions.

use serde_json::{json, Value};
use worker::{Env, Method, Request, Response};

use super::read_json;
use crate::auth::{Access, Identity};
use crate::http::{json_response, ApiError, ApiResult};
use crate::protocol::{parse_client_id, valid_document_id};
use crate::shell::internal::{call_document, Actor, Query};

/// Checks the id and the caller's access; returns the actor to pass to the object.
pub(super) fn admit(who: &Identity, document_id: &str, need: Access) -> Result<Actor, ApiError> {
    if !valid_document_id(document_id) {
        return Err(ApiError::bad_request("document id must match ^[A-Za-z0-9_.:@-]{1,256}$"));
    }
    match who.access(document_id) {
        None => Err(ApiError::forbidden(format!("no grant for {document_id}"))),
        Some(Access::Read) if need == Access::Write => Err(ApiError::forbidden(format!("read-only grant for {document_id}"))),
        Some(a) => Ok(Actor { user_id: who.user_id.clone(), name: who.name.clone(), can_write: a == Access::Write, is_service: who.is_service }),
    }
}

/// Re-emits an object's JSON response from the Worker (with mutable headers).
pub(super) async fn relay(mut resp: Response) -> ApiResult {
    let status = resp.status_code();
    let body = resp.text().await?;
    let value: Value = serde_json::from_str(&body).unwrap_or_else(|_| json!({"error": {"code": "internal", "message": body}}));
    Ok(json_response(status, &value)?)
}

pub(super) async fn call_json(env: &Env, id: &str, actor: &Actor, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value), ApiError> {
    let mut resp = call_document(env, id, actor, method, path, body.map(|b| b.to_string()), None).await?;
    let status = resp.status_code();
    let text = resp.text().await?;
    let value = serde_json::from_str(&text).map_err(|_| ApiError::internal(text))?;
    Ok((status, value))
}

pub async fn upgrade(req: &Request, env: &Env, id: &str, who: Result<Identity, ApiError>) -> ApiResult {
    let is_ws = req.headers().get("upgrade")?.is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        return Err(ApiError::new(426, "upgrade_required", "this endpoint takes WebSocket upgrades only"));
    }
    let who = who?;
    let actor = admit(&who, id, Access::Read)?;
    let q = Query::of(&req.url()?);
    let client_id = parse_client_id(&Value::String(q.str("client_id").unwrap_or_default()))?;
    let mut path = format!("/connect?client_id={}", percent_encoding::utf8_percent_encode(&client_id, percent_encoding::NON_ALPHANUMERIC));
    if let Some(since) = q.u64("since")? {
        path.push_str(&format!("&since={since}"));
    }
    let resp = call_document(env, id, &actor, Method::Get, &path, None, Some(req)).await?;
    if resp.status_code() == 101 {
        Ok(resp)
    } else {
        relay(resp).await
    }
}

pub async fn apply(req: &mut Request, env: &Env, who: &Identity) -> ApiResult {
    let body = read_json(req).await?;
    if !body.get("operation").is_some_and(Value::is_object) {
        return Err(ApiError::bad_request("body must be {\"operation\": {...}}"));
    }
    let id = crate::legacy::apply_document_id(&body).ok_or_else(|| ApiError::bad_request("operation.document_id is required"))?;
    let actor = admit(who, id, Access::Write)?;
    let resp = call_document(env, id, &actor, Method::Post, "/apply", Some(body.to_string()), None).await?;
    relay(resp).await
}

pub async fn history(req: &Request, env: &Env, who: &Identity, id: &str) -> ApiResult {
    let actor = admit(who, id, Access::Read)?;
    let q = Query::of(&req.url()?);
    let since = q.u64("since")?.unwrap_or(0);
    let limit = q.u64("limit")?.unwrap_or(crate::limits::HISTORY_DEFAULT_LIMIT);
    let resp = call_document(env, id, &actor, Method::Get, &format!("/history?since={since}&limit={limit}"), None, None).await?;
    relay(resp).await
}

pub async fn get(env: &Env, who: &Identity, id: &str) -> ApiResult {
    let actor = admit(who, id, Access::Read)?;
    relay(call_document(env, id, &actor, Method::Get, "/document", None, None).await?).await
}

pub async fn metrics(env: &Env, who: &Identity, id: &str) -> ApiResult {
    let actor = admit(who, id, Access::Read)?;
    relay(call_document(env, id, &actor, Method::Get, "/metrics", None, None).await?).await
}

pub async fn delete(env: &Env, who: &Identity, id: &str) -> ApiResult {
    if !who.is_service {
        return Err(ApiError::forbidden("deleting a document needs a service token"));
    }
    let actor = admit(who, id, Access::Write)?;
    relay(call_document(env, id, &actor, Method::Delete, "/document", None, None).await?).await
}

fn channel_document(channel: &str) -> String {
    format!("channel:{channel}:description")
}

pub async fn get_channel(env: &Env, who: &Identity, channel: &str) -> ApiResult {
    let id = channel_document(channel);
    let actor = admit(who, &id, Access::Read)?;
    let (status, doc) = call_json(env, &id, &actor, Method::Get, "/document", None).await?;
    if status != 200 {
        return Ok(json_response(status, &doc)?);
    }
    Ok(json_response(200, &json!({"id": channel, "description": doc["content"], "version": doc["version"]}))?)
}

pub async fn put_channel(req: &mut Request, env: &Env, who: &Identity, channel: &str) -> ApiResult {
    let body = read_json(req).await?;
    let description = body.get("description").and_then(Value::as_str).ok_or_else(|| ApiError::bad_request("description must be a string"))?;
    let id = channel_document(channel);
    let actor = admit(who, &id, Access::Write)?;
    let payload = json!({"text": description, "version": body.get("version").cloned().unwrap_or(Value::Null)});
    let (status, out) = call_json(env, &id, &actor, Method::Put, "/text", Some(payload)).await?;
    if status != 200 {
        return Ok(json_response(status, &out)?);
    }
    Ok(json_response(200, &json!({"id": channel, "description": out["content"], "version": out["version"], "status": out["status"]}))?)
}
