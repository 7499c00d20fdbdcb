//! `Stats`: one of `METRICS_SHARDS` objects (`metrics-0` … `metrics-15`, by a stable hash of the
//! document id) that aggregate the live socket counts and the tallies of their documents' rooms.
//! Rooms report after their response (`wait_until`) and from their alarm, never on the request
//! path; the metrics endpoint asks every shard and merges (`metrics::ShardSnapshot`).
//! Production dashboards read the same figures from Analytics Engine (README, "Metrics").

use serde::Deserialize;
use worker::{durable_object, AnalyticsEngineDataPointBuilder, DurableObject, Env, Headers, Method, Request, Response, Result, SqlStorage, State};

use super::internal::call_object;
use crate::metrics::{metrics_shard, room_size_bucket, Report, ShardSnapshot, Tally, METRICS_SHARDS};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS live (document_id TEXT PRIMARY KEY, connections INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS spans (start INTEGER PRIMARY KEY, tally TEXT NOT NULL);
";

/// Tallies are kept in 10-second spans; "the last minute" is the spans that started within it.
const SPAN_MS: u64 = 10_000;
const WINDOW_MS: u64 = 60_000;
const KEPT_MS: u64 = 10 * 60_000;

#[derive(Deserialize)]
struct LiveRow {
    connections: f64,
}

#[derive(Deserialize)]
struct SpanRow {
    tally: String,
}

#[durable_object]
pub struct Stats {
    sql: SqlStorage,
}

impl DurableObject for Stats {
    fn new(state: State, _env: Env) -> Self {
        crate::store::object_schema::ensure(&state.storage(), "stats", &[SCHEMA]);
        Stats { sql: state.storage().sql() }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() == Method::Post {
            let report: Report = serde_json::from_str(&req.text().await?)?;
            self.record(&report)?;
            return Response::empty();
        }
        Response::from_json(&self.snapshot(super::document_room::now_ms())?)
    }
}

impl Stats {
    fn record(&self, r: &Report) -> Result<()> {
        let at = r.at as i64;
        match r.connections {
            Some(0) => {
                self.sql.exec("DELETE FROM live WHERE document_id = ? AND at <= ?", Some(vec![r.document_id.as_str().into(), at.into()]))?;
            }
            Some(n) => {
                // A report older than the one stored (they can cross) does not win.
                self.sql.exec(
                    "INSERT INTO live (document_id, connections, at) VALUES (?, ?, ?) \
                     ON CONFLICT (document_id) DO UPDATE SET connections = excluded.connections, at = excluded.at \
                     WHERE excluded.at >= live.at",
                    Some(vec![r.document_id.as_str().into(), (n as i64).into(), at.into()]),
                )?;
            }
            None => {}
        }
        if r.tally.is_empty() {
            return Ok(());
        }
        let start = (r.at / SPAN_MS * SPAN_MS) as i64;
        let rows: Vec<SpanRow> = self.sql.exec("SELECT tally FROM spans WHERE start = ?", Some(vec![start.into()]))?.to_array()?;
        let mut tally: Tally = rows.first().and_then(|row| serde_json::from_str(&row.tally).ok()).unwrap_or_default();
        tally.merge(&r.tally);
        let text = serde_json::to_string(&tally)?;
        self.sql.exec("INSERT OR REPLACE INTO spans (start, tally) VALUES (?, ?)", Some(vec![start.into(), text.into()]))?;
        self.sql.exec("DELETE FROM spans WHERE start < ?", Some(vec![(r.at.saturating_sub(KEPT_MS) as i64).into()]))?;
        Ok(())
    }

    fn snapshot(&self, now: u64) -> Result<ShardSnapshot> {
        let mut s = ShardSnapshot::default();
        let live: Vec<LiveRow> = self.sql.exec("SELECT connections FROM live", None)?.to_array()?;
        for row in live {
            let n = row.connections as u64;
            s.connections += n;
            s.active_documents += 1;
            *s.room_sizes.entry(room_size_bucket(n).to_string()).or_default() += 1;
        }
        // The spans that started within the last minute: the current one and the five before.
        let since = ((now.saturating_sub(WINDOW_MS) / SPAN_MS + 1) * SPAN_MS) as i64;
        let spans: Vec<SpanRow> = self.sql.exec("SELECT tally FROM spans WHERE start >= ?", Some(vec![since.into()]))?.to_array()?;
        for row in spans {
            if let Ok(t) = serde_json::from_str::<Tally>(&row.tally) {
                s.last_minute.merge(&t);
            }
        }
        Ok(s)
    }
}

/// Sends a room's report to its shard, and the same figures to Analytics Engine when bound.
/// Best effort: metrics never fail a request.
pub async fn report(env: &Env, report: &Report) {
    write_data_point(env, report);
    let body = serde_json::to_string(report).unwrap_or_default();
    if let Err(e) = call_object(env, "STATS", &metrics_shard(&report.document_id), Method::Post, "/report", Some(body), Headers::new()).await {
        super::log::error("stats_report", e, &[("document_id", report.document_id.as_str().into())]);
    }
}

/// One Analytics Engine data point per report (`METRICS` binding; absent locally is fine):
/// index = document id; blobs = event, document id; doubles = connections, messages, operations,
/// failed connections, errors, apply p99 (µs), sync lag p99, memory bytes.
fn write_data_point(env: &Env, r: &Report) {
    let Ok(dataset) = env.analytics_engine("METRICS") else { return };
    let t = &r.tally;
    // An index holds at most 96 bytes; a document id may have 256.
    let mut end = r.document_id.len().min(96);
    while !r.document_id.is_char_boundary(end) {
        end -= 1;
    }
    let kind = if r.document_id.starts_with("isolate:") { "isolate_report" } else { "room_report" };
    let point = AnalyticsEngineDataPointBuilder::new()
        .indexes([&r.document_id[..end]])
        .blobs([kind, r.document_id.as_str()])
        .doubles([
            r.connections.map_or(-1.0, f64::from),
            t.messages as f64,
            t.operations as f64,
            t.failed_connections as f64,
            t.errors.values().sum::<u64>() as f64,
            t.apply_us.quantile(0.99).unwrap_or(0) as f64,
            t.sync_lag.quantile(0.99).unwrap_or(0) as f64,
            t.memory_bytes as f64,
        ])
        .build();
    if let Err(e) = dataset.write_data_point(&point) {
        super::log::error("analytics_engine", e, &[]);
    }
}

/// Every shard's snapshot, merged.
pub async fn totals(env: &Env) -> Result<ShardSnapshot> {
    let ns = env.durable_object("STATS")?;
    let calls = (0..METRICS_SHARDS).map(|i| {
        let stub = ns.id_from_name(&format!("metrics-{i}")).and_then(|id| id.get_stub());
        async move { stub?.fetch_with_str("https://stats/snapshot").await?.json::<ShardSnapshot>().await }
    });
    let mut all = ShardSnapshot::default();
    for s in futures_util::future::join_all(calls).await {
        all.merge(&s?);
    }
    Ok(all)
}
