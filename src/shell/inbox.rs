//! The inbox side of `UserChannel` (§4.8 [1.1]). The inbox itself lives in the user's
//! `InboxShard`; the channel registers its sockets there (attach on every connect, detach when the
//! last one closes), hands each socket what was kept while none was open, pushes what the shard's
//! deliveries send it once per event id, and keeps the unread count its sockets were last told.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{Env, Headers, Method, SqlStorage, WebSocket};

use super::inbox_shard::{Push, KEPT};
use super::internal::call_object;
use super::user_channel::{send, UserChannel};
use crate::http::{json_response, ApiError, ApiResult};
use crate::protocol::{Failure, Outgoing};
use crate::sharding::inbox_shard;

/// Event ids a channel remembers to hand each event to its sockets once (a redelivery comes
/// within the queue's retry window, minutes).
const SEEN_KEPT: i64 = 2_000;

/// An unread count and the shard clock it was read at: a channel keeps the newest it was told,
/// so counts that cross on the way never step back.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Count {
    pub unread: i64,
    pub clock: i64,
}

#[derive(Deserialize)]
struct Attached {
    items: Vec<Value>,
    count: Count,
}

#[derive(Deserialize)]
struct ReadAnswer {
    count: Count,
}

#[derive(Deserialize)]
struct MetaRow {
    value: String,
}

/// A call to `user_id`'s inbox shard.
pub async fn call_shard(env: &Env, user_id: &str, method: Method, path: &str, body: Option<String>) -> worker::Result<worker::Response> {
    call_object(env, "INBOX_SHARD", &inbox_shard(user_id), method, path, body, Headers::new()).await
}

pub(super) fn meta(sql: &SqlStorage, key: &str) -> Option<String> {
    let rows: Vec<MetaRow> = sql.exec("SELECT value FROM meta WHERE key = ?", Some(vec![key.into()])).ok()?.to_array().ok()?;
    rows.into_iter().next().map(|r| r.value)
}

pub(super) fn set_meta(sql: &SqlStorage, key: &str, value: &str) -> worker::Result<()> {
    sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", Some(vec![key.into(), value.into()]))?;
    Ok(())
}

/// Keeps `c` if it is newer than the stored count; returns the newest of the two.
fn newest_count(sql: &SqlStorage, c: Count) -> Count {
    let stored: Option<Count> = meta(sql, "count").and_then(|v| serde_json::from_str(&v).ok());
    match stored {
        Some(s) if s.clock >= c.clock => s,
        _ => {
            let _ = set_meta(sql, "count", &serde_json::to_string(&c).unwrap_or_default());
            c
        }
    }
}

fn count_frame(c: Count) -> Outgoing {
    Outgoing::new("notification_count", json!({ "unread": c.unread }))
}

/// Records `event_id` as handed to the sockets; false when it already was.
fn first_sight(sql: &SqlStorage, event_id: &str) -> worker::Result<bool> {
    #[derive(Deserialize)]
    struct One {}
    let seen: Vec<One> = sql.exec("SELECT 1 AS n FROM seen WHERE event_id = ?", Some(vec![event_id.into()]))?.to_array()?;
    if !seen.is_empty() {
        return Ok(false);
    }
    sql.exec("INSERT INTO seen (event_id) VALUES (?)", Some(vec![event_id.into()]))?;
    sql.exec("DELETE FROM seen WHERE seq <= (SELECT MAX(seq) FROM seen) - ?", Some(vec![worker::SqlStorageValue::Integer(SEEN_KEPT)]))?;
    Ok(true)
}

/// Sends a kept item to one socket; if the socket is gone, the item is not counted as seen, so
/// the next connect hands it over again.
fn handed_over(sql: &SqlStorage, ws: &WebSocket, event_id: &str, item: &Value) -> bool {
    let frame = Outgoing::new("notification", item).to_frame(&super::frame_id(), super::document_room::now_ms());
    if ws.send_with_str(frame).is_ok() {
        if item["kind"] == "activity" {
            send(ws, &Outgoing::new("activity_update", item));
        }
        return true;
    }
    let _ = sql.exec("DELETE FROM seen WHERE event_id = ?", Some(vec![event_id.into()]));
    false
}

fn send_item(ws: &WebSocket, item: &Value) {
    send(ws, &Outgoing::new("notification", item));
    if item["kind"] == "activity" {
        send(ws, &Outgoing::new("activity_update", item));
    }
}

