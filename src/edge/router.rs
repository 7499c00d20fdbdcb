//! The Worker's front door: request ids, CORS, authentication, rate limits, routing.

use serde_json::json;
use worker::{Env, Headers, Method, Request, Response, Result};

use super::{channels, documents, errors, feed, health, me, posts, publish, request_metrics};
use super::request::authenticate;
use crate::auth::Identity;
use crate::objects::rate_limiter;
use crate::ratelimit::{subject_of, Decision, RateClass};
use crate::runtime::sockets::is_upgrade;
use crate::runtime::bindings;
use crate::runtime::http::{ApiError, ApiResult};
use crate::runtime::log;

pub async fn handle(req: Request, env: Env, ctx: worker::Context) -> Result<Response> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let started = worker::Date::now().as_millis();
    let origin = req.headers().get("origin")?;
    let (method, path) = (req.method().to_string(), req.path());
    let (result, rate, user_id) = route(req, &env).await;
    let code = result.as_ref().err().map(|e| e.code.clone());
    // Every 429 carries an integer Retry-After (§4.6), also those of objects (too_many_connections).
    let retry_after = result.as_ref().err().filter(|e| e.status == 429).map(|e| e.details.as_ref().and_then(|d| d["retry_after"].as_u64()).unwrap_or(1));
    let resp = match result {
        Ok(r) => r,
        Err(e) => without_detail(e, &request_id).into_response()?,
    };
    let duration_ms = worker::Date::now().as_millis().saturating_sub(started);
    request_metrics::request(&env, &ctx, &path, resp.status_code(), code.as_deref(), duration_ms);
    log::event("request", &[
        ("request_id", json!(request_id)),
        ("method", json!(method)),
        ("path", json!(path)),
        ("document_id", json!(crate::metrics::document_of_path(&path))),
        ("user_id", json!(user_id)),
        ("status", json!(resp.status_code())),
        ("duration_ms", json!(duration_ms)),
        ("code", json!(code)),
    ]);
    if resp.status_code() == 101 {
        return Ok(resp);
    }
    // A fresh header set: headers of responses relayed from an object are immutable.
    let headers = Headers::new();
    for (k, v) in resp.headers().entries() {
        headers.set(&k, &v)?;
    }
    headers.set("x-request-id", &request_id)?;
    if let Some(secs) = retry_after {
        headers.set("retry-after", &secs.max(1).to_string())?;
    }
    if let Some(d) = rate {
        headers.set("x-ratelimit-limit", &d.limit.to_string())?;
        headers.set("x-ratelimit-remaining", &d.remaining.to_string())?;
        headers.set("x-ratelimit-reset", &d.reset_secs.to_string())?;
        if !d.allowed {
            headers.set("retry-after", &d.reset_secs.to_string())?;
        }
    }
    add_cors(&headers, &env, origin.as_deref())?;
    Ok(resp.with_headers(headers))
}

/// §5.7: an `internal` error's detail (runtime, SQL or binding text) goes to the log line only;
/// the client gets "internal error" and the request id to quote.
fn without_detail(e: ApiError, request_id: &str) -> ApiError {
    if e.code != "internal" {
        return e;
    }
    log::error("internal", &e.message, &[("request_id", json!(request_id))]);
    ApiError::internal("internal error").with_details(json!({"request_id": request_id}))
}

