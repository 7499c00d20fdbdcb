//! Inboxes from before the shards: a channel used to keep its user's notifications itself. Its
//! schema migration 2 renamed those tables `legacy_*`; on the next connect the channel hands them
//! to the user's inbox shard (`import_legacy`, then `InboxShard::import`) and drops them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{Env, Method, SqlStorage};

use super::inbox::{call_shard, meta, set_meta};
use super::inbox_shard::{int, text, InboxShard};
use crate::http::{json_response, ApiResult};

/// `POST /import`: what one channel kept before the shards.
#[derive(Deserialize)]
pub struct Import {
    user_id: String,
    inbox: Vec<LegacyItem>,
    activities: Vec<LegacyActivity>,
}

/// What a channel kept before the inbox shards (schema migration 2 renamed it `legacy_*`) goes
/// to the user's shard once, read flags and times intact; until that succeeds it stays.
pub(super) async fn import_legacy(env: &Env, sql: &SqlStorage, user_id: &str) {
    if meta(sql, "legacy_imported").is_some() {
        return;
    }
    // A table that is not there (a channel made after the move) is nothing to import; any other
    // failure leaves everything for the next connect.
    let read = |query: &str| match sql.exec(query, None).and_then(|c| c.to_array::<serde_json::Value>()) {
        Ok(rows) => Some(rows),
        Err(e) if e.to_string().contains("no such table") => Some(Vec::new()),
        Err(e) => {
            super::log::error("inbox_import", e, &[("user_id", user_id.into())]);
            None
        }
    };
    let (Some(inbox), Some(activities)) = (
        read("SELECT event_id, created_at, read, delivered, item FROM legacy_inbox ORDER BY seq"),
        read("SELECT created_at, item FROM legacy_activities ORDER BY seq"),
    ) else {
        return;
    };
    let inbox: Vec<LegacyItem> = inbox.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect();
    let activities: Vec<LegacyActivity> = activities.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect();
    if !inbox.is_empty() || !activities.is_empty() {
        let body = json!({ "user_id": user_id, "inbox": inbox, "activities": activities }).to_string();
        match call_shard(env, user_id, Method::Post, "/import", Some(body)).await {
            Ok(resp) if resp.status_code() == 200 => {}
            _ => return super::log::error("inbox_import", "failed; kept for the next connect", &[("user_id", user_id.into())]),
        }
    }
    // The old channel marked every event seen when it arrived; those no socket had must be
    // handed over on connect now, so they leave `seen`.
    for item in inbox.iter().filter(|i| i.delivered == 0.0) {
        let _ = sql.exec("DELETE FROM seen WHERE event_id = ?", Some(vec![item.event_id.as_str().into()]));
    }
    let _ = sql.exec("DROP TABLE IF EXISTS legacy_inbox", None);
    let _ = sql.exec("DROP TABLE IF EXISTS legacy_activities", None);
    let _ = set_meta(sql, "legacy_imported", "1");
}

/// A row of a channel's inbox from before the shards.
#[derive(Serialize, Deserialize)]
pub struct LegacyItem {
    pub event_id: String,
    pub created_at: f64,
    pub read: f64,
    pub delivered: f64,
    pub item: String,
}

#[derive(Serialize, Deserialize)]
pub struct LegacyActivity {
    pub created_at: f64,
    pub item: String,
}

impl InboxShard {
    /// Keeps a channel's pre-shard items as they were (an id already here is left alone).
    pub(super) fn import(&self, i: &Import) -> ApiResult {
        for old in &i.inbox {
            // The item's time becomes the row's, so `before` pages by one clock.
            let mut item: Value = serde_json::from_str(&old.item).unwrap_or_default();
            if item.is_object() {
                item["created_at"] = json!(old.created_at as i64);
            }
            self.sql.exec(
                "INSERT OR IGNORE INTO inbox (user_id, event_id, created_at, read, delivered, item) VALUES (?, ?, ?, ?, ?, ?)",
                Some(vec![text(&i.user_id), text(&old.event_id), int(old.created_at as i64), int((old.read != 0.0) as i64), int((old.delivered != 0.0) as i64), text(&item.to_string())]),
            )?;
        }
        for old in &i.activities {
            let mut item: Value = serde_json::from_str(&old.item).unwrap_or_default();
            if item.is_object() {
                item["created_at"] = json!(old.created_at as i64);
            }
            self.sql.exec("INSERT OR IGNORE INTO activities (user_id, created_at, item) VALUES (?, ?, ?)", Some(vec![text(&i.user_id), int(old.created_at as i64), text(&item.to_string())]))?;
        }
        self.sql.exec(
            "INSERT INTO users (user_id, kept, last_created) \
               SELECT user_id, SUM(item IS NOT NULL), MAX(created_at) FROM inbox WHERE user_id = ?1 GROUP BY user_id \
             ON CONFLICT (user_id) DO UPDATE SET kept = excluded.kept, last_created = excluded.last_created",
            Some(vec![text(&i.user_id)]),
        )?;
        self.trim(&i.user_id)?;
        Ok(json_response(200, &json!({ "imported": i.inbox.len() + i.activities.len() }))?)
    }

}
