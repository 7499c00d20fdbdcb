//! What an inbox shard answers about one user's inbox: pages of notifications and of the
//! activity timeline, read marks, who holds an event, and the import of a channel's pre-shard
//! inbox.

use serde_json::{json, Value};

use super::client::{Count, Import, MarkRead, ReadPage};
use super::storage::{int, with_read, InboxStore};
use crate::protocol::Failure;
use crate::runtime::sql::{Sql, SqlResult, SqlValue};

const PAGE_DEFAULT: u64 = 50;
const PAGE_MAX: u64 = 100;
/// Times are bound to what JavaScript numbers hold exactly.
const MAX_SAFE: i64 = (1 << 53) - 1;

impl<S: Sql> InboxStore<S> {
    /// Marks the named events (or all) read; the new count, and the user's online generation.
    pub fn mark_read(&self, r: &MarkRead) -> SqlResult<(Count, Option<i64>)> {
        match &r.event_ids {
            None => {
                self.sql.run("UPDATE inbox SET read = 1 WHERE user_id = ? AND read = 0", vec![r.user_id.as_str().into()])?;
                self.forget_actors(&r.user_id, None)?;
            }
            Some(ids) => {
                for id in ids {
                    self.sql.run("UPDATE inbox SET read = 1 WHERE user_id = ? AND event_id = ?", vec![r.user_id.as_str().into(), id.as_str().into()])?;
                    self.forget_actors(&r.user_id, Some(id))?;
                }
            }
        }
        let count = Count { unread: self.unread(&r.user_id)?, clock: self.tick()? };
        Ok((count, self.generation(&r.user_id)?))
    }

    /// A page of notifications (with the unread count) or of the timeline, newest first.
    pub fn page(&self, p: &ReadPage) -> Result<Value, Failure> {
        let limit = p.limit.unwrap_or(PAGE_DEFAULT);
        if limit == 0 || limit > PAGE_MAX {
            return Err(Failure::bad("limit must be between 1 and 100"));
        }
        let before = p.before.map_or(MAX_SAFE, |b| b.min(MAX_SAFE as u64) as i64);
        let query = if p.timeline {
            "SELECT item, 0 FROM activities WHERE user_id = ? AND created_at < ? ORDER BY created_at DESC LIMIT ?"
        } else {
            "SELECT item, read, seq FROM inbox WHERE user_id = ? AND item IS NOT NULL AND created_at < ? ORDER BY created_at DESC LIMIT ?"
        };
        let rows = self.sql.query(query, vec![p.user_id.as_str().into(), int(before), int(limit as i64 + 1)])?;
        let more = rows.len() as u64 > limit;
        let items: Vec<Value> = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| if p.timeline { serde_json::from_str(r.first().and_then(SqlValue::text).unwrap_or_default()).unwrap_or_default() } else { with_read(r) })
            .collect();
        let next_before = if more { items.last().and_then(|i| i["created_at"].as_u64()) } else { None };
        Ok(if p.timeline {
            json!({ "activities": items, "next_before": next_before })
        } else {
            json!({ "notifications": items, "unread": self.unread(&p.user_id)?, "next_before": next_before, "legacy_checked": self.legacy_checked(&p.user_id)? })
        })
    }

    /// Whether the user's channel has handed over its pre-shard inbox (or had none).
    pub fn legacy_checked(&self, user_id: &str) -> SqlResult<bool> {
        Ok(self.sql.first_int("SELECT legacy_done FROM users WHERE user_id = ?", vec![user_id.into()])?.unwrap_or(0) != 0)
    }

    /// The users of this shard whose inbox holds the event.
    pub fn holders(&self, event_id: &str) -> SqlResult<Vec<String>> {
        self.sql.texts("SELECT user_id FROM inbox WHERE event_id = ? AND item IS NOT NULL", vec![event_id.into()])
    }

    /// Keeps a channel's pre-shard items as they were (an id already here is left alone), each
    /// with the user's next seq in time order; the user is marked as imported.
    pub fn import(&self, i: &Import) -> SqlResult<usize> {
        let at = |created: f64, text: &str| -> String {
            // The item's time becomes the row's, so `before` pages by one clock.
            let mut item: Value = serde_json::from_str(text).unwrap_or_default();
            if item.is_object() {
                item["created_at"] = json!(created as i64);
            }
            item.to_string()
        };
        let user = i.user_id.as_str();
        let mut seq = self.head(user)?;
        let mut inbox: Vec<_> = i.inbox.iter().collect();
        inbox.sort_by(|a, b| a.created_at.total_cmp(&b.created_at));
        for old in inbox {
            if self.sql.first_int("SELECT 1 FROM inbox WHERE user_id = ? AND event_id = ?", vec![user.into(), old.event_id.as_str().into()])?.is_some() {
                continue;
            }
            seq += 1;
            self.sql.run(
                "INSERT INTO inbox (user_id, event_id, created_at, read, delivered, item, seq) VALUES (?, ?, ?, ?, 0, ?, ?)",
                vec![user.into(), old.event_id.as_str().into(), int(old.created_at as i64), (old.read != 0.0).into(), at(old.created_at, &old.item).into(), int(seq)],
            )?;
        }
        for old in &i.activities {
            self.sql.run(
                "INSERT OR IGNORE INTO activities (user_id, created_at, item) VALUES (?, ?, ?)",
                vec![user.into(), int(old.created_at as i64), at(old.created_at, &old.item).into()],
            )?;
        }
        self.sql.run(
            "INSERT INTO users (user_id, kept, last_created, seq, legacy_done) \
               SELECT ?1, COUNT(*), COALESCE(MAX(created_at), 0), ?2, 1 FROM inbox WHERE user_id = ?1 AND item IS NOT NULL AND seq > 0 \
             ON CONFLICT (user_id) DO UPDATE SET kept = excluded.kept, last_created = MAX(users.last_created, excluded.last_created), seq = excluded.seq, legacy_done = 1",
            vec![user.into(), int(seq)],
        )?;
        self.trim(user)?;
        Ok(i.inbox.len() + i.activities.len())
    }
}
