//! An inbox shard's SQLite: the notification inboxes and activity timelines of every user whose
//! id hashes to the shard, and which of them have a channel socket open. Each row is keyed
//! (user_id, event_id), so a redelivered event is recognised; items past the latest 500 of a
//! user keep a stub row (no item) for 30 days for that purpose.

use std::cell::Cell;

use serde_json::{json, Value};

use super::client::{Count, Deliver};
use crate::runtime::sql::{Sql, SqlResult, SqlValue};

/// The shard's schema migrations, oldest first (append only; `crate::schema`).
pub const MIGRATIONS: &[&str] = &[SCHEMA_1, SCHEMA_2];

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

/// Notifications and activities kept per user.
pub const ITEMS_KEPT: i64 = crate::limits::INBOX_ITEMS_KEPT as i64;
/// Trimming waits until a user has this many past the 500, then cuts back in one statement.
const TRIM_SLACK: i64 = 20;
/// How long an event id is remembered after its item left the latest 500.
const STUB_DAYS: i64 = 30;

/// A user of a delivery who has a channel socket open: their channel gets `item`.
#[derive(Clone, Debug, PartialEq)]
pub struct PushDue {
    pub user_id: String,
    pub generation: i64,
    pub item: Value,
    pub count: Count,
}

pub(super) fn int(v: i64) -> SqlValue {
    SqlValue::Int(v)
}

pub struct InboxStore<S: Sql> {
    pub(super) sql: S,
    /// The shard's change clock (lazily read): orders the unread counts a channel is handed.
    clock: Cell<Option<i64>>,
}

impl<S: Sql> InboxStore<S> {
    pub fn new(sql: S) -> Self {
        InboxStore { sql, clock: Cell::new(None) }
    }

    pub fn ensure_schema(&self) -> Result<u32, String> {
        crate::runtime::sql::migrate(&self.sql, MIGRATIONS)
    }

    /// Advances the change clock (one per call that changes counts).
    pub fn tick(&self) -> SqlResult<i64> {
        let now = match self.clock.get() {
            Some(c) => c,
            None => self.sql.first_int("SELECT value FROM meta WHERE key = 'clock'", vec![])?.unwrap_or(0),
        } + 1;
        self.sql.run("INSERT OR REPLACE INTO meta (key, value) VALUES ('clock', ?)", vec![int(now)])?;
        self.clock.set(Some(now));
        Ok(now)
    }

    pub fn unread(&self, user_id: &str) -> SqlResult<i64> {
        Ok(self.sql.first_int("SELECT COUNT(*) FROM inbox WHERE user_id = ? AND read = 0", vec![user_id.into()])?.unwrap_or(0))
    }

    pub fn generation(&self, user_id: &str) -> SqlResult<Option<i64>> {
        self.sql.first_int("SELECT generation FROM online WHERE user_id = ?", vec![user_id.into()])
    }

    /// Keeps the event for each user once; returns what the online ones' channels must push.
    pub fn keep(&self, d: &Deliver, now: i64) -> SqlResult<Vec<PushDue>> {
        let clock = self.tick()?;
        let activity = d.item.get("kind").and_then(Value::as_str) == Some("activity");
        let mut item = if d.item.is_object() { d.item.clone() } else { json!({ "payload": d.item }) };
        item["event_id"] = json!(d.event_id);
        item["read"] = json!(false);
        let mut pushes = Vec::new();
        for user_id in &d.user_ids {
            let row = self.sql.query(
                "SELECT (SELECT 1 FROM inbox WHERE user_id = ?1 AND event_id = ?2), \
                        (SELECT generation FROM online WHERE user_id = ?1), u.kept, u.last_created \
                 FROM (SELECT 1) LEFT JOIN users u ON u.user_id = ?1",
                vec![user_id.into(), d.event_id.as_str().into()],
            )?;
            let col = |i: usize| row.first().and_then(|r| r.get(i)).and_then(SqlValue::int);
            let (seen, generation, kept, last_created) = (col(0).is_some(), col(1), col(2).unwrap_or(0), col(3).unwrap_or(0));
            if seen {
                // A redelivery: nothing is kept twice, but an online channel is handed the event
                // again (it may have missed it; it ignores an event id it has seen).
                if let (Some(generation), Some(kept)) = (generation, self.kept_item(user_id, &d.event_id)?) {
                    pushes.push(PushDue { user_id: user_id.clone(), generation, item: kept, count: Count { unread: self.unread(user_id)?, clock } });
                }
                continue;
            }
            // Strictly increasing per user, so `before` pages never skip or repeat an item.
            let created = now.max(last_created + 1);
            item["created_at"] = json!(created);
            let stored = item.to_string();
            self.insert_item(user_id, &d.event_id, created, &stored, kept + 1)?;
            if activity {
                self.insert_activity(user_id, created, &stored)?;
            }
            if let Some(generation) = generation {
                pushes.push(PushDue { user_id: user_id.clone(), generation, item: item.clone(), count: Count { unread: self.unread(user_id)?, clock } });
            }
        }
        // Stubs older than the dedupe window leave a bounded number at a time.
        self.sql.run(
            "DELETE FROM inbox WHERE rowid IN (SELECT rowid FROM inbox WHERE item IS NULL AND created_at < ? LIMIT 1000)",
            vec![int(now - STUB_DAYS * 24 * 3600 * 1000)],
        )?;
        Ok(pushes)
    }

