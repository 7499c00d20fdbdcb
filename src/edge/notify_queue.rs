//! Fan-out of published notifications through Cloudflare Queues (§4.8 [1.1]). The API enqueues
//! one message per inbox shard's slice of the recipients (≤ 200); the consumer delivers each
//! (`inbox_shard::client::deliver`: one shard call, one push per online recipient) and acks the message only
//! when all of it succeeded. A message that failed anywhere is retried whole: shards and channels
//! recognise an event id they have seen, so a retry never delivers twice, and nothing is acked
//! before it is kept, so nothing is dropped.

use std::cell::RefCell;
use std::collections::HashSet;

use futures_util::future::join_all;
use worker::{Env, MessageBatch, MessageExt};

use crate::objects::inbox_shard::client as inbox;
use crate::publish::Publish;
use crate::runtime::bindings;
use crate::runtime::log;
/// One `sendBatch` carries at most 100 messages and 256 KB; stay below both.
const SEND_BATCH_MESSAGES: usize = 100;
const SEND_BATCH_BYTES: usize = 200 * 1024;

/// Enqueues the event's messages; the bodies are JSON text, so numbers stay exact.
pub async fn enqueue(env: &Env, p: &Publish) -> worker::Result<usize> {
    let queue = env.queue(bindings::NOTIFY_QUEUE)?;
    let bodies: Vec<String> = p.split().iter().map(|m| serde_json::to_string(m).unwrap_or_default()).collect();
    let n = bodies.len();
    let mut batch: Vec<String> = Vec::new();
    let mut bytes = 0;
    for body in bodies {
        if !batch.is_empty() && (batch.len() == SEND_BATCH_MESSAGES || bytes + body.len() > SEND_BATCH_BYTES) {
            queue.send_batch(std::mem::take(&mut batch)).await?;
            bytes = 0;
        }
        bytes += body.len();
        batch.push(body);
    }
    if !batch.is_empty() {
        queue.send_batch(batch).await?;
    }
    Ok(n)
}

thread_local! {
    /// Test-only fault injection (`FAULT_NOTIFY_FAIL_ONCE` = a user id): the first delivery to
    /// that user fails, as a channel that is briefly unreachable would.
    static FAILED_ONCE: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

fn injected_failure(env: &Env, user_id: &str) -> bool {
    let Ok(v) = env.var(bindings::FAULT_NOTIFY_FAIL_ONCE) else { return false };
    v.to_string() == user_id && FAILED_ONCE.with(|f| f.borrow_mut().insert(user_id.to_string()))
}

/// The queue consumer. It never fails the batch (a failed handler would panic the instance):
/// each message is acked or retried on its own.
pub async fn consume(batch: MessageBatch<String>, env: Env) -> worker::Result<()> {
    let messages = match batch.messages() {
        Ok(m) => m,
        Err(e) => {
            log::error("notify_queue", format!("unreadable batch, retried: {e}"), &[]);
            batch.retry_all();
            return Ok(());
        }
    };
    let env = &env;
    join_all(messages.iter().map(|m| async move {
        let Ok(p) = serde_json::from_str::<Publish>(m.body()) else {
            log::error("notify_queue", "dropping a malformed message", &[]);
            m.ack();
            return;
        };
        let item = p.notification();
        if let Some(at) = p.user_ids.iter().position(|u| injected_failure(env, u)) {
            // As a consumer dying mid-message: the recipients before that user were handled.
            let _ = inbox::deliver(env, &p.event_id, &item, &p.user_ids[..at]).await;
            log::error("notify_delivery", format!("injected failure after {at} recipients; the message is retried"), &[("event_id", p.event_id.as_str().into())]);
            return m.retry();
        }
        match inbox::deliver(env, &p.event_id, &item, &p.user_ids).await {
            Ok(()) => m.ack(),
            Err(e) => {
                log::error("notify_delivery", format!("{e}; the message ({} recipients) is retried", p.user_ids.len()), &[("event_id", p.event_id.as_str().into())]);
                m.retry();
            }
        }
    }))
    .await;
    Ok(())
}
