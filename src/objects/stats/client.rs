//! The calls a `Stats` shard answers, and (in the Worker) a room's report and the merged totals.

use serde::{Deserialize, Serialize};

use crate::metrics::{Report, ShardSnapshot};
use crate::call;
use crate::runtime::rpc::Done;

/// A room's (or an isolate's) report.
#[derive(Serialize, Deserialize)]
pub struct Record {
    pub report: Report,
}
call!(Record, "/report", Done);

/// The shard's live gauges and the tally of the last minute.
#[derive(Serialize, Deserialize)]
pub struct Snapshot {}
call!(Snapshot, "/snapshot", ShardSnapshot);

#[cfg(target_arch = "wasm32")]
pub use calls::*;

#[cfg(target_arch = "wasm32")]
mod calls {
    use worker::{AnalyticsEngineDataPointBuilder, Env};

    use super::{Record, Snapshot};
    use crate::metrics::{stats_shard, Report, ShardSnapshot, STATS_SHARDS};
    use crate::runtime::bindings;
    use crate::runtime::http::ApiError;
    use crate::runtime::log;
    use crate::runtime::rpc::{self, ObjectRef};

    fn shard<'a>(env: &'a Env, name: &'a str) -> ObjectRef<'a> {
        ObjectRef { env, binding: bindings::STATS, name, actor: None, document_id: None }
    }

    /// Sends a report to its shard, and the same figures to Analytics Engine when bound.
    /// Best effort: metrics never fail a request.
    pub async fn report(env: &Env, report: &Report) {
        write_data_point(env, report);
        let name = stats_shard(&report.document_id);
        if let Err(e) = rpc::call(&shard(env, &name), &Record { report: report.clone() }).await {
            log::error("stats_report", e.message, &[("document_id", report.document_id.as_str().into())]);
        }
    }

    /// Every shard's snapshot, merged.
    pub async fn totals(env: &Env) -> Result<ShardSnapshot, ApiError> {
        let names: Vec<String> = (0..STATS_SHARDS).map(|i| format!("stats-{i}")).collect();
        let calls = names.iter().map(|n| async move { rpc::call(&shard(env, n), &Snapshot {}).await });
        let mut all = ShardSnapshot::default();
        for s in futures_util::future::join_all(calls).await {
            all.merge(&s?);
        }
        Ok(all)
    }

    /// One Analytics Engine data point per report (`METRICS`; absent locally is fine):
    /// index = document id; blobs = event, document id; doubles = connections, messages,
    /// operations, failed connections, errors, apply p99 (µs), sync lag p99, memory bytes.
    fn write_data_point(env: &Env, r: &Report) {
        let Ok(dataset) = env.analytics_engine(bindings::METRICS) else { return };
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
            log::error("analytics_engine", e, &[]);
        }
    }
}
