//! HTTP rate limits (§4.6): which class a request counts in, and a fixed-window counter.
//! Pure; the `RateLimiter` Durable Object holds one counter per (subject, class), so counting is
//! exact across Worker isolates.

use serde::{Deserialize, Serialize};

/// The classes of §4.6, configured here and nowhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateClass {
    /// Every API route not in a narrower class.
    Api,
    /// `POST /api/v1/errors/batch`.
    ErrorBatch,
    /// Likes, reposts, saves and comments.
    EngagementWrite,
}

impl RateClass {
    /// Requests allowed per window.
    pub fn limit(self) -> u32 {
        match self {
            RateClass::Api => 100,
            RateClass::ErrorBatch => 20,
            RateClass::EngagementWrite => 60,
        }
    }

    pub fn window_ms(self) -> u64 {
        60_000
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::Api => "api",
            RateClass::ErrorBatch => "error_batch",
            RateClass::EngagementWrite => "engagement_write",
        }
    }

    pub fn parse(s: &str) -> Option<RateClass> {
        [RateClass::Api, RateClass::ErrorBatch, RateClass::EngagementWrite].into_iter().find(|c| c.as_str() == s)
    }

    /// The class of an API request, from its method and path segments (after `/api/v1`).
    pub fn of(method: &str, segments: &[&str]) -> RateClass {
        match (method, segments) {
            ("POST", ["errors", "batch"]) => RateClass::ErrorBatch,
            ("POST" | "DELETE", ["posts", _, "likes" | "reposts" | "saves" | "comments", ..]) => RateClass::EngagementWrite,
            _ => RateClass::Api,
        }
    }
}

/// The answer to one request: whether it may pass, and the values of the `X-RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Whole seconds until the window resets (at least 1), also used as `Retry-After`.
    pub reset_secs: u64,
}

/// A fixed window: counts requests from `start` for one window length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    start: u64,
    count: u32,
}

impl Window {
    pub fn hit(&mut self, now: u64, limit: u32, window_ms: u64) -> Decision {
        if self.count == 0 || now >= self.start + window_ms || now < self.start {
            *self = Window { start: now, count: 0 };
        }
        let allowed = self.count < limit;
        if allowed {
            self.count += 1;
        }
        let left_ms = (self.start + window_ms).saturating_sub(now);
        Decision { allowed, limit, remaining: limit - self.count, reset_secs: left_ms.div_ceil(1000).max(1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_limit_passes_then_429_until_reset() {
        let mut w = Window::default();
        for i in 0..20 {
            let d = w.hit(1_000 + i, 20, 60_000);
            assert!(d.allowed);
            assert_eq!(d.remaining, 19 - i as u32);
        }
        let d = w.hit(30_000, 20, 60_000);
        assert!(!d.allowed);
        assert_eq!((d.remaining, d.reset_secs), (0, 31));
        assert!(w.hit(61_000, 20, 60_000).allowed, "a new window starts");
    }

    #[test]
    fn reset_is_never_zero() {
        let mut w = Window::default();
        w.hit(0, 1, 60_000);
        assert_eq!(w.hit(59_999, 1, 60_000).reset_secs, 1);
    }

    #[test]
    fn classes_by_route() {
        assert_eq!(RateClass::of("POST", &["errors", "batch"]), RateClass::ErrorBatch);
        assert_eq!(RateClass::of("GET", &["errors", "stats"]), RateClass::Api);
        assert_eq!(RateClass::of("DELETE", &["posts", "p1", "comments", "c1"]), RateClass::EngagementWrite);
        assert_eq!(RateClass::of("GET", &["posts", "p1", "engagement"]), RateClass::Api);
    }
}
