//! `InboxShard`: one of 64 objects holding the notification inboxes and activity timelines of
//! the users whose id hashes to it (`crate::sharding::inbox_shard`), and which of them have a
//! channel socket open. A notification to 10,000 users is ~64 shard calls that each write their
//! users' rows in one go, plus one push per user who is online — not 10,000 objects woken.
//! This file holds the object and its router; `storage` and `reads` its SQLite, `push` the
//! pushes to online channels.

pub mod client;
pub mod group;
pub mod reads;
pub mod storage;
pub mod watch;

#[cfg(target_arch = "wasm32")]
mod push;
#[cfg(target_arch = "wasm32")]
mod watch_push;

#[cfg(target_arch = "wasm32")]
pub use object::InboxShard;

#[cfg(target_arch = "wasm32")]
mod object {
    use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

    use super::client::*;
    use super::watch::{PostCounts, WatchPosts};
    use super::push::push_all;
    use super::storage::InboxStore;
    use crate::runtime::clock::now_ms;
    use crate::runtime::http::{ApiError, ApiResult};
    use crate::runtime::log;
    use crate::runtime::rpc::{read, reply, Call, Incoming};
    use crate::runtime::sql_worker::ObjectSql;
    use crate::sharding::inbox_shard;

    #[durable_object]
    pub struct InboxShard {
        env: Env,
        store: InboxStore<ObjectSql>,
    }

    impl DurableObject for InboxShard {
        fn new(state: State, env: Env) -> Self {
            let store = InboxStore::new(ObjectSql::new(state.storage()));
            if let Err(e) = store.ensure_schema() {
                log::error("schema", e, &[("object", "inbox shard".into())]);
            }
            InboxShard { env, store }
        }

        async fn fetch(&self, req: Request) -> Result<Response> {
            self.route(req).await.or_else(ApiError::into_response)
        }
    }

    impl InboxShard {
        async fn route(&self, mut req: Request) -> ApiResult {
            let store = &self.store;
            match Incoming::of(&req)?.path.as_str() {
                Deliver::PATH => reply(&self.deliver(read(&mut req).await?).await?),
                Attach::PATH => {
                    let a: Attach = read(&mut req).await?;
                    if self.env.var(crate::runtime::bindings::FAULT_ATTACH_DOWN).is_ok_and(|v| v.to_string() == a.user_id) {
                        return Err(ApiError::new(503, "unavailable", "this user's inbox is unreachable (injected fault)"));
                    }
                    let (items, head, count) = store.attach(&a.user_id, a.generation, a.since)?;
                    reply(&Attached { items, head, count })
                }
                CatchUp::PATH => {
                    let c: CatchUp = read(&mut req).await?;
                    reply(&CaughtUp { items: store.items_after(&c.user_id, c.since)? })
                }
                Detach::PATH => {
                    let d: Detach = read(&mut req).await?;
                    reply(&Detached { online: store.went_offline(&d.user_id, d.generation)? })
                }
                MarkRead::PATH => {
                    let (count, generation) = store.mark_read(&read(&mut req).await?)?;
                    reply(&MarkedRead { count, generation })
                }
                ReadPage::PATH => reply(&store.page(&read(&mut req).await?)?),
                Holders::PATH => reply(&HolderList { user_ids: store.holders(&read::<Holders>(&mut req).await?.event_id)? }),
                Import::PATH => reply(&Imported { imported: store.import(&read(&mut req).await?)? }),
                WatchPosts::PATH => {
                    let w: WatchPosts = read(&mut req).await?;
                    if inbox_shard(&w.user_id) != w.shard {
                        return Err(ApiError::bad_request(format!("user {} does not live in {}", w.user_id, w.shard)));
                    }
                    reply(&super::watch_push::set_watches(&self.env, store, w).await?)
                }
                PostCounts::PATH => reply(&super::watch_push::push_counts(&self.env, store, read(&mut req).await?).await?),
                _ => Err(ApiError::not_found("no such inbox call")),
            }
        }

        /// Keeps the event for each user, then pushes it to the online ones' channels (this
        /// shard's users only, so one queue message is one call here). 503 when a push failed.
        async fn deliver(&self, d: Deliver) -> Result<Delivered, ApiError> {
            if let Some(stray) = d.user_ids.iter().find(|u| inbox_shard(u) != d.shard) {
                return Err(ApiError::bad_request(format!("user {stray} does not live in {}", d.shard)));
            }
            if self.injected_outage(&d.shard)? {
                return Err(ApiError::new(503, "unavailable", "this inbox shard is down (injected fault)"));
            }
            let pushes = self.store.keep(&d, now_ms() as i64)?;
            let failed = push_all(&self.env, &self.store, &pushes).await?;
            if failed > 0 {
                return Err(ApiError::new(503, "unavailable", format!("{failed} of {} pushes failed; retry", pushes.len())));
            }
            Ok(Delivered { kept: d.user_ids.len(), pushed: pushes.len() })
        }

        /// Test-only fault (`FAULT_INBOX_DOWN` = `{user_id}:{seconds}`, set only in a miniflare
        /// test's bindings, never in wrangler.toml): the shard holding that user refuses every
        /// delivery for that long after the first one it sees.
        fn injected_outage(&self, shard: &str) -> Result<bool, ApiError> {
            let Ok(v) = self.env.var(crate::runtime::bindings::FAULT_INBOX_DOWN) else { return Ok(false) };
            let v = v.to_string();
            let Some((user, secs)) = v.rsplit_once(':') else { return Ok(false) };
            if inbox_shard(user) != shard {
                return Ok(false);
            }
            let now = now_ms() as i64;
            let since = self.store.fault_since(now)?;
            Ok(now - since < secs.parse::<i64>().unwrap_or(0) * 1000)
        }
    }
}
