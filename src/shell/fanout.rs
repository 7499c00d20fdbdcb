//! Fan-out of published notifications through Cloudflare Queues (§4.8 [1.1]). The API enqueues
//! one message per 100 recipients; the consumer hands each recipient's channel the notification
//! and acks the message only when every channel accepted it. A message that failed anywhere is
//! retried whole: channels ignore an event id they have seen, so a retry never delivers twice,
//! and nothing is acked before it is delivered, so nothing is dropped.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::task::{Poll, Waker};

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use worker::{event, Context, Env, Headers, Method, MessageBatch, MessageExt};

use super::internal::call_object;
use crate::publish::Publish;
use crate::room::Notification;

pub const QUEUE_BINDING: &str = "NOTIFY_QUEUE";
/// Channel calls one message keeps in flight.
const DELIVERIES_IN_FLIGHT: usize = 16;
/// Messages one `sendBatch` carries (each ≤ ~30 KB; a batch must stay under 256 KB).
const SEND_BATCH: usize = 8;

/// Enqueues the event's messages; the bodies are JSON text, so numbers stay exact.
pub async fn enqueue(env: &Env, p: &Publish) -> worker::Result<usize> {
    let queue = env.queue(QUEUE_BINDING)?;
    let bodies: Vec<String> = p.split().iter().map(|m| serde_json::to_string(m).unwrap_or_default()).collect();
    let n = bodies.len();
    for chunk in bodies.chunks(SEND_BATCH) {
        queue.send_batch(chunk.to_vec()).await?;
    }
    Ok(n)
}

thread_local! {
    /// Test-only fault injection (`FAULT_NOTIFY_FAIL_ONCE` = a user id): the first delivery to
    /// that user fails, as a channel that is briefly unreachable would.
    static FAILED_ONCE: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

fn injected_failure(env: &Env, user_id: &str) -> bool {
    let Ok(v) = env.var("FAULT_NOTIFY_FAIL_ONCE") else { return false };
    v.to_string() == user_id && FAILED_ONCE.with(|f| f.borrow_mut().insert(user_id.to_string()))
}

/// At most this many channel calls in flight per isolate, across concurrent consumer batches:
/// a burst of batches must not start thousands of object calls at once.
const CALLS_IN_FLIGHT: usize = 48;

thread_local! {
    static PERMITS: RefCell<(usize, VecDeque<Waker>)> = const { RefCell::new((CALLS_IN_FLIGHT, VecDeque::new())) };
}

/// Waits for a permit to make one channel call; it is given back when the guard drops.
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

async fn deliver_one(env: &Env, p: &Publish, user_id: &str) -> bool {
    if injected_failure(env, user_id) {
        return false;
    }
    let _permit = Permit::take().await;
    let n = Notification { event_id: p.event_id.clone(), user_id: user_id.to_string(), payload: p.notification() };
    let body = serde_json::to_string(&n).unwrap_or_default();
    match call_object(env, "USER_CHANNEL", user_id, Method::Post, "/notify", Some(body), Headers::new()).await {
        Ok(resp) if resp.status_code() == 200 => true,
        Ok(resp) => {
            worker::console_error!("notify {} to {user_id}: status {}", p.event_id, resp.status_code());
            false
        }
        Err(e) => {
            worker::console_error!("notify {} to {user_id}: {e}", p.event_id);
            false
        }
    }
}

/// The queue consumer. It never fails the batch (a failed handler would panic the instance):
/// each message is acked or retried on its own.
#[event(queue)]
async fn deliver(batch: MessageBatch<String>, env: Env, _ctx: Context) -> worker::Result<()> {
    let messages = match batch.messages() {
        Ok(m) => m,
        Err(e) => {
            worker::console_error!("notify queue: unreadable batch, retried: {e}");
            batch.retry_all();
            return Ok(());
        }
    };
    let env = &env;
    join_all(messages.iter().map(|m| async move {
        let Ok(p) = serde_json::from_str::<Publish>(m.body()) else {
            worker::console_error!("notify queue: dropping a malformed message");
            m.ack();
            return;
        };
        let results: Vec<bool> = stream::iter(p.user_ids.iter().map(|u| deliver_one(env, &p, u))).buffer_unordered(DELIVERIES_IN_FLIGHT).collect().await;
        let failed = results.iter().filter(|ok| !**ok).count();
        if failed == 0 {
            m.ack();
        } else {
            worker::console_error!("notify {}: {failed} of {} deliveries failed; the message is retried", p.event_id, results.len());
            m.retry();
        }
    }))
    .await;
    Ok(())
}
