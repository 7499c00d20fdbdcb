//! What `InboxShard` answers about one user's inbox: pages of notifications and of the activity
//! timeline, marking read, and who holds an event.

use serde::Deserialize;
use serde_json::{json, Value};
use worker::Request;

use super::inbox::parse_read;
use super::inbox_shard::{int, text, Count, InboxShard, ItemRow};
use super::internal::{self, Query};
use crate::http::{json_response, ApiError, ApiResult};

const PAGE_DEFAULT: u64 = 50;
const PAGE_MAX: u64 = 100;
const MAX_SAFE: i64 = (1 << 53) - 1;

impl InboxShard {
    /// `POST /read?user_id= {"event_ids":[…]} | {"all":true}` → `{"count","generation"}`.
    pub(super) async fn read(&self, req: &mut Request) -> ApiResult {
        let user_id = Query::of(&req.url()?).str("user_id").ok_or_else(|| ApiError::bad_request("user_id is required"))?;
        let body: Value = internal::body_json(req).await?;
        match parse_read(&body)? {
            None => {
                self.sql.exec("UPDATE inbox SET read = 1 WHERE user_id = ? AND read = 0", Some(vec![text(&user_id)]))?;
            }
            Some(ids) => {
                for id in ids {
                    self.sql.exec("UPDATE inbox SET read = 1 WHERE user_id = ? AND event_id = ?", Some(vec![text(&user_id), text(&id)]))?;
                }
            }
        }
        let count = Count { unread: self.unread(&user_id)?, clock: self.tick()? };
        Ok(json_response(200, &json!({ "count": count, "generation": self.generation(&user_id)? }))?)
    }

    /// `GET /holders?event_id=`: the users of this shard whose inbox holds the event (operators
    /// and tests check a fan-out with it: one call per shard rather than one per user).
    pub(super) fn holders(&self, req: &Request) -> ApiResult {
        #[derive(Deserialize)]
        struct User {
            user_id: String,
        }
        let event_id = Query::of(&req.url()?).str("event_id").ok_or_else(|| ApiError::bad_request("event_id is required"))?;
        let rows: Vec<User> = self.sql.exec("SELECT user_id FROM inbox WHERE event_id = ? AND item IS NOT NULL", Some(vec![text(&event_id)]))?.to_array()?;
        Ok(json_response(200, &json!({ "user_ids": rows.into_iter().map(|r| r.user_id).collect::<Vec<_>>() }))?)
    }

    /// `GET /notifications?user_id&limit&before` and `GET /timeline?…`: newest first.
    pub(super) fn page(&self, req: &Request, timeline: bool) -> ApiResult {
        let q = Query::of(&req.url()?);
        let user_id = q.str("user_id").ok_or_else(|| ApiError::bad_request("user_id is required"))?;
        let limit = q.u64("limit")?.unwrap_or(PAGE_DEFAULT);
        if limit == 0 || limit > PAGE_MAX {
            return Err(ApiError::bad_request("limit must be between 1 and 100"));
        }
        // Bound to what JavaScript numbers hold exactly.
        let before = q.u64("before")?.map_or(MAX_SAFE, |b| b.min(MAX_SAFE as u64) as i64);
        let query = if timeline {
            "SELECT item, 0 AS read FROM activities WHERE user_id = ? AND created_at < ? ORDER BY created_at DESC LIMIT ?"
        } else {
            "SELECT item, read FROM inbox WHERE user_id = ? AND item IS NOT NULL AND created_at < ? ORDER BY created_at DESC LIMIT ?"
        };
        let rows: Vec<ItemRow> = self.sql.exec(query, Some(vec![text(&user_id), int(before), int(limit as i64 + 1)]))?.to_array()?;
        let more = rows.len() as u64 > limit;
        let items: Vec<Value> = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| if timeline { serde_json::from_str(&r.item).unwrap_or_default() } else { with_read(r) })
            .collect();
        let next_before = if more { items.last().and_then(|i| i["created_at"].as_u64()) } else { None };
        let body = if timeline {
            json!({ "activities": items, "next_before": next_before })
        } else {
            json!({ "notifications": items, "unread": self.unread(&user_id)?, "next_before": next_before })
        };
        Ok(json_response(200, &body)?)
    }
}


/// The stored item with its current read flag.
pub(super) fn with_read(row: ItemRow) -> Value {
    let mut item: Value = serde_json::from_str(&row.item).unwrap_or_default();
    if item.is_object() {
        item["read"] = json!(row.read != 0.0);
    }
    item
}
