//! Reading a request: who sends it (the token), its query parameters and its JSON body.

use serde_json::Value;
use worker::{Env, Request};

use crate::auth::{bearer_token, verify, Identity};
use crate::limits;
use crate::runtime::bindings;
use crate::runtime::http::ApiError;

/// Authenticates the caller; `allow_query` accepts `?token=` (WebSocket upgrades only).
pub fn authenticate(req: &Request, env: &Env, allow_query: bool) -> Result<Identity, ApiError> {
    let query_token = if allow_query { query(req, "token")? } else { None };
    let header = req.headers().get("authorization")?;
    let token = bearer_token(header.as_deref(), query_token.as_deref())
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    verify(token, &bindings::auth_config(env), worker::Date::now().as_millis() / 1000).map_err(|e| ApiError::unauthorized(e.0))
}

/// A query parameter, decoded.
pub fn query(req: &Request, key: &str) -> Result<Option<String>, ApiError> {
    Ok(req.url()?.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned()))
}

/// An optional non-negative integer query parameter.
pub fn query_u64(req: &Request, key: &str) -> Result<Option<u64>, ApiError> {
    query(req, key)?.map(|v| v.parse().map_err(|_| ApiError::bad_request(format!("{key} must be a non-negative integer")))).transpose()
}

/// Reads a JSON body from its raw text (never the runtime's JSON.parse, which rounds integers
/// above 2^53), refusing bodies over 256 KiB before parsing them.
pub async fn read_json(req: &mut Request) -> Result<Value, ApiError> {
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