    fn insert_item(&self, user_id: &str, event_id: &str, created: i64, stored: &str, kept: i64) -> SqlResult<()> {
        self.sql.run(
            "INSERT INTO inbox (user_id, event_id, created_at, read, delivered, item) VALUES (?, ?, ?, 0, 0, ?)",
            vec![user_id.into(), event_id.into(), int(created), stored.into()],
        )?;
        self.sql.run(
            "INSERT INTO users (user_id, kept, last_created) VALUES (?1, ?2, ?3) \
             ON CONFLICT (user_id) DO UPDATE SET kept = excluded.kept, last_created = excluded.last_created",
            vec![user_id.into(), int(kept), int(created)],
        )?;
        if kept > ITEMS_KEPT + TRIM_SLACK {
            self.trim(user_id)?;
        }
        Ok(())
    }

    fn insert_activity(&self, user_id: &str, created: i64, stored: &str) -> SqlResult<()> {
        self.sql.run("INSERT OR IGNORE INTO activities (user_id, created_at, item) VALUES (?, ?, ?)", vec![user_id.into(), int(created), stored.into()])?;
        self.sql.run(
            "DELETE FROM activities WHERE user_id = ? AND created_at <= (SELECT created_at FROM activities WHERE user_id = ? ORDER BY created_at DESC LIMIT 1 OFFSET ?)",
            vec![user_id.into(), user_id.into(), int(ITEMS_KEPT)],
        )
    }

    fn kept_item(&self, user_id: &str, event_id: &str) -> SqlResult<Option<Value>> {
        let rows = self.sql.query("SELECT item, read FROM inbox WHERE user_id = ? AND event_id = ? AND item IS NOT NULL", vec![user_id.into(), event_id.into()])?;
        Ok(rows.into_iter().next().map(with_read))
    }

    /// Items past the latest 500 become stubs: read, delivered, no item — only the id remains.
    pub fn trim(&self, user_id: &str) -> SqlResult<()> {
        let edge = self.sql.first_int(
            "SELECT created_at FROM inbox WHERE user_id = ? AND item IS NOT NULL ORDER BY created_at DESC LIMIT 1 OFFSET ?",
            vec![user_id.into(), int(ITEMS_KEPT)],
        )?;
        if let Some(edge) = edge {
            self.sql.run(
                "UPDATE inbox SET item = NULL, read = 1, delivered = 1 WHERE user_id = ? AND item IS NOT NULL AND created_at <= ?",
                vec![user_id.into(), int(edge)],
            )?;
        }
        self.sql.run(
            "UPDATE users SET kept = (SELECT COUNT(*) FROM inbox WHERE user_id = ?1 AND item IS NOT NULL) WHERE user_id = ?1",
            vec![user_id.into()],
        )
    }

    /// Events a socket has been handed.
    pub fn mark_handed_over(&self, user_id: &str, event_ids: &[&str]) -> SqlResult<()> {
        for id in event_ids {
            self.sql.run("UPDATE inbox SET delivered = 1 WHERE user_id = ? AND event_id = ?", vec![user_id.into(), (*id).into()])?;
        }
        Ok(())
    }

    /// A channel's socket (of generation `g`) opened: the user is online from now on, and gets
    /// what no socket has been handed yet, oldest first, with the unread count. The channel
    /// confirms what it sent; until then it stays undelivered.
    pub fn attach(&self, user_id: &str, generation: i64) -> SqlResult<(Vec<Value>, Count)> {
        self.sql.run(
            "INSERT INTO online (user_id, generation) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET generation = MAX(generation, excluded.generation)",
            vec![user_id.into(), int(generation)],
        )?;
        let rows = self.sql.query("SELECT item, read FROM inbox WHERE user_id = ? AND delivered = 0 AND item IS NOT NULL ORDER BY created_at", vec![user_id.into()])?;
        let items = rows.into_iter().map(with_read).collect();
        Ok((items, Count { unread: self.unread(user_id)?, clock: self.tick()? }))
    }

    /// Marks the user offline unless a newer connect registered since; true when one did (a
    /// close that crossed a newer connect changes nothing).
    pub fn went_offline(&self, user_id: &str, generation: i64) -> SqlResult<bool> {
        let current = self.generation(user_id)?;
        if current.is_some_and(|g| g <= generation) {
            self.sql.run("DELETE FROM online WHERE user_id = ?", vec![user_id.into()])?;
        }
        Ok(current.is_some_and(|g| g > generation))
    }
}

/// A stored `(item, read)` row: the item with its current read flag.
pub(super) fn with_read(row: Vec<SqlValue>) -> Value {
    let mut it = row.into_iter();
    let text = it.next().and_then(SqlValue::into_text).unwrap_or_default();
    let read = it.next().and_then(|v| v.int()).unwrap_or(0);
    let mut item: Value = serde_json::from_str(&text).unwrap_or_default();
    if item.is_object() {
        item["read"] = json!(read != 0);
    }
    item
}
