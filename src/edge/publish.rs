//! The publish API for the main backend (§4.8 [1.1]), service tokens only: notifications to
//! users (fanned out through a queue) and events to every socket of a document.

use serde_json::json;
use worker::{Env, Request};

use super::documents::{admit, answer};
use super::notify_queue;
use super::request::read_json;
use crate::auth::{Access, Identity};
use crate::objects::document::client::Broadcast;
use crate::publish::Publish;
use crate::runtime::http::{json_response, ApiError, ApiResult};

fn service_only(who: &Identity) -> Result<(), ApiError> {
    if who.is_service {
        Ok(())
    } else {
        Err(ApiError::forbidden("the publish API needs a service token"))
    }
}

/// `POST /api/v1/notify` → 202 `{"event_id","recipients"}` once the fan-out is queued.
pub async fn notify(req: &mut Request, env: &Env, who: &Identity) -> ApiResult {
    service_only(who)?;
    let body = read_json(req).await?;
    let now = worker::Date::now().as_millis();
    let p = Publish::parse(&body, now, || uuid::Uuid::new_v4().to_string())?;
    if let Err(e) = notify_queue::enqueue(env, &p).await {
        // Some messages may be queued already: repeating the call with this event id completes
        // it without delivering anything twice.
        return Err(ApiError::internal(format!("queueing the fan-out failed: {e}; repeat the call with this event_id")).with_details(json!({"event_id": p.event_id})));
    }
    Ok(json_response(202, &json!({"event_id": p.event_id, "recipients": p.user_ids.len()}))?)
}

/// `POST /api/v1/notify/dead-letters/replay` `{}` or `{"limit"}` (1–100, default 100) → 202
/// `{"replayed"}`: the oldest dead letters not replayed yet go back on the fan-out queue (shards
/// recognise the event ids, so recipients who had it get nothing twice).
pub async fn replay_dead_letters(req: &mut Request, env: &Env, who: &Identity) -> ApiResult {
    service_only(who)?;
    let body = read_json(req).await?;
    let limit = match body.get("limit") {
        None | Some(serde_json::Value::Null) => 100,
        Some(v) => v.as_u64().filter(|n| (1..=100).contains(n)).ok_or_else(|| ApiError::bad_request("limit must be an integer from 1 to 100"))?,
    };
    let db = env.d1(crate::runtime::bindings::DB)?;
    let bodies = crate::d1::notify_ledger::take_for_replay(&db, limit as u32, worker::Date::now().as_millis()).await?;
    let n = bodies.len();
    notify_queue::send_bodies(env, bodies).await?;
    Ok(json_response(202, &json!({"replayed": n}))?)
}

/// `POST /api/v1/documents/{id}/broadcast` `{"name","data"}` → `room_event` to every socket.
pub async fn broadcast(req: &mut Request, env: &Env, who: &Identity, document_id: &str) -> ApiResult {
    service_only(who)?;
    let actor = admit(who, document_id, Access::Write)?;
    let body = read_json(req).await?;
    let event = crate::publish::parse_broadcast(&body)?;
    let mut resp = answer(env, document_id, &actor, &Broadcast { event }).await?;
    resp = resp.with_status(202);
    Ok(resp)
}
