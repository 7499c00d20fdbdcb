//! Delivering one event to users who share an inbox shard (from the publish queue, or a post's
//! owner outbox): the shard keeps it for each of them (once per event id) and names those with
//! a channel socket open; each of those channels gets a push. A channel that turns out to have
//! no socket hands the event back to the shard for its next connect.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::task::{Poll, Waker};

use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Env, Headers, Method};

use super::inbox::call_shard;
use super::inbox_shard::{Delivery, Push};
use super::internal::call_object;

/// Pushes one delivery keeps in flight.
const PUSHES_IN_FLIGHT: usize = 16;
/// At most this many channel calls in flight per isolate, across concurrent deliveries: a burst
/// of queue batches must not start thousands of object calls at once.
const CALLS_IN_FLIGHT: usize = 48;

thread_local! {
    static PERMITS: RefCell<(usize, VecDeque<Waker>)> = const { RefCell::new((CALLS_IN_FLIGHT, VecDeque::new())) };
}

/// A permit to make one channel call; given back when dropped.
struct Permit;

impl Permit {
    async fn take() -> Permit {
        std::future::poll_fn(|cx| {
            PERMITS.with(|p| {
                let mut p = p.borrow_mut();
                if p.0 > 0 {
                    p.0 -= 1;
                    Poll::Ready(Permit)
                } else {
                    p.1.push_back(cx.waker().clone());
                    Poll::Pending
                }
            })
        })
        .await
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        // Every waiter polls again (a waiter may have registered more than once).
        let waiting = PERMITS.with(|p| {
            let mut p = p.borrow_mut();
            p.0 += 1;
            std::mem::take(&mut p.1)
        });
        waiting.into_iter().for_each(Waker::wake);
    }
}

#[derive(Deserialize)]
struct Delivered {
    pushes: Vec<Push>,
}

/// Delivers `item` (a notification) as `event_id` to `user_ids`, who must share one inbox shard.
/// Ok once every user's shard kept it and every online channel took it (or had no socket).
pub async fn deliver(env: &Env, event_id: &str, item: &Value, user_ids: &[String]) -> Result<(), String> {
    let Some(first) = user_ids.first() else { return Ok(()) };
    let body = serde_json::to_string(&Delivery { event_id: event_id.to_string(), item: item.clone(), user_ids: user_ids.to_vec() }).map_err(|e| e.to_string())?;
    let mut resp = call_shard(env, first, Method::Post, "/deliver", Some(body)).await.map_err(|e| format!("inbox shard: {e}"))?;
    if resp.status_code() != 200 {
        return Err(format!("inbox shard answered {}", resp.status_code()));
    }
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let delivered: Delivered = serde_json::from_str(&text).map_err(|e| format!("inbox shard answer: {e}"))?;
    let failed = stream::iter(delivered.pushes.iter().map(|p| push(env, event_id, p)))
        .buffer_unordered(PUSHES_IN_FLIGHT)
        .filter(|ok| std::future::ready(!ok))
        .count()
        .await;
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} of {} pushes failed", delivered.pushes.len())),
    }
}

/// One push to an online user's channel; true when it is settled.
async fn push(env: &Env, event_id: &str, p: &Push) -> bool {
    let status = {
        let _permit = Permit::take().await;
        let body = serde_json::to_string(p).unwrap_or_default();
        call_object(env, "USER_CHANNEL", &p.user_id, Method::Post, "/notification", Some(body), Headers::new()).await.map(|r| r.status_code())
    };
    match status {
        Ok(200) => true,
        // No socket after all: the shard keeps the event for the next connect.
        Ok(410) => {
            let body = json!({ "user_id": p.user_id, "generation": p.generation, "event_id": event_id }).to_string();
            call_shard(env, &p.user_id, Method::Post, "/gone", Some(body)).await.is_ok_and(|r| r.status_code() == 200)
        }
        Ok(s) => {
            worker::console_error!("push {event_id} to {}: status {s}", p.user_id);
            false
        }
        Err(e) => {
            worker::console_error!("push {event_id} to {}: {e}", p.user_id);
            false
        }
    }
}
