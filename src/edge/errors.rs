//! Client error tracking (§4.4) and the service metrics (§4.6).

use serde_json::json;
use worker::{Env, Request};

use super::request::{query, read_json};
use crate::auth::Identity;
use crate::d1::error_logs;
use crate::error_reports::{parse_batch, parse_error_id, parse_list_query, parse_resolve, stats_hours};
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

fn need_service(who: &Identity) -> Result<(), ApiError> {
    if who.is_service {
        Ok(())
    } else {
        Err(ApiError::forbidden("error logs are listed and resolved with a service token"))
    }
}

/// `GET /api/v1/errors` (§6.1 [1.2], service).
pub async fn list(req: &Request, env: &Env, who: &Identity) -> ApiResult {
    need_service(who)?;
    let url = req.url()?;
    let get = |k: &str| url.query_pairs().find(|(key, _)| key == k).map(|(_, v)| v.into_owned());
    let q = parse_list_query(get).map_err(ApiError::bad_request)?;
    let body = error_logs::list(&env.d1(bindings::DB)?, &q).await?;
    Ok(json_response(200, &body)?)
}

/// `PATCH /api/v1/errors/{id}` `{"resolved"}` (§6.1 [1.2], service) → the row as listed.
pub async fn resolve(req: &mut Request, env: &Env, who: &Identity, id: &str) -> ApiResult {
    need_service(who)?;
    let id = parse_error_id(id).map_err(ApiError::bad_request)?;
    let resolved = parse_resolve(&read_json(req).await?).map_err(|m| ApiError::new(422, "validation_failed", m))?;
    match error_logs::resolve(&env.d1(bindings::DB)?, id, resolved).await? {
        Some(row) => Ok(json_response(200, &row)?),
        None => Err(ApiError::not_found(format!("no error report {id}"))),
    }
}
