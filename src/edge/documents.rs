//! Document routes: WebSocket upgrades, operations, history, documents and channel descriptions.

use serde_json::{json, Value};
use worker::{Env, Request, Response};

use super::request::{query, query_u64, read_json};
use crate::auth::{Access, Identity};
use crate::dialect::Dialect;
use crate::model::Actor;
use crate::objects::document::client::{self as doc, object};
use crate::protocol::{parse_client_id, valid_document_id, DocKind};
use crate::runtime::http::{json_response, json_text_response, ApiError, ApiResult};
use crate::runtime::rpc::{self, Call};

/// Checks the id and the caller's access; returns the actor to pass to the object.
pub(super) fn admit(who: &Identity, document_id: &str, need: Access) -> Result<Actor, ApiError> {
    if !valid_document_id(document_id) {
        return Err(ApiError::bad_request("document id must match ^[A-Za-z0-9_.:@-]{1,256}$"));
    }
    match who.access(document_id) {
        None => Err(ApiError::forbidden(format!("no grant for {document_id}"))),
        Some(Access::Read) if need == Access::Write => Err(ApiError::forbidden(format!("read-only grant for {document_id}"))),
        Some(a) => Ok(Actor { user_id: who.user_id.clone(), name: who.name.clone(), can_write: a == Access::Write, is_service: who.is_service, post_grant: who.granted(document_id).is_some() }),
    }
}

/// Makes a document call and answers its reply as JSON (status 200).
pub(super) async fn answer<C: Call>(env: &Env, id: &str, actor: &Actor, req: &C) -> ApiResult {
    Ok(json_text_response(200, &rpc::call_text(&object(env, id, actor), req).await?)?)
}

/// Hands an upgrade to its object: the 101 (or a probe's 200) goes back as is, a refusal as its
/// error.
pub(super) async fn relay_upgrade(resp: Response) -> ApiResult {
    if resp.status_code() == 101 || resp.status_code() == 200 {
        return Ok(resp);
    }
    let mut resp = resp;
    let status = resp.status_code();
    Err(ApiError::from_answer(status, &resp.text().await?))
}

/// `GET /ws/documents/{id}`: with `Upgrade`, a socket; without, a probe that answers the status
/// the upgrade would get (§5.5 [1.2]). The object checks the rest: the claim, the revocation,
/// the sockets the user holds there, a private post's grant.
pub async fn upgrade(req: &Request, env: &Env, id: &str, who: Result<Identity, ApiError>) -> ApiResult {
    let who = who?;
    let actor = admit(&who, id, Access::Read)?;
    // §7: a Yjs socket's client_id is optional (the Yjs client id inside updates is its identity).
    let client_id = match query(req, "client_id")? {
        None if DocKind::is_yjs(id) => format!("y-{}", crate::runtime::clock::new_session_id()),
        given => parse_client_id(&Value::String(given.unwrap_or_default()))?,
    };
    let mut path = format!("{}?client_id={}", doc::CONNECT_PATH, percent_encoding::utf8_percent_encode(&client_id, percent_encoding::NON_ALPHANUMERIC));
    if let Some(since) = query_u64(req, "since")? {
        path.push_str(&format!("&since={since}"));
    }
    // §9 `?batch=1` and §8 `?viewport=x,y,w,h` (checked here, so a bad one is a clear 400).
    if query(req, "batch")?.as_deref() == Some("1") {
        path.push_str("&batch=1");
    }
    if let Some(viewport) = query(req, "viewport")? {
        crate::room::viewport::parse_viewport_query(&viewport)?;
        path.push_str("&viewport=");
        path.extend(percent_encoding::utf8_percent_encode(&viewport, percent_encoding::NON_ALPHANUMERIC));
    }
    // §6.1 [1.2] `?dialect=plugin` (checked here: an unknown dialect is a clear 400).
    if crate::dialect::Dialect::parse(query(req, "dialect")?.as_deref())?.is_plugin() {
        path.push_str("&dialect=plugin");
    }
    path.push_str(&format!("&exp={}", who.exp));
    relay_upgrade(rpc::upgrade(&object(env, id, &actor), &path, req).await?).await
}

pub async fn apply(req: &mut Request, env: &Env, who: &Identity) -> ApiResult {
    let body = read_json(req).await?;
    let Some(operation) = body.get("operation").and_then(Value::as_object) else {
        return Err(ApiError::bad_request("body must be {\"operation\": {...}}"));
    };
    let id = crate::plugin_shapes::apply_document_id(&body).ok_or_else(|| ApiError::bad_request("operation.document_id is required"))?;
    let actor = admit(who, id, Access::Write)?;
    let ack = rpc::call_text(&object(env, id, &actor), &doc::Apply { operation: operation.clone() }).await?;
    let ack = if dialect_of(req)?.is_plugin() { crate::dialect::plugin_payload_text("operation_ack", &ack) } else { ack };
    Ok(json_text_response(202, &ack)?)
}

/// `X-Sidechain-Dialect: plugin` (§6.1 [1.2]).
fn dialect_of(req: &Request) -> Result<Dialect, ApiError> {
    Ok(Dialect::parse(req.headers().get("x-sidechain-dialect")?.as_deref())?)
}

