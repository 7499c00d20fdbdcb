//! The private request format between the Worker and its Durable Objects. The Worker has already
//! authenticated the caller; it passes the document id and the caller in headers that only it can
//! set, since objects are reachable through their namespace binding alone.

use serde::{Deserialize, Serialize};
use worker::{Env, Headers, Method, Request, RequestInit, Response, Url};

use crate::http::ApiError;

pub const DOCUMENT_HEADER: &str = "x-sc-document";
pub const ACTOR_HEADER: &str = "x-sc-actor";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: String,
    pub name: String,
    pub can_write: bool,
    #[serde(default)]
    pub is_service: bool,
}

pub fn document_id(req: &Request) -> Result<String, ApiError> {
    req.headers().get(DOCUMENT_HEADER)?.ok_or_else(|| ApiError::bad_request("missing document header"))
}

pub fn actor(req: &Request) -> Result<Actor, ApiError> {
    match req.headers().get(ACTOR_HEADER)? {
        Some(h) => serde_json::from_str(&h).map_err(|e| ApiError::internal(format!("bad actor header: {e}"))),
        None => Ok(Actor { user_id: "system".into(), name: "system".into(), can_write: false, is_service: false }),
    }
}

/// A request body parsed from its raw text with serde_json (never the runtime's JSON.parse,
/// which rounds integers above 2^53).
pub async fn body_json<T: serde::de::DeserializeOwned>(req: &mut Request) -> Result<T, ApiError> {
    let text = req.text().await?;
    serde_json::from_str(&text).map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

/// Query-string access with typed errors.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn of(url: &Url) -> Query {
        Query(url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }
    pub fn str(&self, key: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.str(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| ApiError::bad_request(format!("{key} must be a non-negative integer"))),
        }
    }
}

/// Headers carrying `actor`, plus those of `upgrade` when forwarding a WebSocket upgrade.
pub fn actor_headers(actor: &Actor, upgrade: Option<&Request>) -> worker::Result<Headers> {
    let headers = Headers::new();
    if let Some(req) = upgrade {
        for (k, v) in req.headers().entries() {
            headers.set(&k, &v)?;
        }
    }
    headers.set(ACTOR_HEADER, &serde_json::to_string(actor).unwrap_or_default())?;
    Ok(headers)
}

/// Sends a request to the object called `name` in the namespace bound as `binding`.
pub async fn call_object(
    env: &Env,
    binding: &str,
    name: &str,
    method: Method,
    path: &str,
    body: Option<String>,
    headers: Headers,
) -> worker::Result<Response> {
    if body.is_some() {
        headers.set("content-type", "application/json")?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers).with_body(body.map(Into::into));
    let stub = env.durable_object(binding)?.id_from_name(name)?.get_stub()?;
    stub.fetch_with_request(Request::new_with_init(&format!("https://object{path}"), &init)?).await
}

/// Sends a request to the document object of `document_id`.
pub async fn call_document(
    env: &Env,
    document_id: &str,
    actor: &Actor,
    method: Method,
    path_and_query: &str,
    body: Option<String>,
    upgrade: Option<&Request>,
) -> Result<Response, ApiError> {
    let headers = actor_headers(actor, upgrade)?;
    headers.set(DOCUMENT_HEADER, document_id)?;
    Ok(call_object(env, "DOCUMENT_ROOM", document_id, method, path_and_query, body, headers).await?)
}
