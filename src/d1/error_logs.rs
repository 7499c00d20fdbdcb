//! D1 storage of client error reports and their statistics.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Result};

use crate::error_reports::{ErrorReport, ListQuery, DEDUPE_WINDOW_MS};

fn num(v: u64) -> JsValue {
    JsValue::from_f64(v as f64)
}

// A report of a resolved error reopens its row (a regression is news again).
const MERGE: &str = "UPDATE error_logs SET occurrences = occurrences + ?1, last_seen = ?2, is_resolved = 0 \
    WHERE user_id = ?3 AND source = ?4 AND severity = ?5 AND message = ?6 AND first_seen > ?7";
const INSERT_IF_NEW: &str = "INSERT INTO error_logs \
    (user_id, source, severity, message, context, client_timestamp, first_seen, last_seen, occurrences) \
    SELECT ?3, ?4, ?5, ?6, ?8, ?9, ?2, ?2, ?1 WHERE NOT EXISTS (SELECT 1 FROM error_logs \
    WHERE user_id = ?3 AND source = ?4 AND severity = ?5 AND message = ?6 AND first_seen > ?7)";

/// Records a validated batch in one D1 batch (a single transaction, so concurrent batches cannot
/// both insert a row for one error or lose a count). Per report: merge into the row first seen
/// within the hour, else insert. Returns (new rows, merged reports).
pub async fn record(db: &D1Database, user_id: &str, reports: &[ErrorReport], now_ms: u64) -> Result<(u64, u64)> {
    let cutoff = now_ms.saturating_sub(DEDUPE_WINDOW_MS);
    let mut statements: Vec<D1PreparedStatement> = Vec::with_capacity(reports.len() * 2);
    for r in reports {
        let args = [
            num(r.occurrences),
            num(now_ms),
            user_id.into(),
            r.source.as_str().into(),
            r.severity.as_str().into(),
            r.message.as_str().into(),
            num(cutoff),
            r.context.as_deref().map_or(JsValue::NULL, JsValue::from),
            num(r.timestamp),
        ];
        statements.push(db.prepare(MERGE).bind(&args[..7])?);
        statements.push(db.prepare(INSERT_IF_NEW).bind(&args)?);
    }
    let results = db.batch(statements).await?;
    let mut inserted = 0;
    let mut merged = 0;
    for (i, res) in results.iter().enumerate() {
        let changed = res.meta()?.and_then(|m| m.changes).unwrap_or(0) as u64;
        if i % 2 == 0 {
            merged += changed.min(1);
        } else {
            inserted += changed.min(1);
        }
    }
    Ok((inserted, merged))
}

#[derive(Deserialize)]
struct Group {
    key: String,
    n: f64,
}

