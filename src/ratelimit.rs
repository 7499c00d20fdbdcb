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
    /// WebSocket upgrades, every path (§5.1 [1.2]).
    Upgrade,
    /// Everything a service token does (§5.1 [1.2]): its own class instead of the user limits.
    Service,
}

impl RateClass {
    /// Requests allowed per window.
    pub fn limit(self) -> u32 {
        match self {
            RateClass::Api => 100,
            RateClass::ErrorBatch => 20,
            RateClass::EngagementWrite => 60,
            RateClass::Upgrade => 60,
            RateClass::Service => 6000,
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
            RateClass::Upgrade => "upgrade",
            RateClass::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<RateClass> {
        [RateClass::Api, RateClass::ErrorBatch, RateClass::EngagementWrite, RateClass::Upgrade, RateClass::Service].into_iter().find(|c| c.as_str() == s)
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

/// The subject and class of a request by `user_id` (None: anonymous, counted per `ip`).
pub fn subject_of(user_id: Option<&str>, is_service: bool, ip: &str, class: RateClass) -> (String, RateClass) {
    match user_id {
        Some(sub) if is_service => (format!("service:{sub}"), RateClass::Service),
        Some(sub) => (format!("user:{sub}"), class),
        None => (format!("ip:{ip}"), class),
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

    /// What `hit` would answer, counting nothing (a probe of a WebSocket upgrade, §5.5).
    pub fn peek(&self, now: u64, limit: u32, window_ms: u64) -> Decision {
        let d = { *self }.hit(now, limit, window_ms);
        Decision { remaining: if d.allowed { d.remaining + 1 } else { 0 }, ..d }
    }
}

/// Per-socket message budget (§3.4): 20 messages a second sustained, bursts of 100.
pub const SOCKET_RATE_PER_SEC: f64 = 20.0;
pub const SOCKET_BURST: f64 = 100.0;
/// Messages refused within one flood window after which the socket is closed with 1008.
pub const SOCKET_FLOOD_CLOSE_AFTER: u32 = 200;
pub const SOCKET_FLOOD_WINDOW_MS: u64 = 10_000;

/// What to do with one incoming socket message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Accept,
    /// Answer `rate_limited` with this `retry_after_ms`.
    Refuse { retry_after_ms: u64 },
    /// The socket kept flooding: close it (1008).
    Close,
}

/// The sustained rate and burst of a socket budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SocketRate {
    pub per_sec: f64,
    pub burst: f64,
}

impl Default for SocketRate {
    fn default() -> Self {
        SocketRate { per_sec: SOCKET_RATE_PER_SEC, burst: SOCKET_BURST }
    }
}

impl SocketRate {
    /// A Yjs socket's budget (§7): 60 a second, bursts of 200.
    pub fn yjs() -> Self {
        SocketRate { per_sec: crate::limits::YJS_RATE_PER_SEC, burst: crate::limits::YJS_BURST }
    }

    /// This rate with what configuration vars say instead (load tests raise them); a value that
    /// is not a number of at least 1 is ignored, so a typo cannot switch a budget off.
    pub fn overridden(self, per_sec: Option<&str>, burst: Option<&str>) -> Self {
        let num = |v: Option<&str>| v.and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| *v >= 1.0);
        SocketRate { per_sec: num(per_sec).unwrap_or(self.per_sec), burst: num(burst).unwrap_or(self.burst) }
    }
}

/// A token bucket for one socket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SocketBudget {
    rate: SocketRate,
    tokens: f64,
    at_ms: u64,
    flood_window_start: u64,
    refused_in_window: u32,
}

impl SocketBudget {
    pub fn new(now_ms: u64, rate: SocketRate) -> Self {
        SocketBudget { rate, tokens: rate.burst, at_ms: now_ms, flood_window_start: now_ms, refused_in_window: 0 }
    }

