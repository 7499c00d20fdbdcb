//! Deleting a channel as a whole (§6.4 [1.2]): every document recorded under it, each deleted as
//! `DELETE /documents/{id}` deletes one, a few at a time.

use futures_util::future::join_all;
use serde_json::json;
use worker::Env;

use super::documents::admit;
use crate::auth::{Access, Identity};
use crate::channels::valid_channel_id;
use crate::d1::channel_documents;
use crate::objects::document::client::{object, DeleteDocument};
use crate::runtime::bindings;
use crate::runtime::http::{json_response, ApiError, ApiResult};
use crate::runtime::rpc;

/// Objects deleted at once.
const DELETE_FAN_OUT: usize = 8;

/// `DELETE /api/v1/channels/{id}` (service) → `{"deleted":[document ids]}`; idempotent.
pub async fn delete(env: &Env, who: &Identity, channel_id: &str) -> ApiResult {
    if !who.is_service {
        return Err(ApiError::forbidden("deleting a channel needs a service token"));
    }
    if !valid_channel_id(channel_id) {
        return Err(ApiError::bad_request("channel id must match ^[A-Za-z0-9_.:@-]{1,246}$"));
    }
    let started = worker::Date::now().as_millis();
    let db = env.d1(bindings::DB)?;
    let ids = channel_documents::list(&db, channel_id).await?;
    let mut deleted = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(DELETE_FAN_OUT) {
        let calls = chunk.iter().map(|id| async move {
            let actor = admit(who, id, Access::Write)?;
            rpc::call(&object(env, id, &actor), &DeleteDocument {}).await.map(|_| id.clone())
        });
        for done in join_all(calls).await {
            deleted.push(done?);
        }
        // Forgotten as they go: a retry after a failure resumes where this one stopped.
        channel_documents::forget(&db, &deleted[deleted.len() - chunk.len()..], started).await?;
    }
    Ok(json_response(200, &json!({ "deleted": deleted }))?)
}
