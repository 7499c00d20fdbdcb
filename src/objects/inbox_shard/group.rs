//! Aggregated owner notifications (§5.2 [1.2]): at most one unread item per (post, kind) in an
//! inbox. A like, comment or repost while that item is unread updates it in place — same
//! event_id, `count` of distinct actors, the latest three actors, the latest's details,
//! `updated_at`, a new seq — and does not raise `unread`. The distinct actors of an open item
//! are rows of `item_actors` (at most `ACTORS_TRACKED` per item, the longest idle dropped),
//! removed when the item is read or trimmed.

use serde_json::{json, Value};

use super::storage::{int, InboxStore, UserRow};
use crate::runtime::sql::{Sql, SqlResult, SqlValue};

/// Actors listed on an item, newest first.
pub const ACTORS_SHOWN: usize = 3;
/// Distinct actors remembered per open item. Past it the actor idle the longest is forgotten
/// (and would count again if they came back while the item is still unread).
pub const ACTORS_TRACKED: i64 = 256;

/// The item an open group becomes after `incoming` (a delivered owner notification): the
/// incoming details win, the actor goes first in `actors`, `count` grows for a new actor.
pub fn merged(open: &Value, incoming: &Value, new_actor: bool, now: i64) -> Value {
    let mut item = open.clone();
    for (k, v) in incoming.as_object().into_iter().flatten() {
        if !matches!(k.as_str(), "event_id" | "created_at" | "read" | "seq" | "count" | "actors") {
            item[k] = v.clone();
        }
    }
    let actor = incoming.get("actor").cloned().unwrap_or(Value::Null);
    let mut actors = vec![actor.clone()];
    let before = open.get("actors").and_then(Value::as_array).cloned().unwrap_or_default();
    actors.extend(before.into_iter().filter(|a| a.get("id") != actor.get("id")));
    actors.truncate(ACTORS_SHOWN);
    item["actors"] = json!(actors);
    item["count"] = json!(open.get("count").and_then(Value::as_i64).unwrap_or(1) + new_actor as i64);
    item["updated_at"] = json!(now);
    item["updated"] = json!(true);
    item
}

/// The first item of a group: one actor so far.
pub fn opened(incoming: &Value) -> Value {
    let mut item = incoming.clone();
    item["actors"] = json!([incoming.get("actor").cloned().unwrap_or(Value::Null)]);
    item["count"] = json!(1);
    item
}

fn actor_id(item: &Value) -> String {
    item.pointer("/actor/id").and_then(Value::as_str).unwrap_or_default().to_string()
}

impl<S: Sql> InboxStore<S> {
    /// Keeps an owner notification of `group` (post and kind) for one user: merged into the
    /// open item, or a new one. False when it was a redelivery of what the item already holds.
    pub(super) fn keep_grouped(&self, user_id: &str, group: &str, event_id: &str, incoming: &Value, u: &UserRow, now: i64) -> SqlResult<bool> {
        let open = self.sql.query(
            "SELECT event_id, item FROM inbox WHERE user_id = ? AND grp = ? AND read = 0 AND item IS NOT NULL LIMIT 1",
            vec![user_id.into(), group.into()],
        )?;
        let actor = actor_id(incoming);
        let Some(row) = open.into_iter().next() else {
            let mut item = opened(incoming);
            self.keep_new(user_id, event_id, Some(group), &mut item, u, now)?;
            self.touch_actor(user_id, event_id, &actor, event_id, now)?;
            return Ok(true);
        };
        let mut cols = row.into_iter();
        let open_id = cols.next().and_then(SqlValue::into_text).unwrap_or_default();
        let open_item: Value = serde_json::from_str(&cols.next().and_then(SqlValue::into_text).unwrap_or_default()).unwrap_or_default();
        let last = self.sql.first_text("SELECT last_event FROM item_actors WHERE user_id = ? AND event_id = ? AND actor_id = ?", vec![user_id.into(), open_id.as_str().into(), actor.as_str().into()])?;
        if last.as_deref() == Some(event_id) {
            return Ok(false);
        }
        let item = merged(&open_item, incoming, last.is_none(), now);
        let seq = u.seq + 1;
        self.sql.run("UPDATE inbox SET item = ?, seq = ? WHERE user_id = ? AND event_id = ?", vec![item.to_string().into(), int(seq), user_id.into(), open_id.as_str().into()])?;
        self.sql.run("UPDATE users SET seq = ? WHERE user_id = ?", vec![int(seq), user_id.into()])?;
        self.touch_actor(user_id, &open_id, &actor, event_id, now)?;
        Ok(true)
    }

    /// Records `actor` on item `item_id` (bounded: past `ACTORS_TRACKED`, the idlest goes).
    fn touch_actor(&self, user_id: &str, item_id: &str, actor: &str, event_id: &str, now: i64) -> SqlResult<()> {
        self.sql.run(
            "INSERT INTO item_actors (user_id, event_id, actor_id, at, last_event) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (user_id, event_id, actor_id) DO UPDATE SET at = excluded.at, last_event = excluded.last_event",
            vec![user_id.into(), item_id.into(), actor.into(), int(now), event_id.into()],
        )?;
        let tracked = self.sql.first_int(
            "SELECT COUNT(*) FROM (SELECT 1 FROM item_actors WHERE user_id = ? AND event_id = ? LIMIT ?)",
            vec![user_id.into(), item_id.into(), int(ACTORS_TRACKED + 1)],
        )?;
        if tracked.unwrap_or(0) > ACTORS_TRACKED {
            self.sql.run(
                "DELETE FROM item_actors WHERE rowid IN (SELECT rowid FROM item_actors WHERE user_id = ? AND event_id = ? ORDER BY at LIMIT 1)",
                vec![user_id.into(), item_id.into()],
            )?;
        }
        Ok(())
    }

    /// The item (or, with `None`, every item of the user) is read or gone: its actors too.
    pub(super) fn forget_actors(&self, user_id: &str, item_id: Option<&str>) -> SqlResult<()> {
        match item_id {
            Some(id) => self.sql.run("DELETE FROM item_actors WHERE user_id = ? AND event_id = ?", vec![user_id.into(), id.into()]),
            None => self.sql.run("DELETE FROM item_actors WHERE user_id = ?", vec![user_id.into()]),
        }
    }
}