/// Routes one request; also returns the rate-limit decision (API routes, for the headers) and
/// the authenticated user (for the log line).
async fn route(mut req: Request, env: &Env) -> (ApiResult, Option<Decision>, Option<String>) {
    let url = match req.url() {
        Ok(u) => u,
        Err(e) => return (Err(e.into()), None, None),
    };
    let segments: Vec<String> = url
        .path_segments()
        .map(|s| s.map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned()).collect())
        .unwrap_or_default();
    // Empty segments are kept: `/ws/` (what `/ws/documents/..` normalises to) is not `/ws`.
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method();
    if method == Method::Options {
        return (Response::empty().map(|r| r.with_status(204)).map_err(Into::into), None, None);
    }
    match segs.as_slice() {
        ["health"] if method == Method::Get => {
            // §5.7: the checks (and binding names) are for service tokens only.
            let service = authenticate(&req, env, false).is_ok_and(|who| who.is_service);
            (health::health(env, service).await, None, None)
        }
        // `/ws/document/{id}`: the old session server's route (§6.1 [1.2]).
        ["ws", "documents" | "document", id] if method == Method::Get => {
            let (who, rate) = upgrade_gate(&req, env).await;
            let user = who.as_ref().ok().map(|w| w.user_id.clone());
            (documents::upgrade(&req, env, id, who).await, rate, user)
        }
        ["ws"] if method == Method::Get => {
            let (who, rate) = upgrade_gate(&req, env).await;
            let user = who.as_ref().ok().map(|w| w.user_id.clone());
            (me::channel(&req, env, who).await, rate, user)
        }
        ["api", "v1", rest @ ..] => {
            let rest = rest.to_vec();
            let who = authenticate(&req, env, false);
            let user = who.as_ref().ok().map(|w| w.user_id.clone());
            let ip = req.headers().get("cf-connecting-ip").ok().flatten().unwrap_or_else(|| "unknown".into());
            let ok = who.as_ref().ok();
            let (subject, class) = subject_of(ok.map(|w| w.user_id.as_str()), ok.is_some_and(|w| w.is_service), &ip, RateClass::of(method.as_ref(), &rest));
            let decision = match rate_limiter::check(env, &subject, class).await {
                Ok(d) => d,
                Err(e) => return (Err(e), None, user),
            };
            if !decision.allowed {
                return (Err(rate_limited(&decision, "requests")), Some(decision), user);
            }
            (api(&mut req, env, &method, &rest, who).await, Some(decision), user)
        }
        ["health"] | ["ws"] | ["ws", "documents" | "document", _] => (Err(method_not_allowed(&method, &[Method::Get])), None, None),
        _ => (Err(ApiError::not_found(format!("no route for {}", url.path()))), None, None),
    }
}

/// 429 `rate_limited` for a window that is full.
fn rate_limited(d: &Decision, what: &str) -> ApiError {
    let msg = format!("rate limit of {} {what} per minute exceeded; retry in {} s", d.limit, d.reset_secs);
    ApiError::new(429, "rate_limited", msg).with_details(json!({"retry_after": d.reset_secs}))
}

/// The token and the 60 upgrades a minute per user of §5.1 [1.2], on every socket path (one
/// call to the user's limiter). A probe (the same URL without `Upgrade`, §5.5) only looks.
async fn upgrade_gate(req: &Request, env: &Env) -> (std::result::Result<Identity, ApiError>, Option<Decision>) {
    let who = match authenticate(req, env, true) {
        Ok(w) => w,
        Err(e) => return (Err(e), None),
    };
    let (subject, class) = subject_of(Some(&who.user_id), who.is_service, "", RateClass::Upgrade);
    let decision = if is_upgrade(req) { rate_limiter::check(env, &subject, class).await } else { rate_limiter::peek(env, &subject, class).await };
    match decision {
        Err(e) => (Err(e), None),
        Ok(d) if !d.allowed => (Err(rate_limited(&d, "WebSocket upgrades")), Some(d)),
        Ok(d) => (Ok(who), Some(d)),
    }
}

