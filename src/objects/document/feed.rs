//! A post's feed reads (§6.2): its comments, a page at a time, from the object's SQLite.

use super::client::ReadComments;
use super::DocumentRoom;
use crate::feed::comments_page_json;
use crate::runtime::http::ApiError;
use crate::runtime::rpc::RawJson;

impl DocumentRoom {
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
