//! An inbox shard's SQLite: the notification inboxes and activity timelines of every user whose
//! id hashes to the shard, and which of them have a channel socket open. Each row is keyed
//! (user_id, event_id), so a redelivered event is recognised; items past the latest 500 of a
//! user keep a stub row (no item) for 30 days for that purpose. Every kept item (new or
//! updated) carries the user's next `seq` (§5.3 [1.2]); owner notifications of one post and kind
//! merge into one unread item (`group.rs`, §5.2 [1.2]).

use std::cell::Cell;

use serde_json::{json, Value};

use super::client::{Count, Deliver};
use crate::runtime::sql::{Sql, SqlResult, SqlValue};

/// The shard's schema migrations, oldest first (append only; `crate::schema`).
pub const MIGRATIONS: &[&str] = &[SCHEMA_1, SCHEMA_2, SCHEMA_3, SCHEMA_4];

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

/// 3 (§5.2, §5.3 [1.2]): a per-user `seq` on every kept item (rows kept before get theirs in
/// time order), the aggregation group of an owner notification, the distinct actors of an open
/// group item, the seq last pushed to an online channel, whether a pre-shard inbox was
/// imported. The `delivered` column is no longer used.
const SCHEMA_3: &str = "
ALTER TABLE inbox ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN grp TEXT;
ALTER TABLE users ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN legacy_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE online ADD COLUMN pushed_seq INTEGER NOT NULL DEFAULT 0;
UPDATE inbox SET seq = r.n FROM (SELECT rowid AS id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY created_at, event_id) AS n FROM inbox) AS r WHERE inbox.rowid = r.id;
UPDATE users SET seq = COALESCE((SELECT MAX(seq) FROM inbox WHERE inbox.user_id = users.user_id), 0);
CREATE INDEX inbox_by_seq ON inbox (user_id, seq) WHERE item IS NOT NULL;
CREATE INDEX inbox_open_groups ON inbox (user_id, grp) WHERE read = 0 AND grp IS NOT NULL;
CREATE TABLE item_actors (user_id TEXT NOT NULL, event_id TEXT NOT NULL, actor_id TEXT NOT NULL, at INTEGER NOT NULL, last_event TEXT NOT NULL, PRIMARY KEY (user_id, event_id, actor_id));
CREATE INDEX item_actors_by_age ON item_actors (user_id, event_id, at);
";

/// 4 (§6.2 [1.2], `watch.rs`): who watches which post (rows live while the user's channel has a socket watching it).
pub const SCHEMA_4: &str = "
CREATE TABLE post_watchers (post_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (post_id, user_id));
CREATE INDEX post_watchers_by_user ON post_watchers (user_id);
";

/// Notifications and activities kept per user.
pub const ITEMS_KEPT: i64 = crate::limits::INBOX_ITEMS_KEPT as i64;
/// Trimming waits until a user has this many past the 500, then cuts back in one statement.
const TRIM_SLACK: i64 = 20;
/// How long an event id is remembered after its item left the latest 500.
const STUB_DAYS: i64 = 30;

/// What a channel with a socket open must be pushed after a delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct PushDue {
    pub user_id: String,
    pub generation: i64,
    /// Every kept item with a seq above `from` (the seq last pushed to this channel), oldest
    /// first; or, for a transient event, that event alone.
    pub items: Vec<Value>,
    pub from: i64,
    pub transient: bool,
    pub count: Count,
}

pub(super) fn int(v: i64) -> SqlValue {
    SqlValue::Int(v)
}

/// One user's row of a delivery: what the shard knows before keeping the event.
pub(super) struct UserRow {
    pub seen: bool,
    pub generation: Option<i64>,
    pub pushed_seq: i64,
    pub kept: i64,
    pub last_created: i64,
    pub seq: i64,
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

