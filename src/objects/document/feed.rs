//! A post's feed reads (§6.2): its comments, a page at a time, from the object's SQLite; and
//! the main backend's import of its engagement (§6.3).

use super::client::{ImportEngagement, ReadComments};
use super::DocumentRoom;
use crate::feed::comments_page_json;
use crate::model::Actor;
use crate::runtime::clock::now_ms;
use crate::runtime::http::{json_text_response, ApiError, ApiResult};
use crate::runtime::rpc::RawJson;

impl DocumentRoom {
    /// Merges the main backend's engagement as one operation (§6.3), acked once durable.
    pub(super) async fn import(&self, actor: &Actor, req: ImportEngagement) -> ApiResult {
        let client_id = format!("import:{}", actor.user_id);
        let done = self.host.with_room(|room, store| room.submit_import(actor, &client_id, req.batch, now_ms(), store))??;
        let ack = done.ack.payload_json().to_string();
        if !self.commit(done.effects, None).await {
            return Err(ApiError::internal("storage write failed; nothing was imported"));
        }
        Ok(json_text_response(200, &ack)?)
    }

    /// Live comments, newest first, strictly before the cursor.
    pub(super) fn read_comments(&self, q: ReadComments) -> Result<RawJson, ApiError> {
        let is_post = self.host.with_room(|r, _| r.summary().is_some())?;
        if !is_post {
            return Err(ApiError::bad_request("only posts have comments"));
        }
        let limit = q.limit.clamp(1, crate::feed::COMMENTS_MAX_LIMIT);
        let rows = self.host.store().comments_page(limit, q.before_at.map(|t| (t, q.before_id.as_deref())))?;
        Ok(RawJson(comments_page_json(&rows, limit).to_string()))
    }
}
