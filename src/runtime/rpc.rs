//! Typed calls between the Worker and its Durable Objects. Each call is a request struct that
//! names its path and its reply type ([`Call`]), so the caller and the object read and write the
//! same structs; bodies are JSON text parsed with serde_json on both ends (never the runtime's
//! JSON.parse, which rounds integers above 2^53). The Worker has authenticated the caller; it
//! passes the actor and the document in headers only it can set, since objects are reachable
//! through their namespace binding alone.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// One kind of call to an object: its path, and what it answers.
pub trait Call: Serialize + DeserializeOwned {
    const PATH: &'static str;
    type Reply: Serialize + DeserializeOwned;
}

/// Declares a call: `call!(Request, "/path", Reply);`.
#[macro_export]
macro_rules! call {
    ($req:ty, $path:literal, $reply:ty) => {
        impl $crate::runtime::rpc::Call for $req {
            const PATH: &'static str = $path;
            type Reply = $reply;
        }
    };
}

/// A reply kept as the JSON text the object made (an ack, a document's state, a history page):
/// relayed without being parsed and serialised again.
#[derive(Clone, Debug, PartialEq)]
pub struct RawJson(pub String);

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RawJson(Box::<RawValue>::deserialize(d)?.get().to_string()))
    }
}

/// The empty reply of calls that only say "done".
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Done {}

#[cfg(target_arch = "wasm32")]
pub use worker_side::*;

#[cfg(target_arch = "wasm32")]
mod worker_side {
    use serde::Serialize;
    use worker::{Env, Headers, Method, Request, RequestInit, Response};

    use super::{Call, RawJson};
    use crate::model::Actor;
    use crate::runtime::http::{json_text_response, ApiError, ApiResult};

    const DOCUMENT_HEADER: &str = "x-sc-document";
    const ACTOR_HEADER: &str = "x-sc-actor";

    /// One object: the namespace it lives in, its name, and on whose behalf it is called.
    pub struct ObjectRef<'a> {
        pub env: &'a Env,
        pub binding: &'static str,
        pub name: &'a str,
        pub actor: Option<&'a Actor>,
        /// Document objects learn their own id from every call.
        pub document_id: Option<&'a str>,
    }

    impl ObjectRef<'_> {
        fn headers(&self, upgrade: Option<&Request>) -> worker::Result<Headers> {
            let headers = Headers::new();
            if let Some(req) = upgrade {
                for (k, v) in req.headers().entries() {
                    headers.set(&k, &v)?;
                }
            }
            if let Some(a) = self.actor {
                headers.set(ACTOR_HEADER, &serde_json::to_string(a).unwrap_or_default())?;
            }
            if let Some(d) = self.document_id {
                headers.set(DOCUMENT_HEADER, d)?;
            }
            Ok(headers)
        }

        async fn send(&self, method: Method, path: &str, body: Option<String>, upgrade: Option<&Request>) -> Result<Response, ApiError> {
            let headers = self.headers(upgrade)?;
            if body.is_some() {
                headers.set("content-type", "application/json")?;
            }
            let mut init = RequestInit::new();
            init.with_method(method).with_headers(headers).with_body(body.map(Into::into));
            let stub = self.env.durable_object(self.binding)?.id_from_name(self.name)?.get_stub()?;
            Ok(stub.fetch_with_request(Request::new_with_init(&format!("https://object{path}"), &init)?).await?)
        }
    }

    /// Makes call `C` and reads its typed reply; an error answer comes back as that error.
    pub async fn call<C: Call>(target: &ObjectRef<'_>, req: &C) -> Result<C::Reply, ApiError> {
        let text = call_text(target, req).await?;
        serde_json::from_str(&text).map_err(|e| ApiError::internal(format!("{}: unreadable reply: {e}", C::PATH)))
    }

    /// Makes call `C` and returns its reply as JSON text.
    pub async fn call_text<C: Call>(target: &ObjectRef<'_>, req: &C) -> Result<String, ApiError> {
        let body = serde_json::to_string(req).map_err(|e| ApiError::internal(e.to_string()))?;
        let mut resp = target.send(Method::Post, C::PATH, Some(body), None).await?;
        let status = resp.status_code();
        let text = resp.text().await?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(ApiError::from_answer(status, &text))
        }
    }

    /// Hands a WebSocket upgrade to the object; its answer (101, or an error) is returned as is.
    pub async fn upgrade(target: &ObjectRef<'_>, path_and_query: &str, req: &Request) -> Result<Response, ApiError> {
        target.send(Method::Get, path_and_query, None, Some(req)).await
    }

    /// What an object is told besides the body: the caller's actor and document, if any.
    pub struct Incoming {
        pub path: String,
        pub actor: Option<Actor>,
        pub document_id: Option<String>,
    }

    impl Incoming {
        pub fn of(req: &Request) -> Result<Incoming, ApiError> {
            let actor = match req.headers().get(ACTOR_HEADER)? {
                Some(h) => Some(serde_json::from_str(&h).map_err(|e| ApiError::internal(format!("bad actor header: {e}")))?),
                None => None,
            };
            Ok(Incoming { path: req.path(), actor, document_id: req.headers().get(DOCUMENT_HEADER)? })
        }

        /// The acting user; calls made by the system carry none.
        pub fn actor(&self) -> Actor {
            self.actor.clone().unwrap_or_else(|| Actor::system("system"))
        }
    }

    /// The body of call `C`, parsed from its raw text.
    pub async fn read<C: Call>(req: &mut Request) -> Result<C, ApiError> {
        let text = req.text().await?;
        serde_json::from_str(&text).map_err(|e| ApiError::bad_request(format!("{}: malformed body: {e}", C::PATH)))
    }

    /// The 200 answer of a call.
    pub fn reply<T: Serialize>(value: &T) -> ApiResult {
        let text = serde_json::to_string(value).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(json_text_response(200, &text)?)
    }

    /// The 200 answer of a call whose reply is JSON text already.
    pub fn reply_raw(raw: &RawJson) -> ApiResult {
        Ok(json_text_response(200, &raw.0)?)
    }
}
