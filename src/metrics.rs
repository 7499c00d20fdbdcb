//! Live metrics without a deployment-wide object: each document room tallies what it handled in
//! memory and reports the tally, off the request path, to one of `STATS_SHARDS` stats objects
//! chosen by a stable hash of the document id. A shard keeps per-minute totals; the metrics
//! endpoint merges the shards. Everything here is plain data, mergeable in any order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sharding::shard_of;

pub const STATS_SHARDS: u32 = 16;

/// The stats object (`objects::stats`) that aggregates `document_id`'s metrics.
pub fn stats_shard(document_id: &str) -> String {
    format!("stats-{}", shard_of(document_id, STATS_SHARDS))
}

/// Upper bounds of the histogram buckets (the last bucket is everything above).
const BOUNDS: [u64; 16] = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000];

/// A fixed-bucket histogram: mergeable, constant size, quantiles to the bucket's upper bound.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        if self.counts.len() <= BOUNDS.len() {
            self.counts.resize(BOUNDS.len() + 1, 0);
        }
        let i = BOUNDS.iter().position(|&b| v <= b).unwrap_or(BOUNDS.len());
        self.counts[i] += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The bucket bound at quantile `q` (0..1); None when empty. Above the last bound: that bound.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(BOUNDS[i.min(BOUNDS.len() - 1)]);
            }
        }
        None
    }
}

/// What rooms handled in some span: counts, the codes of the errors answered (to clients' frames
/// and requests: 4xx and 5xx alike), apply time (µs) and sync lag (versions an op was
/// transformed over: how far behind its sender was).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub messages: u64,
    pub operations: u64,
    pub failed_connections: u64,
    pub errors: BTreeMap<String, u64>,
    pub apply_us: Histogram,
    pub sync_lag: Histogram,
    /// Events per group commit (§9).
    #[serde(default)]
    pub batch_events: Histogram,
    /// The largest wasm memory of a reporting isolate, bytes.
    pub memory_bytes: u64,
}

impl Tally {
    pub fn is_empty(&self) -> bool {
        self.messages == 0 && self.operations == 0 && self.failed_connections == 0 && self.errors.is_empty()
    }

    pub fn error(&mut self, code: &str) {
        // Codes are the protocol's own (a bounded set); anything else is folded.
        let code = if code.len() <= 40 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') { code } else { "other" };
        *self.errors.entry(code.to_string()).or_default() += 1;
    }

    pub fn merge(&mut self, o: &Tally) {
        self.messages += o.messages;
        self.operations += o.operations;
        self.failed_connections += o.failed_connections;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.apply_us.merge(&o.apply_us);
        self.sync_lag.merge(&o.sync_lag);
        self.batch_events.merge(&o.batch_events);
        self.memory_bytes = self.memory_bytes.max(o.memory_bytes);
    }
}

/// A room's report to its stats shard: its socket count now (absolute, so a repeated or
/// reordered report settles on the latest) and the tally since its last report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub document_id: String,
    pub connections: Option<u32>,
    pub at: u64,
    /// Orders a room's reports made in the same millisecond (a room's event counter).
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub tally: Tally,
}

/// Live sockets per room, bucketed: the room-size distribution.
pub fn room_size_bucket(connections: u64) -> &'static str {
    match connections {
        0..=1 => "1",
        2..=5 => "2-5",
        6..=20 => "6-20",
        21..=100 => "21-100",
        101..=1_000 => "101-1000",
        _ => "1001+",
    }
}

/// What one shard answers and the endpoint merges: live gauges and the tally of the last minute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardSnapshot {
    pub connections: u64,
    pub active_documents: u64,
    pub room_sizes: BTreeMap<String, u64>,
    pub last_minute: Tally,
}

impl ShardSnapshot {
    pub fn merge(&mut self, o: &ShardSnapshot) {
        self.connections += o.connections;
        self.active_documents += o.active_documents;
        for (k, v) in &o.room_sizes {
            *self.room_sizes.entry(k.clone()).or_default() += v;
        }
        self.last_minute.merge(&o.last_minute);
    }

    /// The public shape of `GET /api/v1/websocket/metrics` (client error reports are added by
    /// the route, from D1).
    pub fn to_json(&self) -> serde_json::Value {
        let t = &self.last_minute;
        let ms = |us: Option<u64>| us.map(|v| v as f64 / 1000.0);
        serde_json::json!({
            "connections": self.connections,
            "active_documents": self.active_documents,
            "room_sizes": self.room_sizes,
            "messages_per_second": t.messages as f64 / 60.0,
            "operations_per_second": t.operations as f64 / 60.0,
            "operations_per_minute": t.operations,
            "apply_time_ms": {"p50": ms(t.apply_us.quantile(0.5)), "p99": ms(t.apply_us.quantile(0.99))},
            "sync_lag_versions": {"p50": t.sync_lag.quantile(0.5), "p99": t.sync_lag.quantile(0.99)},
            "error_replies_per_minute": t.errors.values().sum::<u64>(),
            "errors_by_code": t.errors,
            "failed_connections_per_minute": t.failed_connections,
            "memory_bytes_max": t.memory_bytes,
        })
    }
}

