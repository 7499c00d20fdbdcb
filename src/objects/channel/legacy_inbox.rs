//! Inboxes from before the shards: a channel used to keep its user's notifications itself. Its
//! schema migration 2 renamed those tables `legacy_*`; on the next connect, or the user's first
//! REST read of the inbox, the channel hands them (and the first schema's `pending` rows) to the
//! user's inbox shard, read flags and times intact, and drops them. Until that succeeds they
//! stay.

use worker::Env;

use super::storage::ChannelStore;
use crate::objects::inbox_shard::client::{call_for, Import, LegacyActivity, LegacyItem};
use crate::runtime::log;
use crate::runtime::sql::{Sql, SqlValue};
use crate::runtime::sql_worker::ObjectSql;

fn num(v: Option<&SqlValue>) -> f64 {
    match v {
        Some(SqlValue::Int(i)) => *i as f64,
        Some(SqlValue::Real(f)) => *f,
        _ => 0.0,
    }
}

fn text(v: Option<&SqlValue>) -> String {
    v.and_then(SqlValue::text).unwrap_or_default().to_string()
}

/// Reads a legacy table; a table that is not there (a channel made after the move) is nothing
/// to import, any other failure leaves everything for the next connect.
fn read_legacy(sql: &ObjectSql, query: &str, user_id: &str) -> Option<Vec<Vec<SqlValue>>> {
    match sql.query(query, vec![]) {
        Ok(rows) => Some(rows),
        Err(e) if e.0.contains("no such table") => Some(Vec::new()),
        Err(e) => {
            log::error("inbox_import", e, &[("user_id", user_id.into())]);
            None
        }
    }
}

/// Rows of the first channel schema's `pending` table, as unread items.
fn pending_items(store: &ChannelStore<ObjectSql>) -> Vec<LegacyItem> {
    let now = crate::runtime::clock::now_ms() as f64;
    store
        .legacy_pending()
        .unwrap_or_default()
        .into_iter()
        .map(|(event_id, payload)| {
            let created_at = serde_json::from_str::<serde_json::Value>(&payload).ok().and_then(|v| v["created_at"].as_f64()).unwrap_or(now);
            LegacyItem { event_id, created_at, read: 0.0, delivered: 0.0, item: payload }
        })
        .collect()
}

/// Hands the channel's pre-shard inbox to the shard once (on a connect, or on the user's first
/// REST read of the inbox); the shard records that it was checked even when there was nothing.
pub(super) async fn hand_over(env: &Env, store: &ChannelStore<ObjectSql>, user_id: &str) {
    if store.meta(IMPORTED).ok().flatten().is_some() {
        return;
    }
    let sql = store.sql();
    let (Some(inbox), Some(activities)) = (
        read_legacy(sql, "SELECT event_id, created_at, read, delivered, item FROM legacy_inbox ORDER BY seq", user_id),
        read_legacy(sql, "SELECT created_at, item FROM legacy_activities ORDER BY seq", user_id),
    ) else {
        return;
    };
    let mut inbox: Vec<LegacyItem> = inbox
        .iter()
        .map(|r| LegacyItem { event_id: text(r.first()), created_at: num(r.get(1)), read: num(r.get(2)), delivered: num(r.get(3)), item: text(r.get(4)) })
        .collect();
    inbox.extend(pending_items(store));
    let activities: Vec<LegacyActivity> = activities.iter().map(|r| LegacyActivity { created_at: num(r.first()), item: text(r.get(1)) }).collect();
    let import = Import { user_id: user_id.to_string(), inbox, activities };
    if let Err(e) = call_for(env, user_id, &import).await {
        return log::error("inbox_import", format!("{}; kept for the next try", e.message), &[("user_id", user_id.into())]);
    }
    let _ = sql.run("DROP TABLE IF EXISTS legacy_inbox", vec![]);
    let _ = sql.run("DROP TABLE IF EXISTS legacy_activities", vec![]);
    let _ = store.clear_legacy_pending();
    let _ = store.set_meta(IMPORTED, "1");
}

/// Set once the shard has the channel's pre-shard inbox (v1.2: the shard records it too, so a
/// channel imported before is checked once more).
const IMPORTED: &str = "legacy_imported_v2";
