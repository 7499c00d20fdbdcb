//! The inbox side of `UserChannel` (§4.8 [1.1]): every notification kept (latest 500) with its
//! read flag, the unread count pushed on connect and on every change, and the activity timeline.

use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Request, SqlStorageValue, WebSocket};

use super::document_room::now_ms;
use super::internal;
use super::user_channel::{send, UserChannel};
use crate::http::{json_response, ApiError, ApiResult};
use crate::protocol::{Failure, Outgoing};
use crate::room::Notification;

/// Notifications and activities kept per user.
const KEPT: i64 = 500;
/// Event ids remembered to refuse a second delivery (more than are kept).
const SEEN_KEPT: i64 = 20_000;
const PAGE_DEFAULT: u64 = 50;
const PAGE_MAX: u64 = 100;
const MAX_SAFE: i64 = (1 << 53) - 1;

#[derive(Deserialize)]
struct ItemRow {
    item: String,
    read: f64,
}

#[derive(Deserialize)]
struct Num {
    n: Option<f64>,
}

fn int(v: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(v)
}

impl UserChannel {
    fn number(&self, query: &str) -> worker::Result<i64> {
        let rows: Vec<Num> = self.sql.exec(query, None)?.to_array()?;
        Ok(rows.first().and_then(|r| r.n).unwrap_or(0.0) as i64)
    }

    pub(super) fn unread(&self) -> worker::Result<i64> {
        self.number("SELECT COUNT(*) AS n FROM inbox WHERE read = 0")
    }

    /// `notification_count` to every socket (or to one).
    pub(super) fn push_count(&self, only: Option<&WebSocket>) {
        let Ok(unread) = self.unread() else { return };
        let m = Outgoing::new("notification_count", json!({"unread": unread}));
        match only {
            Some(ws) => send(ws, &m),
            None => self.state.get_websockets().iter().for_each(|ws| send(ws, &m)),
        }
    }

    /// One event for this user: kept in the inbox, delivered to every open socket (or on the next
    /// connect), once per event id however often it is handed over.
    pub(super) fn notify(&self, n: &Notification) -> ApiResult {
        // Read, not the insert's row count: the count is not reliable before the cursor is read.
        let seen: Vec<Num> = self.sql.exec("SELECT 1 AS n FROM seen WHERE event_id = ?", Some(vec![n.event_id.clone().into()]))?.to_array()?;
        if !seen.is_empty() {
            return Ok(json_response(200, &json!({"status": "duplicate"}))?);
        }
        self.sql.exec("INSERT INTO seen (event_id) VALUES (?)", Some(vec![n.event_id.clone().into()]))?;
        self.sql.exec("DELETE FROM seen WHERE seq <= (SELECT MAX(seq) FROM seen) - ?", Some(vec![int(SEEN_KEPT)]))?;
        // Strictly increasing, so `before` pages never skip or repeat an item.
        let created = (now_ms() as i64).max(self.number("SELECT MAX(created_at) AS n FROM inbox")? + 1);
        let mut item = n.payload.clone();
        if !item.is_object() {
            item = json!({"payload": item});
        }
        item["event_id"] = json!(n.event_id);
        item["created_at"] = item.get("created_at").filter(|v| v.is_u64()).cloned().unwrap_or(json!(created));
        item["read"] = json!(false);
        let sockets = self.state.get_websockets();
        let text = item.to_string();
        self.sql.exec(
            "INSERT INTO inbox (event_id, created_at, read, delivered, item) VALUES (?, ?, 0, ?, ?)",
            Some(vec![n.event_id.clone().into(), int(created), int(!sockets.is_empty() as i64), text.clone().into()]),
        )?;
        self.sql.exec("DELETE FROM inbox WHERE seq <= (SELECT MAX(seq) FROM inbox) - ?", Some(vec![int(KEPT)]))?;
        if item["kind"] == "activity" {
            self.sql.exec("INSERT INTO activities (created_at, item) VALUES (?, ?)", Some(vec![int(created), text.into()]))?;
            self.sql.exec("DELETE FROM activities WHERE seq <= (SELECT MAX(seq) FROM activities) - ?", Some(vec![int(KEPT)]))?;
        }
        let m = Outgoing::new("notification", &item);
        let activity = (item["kind"] == "activity").then(|| Outgoing::new("activity_update", &item));
        for ws in &sockets {
            send(ws, &m);
            if let Some(a) = &activity {
                send(ws, a);
            }
        }
        self.push_count(None);
        Ok(json_response(200, &json!({"status": if sockets.is_empty() { "kept" } else { "delivered" }}))?)
    }