/// The document a request path names, for log lines (`/ws/documents/{id}`,
/// `/api/v1/documents/{id}/…`, `/api/v1/operations/history/{id}`, `/api/v1/posts/{id}/…`).
pub fn document_of_path(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let raw = match parts.as_slice() {
        ["ws", "documents", id, ..] | ["api", "v1", "documents", id, ..] | ["api", "v1", "operations", "history", id, ..] => (*id).to_string(),
        ["api", "v1", "posts", id, ..] => format!("post:{id}"),
        _ => return None,
    };
    let id = percent_encoding::percent_decode_str(&raw).decode_utf8_lossy().into_owned();
    (!id.is_empty() && id.len() <= 300).then_some(id)
}

/// A low-cardinality name for the route of `path` (ids left out).
pub fn route_label(path: &str) -> String {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("ws"), Some("documents"), _) => "ws_document".into(),
        (Some("ws"), None, _) => "ws_channel".into(),
        (Some("api"), Some("v1"), Some(area)) if area.len() <= 24 && area.bytes().all(|b| b.is_ascii_lowercase()) => format!("api_{area}"),
        (Some("health"), None, _) => "health".into(),
        _ => "other".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_name_the_document_of_a_path() {
        assert_eq!(document_of_path("/ws/documents/channel%3Aa%3Adescription").as_deref(), Some("channel:a:description"));
        assert_eq!(document_of_path("/api/v1/posts/42/like").as_deref(), Some("post:42"));
        assert_eq!(document_of_path("/api/v1/operations/history/canvas:x").as_deref(), Some("canvas:x"));
        assert_eq!(document_of_path("/api/v1/notify"), None);
        assert_eq!(document_of_path("/ws/documents/"), None);
    }

    #[test]
    fn routes_are_named_without_ids() {
        assert_eq!(route_label("/ws/documents/post:1"), "ws_document");
        assert_eq!(route_label("/ws"), "ws_channel");
        assert_eq!(route_label("/api/v1/posts/9/like"), "api_posts");
        assert_eq!(route_label("/api/v1/P%20X"), "other");
    }

    #[test]
    fn histograms_merge_and_answer_quantiles_by_bucket() {
        let mut a = Histogram::default();
        assert_eq!(a.quantile(0.5), None);
        (0..98).for_each(|_| a.record(3));
        let mut b = Histogram::default();
        b.record(700);
        b.record(1_000_000);
        a.merge(&b);
        assert_eq!(a.total(), 100);
        assert_eq!(a.quantile(0.5), Some(5));
        assert_eq!(a.quantile(0.99), Some(1_000));
        assert_eq!(a.quantile(1.0), Some(100_000));
    }

    #[test]
    fn tallies_and_snapshots_merge_in_any_order() {
        let mut t1 = Tally { messages: 3, operations: 2, ..Tally::default() };
        t1.error("seq_gap");
        t1.error("<script>");
        t1.sync_lag.record(4);
        let mut t2 = Tally { messages: 1, failed_connections: 2, memory_bytes: 9, ..Tally::default() };
        t2.error("seq_gap");
        let (mut x, mut y) = (t1.clone(), t2.clone());
        x.merge(&t2);
        y.merge(&t1);
        assert_eq!(x, y);
        assert_eq!(x.errors, BTreeMap::from([("other".to_string(), 1), ("seq_gap".to_string(), 2)]));
        let s = ShardSnapshot { connections: 5, active_documents: 2, room_sizes: BTreeMap::from([("2-5".into(), 1)]), last_minute: x };
        let mut all = ShardSnapshot::default();
        all.merge(&s);
        all.merge(&s);
        let j = all.to_json();
        assert_eq!((j["connections"].as_u64(), j["operations_per_minute"].as_u64(), j["failed_connections_per_minute"].as_u64()), (Some(10), Some(4), Some(4)));
        assert_eq!(j["errors_by_code"]["seq_gap"], 4);
        assert_eq!(j["sync_lag_versions"]["p99"], 5);
        assert_eq!(room_size_bucket(1), "1");
        assert_eq!(room_size_bucket(32_768), "1001+");
    }

    #[test]
    fn documents_spread_over_the_metrics_shards() {
        let used: std::collections::BTreeSet<String> = (0..1_000).map(|i| stats_shard(&format!("post:{i}"))).collect();
        assert_eq!(used.len(), STATS_SHARDS as usize);
    }
}
