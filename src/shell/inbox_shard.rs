//! `InboxShard`: the notification inboxes and activity timelines of every user whose id hashes
//! to this shard (`sharding::inbox_shard`), and which of those users have a channel socket open.
//!
//! A notification to 10,000 users is ~64 shard calls that each write their users' rows in one
//! go, plus one push per user who is online — not 10,000 objects woken, most of them for a user
//! who is not there. Each row is keyed (user_id, event_id), so a redelivered event is recognised;
//! items past the latest 500 of a user keep a stub row (no item) for 30 days for that purpose.

use std::cell::Cell;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, SqlStorage, SqlStorageValue, State};

use super::delivery::{push_all, Pushed};
use super::document_room::now_ms;
pub use super::inbox::Count;
use super::inbox_legacy::Import;
use super::inbox_reads::with_read;
use super::internal;
use crate::http::{json_response, ApiError, ApiResult};
use crate::sharding::inbox_shard;

/// The shard's schema migrations, oldest first (append only; `schema.rs`).
const MIGRATIONS: &[&str] = &[SCHEMA_1, SCHEMA_2];

const SCHEMA_1: &str = "
CREATE TABLE IF NOT EXISTS inbox (user_id TEXT NOT NULL, event_id TEXT NOT NULL, created_at INTEGER NOT NULL, read INTEGER NOT NULL, delivered INTEGER NOT NULL, item TEXT, PRIMARY KEY (user_id, event_id));
CREATE INDEX IF NOT EXISTS inbox_by_time ON inbox (user_id, created_at);
CREATE INDEX IF NOT EXISTS inbox_unread ON inbox (user_id, read);
CREATE INDEX IF NOT EXISTS inbox_stubs ON inbox (created_at) WHERE item IS NULL;
CREATE TABLE IF NOT EXISTS activities (user_id TEXT NOT NULL, created_at INTEGER NOT NULL, item TEXT NOT NULL, PRIMARY KEY (user_id, created_at));
CREATE TABLE IF NOT EXISTS online (user_id TEXT PRIMARY KEY, generation INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// 2: per-user bookkeeping, so a delivery costs one read and two writes per user instead of
/// walking the user's latest 500 to trim; filled from the rows already kept.
const SCHEMA_2: &str = "
CREATE TABLE users (user_id TEXT PRIMARY KEY, kept INTEGER NOT NULL, last_created INTEGER NOT NULL);
INSERT INTO users (user_id, kept, last_created)
  SELECT user_id, SUM(item IS NOT NULL), MAX(created_at) FROM inbox GROUP BY user_id;
";

/// Trimming waits until a user has this many past the 500, then cuts back in one statement.
const TRIM_SLACK: i64 = 20;

/// Notifications and activities kept per user.
pub const KEPT: i64 = 500;
/// How long an event id is remembered after its item left the latest 500.
const STUB_DAYS: i64 = 30;

/// `POST /deliver`: one event for some users of this shard.
#[derive(Serialize, Deserialize)]
pub struct Delivery {
    pub event_id: String,
    /// The notification; `event_id`, `created_at` and `read` are set per user.
    pub item: Value,
    pub user_ids: Vec<String>,
    /// The shard the sender addressed; every user must live there.
    pub shard: String,
}

/// A user of a delivery who has a channel socket open: their channel gets `item`.
#[derive(Serialize, Deserialize)]
pub struct Push {
    pub user_id: String,
    pub generation: i64,
    pub item: Value,
    pub count: Count,
}

/// `POST /attach`, `/detach`: a channel's sockets appeared or went.
#[derive(Deserialize)]
struct Presence {
    user_id: String,
    generation: i64,
}

/// `POST /delivered`: the kept events a channel handed to a socket on connect.
#[derive(Deserialize)]
struct Delivered {
    user_id: String,
    event_ids: Vec<String>,
}

#[derive(Deserialize)]
struct Num {
    n: Option<f64>,
}

/// What a delivery reads of one user in one statement.
#[derive(Deserialize, Default)]
struct UserRow {
    seen: Option<f64>,
    generation: Option<f64>,
    kept: Option<f64>,
    last_created: Option<f64>,
}

#[derive(Deserialize)]
pub(super) struct ItemRow {
    pub(super) item: String,
    pub(super) read: f64,
}

pub(super) fn int(v: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(v)
}

pub(super) fn text(v: &str) -> SqlStorageValue {
    SqlStorageValue::String(v.to_string())
}

#[durable_object]
pub struct InboxShard {
    env: Env,
    pub(super) sql: SqlStorage,
    /// The shard's change clock (lazily read): orders the unread counts a channel is handed.
    clock: Cell<Option<i64>>,
}

impl DurableObject for InboxShard {
    fn new(state: State, env: Env) -> Self {
        crate::store::object_schema::ensure(&state.storage(), "inbox shard", MIGRATIONS);
        InboxShard { env, sql: state.storage().sql(), clock: Cell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.url()?.path().to_string();
        let result: ApiResult = match (req.method(), path.as_str()) {
            (Method::Post, "/deliver") => match internal::body_json::<Delivery>(&mut req).await {
                Ok(d) => self.deliver_and_push(&d).await,
                Err(e) => Err(e),
            },
            (Method::Post, "/attach") => match internal::body_json::<Presence>(&mut req).await {
                Ok(p) => self.attach(&p),
                Err(e) => Err(e),
            },
            (Method::Post, "/detach") => match internal::body_json::<Presence>(&mut req).await {
                Ok(p) => self.detach(&p),
                Err(e) => Err(e),
            },
            (Method::Post, "/read") => self.read(&mut req).await,
            (Method::Post, "/delivered") => match internal::body_json::<Delivered>(&mut req).await {
                Ok(d) => {
                    let ids: Vec<&str> = d.event_ids.iter().take(KEPT as usize).map(String::as_str).collect();
                    self.mark_delivered(&d.user_id, &ids).and_then(|()| Response::empty()).map_err(Into::into)
                }
                Err(e) => Err(e),
            },
            (Method::Post, "/import") => match internal::body_json::<Import>(&mut req).await {
                Ok(i) => self.import(&i),
                Err(e) => Err(e),
            },
            (Method::Get, "/notifications") => self.page(&req, false),
            (Method::Get, "/timeline") => self.page(&req, true),
            (Method::Get, "/holders") => self.holders(&req),
            _ => Err(ApiError::not_found("no such inbox endpoint")),
        };
        result.or_else(ApiError::into_response)
    }
}

impl InboxShard {
    pub(super) fn number(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<Option<i64>> {
        let rows: Vec<Num> = self.sql.exec(query, Some(args))?.to_array()?;
        Ok(rows.first().and_then(|r| r.n).map(|n| n as i64))
    }

    /// Advances the change clock (one per call that changes counts).
    pub(super) fn tick(&self) -> Result<i64> {
        let now = match self.clock.get() {
            Some(c) => c,
            None => self.number("SELECT value AS n FROM meta WHERE key = 'clock'", vec![])?.unwrap_or(0),
        } + 1;
        self.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('clock', ?)", Some(vec![int(now)]))?;
        self.clock.set(Some(now));
        Ok(now)
    }

    pub(super) fn unread(&self, user_id: &str) -> Result<i64> {
        Ok(self.number("SELECT COUNT(*) AS n FROM inbox WHERE user_id = ? AND read = 0", vec![text(user_id)])?.unwrap_or(0))
    }

    pub(super) fn generation(&self, user_id: &str) -> Result<Option<i64>> {
        self.number("SELECT generation AS n FROM online WHERE user_id = ?", vec![text(user_id)])
    }

    /// Keeps the event for each user, then pushes it to the online ones' channels (this shard's
    /// users only, so one queue message is one call here). 200 once all of it is settled; 503
    /// when a push failed (the message is retried; nothing is kept or shown twice).
    async fn deliver_and_push(&self, d: &Delivery) -> ApiResult {
        if let Some(stray) = d.user_ids.iter().find(|u| inbox_shard(u) != d.shard) {
            return Err(ApiError::bad_request(format!("user {stray} does not live in {}", d.shard)));
        }
        let pushes = self.deliver(d)?;
        let outcomes = push_all(&self.env, &pushes).await;
        let mut failed = 0;
        for (push, outcome) in pushes.iter().zip(outcomes) {
            match outcome {
                // Only a push a socket took marks the event delivered; until then the next
                // connect hands it over (and the channel drops a second copy by its id).
                Pushed::Taken => self.mark_delivered(&push.user_id, &[d.event_id.as_str()])?,
                Pushed::NoSocket => {
                    // No socket after all. A connect that registered while the push was on its
                    // way may have missed it: fail, so the queue's retry pushes to that socket.
                    if self.went_offline(&push.user_id, push.generation)? {
                        failed += 1;
                    }
                }
                Pushed::Failed => failed += 1,
            }
        }
        if failed > 0 {
            return Err(ApiError::new(503, "unavailable", format!("{failed} of {} pushes failed; retry", pushes.len())));
        }
        Ok(json_response(200, &json!({ "kept": d.user_ids.len(), "pushed": pushes.len() }))?)
    }

    /// Keeps the event for each user once; returns what the online ones' channels must push.
    fn deliver(&self, d: &Delivery) -> std::result::Result<Vec<Push>, ApiError> {
        let now = now_ms() as i64;
        let clock = self.tick()?;
        let activity = d.item.get("kind").and_then(Value::as_str) == Some("activity");
        let mut item = if d.item.is_object() { d.item.clone() } else { json!({ "payload": d.item }) };
        item["event_id"] = json!(d.event_id);
        item["read"] = json!(false);
        let mut pushes = Vec::new();
        for user_id in &d.user_ids {
            let rows: Vec<UserRow> = self
                .sql
                .exec(
                    "SELECT (SELECT 1 FROM inbox WHERE user_id = ?1 AND event_id = ?2) AS seen, \
                            (SELECT generation FROM online WHERE user_id = ?1) AS generation, u.kept, u.last_created \
                     FROM (SELECT 1) LEFT JOIN users u ON u.user_id = ?1",
                    Some(vec![text(user_id), text(&d.event_id)]),
                )?
                .to_array()?;
            let row = rows.into_iter().next().unwrap_or_default();
            let generation = row.generation.map(|g| g as i64);
            if row.seen.is_some() {
                // A redelivery: nothing is kept twice, but an online channel is handed the event
                // again (it may have missed it; it ignores an event id it has seen).
                if let (Some(generation), Some(kept)) = (generation, self.kept_item(user_id, &d.event_id)?) {
                    pushes.push(Push { user_id: user_id.clone(), generation, item: kept, count: Count { unread: self.unread(user_id)?, clock } });
                }
                continue;
            }
            // Strictly increasing per user, so `before` pages never skip or repeat an item.
            let created = now.max(row.last_created.map_or(0, |t| t as i64) + 1);
            let kept = row.kept.map_or(0, |k| k as i64) + 1;
            item["created_at"] = json!(created);
            let stored = item.to_string();
            self.sql.exec(
                "INSERT INTO inbox (user_id, event_id, created_at, read, delivered, item) VALUES (?, ?, ?, 0, 0, ?)",
                Some(vec![text(user_id), text(&d.event_id), int(created), text(&stored)]),
            )?;
            self.sql.exec(
                "INSERT INTO users (user_id, kept, last_created) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (user_id) DO UPDATE SET kept = excluded.kept, last_created = excluded.last_created",
                Some(vec![text(user_id), int(kept), int(created)]),
            )?;
            if kept > KEPT + TRIM_SLACK {
                self.trim(user_id)?;
            }
            if activity {
                self.sql.exec("INSERT OR IGNORE INTO activities (user_id, created_at, item) VALUES (?, ?, ?)", Some(vec![text(user_id), int(created), text(&stored)]))?;
                self.sql.exec(
                    "DELETE FROM activities WHERE user_id = ? AND created_at <= (SELECT created_at FROM activities WHERE user_id = ? ORDER BY created_at DESC LIMIT 1 OFFSET ?)",
                    Some(vec![text(user_id), text(user_id), int(KEPT)]),
                )?;
            }
            if let Some(generation) = generation {
                pushes.push(Push { user_id: user_id.clone(), generation, item: item.clone(), count: Count { unread: self.unread(user_id)?, clock } });
            }
        }
        // Stubs older than the dedupe window leave a bounded number at a time.
        self.sql.exec(
            "DELETE FROM inbox WHERE rowid IN (SELECT rowid FROM inbox WHERE item IS NULL AND created_at < ? LIMIT 1000)",
            Some(vec![int(now - STUB_DAYS * 24 * 3600 * 1000)]),
        )?;
        Ok(pushes)
    }

    fn kept_item(&self, user_id: &str, event_id: &str) -> Result<Option<Value>> {
        let rows: Vec<ItemRow> = self
            .sql
            .exec("SELECT item, read FROM inbox WHERE user_id = ? AND event_id = ? AND item IS NOT NULL", Some(vec![text(user_id), text(event_id)]))?
            .to_array()?;
        Ok(rows.into_iter().next().map(with_read))
    }

    /// Items past the latest 500 become stubs: read, delivered, no item — only the id remains.
    pub(super) fn trim(&self, user_id: &str) -> Result<()> {
        if let Some(edge) = self.number(
            "SELECT created_at AS n FROM inbox WHERE user_id = ? AND item IS NOT NULL ORDER BY created_at DESC LIMIT 1 OFFSET ?",
            vec![text(user_id), int(KEPT)],
        )? {
            self.sql.exec(
                "UPDATE inbox SET item = NULL, read = 1, delivered = 1 WHERE user_id = ? AND item IS NOT NULL AND created_at <= ?",
                Some(vec![text(user_id), int(edge)]),
            )?;
        }
        self.sql.exec(
            "UPDATE users SET kept = (SELECT COUNT(*) FROM inbox WHERE user_id = ?1 AND item IS NOT NULL) WHERE user_id = ?1",
            Some(vec![text(user_id)]),
        )?;
        Ok(())
    }

    /// Events a socket has been handed.
    fn mark_delivered(&self, user_id: &str, event_ids: &[&str]) -> Result<()> {
        for id in event_ids {
            self.sql.exec("UPDATE inbox SET delivered = 1 WHERE user_id = ? AND event_id = ?", Some(vec![text(user_id), text(id)]))?;
        }
        Ok(())
    }

    /// A channel's socket (of generation `g`) opened: the user is online from now on, and gets
    /// what no socket has been handed yet, oldest first, with the unread count. The channel
    /// confirms what it sent (`/delivered`); until then it stays undelivered.
    fn attach(&self, p: &Presence) -> ApiResult {
        self.sql.exec(
            "INSERT INTO online (user_id, generation) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET generation = MAX(generation, excluded.generation)",
            Some(vec![text(&p.user_id), int(p.generation)]),
        )?;
        let rows: Vec<ItemRow> = self
            .sql
            .exec("SELECT item, read FROM inbox WHERE user_id = ? AND delivered = 0 AND item IS NOT NULL ORDER BY created_at", Some(vec![text(&p.user_id)]))?
            .to_array()?;
        let items: Vec<Value> = rows.into_iter().map(with_read).collect();
        let count = Count { unread: self.unread(&p.user_id)?, clock: self.tick()? };
        Ok(json_response(200, &json!({ "items": items, "count": count }))?)
    }

    /// The channel's last socket closed (`/detach`), or it had none when a push came (`/gone`:
    /// that event is handed over on the next connect instead). An older generation than the
    /// stored one is a close that crossed a newer connect, and changes nothing.
    fn detach(&self, p: &Presence) -> ApiResult {
        let still_online = self.went_offline(&p.user_id, p.generation)?;
        Ok(json_response(200, &json!({ "online": still_online }))?)
    }

    /// Marks the user offline unless a newer connect registered since; true when one did.
    fn went_offline(&self, user_id: &str, generation: i64) -> Result<bool> {
        let current = self.generation(user_id)?;
        if current.is_some_and(|g| g <= generation) {
            self.sql.exec("DELETE FROM online WHERE user_id = ?", Some(vec![text(user_id)]))?;
        }
        Ok(current.is_some_and(|g| g > generation))
    }

}