    /// On connect: what arrived while no socket was open, in order, then the unread count.
    pub(super) fn deliver_kept(&self, ws: &WebSocket) -> worker::Result<()> {
        let rows: Vec<ItemRow> = self.sql.exec("SELECT item, read FROM inbox WHERE delivered = 0 ORDER BY seq", None)?.to_array()?;
        for row in rows {
            let mut item: Value = serde_json::from_str(&row.item).unwrap_or_default();
            item["read"] = json!(row.read != 0.0);
            send(ws, &Outgoing::new("notification", &item));
        }
        self.sql.exec("UPDATE inbox SET delivered = 1 WHERE delivered = 0", None)?;
        self.push_count(Some(ws));
        Ok(())
    }

    /// Marks events read (`None`: all of them); returns the unread count and tells the sockets.
    pub(super) fn mark_read(&self, event_ids: Option<Vec<String>>) -> worker::Result<i64> {
        match event_ids {
            None => {
                self.sql.exec("UPDATE inbox SET read = 1 WHERE read = 0", None)?;
            }
            Some(ids) => {
                for id in ids {
                    self.sql.exec("UPDATE inbox SET read = 1 WHERE event_id = ?", Some(vec![id.into()]))?;
                }
            }
        }
        self.push_count(None);
        self.unread()
    }

    /// `GET /notifications?limit&before` and `GET /timeline?limit&before`: newest first.
    pub(super) fn page(&self, req: &Request, timeline: bool) -> ApiResult {
        let q = internal::Query::of(&req.url()?);
        let limit = q.u64("limit")?.unwrap_or(PAGE_DEFAULT);
        if limit == 0 || limit > PAGE_MAX {
            return Err(ApiError::bad_request("limit must be between 1 and 100"));
        }
        // Bound to what JavaScript numbers hold exactly.
        let before = q.u64("before")?.map_or(MAX_SAFE, |b| b.min(MAX_SAFE as u64) as i64);
        let query = if timeline {
            "SELECT item, 0 AS read FROM activities WHERE created_at < ? ORDER BY created_at DESC LIMIT ?"
        } else {
            "SELECT item, read FROM inbox WHERE created_at < ? ORDER BY created_at DESC LIMIT ?"
        };
        let rows: Vec<ItemRow> = self.sql.exec(query, Some(vec![int(before), int(limit as i64 + 1)]))?.to_array()?;
        let more = rows.len() as u64 > limit;
        let items: Vec<Value> = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                let mut item: Value = serde_json::from_str(&r.item).unwrap_or_default();
                if !timeline {
                    item["read"] = json!(r.read != 0.0);
                }
                item
            })
            .collect();
        let next_before = if more { items.last().and_then(|i| i["created_at"].as_u64()) } else { None };
        let body = if timeline {
            json!({"activities": items, "next_before": next_before})
        } else {
            json!({"notifications": items, "unread": self.unread()?, "next_before": next_before})
        };
        Ok(json_response(200, &body)?)
    }
}

impl UserChannel {
    /// `POST /read {"event_ids":[…]} | {"all":true}` → `{"unread"}`.
    pub(super) async fn read_route(&self, req: &mut Request) -> ApiResult {
        let body: Value = internal::body_json(req).await?;
        let ids = parse_read(&body)?;
        Ok(json_response(200, &json!({"unread": self.mark_read(ids)?}))?)
    }
}

/// The event ids of `{"event_ids":[…]}`, or None for `{"all":true}`.
pub fn parse_read(body: &Value) -> Result<Option<Vec<String>>, Failure> {
    if body.get("all") == Some(&Value::Bool(true)) {
        return Ok(None);
    }
    let ids = body.get("event_ids").and_then(Value::as_array).ok_or_else(|| Failure::bad("send {\"event_ids\":[…]} or {\"all\":true}"))?;
    if ids.len() > KEPT as usize {
        return Err(Failure::bad("at most 500 event ids at a time"));
    }
    ids.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| Failure::bad("event_ids must hold strings"))).collect::<Result<Vec<_>, _>>().map(Some)
}
