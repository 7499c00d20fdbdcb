//! `RateLimiter`: one Durable Object per subject (user or IP) counting its requests per class.
//! A single instance per subject makes the count exact across Worker isolates. Counters live in
//! memory: an object evicted while idle has no window worth keeping.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::{durable_object, Date, DurableObject, Env, Request, Response, Result, State};

use crate::ratelimit::{RateClass, Window};

#[durable_object]
pub struct RateLimiter {
    windows: RefCell<HashMap<RateClass, Window>>,
}

impl DurableObject for RateLimiter {
    fn new(_state: State, _env: Env) -> Self {
        RateLimiter { windows: RefCell::new(HashMap::new()) }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let url = req.url()?;
        let class = url
            .query_pairs()
            .find(|(k, _)| k == "class")
            .and_then(|(_, v)| RateClass::parse(&v))
            .unwrap_or(RateClass::Api);
        let decision = self.windows.borrow_mut().entry(class).or_default().hit(Date::now().as_millis(), class.limit(), class.window_ms());
        Response::from_json(&decision)
    }
}
