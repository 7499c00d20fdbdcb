//! `RateLimiter`: one Durable Object per subject (user or IP) counting its requests per class.
//! A single instance per subject makes the count exact across Worker isolates. Counters live in
//! memory: an object evicted while idle has no window worth keeping.

use serde::{Deserialize, Serialize};

use crate::ratelimit::{Decision, RateClass};
use crate::call;

/// One request of `class` by the object's subject.
#[derive(Serialize, Deserialize)]
pub struct Hit {
    pub class: RateClass,
    /// Only look: what a hit would answer, counting nothing (upgrade probes).
    #[serde(default)]
    pub peek: bool,
}
call!(Hit, "/hit", Decision);

#[cfg(target_arch = "wasm32")]
pub use object::{check, peek, RateLimiter};

#[cfg(target_arch = "wasm32")]
mod object {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

    use super::Hit;
    use crate::ratelimit::{Decision, RateClass, Window};
    use crate::runtime::bindings;
    use crate::runtime::clock::now_ms;
    use crate::runtime::http::{ApiError, ApiResult};
    use crate::runtime::rpc::{self, read, reply, ObjectRef};

    #[durable_object]
    pub struct RateLimiter {
        windows: RefCell<HashMap<RateClass, Window>>,
    }

    impl DurableObject for RateLimiter {
        fn new(_state: State, _env: Env) -> Self {
            RateLimiter { windows: RefCell::new(HashMap::new()) }
        }

        async fn fetch(&self, mut req: Request) -> Result<Response> {
            let answer: ApiResult = async {
                let hit: Hit = read(&mut req).await?;
                let (now, limit, window) = (now_ms(), hit.class.limit(), hit.class.window_ms());
                let mut windows = self.windows.borrow_mut();
                let w = windows.entry(hit.class).or_default();
                let decision = if hit.peek { w.peek(now, limit, window) } else { w.hit(now, limit, window) };
                reply(&decision)
            }
            .await;
            answer.or_else(ApiError::into_response)
        }
    }

    /// Counts one request of `class` by `subject` (`user:…` or `ip:…`).
    pub async fn check(env: &Env, subject: &str, class: RateClass) -> std::result::Result<Decision, ApiError> {
        let target = ObjectRef { env, binding: bindings::RATE_LIMITER, name: subject, actor: None, document_id: None };
        rpc::call(&target, &Hit { class, peek: false }).await
    }

    /// What `check` would answer, counting nothing.
    pub async fn peek(env: &Env, subject: &str, class: RateClass) -> std::result::Result<Decision, ApiError> {
        let target = ObjectRef { env, binding: bindings::RATE_LIMITER, name: subject, actor: None, document_id: None };
        rpc::call(&target, &Hit { class, peek: true }).await
    }
}