impl UserChannel {
    /// The generation of the channel's sockets, advanced on every connect.
    fn next_generation(&self) -> worker::Result<i64> {
        let g = meta(&self.sql, "generation").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) + 1;
        set_meta(&self.sql, "generation", &g.to_string())?;
        Ok(g)
    }

    /// A socket opened: after the 101, tell the shard the user is online and hand this socket
    /// what was kept, then the unread count.
    pub(super) fn attach(&self, ws: &WebSocket, user_id: &str) -> worker::Result<()> {
        let generation = self.next_generation()?;
        let (env, sql, ws, user_id) = (self.env.clone(), self.sql.clone(), ws.clone(), user_id.to_string());
        self.state.wait_until(async move {
            super::inbox_legacy::import_legacy(&env, &sql, &user_id).await;
            let body = json!({ "user_id": user_id, "generation": generation }).to_string();
            let attached = match call_shard(&env, &user_id, Method::Post, "/attach", Some(body)).await {
                Ok(mut resp) if resp.status_code() == 200 => resp.text().await.ok().and_then(|t| serde_json::from_str::<Attached>(&t).ok()),
                _ => None,
            };
            let Some(attached) = attached else {
                // Without the shard's registration this socket would get no pushes: close it, so
                // the client reconnects (with backoff) and registers again.
                super::log::error("inbox_attach", "the inbox shard did not answer", &[("user_id", user_id.as_str().into())]);
                let _ = ws.close(Some(1011), Some("the inbox is unavailable; reconnect"));
                return;
            };
            // Hand the socket what no socket has had yet; confirm to the shard only what it took.
            let mut handed: Vec<&str> = Vec::new();
            for item in &attached.items {
                let Some(id) = item["event_id"].as_str() else { continue };
                let seen = first_sight(&sql, id).map(|fresh| !fresh).unwrap_or(false);
                if seen || handed_over(&sql, &ws, id, item) {
                    handed.push(id);
                }
            }
            if !handed.is_empty() {
                let body = json!({ "user_id": user_id, "event_ids": handed }).to_string();
                if let Err(e) = call_shard(&env, &user_id, Method::Post, "/delivered", Some(body)).await {
                    super::log::error("inbox_delivered", e, &[("user_id", user_id.as_str().into())]);
                }
            }
            send(&ws, &count_frame(newest_count(&sql, attached.count)));
        });
        Ok(())
    }

    /// The last socket closed: the user is offline for deliveries (unless a newer connect came).
    pub(super) fn detach(&self, user_id: &str) {
        let generation = meta(&self.sql, "generation").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let (env, user_id) = (self.env.clone(), user_id.to_string());
        self.state.wait_until(async move {
            let body = json!({ "user_id": user_id, "generation": generation }).to_string();
            if let Err(e) = call_shard(&env, &user_id, Method::Post, "/detach", Some(body)).await {
                super::log::error("inbox_detach", e, &[("user_id", user_id.as_str().into())]);
            }
        });
    }

    /// `POST /notification` (a `Push` from a delivery): to every socket, once per event id.
    /// 410 when no socket is open, so the shard keeps it for the next connect.
    pub(super) fn receive(&self, push: &Push) -> ApiResult {
        let sockets = self.state.get_websockets();
        if sockets.is_empty() {
            return Err(ApiError::new(410, "gone", "no socket is open"));
        }
        let event_id = push.item["event_id"].as_str().unwrap_or_default();
        let fresh = first_sight(&self.sql, event_id)?;
        if fresh {
            sockets.iter().for_each(|ws| send_item(ws, &push.item));
        }
        self.tell_count(push.count);
        Ok(json_response(200, &json!({ "status": if fresh { "delivered" } else { "duplicate" } }))?)
    }

    /// `notification_count` to every socket, if `c` is newer than what they were told.
    pub(super) fn tell_count(&self, c: Count) {
        let before: Option<Count> = meta(&self.sql, "count").and_then(|v| serde_json::from_str(&v).ok());
        let now = newest_count(&self.sql, c);
        if before != Some(now) {
            let m = count_frame(now);
            self.state.get_websockets().iter().for_each(|ws| send(ws, &m));
        }
    }

    /// `notification_read` from a socket: marked in the shard; every socket hears the new count.
    pub(super) async fn read_from_socket(&self, ws: &WebSocket, user_id: &str, payload: &Value, frame_id: Option<String>) {
        let body = match parse_read(payload) {
            Ok(Some(ids)) => json!({ "event_ids": ids }),
            Ok(None) => json!({ "all": true }),
            Err(f) => return send(ws, &Outgoing::error(&f, frame_id, None)),
        };
        let path = format!("/read?user_id={}", percent_encoding::utf8_percent_encode(user_id, percent_encoding::NON_ALPHANUMERIC));
        let answer = match call_shard(&self.env, user_id, Method::Post, &path, Some(body.to_string())).await {
            Ok(mut resp) if resp.status_code() == 200 => resp.text().await.ok().and_then(|t| serde_json::from_str::<ReadAnswer>(&t).ok()),
            _ => None,
        };
        match answer {
            Some(a) => self.tell_count(a.count),
            None => send(ws, &Outgoing::error(&Failure::new(crate::protocol::Code::Internal, "the inbox is unavailable; try again"), frame_id, None)),
        }
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
