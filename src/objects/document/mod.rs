//! `DocumentRoom`: the Durable Object of one document. It adapts the pure room (`crate::room`) to
//! hibernating sockets, SQLite storage and alarms, and holds nothing in memory that storage
//! cannot rebuild. This file holds the object and its router; its duties are the siblings:
//! `connections` (sockets), `requests` (calls from the Worker), `duties` (what follows a commit,
//! and the alarm), `history` (D1), `engagement` (a post's owner, counts cache and outbox), `watchers` (the
//! inbox shards whose channels watch a post, §6.2).

pub mod client;
pub mod metrics;
pub mod snapshot_rows;
pub mod storage;
mod superseded;
mod writes;
#[cfg(test)]
mod writes_tests;

#[cfg(target_arch = "wasm32")]
mod access;
#[cfg(target_arch = "wasm32")]
mod connections;
pub mod delivery;
#[cfg(target_arch = "wasm32")]
mod duties;
#[cfg(target_arch = "wasm32")]
mod engagement;
#[cfg(target_arch = "wasm32")]
mod feed;
#[cfg(target_arch = "wasm32")]
mod group_commit;
#[cfg(target_arch = "wasm32")]
mod history;
#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod reports;
#[cfg(target_arch = "wasm32")]
mod watchers;
#[cfg(target_arch = "wasm32")]
mod requests;
#[cfg(target_arch = "wasm32")]
mod timers;
#[cfg(target_arch = "wasm32")]
mod yjs;

#[cfg(target_arch = "wasm32")]
pub use object::DocumentRoom;

#[cfg(target_arch = "wasm32")]
mod object {
    use std::rc::Rc;

    use worker::{durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage};

    use super::client::*;
    use super::host::RoomHost;
    use crate::protocol::DocKind;
    use crate::runtime::clock::new_incarnation;
    use crate::runtime::http::{ApiError, ApiResult};
    use crate::runtime::rpc::{read, reply, reply_raw, Call, Incoming};
    use crate::runtime::sockets::{answer_pings_while_asleep, Budgets};

    /// Meta key: this life of the document is in D1's `channel_documents`.
    const CHANNEL_REGISTERED: &str = "channel_registered";

    #[durable_object]
    pub struct DocumentRoom {
        pub(super) env: Env,
        pub(super) host: Rc<RoomHost>,
        pub(super) budgets: Budgets,
        /// Yjs sockets' budgets (§7: 60 a second, bursts of 200, unless `YJS_*` vars say otherwise).
        pub(super) ybudgets: Budgets,
        /// How often room reports are renewed (§5.6: a third of the lapse).
        pub(super) renew_ms: u64,
    }

    impl DurableObject for DocumentRoom {
        fn new(state: State, env: Env) -> Self {
            answer_pings_while_asleep(&state);
            let budgets = Budgets::from_env(&env);
            // Rooms renew at a third of the lapse (60 s of 3 minutes).
            let lapse = crate::runtime::bindings::number(&env, crate::runtime::bindings::PRESENCE_LAPSE_MS, crate::presence::REPORT_LAPSE_MS);
            let renew_ms = (lapse / 3).max(1);
            let ybudgets = Budgets::yjs_from_env(&env);
            DocumentRoom { env, host: Rc::new(RoomHost::new(state)), budgets, ybudgets, renew_ms }
        }

        async fn fetch(&self, req: Request) -> Result<Response> {
            self.route(req).await.or_else(ApiError::into_response)
        }

        async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
            self.on_message(&ws, message).await;
            Ok(())
        }

        async fn websocket_close(&self, ws: WebSocket, code: usize, _reason: String, clean: bool) -> Result<()> {
            self.on_close(&ws, code, clean).await;
            Ok(())
        }

        async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
            self.drop_socket(&ws).await;
            Ok(())
        }

        async fn alarm(&self) -> Result<Response> {
            self.run_alarm().await;
            Response::ok("")
        }
    }

    /// Calls made on a user's behalf that live authorization applies to (a connect checks itself).
    const USER_PATHS: [&str; 8] = [Apply::PATH, ApplyYjsUpdate::PATH, ReplaceText::PATH, ReadDocument::PATH, ReadCounts::PATH, ReadHistory::PATH, ReadMetrics::PATH, ReadComments::PATH];

    impl DocumentRoom {
        async fn route(&self, mut req: Request) -> ApiResult {
            let call = Incoming::of(&req)?;
            let document_id = call.document_id.clone().ok_or_else(|| ApiError::bad_request("missing document header"))?;
            let store = self.host.store();
            if store.document_id()?.is_none() {
                store.begin_incarnation(&document_id, &new_incarnation())?;
            }
            // §6.4: a channel's document is on record before it serves anything (once per life).
            if document_id.starts_with("channel:") && store.meta(CHANNEL_REGISTERED)?.is_none() {
                let db = self.env.d1(crate::runtime::bindings::DB)?;
                crate::d1::channel_documents::register(&db, &document_id, crate::runtime::clock::now_ms()).await?;
                store.set_meta(CHANNEL_REGISTERED, "1")?;
            }
            let actor = call.actor();
            // Live authorization (§5.5 [1.2]): a revoked user, or another's private post.
            if call.actor.is_some() && USER_PATHS.contains(&call.path.as_str()) {
                self.may_use(&actor)?;
            }
            match call.path.as_str() {
                CONNECT_PATH => self.open_socket(&req, actor).await,
                Apply::PATH => self.apply(&actor, read::<Apply>(&mut req).await?).await,
                ReplaceText::PATH => reply(&self.replace_text(&actor, read(&mut req).await?).await?),
                ReadDocument::PATH if DocKind::is_yjs(&document_id) => {
                    let q = read::<ReadDocument>(&mut req).await?;
                    reply(&self.read_yjs(&document_id, q.text.as_deref())?)
                }
                ReadDocument::PATH => reply_raw(&self.read_document(&document_id)?),
                ApplyYjsUpdate::PATH => reply(&self.apply_yjs_update(&actor, read(&mut req).await?).await?),
                ReadCounts::PATH => reply_raw(&self.counts().await?),
                ImportEngagement::PATH => self.import(&actor, read::<ImportEngagement>(&mut req).await?).await,
                ReadComments::PATH => reply_raw(&self.read_comments(read(&mut req).await?)?),
                Broadcast::PATH => reply(&self.broadcast(&document_id, read::<Broadcast>(&mut req).await?)),
                ShowPresence::PATH => reply(&self.show_presence(read::<ShowPresence>(&mut req).await?)),
                SetOwner::PATH => {
                    let set = read::<SetOwner>(&mut req).await?;
                    let visibility = set.visibility.clone();
                    let owner = self.register_owner(&actor, set)?;
                    self.set_visibility(visibility.as_deref()).await?;
                    reply(&owner)
                }
                Revoke::PATH => reply(&self.revoke(read::<Revoke>(&mut req).await?)?),
                ReadHistory::PATH => reply_raw(&self.read_history(&document_id, read(&mut req).await?).await?),
                ReadMetrics::PATH => reply(&self.read_metrics(&document_id)?),
                crate::objects::inbox_shard::watch::WatchFrom::PATH => reply(&self.watch_from(read(&mut req).await?)?),
                DeleteDocument::PATH => reply(&self.delete(&document_id).await?),
                _ => Err(ApiError::not_found("no such document call")),
            }
        }
    }
}
