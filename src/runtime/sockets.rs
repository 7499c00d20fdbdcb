//! Hibernating WebSockets, wrapped once for every object that holds them (partyserver's
//! `connection.ts`): sending frames, the runtime's own ping answer, close codes, per-socket
//! message budgets, and the upgrade check of the Worker's routes.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::{Env, Request, State, WebSocket};

use super::bindings;
use super::clock::{frame_id, now_ms};
use super::http::ApiError;
use crate::protocol::{parse_frame, Code, Failure, Outgoing};
use crate::ratelimit::{Admit, SocketBudget, SocketRate};

/// Close codes the server uses.
pub mod close {
    /// The socket kept flooding (policy violation).
    pub const POLICY: u16 = 1008;
    /// The server could not set the socket up; the client should reconnect.
    pub const UNAVAILABLE: u16 = 1011;
    /// The token expired (or an in-band `auth` was refused) (§5.5 [1.2]).
    pub const TOKEN_EXPIRED: u16 = 4401;
    /// The user lost access: revoked, or a new token without a read grant (§5.5 [1.2]).
    pub const FORBIDDEN: u16 = 4403;
    /// The document was deleted.
    pub const DELETED: u16 = 4404;

    /// The code to answer a client's close with (1005/1006 are not codes one may send).
    pub fn echo(code: usize) -> u16 {
        if code == 1005 || code == 1006 || code > u16::MAX as usize {
            1000
        } else {
            code as u16
        }
    }
}

/// Sends one message; a socket that is already closing cannot take more and its close handler
/// cleans up, so a failed send is not an error here.
/// A socket opened with `?dialect=plugin` (§6.1 [1.2]) gets the plugin's form.
pub fn send(ws: &WebSocket, m: Outgoing) {
    #[derive(serde::Deserialize)]
    struct DialectOf {
        #[serde(default)]
        plugin: bool,
    }
    let plugin = ws.deserialize_attachment::<DialectOf>().ok().flatten().is_some_and(|a| a.plugin);
    let text = if plugin { crate::dialect::frame(&m, crate::dialect::Dialect::Plugin, &frame_id(), now_ms()) } else { m.into_frame(&frame_id(), now_ms()) };
    let _ = ws.send_with_str(text);
}

/// Sends one frame text made once for many sockets.
pub fn send_text(ws: &WebSocket, frame: &str) -> bool {
    ws.send_with_str(frame).is_ok()
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The runtime's WebSocket, seen only for a `send` that takes a JavaScript string as is.
    type RawSocket;
    #[wasm_bindgen(method, js_name = send, catch)]
    fn send_value(this: &RawSocket, data: &wasm_bindgen::JsValue) -> Result<(), wasm_bindgen::JsValue>;
}

/// A frame text copied into the JavaScript runtime once, then sent to any number of sockets
/// without another copy or conversion (§9: one text serves the whole room).
pub struct SharedFrame(wasm_bindgen::JsValue);

impl SharedFrame {
    pub fn new(text: &str) -> Self {
        SharedFrame(wasm_bindgen::JsValue::from_str(text))
    }

    /// A binary frame (Yjs, §7), copied into the runtime once for every socket.
    pub fn binary(bytes: &[u8]) -> Self {
        SharedFrame(worker::js_sys::Uint8Array::from(bytes).into())
    }

    pub fn send(&self, ws: &WebSocket) -> bool {
        use wasm_bindgen::JsCast;
        let raw: &worker::web_sys::WebSocket = ws.as_ref();
        raw.unchecked_ref::<RawSocket>().send_value(&self.0).is_ok()
    }
}

/// The exact frame `{"type":"ping"}` is answered by the runtime, without waking the object.
pub fn answer_pings_while_asleep(state: &State) {
    if let Ok(pair) = worker::WebSocketRequestResponsePair::new(r#"{"type":"ping"}"#, r#"{"type":"pong"}"#) {
        state.set_websocket_auto_response(&pair);
    }
}