    pub fn admit(&mut self, now_ms: u64) -> Admit {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate.per_sec).min(self.rate.burst);
        self.at_ms = now_ms.max(self.at_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admit::Accept;
        }
        if now_ms.saturating_sub(self.flood_window_start) > SOCKET_FLOOD_WINDOW_MS {
            self.flood_window_start = now_ms;
            self.refused_in_window = 0;
        }
        self.refused_in_window += 1;
        if self.refused_in_window > SOCKET_FLOOD_CLOSE_AFTER {
            return Admit::Close;
        }
        let missing = 1.0 - self.tokens;
        Admit::Refuse { retry_after_ms: ((missing / self.rate.per_sec) * 1000.0).ceil().max(1.0) as u64 }
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
    fn sockets_get_a_burst_of_100_then_20_a_second() {
        let mut b = SocketBudget::new(0, SocketRate::default());
        for _ in 0..100 {
            assert_eq!(b.admit(0), Admit::Accept);
        }
        assert_eq!(b.admit(0), Admit::Refuse { retry_after_ms: 50 });
        assert_eq!(b.admit(50), Admit::Accept, "one token back after 50 ms");
        let accepted = (1..=1000).filter(|i| b.admit(50 + i * 10) == Admit::Accept).count();
        assert_eq!(accepted, 200, "a flood at 100/s for 10 s gets 20/s through");
    }

    #[test]
    fn vars_override_a_budget_only_with_numbers_of_at_least_one() {
        let yjs = SocketRate::yjs();
        assert_eq!((yjs.per_sec, yjs.burst), (60.0, 200.0));
        assert_eq!(yjs.overridden(None, None), yjs);
        assert_eq!(yjs.overridden(Some("100000"), Some(" 5000 ")), SocketRate { per_sec: 100_000.0, burst: 5_000.0 });
        assert_eq!(yjs.overridden(Some("0"), Some("lots")), yjs, "no budget is switched off by a bad value");
        assert_eq!(SocketRate::default().overridden(Some("2"), None), SocketRate { per_sec: 2.0, burst: 100.0 });
        let mut b = SocketBudget::new(0, yjs.overridden(None, Some("1000")));
        assert_eq!((0..1001).filter(|_| b.admit(0) == Admit::Accept).count(), 1000, "a raised burst admits that many at once");
    }

    #[test]
    fn a_socket_that_keeps_flooding_is_closed() {
        let mut b = SocketBudget::new(0, SocketRate::default());
        let outcomes: Vec<Admit> = (0..400).map(|_| b.admit(0)).collect();
        assert_eq!(outcomes.iter().filter(|a| **a == Admit::Accept).count(), 100);
        assert_eq!(outcomes[299], Admit::Refuse { retry_after_ms: 50 });
        assert_eq!(outcomes[300], Admit::Close);
    }

    #[test]
    fn trickling_tokens_do_not_save_a_flooder() {
        let mut b = SocketBudget::new(0, SocketRate::default());
        let closed = (0..2000u64).position(|i| b.admit(i) == Admit::Close);
        assert!(closed.is_some(), "1,000 messages a second for 2 s is a flood");
    }

    #[test]
    fn peek_counts_nothing() {
        let mut w = Window::default();
        for _ in 0..60 {
            assert!(w.peek(1_000, 60, 60_000).allowed);
            assert!(w.hit(1_000, 60, 60_000).allowed);
        }
        let p = w.peek(2_000, 60, 60_000);
        assert!(!p.allowed);
        assert_eq!(p.reset_secs, 59);
        assert!(!w.hit(2_000, 60, 60_000).allowed, "the 61st upgrade in the minute is refused");
        assert!(w.peek(61_000, 60, 60_000).allowed);
    }

    #[test]
    fn service_tokens_count_in_their_own_class() {
        assert_eq!(subject_of(Some("backend"), true, "1.2.3.4", RateClass::Api), ("service:backend".into(), RateClass::Service));
        assert_eq!(subject_of(Some("u"), false, "1.2.3.4", RateClass::Upgrade), ("user:u".into(), RateClass::Upgrade));
        assert_eq!(subject_of(None, false, "1.2.3.4", RateClass::Api), ("ip:1.2.3.4".into(), RateClass::Api));
        assert_eq!(RateClass::Service.limit(), 6000);
    }

    #[test]
    fn classes_by_route() {
        assert_eq!(RateClass::of("POST", &["errors", "batch"]), RateClass::ErrorBatch);
        assert_eq!(RateClass::of("GET", &["errors", "stats"]), RateClass::Api);
        assert_eq!(RateClass::of("DELETE", &["posts", "p1", "comments", "c1"]), RateClass::EngagementWrite);
        assert_eq!(RateClass::of("GET", &["posts", "p1", "engagement"]), RateClass::Api);
    }
}
