//! Client error tracking (§4.4) and the service metrics (§4.6).

use serde_json::json;
use worker::{Env, Request};

use super::request::{query, read_json};
use crate::auth::Identity;
use crate::d1::error_logs;
use crate::error_reports::{parse_batch, stats_hours};
use crate::objects::stats;
use crate::runtime::bindings;
use crate::runtime::http::{json_response, ApiError, ApiResult};

pub async fn batch(req: &mut Request, env: &Env, who: &Identity) -> ApiResult {
    let body = read_json(req).await?;
    let now = worker::Date::now().as_millis();
    let reports = parse_batch(&body, now).map_err(|issues| {
        ApiError::new(422, "validation_failed", format!("{} problem(s) in the batch; nothing was recorded", issues.len()))
            .with_details(json!({ "errors": issues }))
    })?;
    let (recorded, deduplicated) = error_logs::record(&env.d1(bindings::DB)?, &who.user_id, &reports, now).await?;
    Ok(json_response(200, &json!({"status": "recorded", "recorded": recorded, "deduplicated": deduplicated}))?)
}

pub async fn stats(req: &Request, env: &Env, who: &Identity) -> ApiResult {
    let hours = stats_hours(query(req, "hours")?.as_deref()).map_err(ApiError::bad_request)?;
    let scope = if who.is_service { None } else { Some(who.user_id.as_str()) };
    let body = error_logs::stats(&env.d1(bindings::DB)?, scope, hours, worker::Date::now().as_millis()).await?;
    Ok(json_response(200, &body)?)
}

/// `GET /api/v1/websocket/metrics` (service token): live gauges and the last minute's rates,
/// merged from the stats shards (`metrics::ShardSnapshot::to_json`), plus client error reports.
pub async fn websocket_metrics(env: &Env, who: &Identity) -> ApiResult {
    if !who.is_service {
        return Err(ApiError::forbidden("metrics need a service token"));
    }
    let db = env.d1(bindings::DB)?;
    let (live, reports, ledger) = futures_util::future::join3(
        stats::client::totals(env),
        error_logs::error_reports_last_minute(&db, worker::Date::now().as_millis()),
        crate::d1::notify_ledger::totals(&db),
    )
    .await;
    let mut body = live?.to_json();
    body["errors_per_minute"] = json!(reports?);
    // §5.4 [1.2]: fan-out queue messages accepted and not yet delivered, and dead letters kept
    // for replay.
    let (pending, dead) = ledger?;
    body["notify_pending"] = json!(pending);
    body["notify_dead_lettered"] = json!(dead);
    Ok(json_response(200, &body)?)
}