    pub fn sql(&self) -> &S {
        &self.sql
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

    pub(super) fn user_row(&self, user_id: &str, event_id: &str) -> SqlResult<UserRow> {
        let row = self.sql.query(
            "SELECT (SELECT 1 FROM inbox WHERE user_id = ?1 AND event_id = ?2), o.generation, o.pushed_seq, u.kept, u.last_created, u.seq \
             FROM (SELECT 1) LEFT JOIN users u ON u.user_id = ?1 LEFT JOIN online o ON o.user_id = ?1",
            vec![user_id.into(), event_id.into()],
        )?;
        let col = |i: usize| row.first().and_then(|r| r.get(i)).and_then(SqlValue::int);
        Ok(UserRow { seen: col(0).is_some(), generation: col(1), pushed_seq: col(2).unwrap_or(0), kept: col(3).unwrap_or(0), last_created: col(4).unwrap_or(0), seq: col(5).unwrap_or(0) })
    }

    /// Keeps the event for each user once (or, in its group, merges it into the open item);
    /// returns what the online ones' channels must be pushed. A transient event (`store:
    /// false`) is kept for nobody: it goes to the online channels only.
    pub fn keep(&self, d: &Deliver, now: i64) -> SqlResult<Vec<PushDue>> {
        let clock = self.tick()?;
        if !d.store {
            return self.transient(d, clock);
        }
        let activity = d.item.get("kind").and_then(Value::as_str) == Some("activity");
        let mut item = if d.item.is_object() { d.item.clone() } else { json!({ "payload": d.item }) };
        item["event_id"] = json!(d.event_id);
        item["read"] = json!(false);
        let mut pushes = Vec::new();
        for user_id in &d.user_ids {
            let u = self.user_row(user_id, &d.event_id)?;
            let changed = if u.seen {
                // A redelivery keeps nothing twice; an online channel is pushed what it lacks.
                false
            } else if let Some(group) = &d.group {
                self.keep_grouped(user_id, group, &d.event_id, &item, &u, now)?
            } else {
                self.keep_new(user_id, &d.event_id, None, &mut item, &u, now)?;
                if activity {
                    self.insert_activity(user_id, item["created_at"].as_i64().unwrap_or(now), &item.to_string())?;
                }
                true
            };
            if let Some(generation) = u.generation {
                let items = self.items_after(user_id, u.pushed_seq)?;
                if changed || !items.is_empty() {
                    pushes.push(PushDue { user_id: user_id.clone(), generation, items, from: u.pushed_seq, transient: false, count: Count { unread: self.unread(user_id)?, clock } });
                }
            }
        }
        // Stubs older than the dedupe window leave a bounded number at a time.
        self.sql.run(
            "DELETE FROM inbox WHERE rowid IN (SELECT rowid FROM inbox WHERE item IS NULL AND created_at < ? LIMIT 1000)",
            vec![int(now - STUB_DAYS * 24 * 3600 * 1000)],
        )?;
        Ok(pushes)
    }

    fn transient(&self, d: &Deliver, clock: i64) -> SqlResult<Vec<PushDue>> {
        let mut item = if d.item.is_object() { d.item.clone() } else { json!({ "payload": d.item }) };
        item["event_id"] = json!(d.event_id);
        item["transient"] = json!(true);
        if let Some(o) = item.as_object_mut() {
            o.remove("read");
        }
        let mut pushes = Vec::new();
        for user_id in &d.user_ids {
            if let Some(generation) = self.generation(user_id)? {
                let count = Count { unread: self.unread(user_id)?, clock };
                pushes.push(PushDue { user_id: user_id.clone(), generation, items: vec![item.clone()], from: 0, transient: true, count });
            }
        }
        Ok(pushes)
    }

    /// A new item for the user: the next seq, a created time after the user's last.
    pub(super) fn keep_new(&self, user_id: &str, event_id: &str, group: Option<&str>, item: &mut Value, u: &UserRow, now: i64) -> SqlResult<()> {
        // Strictly increasing per user, so `before` pages never skip or repeat an item.
        let created = now.max(u.last_created + 1);
        item["created_at"] = json!(created);
        if group.is_some() {
            item["updated_at"] = json!(created);
        }
        let seq = u.seq + 1;
        self.sql.run(
            "INSERT INTO inbox (user_id, event_id, created_at, read, delivered, item, seq, grp) VALUES (?, ?, ?, 0, 0, ?, ?, ?)",
            vec![user_id.into(), event_id.into(), int(created), item.to_string().into(), int(seq), group.into()],
        )?;
        let kept = u.kept + 1;
        self.sql.run(
            "INSERT INTO users (user_id, kept, last_created, seq) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (user_id) DO UPDATE SET kept = excluded.kept, last_created = excluded.last_created, seq = excluded.seq",
            vec![user_id.into(), int(kept), int(created), int(seq)],
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

    /// Kept items with a seq above `after` (the latest 500 of them), oldest first.
    pub fn items_after(&self, user_id: &str, after: i64) -> SqlResult<Vec<Value>> {
        let rows = self.sql.query(
            "SELECT item, read, seq FROM inbox WHERE user_id = ? AND item IS NOT NULL AND seq > ? ORDER BY seq DESC LIMIT ?",
            vec![user_id.into(), int(after), int(ITEMS_KEPT)],
        )?;
        Ok(rows.into_iter().rev().map(with_read).collect())
    }

    /// The user's latest seq.
    pub fn head(&self, user_id: &str) -> SqlResult<i64> {
        Ok(self.sql.first_int("SELECT seq FROM users WHERE user_id = ?", vec![user_id.into()])?.unwrap_or(0))
    }

    /// Items past the latest 500 (by seq) become stubs: read, no item, only the id remains.
    /// Bounded: the edge is found through the index of kept items (~500 entries), and only the
    /// few items past it are touched — never the user's stubs.
    pub fn trim(&self, user_id: &str) -> SqlResult<()> {
        let edge = self.sql.first_int(
            "SELECT seq FROM inbox WHERE user_id = ? AND item IS NOT NULL ORDER BY seq DESC LIMIT 1 OFFSET ?",
            vec![user_id.into(), int(ITEMS_KEPT)],
        )?;
        if let Some(edge) = edge {
            let gone = self.sql.texts("SELECT event_id FROM inbox WHERE user_id = ? AND item IS NOT NULL AND seq <= ?", vec![user_id.into(), int(edge)])?;
            self.sql.run("UPDATE inbox SET item = NULL, read = 1, grp = NULL WHERE user_id = ? AND item IS NOT NULL AND seq <= ?", vec![user_id.into(), int(edge)])?;
            for id in &gone {
                self.forget_actors(user_id, Some(id))?;
            }
        }
        self.sql.run(
            "UPDATE users SET kept = (SELECT COUNT(*) FROM inbox WHERE user_id = ?1 AND item IS NOT NULL AND seq > 0) WHERE user_id = ?1",
            vec![user_id.into()],
        )
    }

    /// A channel's socket (of generation `g`) opened: the user is online from now on. The
    /// reply: with `since`, every kept item with a seq above it; without, the unread ones (at
    /// most 500, oldest first); the user's latest seq; the unread count.
    pub fn attach(&self, user_id: &str, generation: i64, since: Option<i64>) -> SqlResult<(Vec<Value>, i64, Count)> {
        let head = self.head(user_id)?;
        self.sql.run(
            "INSERT INTO online (user_id, generation, pushed_seq) VALUES (?, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET generation = MAX(generation, excluded.generation), pushed_seq = MAX(pushed_seq, excluded.pushed_seq)",
            vec![user_id.into(), int(generation), int(head)],
        )?;
        let items = match since {
            Some(n) => self.items_after(user_id, n)?,
            None => {
                let rows = self.sql.query(
                    "SELECT item, read, seq FROM inbox WHERE user_id = ? AND read = 0 AND item IS NOT NULL ORDER BY seq DESC LIMIT ?",
                    vec![user_id.into(), int(ITEMS_KEPT)],
                )?;
                rows.into_iter().rev().map(with_read).collect()
            }
        };
        Ok((items, head, Count { unread: self.unread(user_id)?, clock: self.tick()? }))
    }

    /// When the injected test outage began (the first call sets it to `now`).
    pub fn fault_since(&self, now: i64) -> SqlResult<i64> {
        self.sql.run("INSERT OR IGNORE INTO meta (key, value) VALUES ('fault_since', ?)", vec![int(now)])?;
        Ok(self.sql.first_int("SELECT value FROM meta WHERE key = 'fault_since'", vec![])?.unwrap_or(now))
    }

    /// The channel took everything up to `seq`.
    pub fn pushed(&self, user_id: &str, seq: i64) -> SqlResult<()> {
        self.sql.run("UPDATE online SET pushed_seq = MAX(pushed_seq, ?) WHERE user_id = ?", vec![int(seq), user_id.into()])
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

/// A stored `(item, read, seq)` row: the item with its current read flag and seq.
pub(super) fn with_read(row: Vec<SqlValue>) -> Value {
    let mut it = row.into_iter();
    let text = it.next().and_then(SqlValue::into_text).unwrap_or_default();
    let read = it.next().and_then(|v| v.int()).unwrap_or(0);
    let seq = it.next().and_then(|v| v.int());
    let mut item: Value = serde_json::from_str(&text).unwrap_or_default();
    if item.is_object() {
        item["read"] = json!(read != 0);
        if let Some(seq) = seq {
            item["seq"] = json!(seq);
        }
    }
    item
}