/// Whether the request asks for a WebSocket upgrade; without one, a socket URL is a probe that
/// answers what the upgrade would get (§5.5 [1.2]).
pub fn is_upgrade(req: &Request) -> bool {
    req.headers().get("upgrade").ok().flatten().is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

/// The 101 answer for a document socket the object accepted. It declines permessage-deflate
/// (an empty `Sec-WebSocket-Extensions` asks the runtime not to negotiate it): compression runs
/// once per socket for every frame, on the room's one thread, so a frame shared by the whole
/// room (§9) would be compressed once per socket. Measured with `bench/hot-documents.mjs`
/// (docs/benchmarks.md): 64 writers went from 0.75 to 0.29 ms of runtime CPU per operation.
pub fn upgraded_uncompressed(client: worker::WebSocket) -> worker::Result<worker::Response> {
    let headers = worker::Headers::new();
    headers.set("sec-websocket-extensions", "")?;
    Ok(worker::Response::from_websocket(client)?.with_headers(headers))
}

/// The answer of a probe that found nothing to refuse.
pub fn probe_ok() -> Result<worker::Response, ApiError> {
    Ok(super::http::json_text_response(200, r#"{"ok":true}"#)?)
}

/// When a socket whose token expires at `exp` (seconds; 0: never) must be gone (ms): 60 s later,
/// or `TOKEN_GRACE_MS` in tests (§5.5 [1.2]).
pub fn expiry_due(env: &Env, exp: u64) -> Option<u64> {
    let grace = bindings::number(env, bindings::TOKEN_GRACE_MS, crate::limits::TOKEN_GRACE_MS);
    (exp > 0).then(|| exp.saturating_mul(1000).saturating_add(grace))
}

/// The `exp` the Worker put in a connect's query (`&exp=`), 0 when absent.
pub fn connect_exp(req: &Request) -> u64 {
    let url = req.url().ok();
    url.and_then(|u| u.query_pairs().find(|(k, _)| k == "exp").and_then(|(_, v)| v.parse().ok())).unwrap_or(0)
}

/// 429 `too_many_connections` (§5.1 [1.2]).
pub fn too_many_connections(limit: usize, place: &str) -> ApiError {
    ApiError::new(429, "too_many_connections", format!("at most {limit} open sockets per user {place}; close one first"))
        .with_details(serde_json::json!({"retry_after": 5, "limit": limit}))
}

/// Message budgets (§3.4), per key: since v1.2 a user (on a document, on the channel), shared by
/// all of their sockets there (§5.1). Kept in memory: an object only hibernates when its sockets
/// are quiet, and a quiet socket has a full budget anyway.
pub struct Budgets {
    rate: SocketRate,
    sockets: RefCell<HashMap<String, SocketBudget>>,
}

impl Budgets {
    /// The protocol's 20/s with bursts of 100, unless `SOCKET_RATE_PER_SEC` / `SOCKET_BURST`
    /// say otherwise (load tests raise them).
    pub fn from_env(env: &Env) -> Self {
        Self::configured(env, SocketRate::default(), bindings::SOCKET_RATE_PER_SEC, bindings::SOCKET_BURST)
    }

    /// Yjs sockets' budget (§7: 60/s, bursts of 200), unless `YJS_RATE_PER_SEC` / `YJS_BURST`
    /// say otherwise: a benchmark's writer sends faster, and over the budget y-websocket would
    /// reconnect and spend it again.
    pub fn yjs_from_env(env: &Env) -> Self {
        Self::configured(env, SocketRate::yjs(), bindings::YJS_RATE_PER_SEC, bindings::YJS_BURST)
    }

    fn configured(env: &Env, default: SocketRate, per_sec: &str, burst: &str) -> Self {
        let var = |name: &str| env.var(name).ok().map(|v| v.to_string());
        let rate = default.overridden(var(per_sec).as_deref(), var(burst).as_deref());
        Budgets { rate, sockets: RefCell::new(HashMap::new()) }
    }

    /// A binary frame's budget: the y-websocket protocol has no error message, and a dropped
    /// update would be lost, so a refused frame closes the socket (1008); the client reconnects
    /// and syncs everything it has.
    pub fn admit_binary(&self, ws: &WebSocket, key: &str) -> bool {
        let now = now_ms();
        let rate = self.rate;
        let verdict = self.sockets.borrow_mut().entry(key.to_string()).or_insert_with(|| SocketBudget::new(now, rate)).admit(now);
        if matches!(verdict, Admit::Accept) {
            return true;
        }
        let _ = ws.close(Some(close::POLICY), Some("rate limit exceeded"));
        false
    }

    /// Whether the message may be handled; otherwise the socket has been answered or closed.
    pub fn admit(&self, ws: &WebSocket, key: &str, text: &str) -> bool {
        let now = now_ms();
        let rate = self.rate;
        let verdict = self.sockets.borrow_mut().entry(key.to_string()).or_insert_with(|| SocketBudget::new(now, rate)).admit(now);
        match verdict {
            Admit::Accept => true,
            Admit::Refuse { retry_after_ms } => {
                let id = parse_frame(text).ok().and_then(|f| f.id);
                let f = Failure::new(Code::RateLimited, "more than 20 messages a second on this socket; slow down");
                send(ws, Outgoing::error_with(&f, id, None, Some(retry_after_ms)));
                false
            }
            // The budget is kept (not reset): the key's other sockets sharing it are closed too on
            // their next refused message, and never get a fresh burst from a close.
            Admit::Close => {
                let _ = ws.close(Some(close::POLICY), Some("rate limit exceeded"));
                false
            }
        }
    }

    pub fn forget(&self, key: &str) {
        self.sockets.borrow_mut().remove(key);
    }
}
