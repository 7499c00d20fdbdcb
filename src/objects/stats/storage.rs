//! A stats shard's SQLite: the live socket count of each of its documents' rooms and the
//! tallies they report, kept in 10-second spans; a snapshot is the live gauges plus the spans
//! of the last minute.

use crate::metrics::{room_size_bucket, Report, ShardSnapshot, Tally};
use crate::runtime::sql::{Sql, SqlResult, SqlValue};

pub const MIGRATIONS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS live (document_id TEXT PRIMARY KEY, connections INTEGER NOT NULL, at INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS spans (start INTEGER PRIMARY KEY, tally TEXT NOT NULL);",
    // 2: reports of one millisecond are ordered by the room's counter, and an emptied room
    // keeps a row (0 connections) so a report that crossed it on the way cannot revive it.
    "ALTER TABLE live ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;",
];

/// Tallies are kept in 10-second spans; "the last minute" is the spans that started within it.
const SPAN_MS: u64 = 10_000;
const WINDOW_MS: u64 = 60_000;
const KEPT_MS: u64 = 10 * 60_000;

pub struct StatsStore<S: Sql> {
    sql: S,
    /// A room's live count not renewed for this long no longer counts (§5.6).
    lapse_ms: u64,
}

impl<S: Sql> StatsStore<S> {
    pub fn new(sql: S) -> Self {
        StatsStore { sql, lapse_ms: crate::presence::REPORT_LAPSE_MS }
    }

    pub fn with_lapse(mut self, ms: u64) -> Self {
        self.lapse_ms = ms;
        self
    }

    pub fn ensure_schema(&self) -> Result<u32, String> {
        crate::runtime::sql::migrate(&self.sql, MIGRATIONS)
    }

    pub fn record(&self, r: &Report) -> SqlResult<()> {
        if let Some(n) = r.connections {
            // A report older than the one stored (they can cross) does not win.
            self.sql.run(
                "INSERT INTO live (document_id, connections, at, seq) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (document_id) DO UPDATE SET connections = excluded.connections, at = excluded.at, seq = excluded.seq \
                 WHERE excluded.at > live.at OR (excluded.at = live.at AND excluded.seq >= live.seq)",
                vec![r.document_id.as_str().into(), (n as i64).into(), r.at.into(), r.seq.into()],
            )?;
            self.sql.run("DELETE FROM live WHERE connections = 0 AND at < ?", vec![r.at.saturating_sub(KEPT_MS).into()])?;
        }
        if r.tally.is_empty() {
            return Ok(());
        }
        let start = SqlValue::from(r.at / SPAN_MS * SPAN_MS);
        let stored = self.sql.first_text("SELECT tally FROM spans WHERE start = ?", vec![start.clone()])?;
        let mut tally: Tally = stored.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        tally.merge(&r.tally);
        self.sql.run("INSERT OR REPLACE INTO spans (start, tally) VALUES (?, ?)", vec![start, serde_json::to_string(&tally)?.into()])?;
        self.sql.run("DELETE FROM spans WHERE start < ?", vec![r.at.saturating_sub(KEPT_MS).into()])
    }

    pub fn snapshot(&self, now: u64) -> SqlResult<ShardSnapshot> {
        let mut s = ShardSnapshot::default();
        // Rooms renew their count; one whose runtime restarted with sockets open stops counting.
        let fresh_after = SqlValue::from(now.saturating_sub(self.lapse_ms));
        for row in self.sql.query("SELECT connections FROM live WHERE connections > 0 AND at > ?", vec![fresh_after])? {
            let n = row.first().and_then(SqlValue::int).unwrap_or(0) as u64;
            s.connections += n;
            s.active_documents += 1;
            *s.room_sizes.entry(room_size_bucket(n).to_string()).or_default() += 1;
        }
        // The spans that started within the last minute: the current one and the five before.
        let since = (now.saturating_sub(WINDOW_MS) / SPAN_MS + 1) * SPAN_MS;
        for tally in self.sql.texts("SELECT tally FROM spans WHERE start >= ?", vec![since.into()])? {
            if let Ok(t) = serde_json::from_str::<Tally>(&tally) {
                s.last_minute.merge(&t);
            }
        }
        Ok(s)
    }
}