/// The `/api/v1/...` routes. Every one needs a valid token.
async fn api(req: &mut Request, env: &Env, method: &Method, rest: &[&str], who: std::result::Result<Identity, ApiError>) -> ApiResult {
    use Method::{Delete, Get, Patch, Post, Put};
    let allowed: &[Method] = match rest {
        ["operations", "apply"] | ["errors", "batch"] => &[Post],
        ["operations", "history", _] | ["documents", _, "metrics"] | ["errors", "stats"] => &[Get],
        ["channels", _] => &[Get, Delete],
        ["websocket", "metrics"] | ["users", _, "presence"] => &[Get],
        ["users", _, "presence-audience"] => &[Put],
        ["me", "presence"] => &[Put],
        ["errors"] => &[Get],
        ["errors", _] => &[Patch],
        ["documents", _] => &[Get, Delete],
        ["documents", _, "broadcast"] | ["documents", _, "revoke"] | ["documents", _, "update"] | ["notify"] | ["me", "notifications", "read"] | ["notify", "dead-letters", "replay"] => &[Post],
        ["me", "notifications"] | ["activity", "timeline"] => &[Get],
        ["channels", _, "description"] => &[Put],
        ["posts", "engagement"] => &[Get],
        ["posts", _] => &[Put],
        ["posts", _, "engagement"] => &[Get],
        ["posts", _, "engagement", "import"] => &[Post],
        ["posts", _, "likes" | "reposts" | "saves"] => &[Post, Delete],
        ["posts", _, "comments"] => &[Get, Post],
        ["posts", _, "comments", _] => &[Delete],
        _ => return Err(ApiError::not_found(format!("no route for /api/v1/{}", rest.join("/")))),
    };
    if !allowed.contains(method) {
        return Err(method_not_allowed(method, allowed));
    }
    let who = who?;
    match (method, rest) {
        (Post, ["operations", "apply"]) => documents::apply(req, env, &who).await,
        (Get, ["operations", "history", id]) => documents::history(req, env, &who, id).await,
        (Get, ["documents", id]) => documents::get(req, env, &who, id).await,
        (Post, ["documents", id, "update"]) => documents::yjs_update(req, env, &who, id).await,
        (Delete, ["documents", id]) => documents::delete(env, &who, id).await,
        (Get, ["documents", id, "metrics"]) => documents::metrics(env, &who, id).await,
        (Get, ["channels", id]) => documents::get_channel(env, &who, id).await,
        (Delete, ["channels", id]) => channels::delete(env, &who, id).await,
        (Put, ["channels", id, "description"]) => documents::put_channel(req, env, &who, id).await,
        (Post, ["errors", "batch"]) => errors::batch(req, env, &who).await,
        (Get, ["errors", "stats"]) => errors::stats(req, env, &who).await,
        (Get, ["errors"]) => errors::list(req, env, &who).await,
        (Patch, ["errors", id]) => errors::resolve(req, env, &who, id).await,
        (Get, ["websocket", "metrics"]) => errors::websocket_metrics(env, &who).await,
        (Put, ["me", "presence"]) => me::set_presence(req, env, &who).await,
        (Get, ["me", "notifications"]) => me::inbox_page(req, env, &who, false).await,
        (Post, ["me", "notifications", "read"]) => me::mark_read(req, env, &who).await,
        (Get, ["activity", "timeline"]) => me::inbox_page(req, env, &who, true).await,
        (Post, ["notify"]) => publish::notify(req, env, &who).await,
        (Post, ["notify", "dead-letters", "replay"]) => publish::replay_dead_letters(req, env, &who).await,
        (Post, ["documents", id, "broadcast"]) => publish::broadcast(req, env, &who, id).await,
        (Post, ["documents", id, "revoke"]) => documents::revoke(req, env, &who, id).await,
        (Get, ["users", id, "presence"]) => me::get_presence(env, &who, id).await,
        (Put, ["users", id, "presence-audience"]) => me::set_audience(req, env, &who, id).await,
        (Get, ["posts", "engagement"]) => feed::counts(req, env, &who).await,
        (Put, ["posts", id]) => posts::register(req, env, &who, id).await,
        (Get, ["posts", id, "comments"]) => feed::comments(req, env, &who, id).await,
        (Get, ["posts", id, "engagement"]) => posts::counts(env, &who, id).await,
        (Post, ["posts", id, "engagement", "import"]) => posts::import(req, env, &who, id).await,
        (_, ["posts", id, collection]) => posts::act(req, env, &who, id, collection, None).await,
        (_, ["posts", id, "comments", comment]) => posts::act(req, env, &who, id, "comments", Some(comment)).await,
        _ => Err(ApiError::not_found("no such route")),
    }
}

fn method_not_allowed(method: &Method, allowed: &[Method]) -> ApiError {
    let names: Vec<String> = allowed.iter().map(|m| m.to_string()).collect();
    ApiError::new(405, "method_not_allowed", format!("{method} is not allowed here; use {}", names.join(", ")))
}

fn add_cors(headers: &Headers, env: &Env, origin: Option<&str>) -> Result<()> {
    let allowed = bindings::string(env, bindings::CORS_ORIGIN).unwrap_or_else(|| "*".into());
    let value = match origin {
        Some(o) if allowed == "*" || allowed.split(',').any(|a| a.trim() == o) => o.to_string(),
        _ if allowed == "*" => "*".to_string(),
        _ => return Ok(()),
    };
    headers.set("access-control-allow-origin", &value)?;
    headers.set("vary", "Origin")?;
    headers.set("access-control-allow-methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")?;
    headers.set("access-control-allow-headers", "authorization, content-type, x-sidechain-dialect")?;
    headers.set("access-control-expose-headers", "x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, x-cache")?;
    headers.set("access-control-max-age", "86400")?;
    Ok(())
}
