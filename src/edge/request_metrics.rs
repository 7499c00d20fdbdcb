//! What the Worker itself sees: one Analytics Engine data point per request (non-blocking), and
//! the errors and refused connects it answers, tallied per isolate and handed to a stats shard at
//! most once per 10 s (after the response, `wait_until`), so a flood of bad requests never turns
//! into a flood of object calls.

use std::cell::RefCell;

use worker::{AnalyticsEngineDataPointBuilder, Context, Env};

use crate::metrics::{route_label, Report, Tally};
use crate::objects::stats;
use crate::runtime::bindings;
use crate::runtime::clock::now_ms;

const FLUSH_EVERY_MS: u64 = 10_000;

thread_local! {
    static PENDING: RefCell<(Tally, u64)> = RefCell::new((Tally::default(), now_ms()));
    /// Spreads isolates over the stats shards.
    static ISOLATE: String = format!("isolate:{}", uuid::Uuid::new_v4().simple());
}

/// Records one answered request.
pub fn request(env: &Env, ctx: &Context, path: &str, status: u16, code: Option<&str>, duration_ms: u64) {
    let route = route_label(path);
    if let Ok(dataset) = env.analytics_engine(bindings::METRICS) {
        let point = AnalyticsEngineDataPointBuilder::new()
            .indexes(["request"])
            .blobs(["request", route.as_str(), code.unwrap_or("")])
            .doubles([f64::from(status), duration_ms as f64])
            .build();
        let _ = dataset.write_data_point(&point);
    }
    let due = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if let Some(code) = code {
            p.0.error(code);
        }
        if route.starts_with("ws_") && status != 101 {
            p.0.failed_connections += 1;
        }
        let now = now_ms();
        if p.0.is_empty() || now.saturating_sub(p.1) < FLUSH_EVERY_MS {
            return None;
        }
        p.1 = now;
        Some(std::mem::take(&mut p.0))
    });
    if let Some(tally) = due {
        let report = Report { document_id: ISOLATE.with(String::clone), connections: None, at: now_ms(), seq: 0, tally };
        let env = env.clone();
        ctx.wait_until(async move { stats::client::report(&env, &report).await });
    }
}
