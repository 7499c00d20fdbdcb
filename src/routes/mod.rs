//! The Worker's front door: request ids, CORS, authentication, routing to the handlers.

mod documents;

use serde_json::{json, Value};
use worker::{Env, Headers, Method, Request, Response, Result};

use crate::auth::{bearer_token, verify, AuthConfig, Identity};
use crate::http::{json_response, ApiError, ApiResult};
use crate::limits;
use crate::shell::internal::Query;

pub async fn handle(req: Request, env: Env) -> Result<Response> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let origin = req.headers().get("origin")?;
    let resp = match route(req, &env).await {
        Ok(r) => r,
        Err(e) => e.into_response()?,
    };
    if resp.status_code() == 101 {
        return Ok(resp);
    }
    // A fresh header set: headers of responses relayed from an object are immutable.
    let headers = Headers::new();
    for (k, v) in resp.headers().entries() {
        headers.set(&k, &v)?;
    }
    headers.set("x-request-id", &request_id)?;
    add_cors(&headers, &env, origin.as_deref())?;
    Ok(resp.with_headers(headers))
}

async fn route(mut req: Request, env: &Env) -> ApiResult {
    let url = req.url()?;
    let segments: Vec<String> = url
        .path_segments()
        .map(|s| s.map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned()).collect())
        .unwrap_or_default();
    let segs: Vec<&str> = segments.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    let method = req.method();
    if method == Method::Options {
        return Ok(Response::empty()?.with_status(204));
    }
    let allowed: &[Method] = match segs.as_slice() {
        ["health"] => &[Method::Get],
        ["ws", "documents", _] => &[Method::Get],
        ["api", "v1", "operations", "apply"] => &[Method::Post],
        ["api", "v1", "operations", "history", _] => &[Method::Get],
        ["api", "v1", "documents", _] => &[Method::Get, Method::Delete],
        ["api", "v1", "documents", _, "metrics"] => &[Method::Get],
        ["api", "v1", "channels", _] => &[Method::Get],
        ["api", "v1", "channels", _, "description"] => &[Method::Put],
        _ => return Err(ApiError::not_found(format!("no route for {}", url.path()))),
    };
    if !allowed.contains(&method) {
        let names: Vec<String> = allowed.iter().map(|m| m.to_string()).collect();
        return Err(ApiError::new(405, "method_not_allowed", format!("{method} is not allowed here; use {}", names.join(", "))));
    }
    match segs.as_slice() {
        ["health"] => Ok(json_response(200, &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))?),
        ["ws", "documents", id] => documents::upgrade(&req, env, id).await,
        ["api", "v1", "operations", "apply"] => documents::apply(&mut req, env).await,
        ["api", "v1", "operations", "history", id] => documents::history(&req, env, id).await,
        ["api", "v1", "documents", id] if method == Method::Get => documents::get(&req, env, id).await,
        ["api", "v1", "documents", id] => documents::delete(&req, env, id).await,
        ["api", "v1", "documents", id, "metrics"] => documents::metrics(&req, env, id).await,
        ["api", "v1", "channels", id] => documents::get_channel(&req, env, id).await,
        ["api", "v1", "channels", id, "description"] => documents::put_channel(&mut req, env, id).await,
        _ => Err(ApiError::not_found("no such route")),
    }
}

fn string_binding(env: &Env, name: &str) -> Option<String> {
    env.secret(name).ok().map(|s| s.to_string()).or_else(|| env.var(name).ok().map(|v| v.to_string())).filter(|s| !s.is_empty())
}

/// Authenticates the caller; `allow_query` accepts `?token=` (WebSocket upgrades only).
pub fn authenticate(req: &Request, env: &Env, allow_query: bool) -> std::result::Result<Identity, ApiError> {
    let query_token = if allow_query { Query::of(&req.url()?).str("token") } else { None };
    let header = req.headers().get("authorization")?;
    let token = bearer_token(header.as_deref(), query_token.as_deref())
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    let config = AuthConfig {
        secret: string_binding(env, "JWT_SECRET").unwrap_or_default(),
        issuer: string_binding(env, "JWT_ISSUER"),
        audience: string_binding(env, "JWT_AUDIENCE"),
    };
    verify(token, &config, worker::Date::now().as_millis() / 1000).map_err(|e| ApiError::unauthorized(e.0))
}

/// Reads a JSON body, refusing bodies over 256 KiB before parsing them.
pub async fn read_json(req: &mut Request) -> std::result::Result<Value, ApiError> {
    let too_large = || ApiError::new(413, "too_large", "request body exceeds 256 KiB");
    if let Some(len) = req.headers().get("content-length")?.and_then(|l| l.parse::<usize>().ok()) {
        if len > limits::MAX_BODY_BYTES {
            return Err(too_large());
        }
    }
    let bytes = req.bytes().await?;
    if bytes.len() > limits::MAX_BODY_BYTES {
        return Err(too_large());
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

fn add_cors(headers: &Headers, env: &Env, origin: Option<&str>) -> Result<()> {
    let allowed = string_binding(env, "CORS_ORIGIN").unwrap_or_else(|| "*".into());
    let value = match origin {
        Some(o) if allowed == "*" || allowed.split(',').any(|a| a.trim() == o) => o.to_string(),
        _ if allowed == "*" => "*".to_string(),
        _ => return Ok(()),
    };
    headers.set("access-control-allow-origin", &value)?;
    headers.set("vary", "Origin")?;
    headers.set("access-control-allow-methods", "GET, POST, PUT, DELETE, OPTIONS")?;
    headers.set("access-control-allow-headers", "authorization, content-type")?;
    headers.set("access-control-expose-headers", "x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, x-cache")?;
    headers.set("access-control-max-age", "86400")?;
    Ok(())
}
