//! The personal channel's own SQLite: the user it belongs to, their presence and activity, who
//! watches them, the rooms they have sockets in, the unread count its sockets were last told, and
//! the ids of transient events handed to its sockets (so each reaches them once), the highest
//! notification seq pushed to it.

pub use crate::objects::inbox_shard::client::Count;
use crate::presence::Presence;
use crate::runtime::sql::{meta, Sql, SqlResult};

/// The channel's schema migrations, oldest first (append only; `crate::schema`).
pub const MIGRATIONS: &[&str] = &[
    // 1: the channel as first versioned, when it also kept the inbox.
    "CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, payload TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS seen (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE);
     CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS watchers (user_id TEXT PRIMARY KEY);
     CREATE TABLE IF NOT EXISTS rooms (document_id TEXT PRIMARY KEY, connections INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, created_at INTEGER NOT NULL, read INTEGER NOT NULL, delivered INTEGER NOT NULL, item TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS activities (seq INTEGER PRIMARY KEY AUTOINCREMENT, created_at INTEGER NOT NULL, item TEXT NOT NULL);",
    // 2: the inbox moved to the inbox shards; what the channel kept is handed over once
    // (`legacy_inbox.rs`) and then dropped.
    "DROP INDEX IF EXISTS inbox_by_time;
     DROP INDEX IF EXISTS activities_by_time;
     ALTER TABLE inbox RENAME TO legacy_inbox;
     ALTER TABLE activities RENAME TO legacy_activities;",
    // 3 (§5.6): room reports lapse unless renewed; who may see this user's presence.
    "ALTER TABLE rooms ADD COLUMN reported_at INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE IF NOT EXISTS audience (user_id TEXT PRIMARY KEY);",
];

/// Transient event ids a channel remembers to hand each to its sockets once (a redelivery comes
/// within the queue's retry window).
const SEEN_KEPT: i64 = 2_000;

pub struct ChannelStore<S: Sql> {
    sql: S,
    /// When an unrenewed room report stops counting (§5.6).
    report_lapse_ms: u64,
}

impl<S: Sql> ChannelStore<S> {
    pub fn new(sql: S) -> Self {
        ChannelStore { sql, report_lapse_ms: crate::presence::REPORT_LAPSE_MS }
    }

    /// Another lapse than the protocol's 3 minutes (tests of the lapse).
    pub fn with_report_lapse(mut self, ms: u64) -> Self {
        self.report_lapse_ms = ms;
        self
    }

    pub fn sql(&self) -> &S {
        &self.sql
    }

    pub fn ensure_schema(&self) -> Result<u32, String> {
        crate::runtime::sql::migrate(&self.sql, MIGRATIONS)
    }

    pub fn meta(&self, key: &str) -> SqlResult<Option<String>> {
        meta::get(&self.sql, key)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> SqlResult<()> {
        meta::set(&self.sql, key, value)
    }

    /// The generation of the channel's sockets, advanced on every connect.
    pub fn next_generation(&self) -> SqlResult<i64> {
        let g = self.generation()? + 1;
        self.set_meta("generation", &g.to_string())?;
        Ok(g)
    }

    pub fn generation(&self) -> SqlResult<i64> {
        Ok(self.meta("generation")?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Keeps `c` if it is newer than the stored count; returns the newest of the two.
    pub fn newest_count(&self, c: Count) -> SqlResult<Count> {
        match self.count()? {
            Some(s) if s.clock >= c.clock => Ok(s),
            _ => {
                self.set_meta("count", &serde_json::to_string(&c).unwrap_or_default())?;
                Ok(c)
            }
        }
    }

    pub fn count(&self) -> SqlResult<Option<Count>> {
        Ok(self.meta("count")?.and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Records `event_id` as handed to the sockets; false when it already was.
    pub fn mark_seen(&self, event_id: &str) -> SqlResult<bool> {
        if self.sql.first_int("SELECT 1 FROM seen WHERE event_id = ?", vec![event_id.into()])?.is_some() {
            return Ok(false);
        }
        self.sql.run("INSERT INTO seen (event_id) VALUES (?)", vec![event_id.into()])?;
        self.sql.run("DELETE FROM seen WHERE seq <= (SELECT MAX(seq) FROM seen) - ?", vec![SEEN_KEPT.into()])?;
        Ok(true)
    }

    /// The sockets did not take `event_id` after all: the next connect hands it over again.
    pub fn unsee(&self, event_id: &str) -> SqlResult<()> {
        self.sql.run("DELETE FROM seen WHERE event_id = ?", vec![event_id.into()])
    }

    pub fn remember_user(&self, user_id: &str) -> SqlResult<()> {
        self.set_meta("user_id", user_id)
    }

    /// Records activity at `now` (a socket opened or closed, a room joined or left).
    pub fn touch(&self, now: u64) -> SqlResult<()> {
        self.set_meta("last_seen", &now.to_string())
    }

    pub fn presence(&self) -> SqlResult<Option<Presence>> {
        Ok(self.meta("presence")?.and_then(|p| serde_json::from_str(&p).ok()))
    }

    pub fn set_presence(&self, p: &Presence) -> SqlResult<()> {
        self.set_meta("presence", &serde_json::to_string(p).unwrap_or_default())
    }

    /// What others see of this user at `now`, given whether any socket of theirs is open here.
    pub fn shown(&self, sockets_open: bool, to_self: bool, now: u64) -> SqlResult<serde_json::Value> {
        let last_seen = self.meta("last_seen")?.and_then(|v| v.parse().ok()).unwrap_or(0);
        let user_id = self.meta("user_id")?.unwrap_or_default();
        let connected = self.live(sockets_open, now)?;
        Ok(Presence::shown(&user_id, self.presence()?.as_ref(), connected, last_seen, to_self))
    }

    /// Whether the user counts as connected: a socket here, a renewed room report, or a lease.
    pub fn live(&self, sockets_open: bool, now: u64) -> SqlResult<bool> {
        Ok(sockets_open || self.in_any_room(now)? || self.presence()?.is_some_and(|p| p.leased(now)))
    }

    /// Rooms whose report is still fresh at `now`.
    pub fn in_any_room(&self, now: u64) -> SqlResult<bool> {
        Ok(self.sql.first_int("SELECT 1 FROM rooms WHERE reported_at > ? LIMIT 1", vec![self.fresh_after(now)])?.is_some())
    }

    fn fresh_after(&self, now: u64) -> crate::runtime::sql::SqlValue {
        (now as i64 - self.report_lapse_ms as i64).into()
    }

    /// How many sockets the user has in a room (0: none any more), reported or renewed at `now`.
    pub fn set_room(&self, document_id: &str, connections: u32, now: u64) -> SqlResult<()> {
        if connections == 0 {
            self.sql.run("DELETE FROM rooms WHERE document_id = ?", vec![document_id.into()])
        } else {
            let args = vec![document_id.into(), (connections as i64).into(), (now as i64).into()];
            self.sql.run("INSERT OR REPLACE INTO rooms (document_id, connections, reported_at) VALUES (?, ?, ?)", args)
        }
    }

    /// The rooms with a fresh report (where presence changes are shown); lapsed ones are dropped.
    pub fn rooms(&self, now: u64) -> SqlResult<Vec<String>> {
        self.sql.run("DELETE FROM rooms WHERE reported_at <= ?", vec![self.fresh_after(now)])?;
        self.sql.texts("SELECT document_id FROM rooms", vec![])
    }

    /// The next time the user's liveness may change by itself: a lease or a room report lapsing.
    pub fn next_lapse(&self, now: u64) -> SqlResult<Option<u64>> {
        let room = self.sql.first_int("SELECT MIN(reported_at) FROM rooms WHERE reported_at > ?", vec![self.fresh_after(now)])?;
        let room = room.map(|at| at as u64 + self.report_lapse_ms + 1);
        let lease = self.presence()?.and_then(|p| p.lease_until).filter(|&until| until > now);
        Ok(room.into_iter().chain(lease).min())
    }

    /// `None`: everyone may see this user's presence; otherwise only these users (and the user).
    pub fn set_audience(&self, user_ids: Option<&[String]>) -> SqlResult<()> {
        self.sql.transaction(&mut || {
            self.sql.run("DELETE FROM audience", vec![])?;
            for id in user_ids.unwrap_or_default() {
                self.sql.run("INSERT OR IGNORE INTO audience (user_id) VALUES (?)", vec![id.as_str().into()])?;
            }
            self.set_meta("audience", if user_ids.is_some() { "limited" } else { "everyone" })
        })
    }

    pub fn may_see(&self, viewer: &str) -> SqlResult<bool> {
        if self.meta("audience")?.as_deref() != Some("limited") || self.meta("user_id")?.as_deref() == Some(viewer) {
            return Ok(true);
        }
        Ok(self.sql.first_int("SELECT 1 FROM audience WHERE user_id = ?", vec![viewer.into()])?.is_some())
    }

    pub fn add_watcher(&self, watcher: &str) -> SqlResult<()> {
        self.sql.run("INSERT OR IGNORE INTO watchers (user_id) VALUES (?)", vec![watcher.into()])
    }

    pub fn remove_watcher(&self, watcher: &str) -> SqlResult<()> {
        self.sql.run("DELETE FROM watchers WHERE user_id = ?", vec![watcher.into()])
    }

    /// The users this user watches (the last `watch_presence` list, §5.1 [1.2]).
    pub fn watching(&self) -> SqlResult<Vec<String>> {
        Ok(self.meta("watching")?.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default())
    }

    pub fn set_watching(&self, user_ids: &[String]) -> SqlResult<()> {
        self.set_meta("watching", &serde_json::to_string(user_ids).unwrap_or_default())
    }

    pub fn watchers(&self) -> SqlResult<Vec<String>> {
        self.sql.texts("SELECT user_id FROM watchers", vec![])
    }

    /// Notifications kept by the channel before there was an inbox, `(event_id, payload)`:
    /// imported into the inbox shard like the rest of a pre-shard inbox.
    pub fn legacy_pending(&self) -> SqlResult<Vec<(String, String)>> {
        let rows = self.sql.query("SELECT event_id, payload FROM pending ORDER BY seq", vec![])?;
        Ok(rows.into_iter().map(|r| {
            let mut it = r.into_iter().map(|v| v.into_text().unwrap_or_default());
            (it.next().unwrap_or_default(), it.next().unwrap_or_default())
        }).collect())
    }

    pub fn clear_legacy_pending(&self) -> SqlResult<()> {
        self.sql.run("DELETE FROM pending", vec![])
    }

    /// The highest seq a push brought the channel (a socket that was not ready for it catches up).
    pub fn note_push_seq(&self, seq: i64) -> SqlResult<()> {
        if seq > self.push_seq()? {
            self.set_meta("push_seq", &seq.to_string())?;
        }
        Ok(())
    }

    pub fn push_seq(&self) -> SqlResult<i64> {
        Ok(self.meta("push_seq")?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// A request limited to one per `every_ms` (`watch_presence`, `watch_posts`): takes the turn
    /// and gives Ok, or gives the ms left. Kept in storage, not memory, so an object that was
    /// evicted or reset between two requests still refuses the second.
    pub fn take_turn(&self, key: &str, now: u64, every_ms: u64) -> SqlResult<Result<(), u64>> {
        let last: u64 = self.meta(key)?.and_then(|v| v.parse().ok()).unwrap_or(0);
        let due = last.saturating_add(every_ms);
        if last > 0 && now < due {
            // Never more than one window, even if the turn was stored by a clock ahead of ours.
            return Ok(Err((due - now).min(every_ms)));
        }
        self.set_meta(key, &now.to_string())?;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::sql_sqlite::MemorySql;

    fn store() -> ChannelStore<MemorySql> {
        let s = ChannelStore::new(MemorySql::new());
        s.ensure_schema().unwrap();
        s
    }

    #[test]
    fn counts_that_cross_never_step_back() {
        let s = store();
        assert_eq!(s.newest_count(Count { unread: 3, clock: 5 }).unwrap(), Count { unread: 3, clock: 5 });
        assert_eq!(s.newest_count(Count { unread: 9, clock: 4 }).unwrap(), Count { unread: 3, clock: 5 }, "an older count loses");
        assert_eq!(s.newest_count(Count { unread: 1, clock: 6 }).unwrap(), Count { unread: 1, clock: 6 });
    }

    #[test]
    fn an_event_is_seen_once_until_unseen() {
        let s = store();
        assert!(s.mark_seen("e1").unwrap());
        assert!(!s.mark_seen("e1").unwrap());
        s.unsee("e1").unwrap();
        assert!(s.mark_seen("e1").unwrap());
    }

    #[test]
    fn the_seen_list_is_bounded() {
        let s = store();
        for i in 0..(SEEN_KEPT + 50) {
            s.mark_seen(&format!("e{i}")).unwrap();
        }
        let n = s.sql().first_int("SELECT COUNT(*) FROM seen", vec![]).unwrap().unwrap();
        assert!(n <= SEEN_KEPT + 1, "{n}");
        assert!(s.mark_seen("e0").unwrap(), "the oldest ids are forgotten");
    }

    #[test]
    fn generations_advance_and_rooms_make_the_user_present() {
        let s = store();
        assert_eq!((s.next_generation().unwrap(), s.next_generation().unwrap()), (1, 2));
        s.remember_user("u1").unwrap();
        assert_eq!(s.shown(false, false, 0).unwrap()["status"], "offline");
        s.set_room("doc", 2, 0).unwrap();
        assert_eq!(s.shown(false, false, 0).unwrap()["status"], "online");
        s.set_room("doc", 0, 0).unwrap();
        assert!(!s.in_any_room(0).unwrap());
    }

    #[test]
    fn an_unrenewed_room_report_lapses() {
        let s = store().with_report_lapse(1_000);
        s.remember_user("u1").unwrap();
        s.set_room("doc", 1, 10_000).unwrap();
        assert_eq!(s.next_lapse(10_000).unwrap(), Some(11_001));
        assert!(s.live(false, 10_999).unwrap());
        assert!(!s.live(false, 11_000).unwrap(), "a restart never sent the close report");
        s.set_room("doc", 1, 10_900).unwrap();
        assert!(s.live(false, 11_500).unwrap(), "a renewal keeps it");
        assert!(s.rooms(20_000).unwrap().is_empty());
        assert_eq!(s.next_lapse(20_000).unwrap(), None);
    }

    #[test]
    fn a_lease_keeps_the_status_without_sockets() {
        let s = store();
        s.remember_user("u1").unwrap();
        let p = Presence::parse(&serde_json::json!({"status": "online", "in_studio": true, "ttl": 90}), 1_000).unwrap();
        s.set_presence(&p).unwrap();
        assert_eq!(s.shown(false, false, 50_000).unwrap()["in_studio"], true);
        assert_eq!(s.next_lapse(50_000).unwrap(), Some(91_000));
        assert_eq!(s.shown(false, false, 91_000).unwrap()["status"], "offline");
    }

    #[test]
    fn an_audience_limits_who_may_see() {
        let s = store();
        s.remember_user("u1").unwrap();
        assert!(s.may_see("anyone").unwrap());
        s.set_audience(Some(&["friend".to_string()])).unwrap();
        assert_eq!([s.may_see("friend").unwrap(), s.may_see("u1").unwrap(), s.may_see("stranger").unwrap()], [true, true, false]);
        s.set_audience(None).unwrap();
        assert!(s.may_see("stranger").unwrap());
    }

    #[test]
    fn a_turn_is_taken_once_per_window_and_kept_in_storage() {
        let s = store();
        assert_eq!(s.take_turn("watch_posts_at", 10_000, 1_000).unwrap(), Ok(()));
        assert_eq!(s.take_turn("watch_posts_at", 10_400, 1_000).unwrap(), Err(600));
        assert_eq!(s.take_turn("watch_presence_at", 10_400, 1_000).unwrap(), Ok(()), "each kind has its own turn");
        // The turn is in storage (a reset object reads it back), not in the store's memory.
        assert_eq!(s.meta("watch_posts_at").unwrap().as_deref(), Some("10000"));
        assert_eq!(s.take_turn("watch_posts_at", 10_999, 1_000).unwrap(), Err(1));
        assert_eq!(s.take_turn("watch_posts_at", 11_000, 1_000).unwrap(), Ok(()));
        assert_eq!(s.take_turn("watch_posts_at", 11_001, 1_000).unwrap(), Err(999), "the refused try did not move the window");
        // A turn stored by a clock ahead of this one never asks for more than one window.
        assert_eq!(s.take_turn("watch_posts_at", 5_000, 1_000).unwrap(), Err(1_000));
    }
}
