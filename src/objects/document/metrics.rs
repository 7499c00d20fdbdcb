//! What one document room tallies for the metrics (`crate::metrics`): kept in memory, reported
//! to the room's stats shard with its socket count and from its alarm. A tally lost to eviction
//! is at most one report interval of counts; the figures are for dashboards, not billing.

use std::cell::{Cell, RefCell};

use serde_json::{json, Value};

use crate::metrics::Tally;
use crate::model::Effects;
use crate::protocol::Outgoing;
use crate::runtime::clock::memory_bytes;

/// How long a room holds a tally before its alarm reports it.
pub const REPORT_INTERVAL_MS: u64 = 10_000;

#[derive(Default)]
pub struct RoomMetrics {
    /// Since the last report.
    pending: RefCell<Tally>,
    /// Since the object woke: the per-document apply time and sync lag.
    since_wake: RefCell<Tally>,
    reporting: Cell<bool>,
}

/// The error code of an `error` frame (its payload starts with the code).
fn error_code(m: &Outgoing) -> Option<&str> {
    if m.kind != "error" {
        return None;
    }
    m.payload_json().strip_prefix("{\"code\":\"")?.split('"').next()
}

impl RoomMetrics {
    fn both(&self, f: impl Fn(&mut Tally)) {
        f(&mut self.pending.borrow_mut());
        f(&mut self.since_wake.borrow_mut());
    }

    /// What committed effects say: operations (and how far behind their senders were), errors.
    pub fn observe(&self, effects: &Effects) {
        for &lag in &effects.follow_ups.appended {
            self.both(|t| {
                t.operations += 1;
                t.sync_lag.record(lag);
            });
        }
        for code in effects.to_sender.iter().filter_map(error_code) {
            self.both(|t| t.error(code));
        }
    }

    /// One group commit of `events` events.
    pub fn commit(&self, events: usize) {
        self.both(|t| t.batch_events.record(events as u64));
    }

    /// One client message handled in `ms`.
    pub fn message(&self, ms: f64) {
        let us = (ms.max(0.0) * 1000.0) as u64;
        self.both(|t| {
            t.messages += 1;
            t.apply_us.record(us);
        });
    }

    /// A connect refused by the room: its code (the worker, which relays the refusal, counts
    /// every failed upgrade once).
    pub fn refused_connection(&self, code: &str) {
        self.both(|t| t.error(code));
    }

    /// True once per report interval: the caller schedules the alarm that reports.
    pub fn needs_alarm(&self) -> bool {
        !self.pending.borrow().is_empty() && !self.reporting.replace(true)
    }

    /// The tally to report now (empty when nothing happened).
    pub fn take(&self) -> Tally {
        self.reporting.set(false);
        let mut t = std::mem::take(&mut *self.pending.borrow_mut());
        if !t.is_empty() {
            t.memory_bytes = memory_bytes();
        }
        t
    }

    /// Apply time and sync lag of this document since its object woke.
    pub fn document_json(&self) -> Value {
        let t = self.since_wake.borrow();
        let ms = |us: Option<u64>| us.map(|v| v as f64 / 1000.0);
        json!({
            "messages_since_wake": t.messages,
            "apply_time_ms": {"p50": ms(t.apply_us.quantile(0.5)), "p99": ms(t.apply_us.quantile(0.99))},
            "sync_lag_versions": {"p50": t.sync_lag.quantile(0.5), "p99": t.sync_lag.quantile(0.99)},
            "errors_by_code": t.errors,
            "commits": t.batch_events.total(),
            "events_per_commit": {"p50": t.batch_events.quantile(0.5), "p99": t.batch_events.quantile(0.99)},
        })
    }
}