/// Statistics over rows seen in the last `hours`, for one user or (None) everyone.
pub async fn stats(db: &D1Database, user_id: Option<&str>, hours: u64, now_ms: u64) -> Result<Value> {
    let since = now_ms.saturating_sub(hours * 3600 * 1000);
    let filter = if user_id.is_some() { "last_seen >= ?1 AND user_id = ?2" } else { "last_seen >= ?1" };
    let mut args = vec![num(since)];
    if let Some(u) = user_id {
        args.push(u.into());
    }
    let group = |key_expr: &str, order: &str| {
        format!("SELECT {key_expr} AS key, SUM(occurrences) AS n FROM error_logs WHERE {filter} GROUP BY key ORDER BY {order}")
    };
    let queries = [
        group("'total'", "key"),
        group("severity", "key"),
        group("source", "key"),
        group("message", "n DESC, key LIMIT 10"),
        group("strftime('%Y-%m-%dT%H:00:00Z', last_seen / 1000, 'unixepoch')", "key"),
    ];
    let statements = queries.iter().map(|q| db.prepare(q).bind(&args)).collect::<Result<Vec<_>>>()?;
    let results = db.batch(statements).await?;
    let mut groups: Vec<Vec<Group>> = Vec::with_capacity(queries.len());
    for r in &results {
        groups.push(r.results::<Group>()?);
    }
    groups.resize_with(queries.len(), Vec::new);
    let to_map = |rows: &[Group]| -> Map<String, Value> { rows.iter().map(|g| (g.key.clone(), json!(g.n as u64))).collect() };
    Ok(json!({
        "hours": hours,
        "total": groups[0].first().map_or(0, |g| g.n as u64),
        "by_severity": to_map(&groups[1]),
        "by_source": to_map(&groups[2]),
        "top_messages": groups[3].iter().map(|g| json!({"message": g.key, "occurrences": g.n as u64})).collect::<Vec<_>>(),
        "hourly": groups[4].iter().map(|g| json!({"hour": g.key, "count": g.n as u64})).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
struct Rate {
    n: Option<f64>,
}

async fn count(db: &D1Database, sql: &str, since: JsValue) -> Result<u64> {
    let row: Option<Rate> = db.prepare(sql).bind(&[since])?.first(None).await?;
    Ok(row.and_then(|r| r.n).unwrap_or(0.0) as u64)
}

/// Client error reports (their occurrences) recorded in the last minute.
pub async fn error_reports_last_minute(db: &D1Database, now_ms: u64) -> Result<u64> {
    count(db, "SELECT SUM(occurrences) AS n FROM error_logs WHERE last_seen > ?1", num(now_ms.saturating_sub(60_000))).await
}

#[derive(Deserialize)]
struct Row {
    id: f64,
    user_id: String,
    source: String,
    severity: String,
    message: String,
    context: Option<String>,
    occurrences: f64,
    first_seen: f64,
    last_seen: f64,
    is_resolved: f64,
}

impl Row {
    fn to_json(&self) -> Value {
        let context = self.context.as_deref().and_then(|c| serde_json::from_str::<Value>(c).ok());
        json!({
            "id": self.id as u64, "user_id": self.user_id, "source": self.source, "severity": self.severity,
            "message": self.message, "context": context, "occurrences": self.occurrences as u64,
            "first_seen": self.first_seen as u64, "last_seen": self.last_seen as u64, "is_resolved": self.is_resolved != 0.0,
        })
    }
}

const ROW_COLUMNS: &str = "id, user_id, source, severity, message, context, occurrences, first_seen, last_seen, is_resolved";

/// §6.1 [1.2]: error rows, newest `last_seen` first (ties: higher id first), filtered; returns the
/// page and the cursor of its last row when more may follow.
pub async fn list(db: &D1Database, q: &ListQuery) -> Result<Value> {
    let mut filters: Vec<String> = Vec::new();
    let mut args: Vec<JsValue> = Vec::new();
    let mut bind = |v: JsValue| {
        args.push(v);
        format!("?{}", args.len())
    };
    if let Some(r) = q.resolved {
        filters.push(format!("is_resolved = {}", bind(num(r as u64))));
    }
    if let Some(s) = &q.severity {
        filters.push(format!("severity = {}", bind(s.as_str().into())));
    }
    if let Some(s) = &q.source {
        filters.push(format!("source = {}", bind(s.as_str().into())));
    }
    match q.before {
        Some((t, 0)) => filters.push(format!("last_seen < {}", bind(num(t)))),
        Some((t, id)) => {
            let (t, id) = (bind(num(t)), bind(num(id)));
            filters.push(format!("(last_seen < {t} OR (last_seen = {t} AND id < {id}))"));
        }
        None => {}
    }
    let filter = if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
    let sql = format!("SELECT {ROW_COLUMNS} FROM error_logs {filter} ORDER BY last_seen DESC, id DESC LIMIT {}", q.limit);
    let rows: Vec<Row> = db.prepare(&sql).bind(&args)?.all().await?.results()?;
    let next = match rows.last() {
        Some(r) if rows.len() as u64 == q.limit => json!(format!("{}:{}", r.last_seen as u64, r.id as u64)),
        _ => Value::Null,
    };
    Ok(json!({"errors": rows.iter().map(Row::to_json).collect::<Vec<_>>(), "next_before": next}))
}

/// Marks one row resolved or not; None when there is no such row.
pub async fn resolve(db: &D1Database, id: u64, resolved: bool) -> Result<Option<Value>> {
    let sql = format!("UPDATE error_logs SET is_resolved = ?1 WHERE id = ?2 RETURNING {ROW_COLUMNS}");
    let row: Option<Row> = db.prepare(&sql).bind(&[num(resolved as u64), num(id)])?.first(None).await?;
    Ok(row.map(|r| r.to_json()))
}
