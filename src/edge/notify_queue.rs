//! Fan-out of published notifications through Cloudflare Queues (§4.8 [1.1], §5.4 [1.2]). The
//! API enqueues one message per inbox shard's slice of the recipients (≤ 200) and counts them
//! pending; the consumer delivers each (`inbox_shard::client::deliver`: one shard call, one push
//! per online recipient) and acks it only when all of it succeeded. A failed message is retried
//! whole after a delay that doubles with its age (1 s, 1, 2, 4 … capped at an hour; 20 retries
//! ≈ 8 hours, wrangler.toml), so an inbox shard down for an hour loses nothing; shards and
//! channels recognise an event id they have seen, so a retry never delivers twice. A message
//! that exhausts its retries goes to the dead-letter queue, whose consumer (here too) keeps it
//! in D1 for replay.

use std::cell::RefCell;
use std::collections::HashSet;

use futures_util::future::join_all;
use worker::{Env, Message, MessageBatch, MessageExt, QueueRetryOptionsBuilder};

use crate::d1::notify_ledger::{self, DeadLetter};
use crate::objects::inbox_shard::client as inbox;
use crate::publish::{retry_delay_s, Publish};
use crate::runtime::bindings;
use crate::runtime::log;
/// One `sendBatch` carries at most 100 messages and 256 KB; stay below both.
const SEND_BATCH_MESSAGES: usize = 100;
const SEND_BATCH_BYTES: usize = 200 * 1024;

/// Enqueues the event's messages (the bodies are JSON text, so numbers stay exact) and counts
/// them pending.
pub async fn enqueue(env: &Env, p: &Publish) -> worker::Result<usize> {
    let bodies: Vec<String> = p.split().iter().map(|m| serde_json::to_string(m).unwrap_or_default()).collect();
    send_bodies(env, bodies).await
}

/// Sends message bodies in batches; counts them pending (a failed count is logged: the
/// messages are queued either way).
pub async fn send_bodies(env: &Env, bodies: Vec<String>) -> worker::Result<usize> {
    let queue = env.queue(bindings::NOTIFY_QUEUE)?;
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
    count_pending(env, n as i64).await;
    Ok(n)
}

async fn count_pending(env: &Env, delta: i64) {
    let counted = match env.d1(bindings::DB) {
        Ok(db) => notify_ledger::add_pending(&db, delta).await,
        Err(e) => Err(e),
    };
    if let Err(e) = counted {
        log::error("notify_ledger", e.to_string(), &[]);
    }
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

fn retry_later(m: &Message<String>) {
    let age = (worker::Date::now().as_millis()).saturating_sub(m.timestamp().as_millis());
    m.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(retry_delay_s(age) as u32).build());
}

/// Delivers one message; true when it is done with (delivered, or unreadable and dropped).
async fn deliver_one(env: &Env, m: &Message<String>) -> bool {
    let Ok(p) = serde_json::from_str::<Publish>(m.body()) else {
        log::error("notify_queue", "dropping a malformed message", &[]);
        m.ack();
        return true;
    };
    let item = p.notification();
    if let Some(at) = p.user_ids.iter().position(|u| injected_failure(env, u)) {
        // As a consumer dying mid-message: the recipients before that user were handled.
        let _ = inbox::deliver(env, &p.event_id, &item, &p.user_ids[..at], None, p.store).await;
        log::error("notify_delivery", format!("injected failure after {at} recipients; the message is retried"), &[("event_id", p.event_id.as_str().into())]);
        retry_later(m);
        return false;
    }
    match inbox::deliver(env, &p.event_id, &item, &p.user_ids, None, p.store).await {
        Ok(()) => {
            m.ack();
            true
        }
        Err(e) => {
            log::error("notify_delivery", format!("{e}; the message ({} recipients) is retried", p.user_ids.len()), &[("event_id", p.event_id.as_str().into())]);
            retry_later(m);
            false
        }
    }
}

/// The consumer of both queues. It never fails the batch (a failed handler would panic the
/// instance): each message is acked or retried on its own.
pub async fn consume(batch: MessageBatch<String>, env: Env) -> worker::Result<()> {
    let messages = match batch.messages() {
        Ok(m) => m,
        Err(e) => {
            log::error("notify_queue", format!("unreadable batch, retried: {e}"), &[]);
            batch.retry_all();
            return Ok(());
        }
    };
    if batch.queue().ends_with("-dlq") {
        return keep_dead_letters(&env, &messages).await;
    }
    let env = &env;
    let done = join_all(messages.iter().map(|m| deliver_one(env, m))).await;
    count_pending(env, -(done.iter().filter(|d| **d).count() as i64)).await;
    Ok(())
}

/// The dead-letter queue's consumer: every message is kept in D1 for replay, then acked; it
/// leaves the pending count in the same D1 transaction. Retried (by the dead-letter queue) if D1 could not keep it.
async fn keep_dead_letters(env: &Env, messages: &[Message<String>]) -> worker::Result<()> {
    let letters: Vec<DeadLetter> = messages
        .iter()
        .map(|m| {
            let p = serde_json::from_str::<Publish>(m.body()).ok();
            DeadLetter {
                message_id: m.id(),
                event_id: p.as_ref().map(|p| p.event_id.clone()).unwrap_or_default(),
                body: m.body().clone(),
                recipients: p.map_or(0, |p| p.user_ids.len() as i64),
            }
        })
        .collect();
    let kept = match env.d1(bindings::DB) {
        Ok(db) => notify_ledger::keep_dead(&db, &letters, worker::Date::now().as_millis()).await,
        Err(e) => Err(e),
    };
    match kept {
        Ok(_) => {
            for l in &letters {
                log::error("notify_dead_letter", "kept for replay", &[("event_id", l.event_id.as_str().into()), ("message_id", l.message_id.as_str().into())]);
            }
            messages.iter().for_each(|m| m.ack());
        }
        Err(e) => {
            log::error("notify_dead_letter", format!("could not keep dead letters, retried: {e}"), &[]);
            messages.iter().for_each(retry_later);
        }
    }
    Ok(())
}