pub async fn history(req: &Request, env: &Env, who: &Identity, id: &str) -> ApiResult {
    let actor = admit(who, id, Access::Read)?;
    let since = query_u64(req, "since")?.unwrap_or(0);
    let limit = query_u64(req, "limit")?.unwrap_or(crate::limits::HISTORY_DEFAULT_LIMIT);
    if !dialect_of(req)?.is_plugin() {
        return answer(env, id, &actor, &doc::ReadHistory { since, limit }).await;
    }
    let text = rpc::call_text(&object(env, id, &actor), &doc::ReadHistory { since, limit }).await?;
    let mut page: Value = serde_json::from_str(&text).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(items) = page.get_mut("operations").and_then(Value::as_array_mut) {
        items.iter_mut().filter_map(Value::as_object_mut).for_each(crate::dialect::plugin_history_item);
    }
    Ok(json_response(200, &page)?)
}

pub async fn get(req: &Request, env: &Env, who: &Identity, id: &str) -> ApiResult {
    let text = if DocKind::is_yjs(id) { query(req, "text")? } else { None };
    answer(env, id, &admit(who, id, Access::Read)?, &doc::ReadDocument { text }).await
}

/// `POST /documents/ydoc:{id}/update` (§7): a binary Yjs update (`application/octet-stream`) or
/// `{"update": base64}` → 202 `{"version"}`. Up to 1 MiB of update, like a socket's frame.
pub async fn yjs_update(req: &mut Request, env: &Env, who: &Identity, id: &str) -> ApiResult {
    if !DocKind::is_yjs(id) {
        return Err(ApiError::not_found("updates are posted to ydoc: documents"));
    }
    let actor = admit(who, id, Access::Write)?;
    let binary = req.headers().get("content-type")?.is_some_and(|t| t.starts_with("application/octet-stream"));
    let too_large = || ApiError::new(413, "too_large", "a Yjs update over REST is at most 1 MiB");
    let limit = crate::limits::YJS_MAX_FRAME_BYTES * if binary { 1 } else { 2 };
    if req.headers().get("content-length")?.and_then(|l| l.parse::<usize>().ok()).is_some_and(|l| l > limit) {
        return Err(too_large());
    }
    let bytes = req.bytes().await?;
    if bytes.len() > limit {
        return Err(too_large());
    }
    let update = if binary {
        crate::doc::ydoc::b64(&bytes)
    } else {
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?;
        match body.get("update") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(ApiError::bad_request("body must be a binary Yjs update or {\"update\": base64}")),
        }
    };
    let out = rpc::call(&object(env, id, &actor), &doc::ApplyYjsUpdate { update }).await?;
    Ok(json_response(202, &json!({"version": out.version}))?)
}

pub async fn metrics(env: &Env, who: &Identity, id: &str) -> ApiResult {
    answer(env, id, &admit(who, id, Access::Read)?, &doc::ReadMetrics {}).await
}

pub async fn delete(env: &Env, who: &Identity, id: &str) -> ApiResult {
    if !who.is_service {
        return Err(ApiError::forbidden("deleting a document needs a service token"));
    }
    answer(env, id, &admit(who, id, Access::Write)?, &doc::DeleteDocument {}).await
}

/// `POST /documents/{id}/revoke` `{"user_id","until"?}` (service, §5.5 [1.2]) → `{"user_id","until"}`.
pub async fn revoke(req: &mut Request, env: &Env, who: &Identity, id: &str) -> ApiResult {
    if !who.is_service {
        return Err(ApiError::forbidden("revoking access needs a service token"));
    }
    let body = read_json(req).await?;
    let user_id = match body.get("user_id") {
        Some(Value::String(u)) if !u.is_empty() && u.len() <= 256 => u.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(ApiError::bad_request("user_id must be a non-empty string")),
    };
    let until = match body.get("until") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| ApiError::bad_request("until must be milliseconds since the epoch"))?),
    };
    answer(env, id, &admit(who, id, Access::Write)?, &doc::Revoke { user_id, until }).await
}

fn channel_document(channel: &str) -> String {
    format!("channel:{channel}:description")
}

pub async fn get_channel(env: &Env, who: &Identity, channel: &str) -> ApiResult {
    let id = channel_document(channel);
    let actor = admit(who, &id, Access::Read)?;
    let text = rpc::call_text(&object(env, &id, &actor), &doc::ReadDocument { text: None }).await?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json_response(200, &json!({"id": channel, "description": doc["content"], "version": doc["version"]}))?)
}

pub async fn put_channel(req: &mut Request, env: &Env, who: &Identity, channel: &str) -> ApiResult {
    let body = read_json(req).await?;
    let description = body.get("description").and_then(Value::as_str).ok_or_else(|| ApiError::bad_request("description must be a string"))?;
    let version = match body.get("version") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| ApiError::bad_request("version must be a non-negative integer"))?),
    };
    let id = channel_document(channel);
    let actor = admit(who, &id, Access::Write)?;
    let out = rpc::call(&object(env, &id, &actor), &doc::ReplaceText { text: description.to_string(), version }).await?;
    Ok(json_response(200, &json!({"id": channel, "description": out.content, "version": out.version, "status": out.status}))?)
}
