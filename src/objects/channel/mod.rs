//! `UserChannel`: one Durable Object per user holding that user's personal-channel sockets
//! (hibernating). Notifications are kept in the user's inbox shard; the channel registers its
//! sockets there and pushes to them (`inbox_link`), holds the user's presence and who watches it
//! (`presence`), and hands a pre-shard inbox to the shard once (`legacy_inbox`). This file holds
//! the object and its router.

pub mod client;
pub mod storage;

#[cfg(target_arch = "wasm32")]
mod expiry;
#[cfg(target_arch = "wasm32")]
mod inbox_link;
#[cfg(target_arch = "wasm32")]
mod legacy_inbox;
#[cfg(target_arch = "wasm32")]
mod post_watch;
#[cfg(target_arch = "wasm32")]
mod presence;

#[cfg(target_arch = "wasm32")]
pub use inbox_link::mark_read;
#[cfg(target_arch = "wasm32")]
pub use object::UserChannel;

#[cfg(target_arch = "wasm32")]
mod object {
    use serde::{Deserialize, Serialize};
    use serde_json::json;
    use worker::{durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage, WebSocketPair};

    use super::client::*;
    use super::storage::ChannelStore;
    use crate::protocol::{parse_frame, Code, Failure, Frame, Outgoing};
    use crate::runtime::clock::now_ms;
    use crate::runtime::http::{ApiError, ApiResult};
    use crate::runtime::log;
    use crate::runtime::rpc::{read, reply, Call, Done, Incoming};
    use crate::runtime::sockets::{answer_pings_while_asleep, close, connect_exp, is_upgrade, probe_ok, send, too_many_connections, Budgets};
    use crate::limits;
    use crate::runtime::sql_worker::ObjectSql;

    /// A channel socket's attachment.
    #[derive(Serialize, Deserialize)]
    pub(in crate::objects::channel) struct ChannelSession {
        pub user_id: String,
        pub session_id: String,
        /// The token's `exp` (seconds; 0: none): the alarm closes the socket after it (§5.5 [1.2]).
        #[serde(default)]
        pub exp: u64,
        /// The highest notification seq this socket was sent; None until its catch-up on
        /// connect went out (pushes skip it until then).
        #[serde(default)]
        pub mark: Option<i64>,
        /// The posts this socket watches (`watch_posts`, §6.2 [1.2]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub posts: Vec<String>,
    }

    /// `notification_read` names at most 100 ids a frame (§5.1 [1.2]); more marks nothing.
    fn read_ids_fit(frame: &Frame) -> std::result::Result<(), Failure> {
        let n = frame.payload.get("event_ids").and_then(serde_json::Value::as_array).map_or(0, Vec::len);
        if n > limits::MAX_READ_IDS_PER_FRAME {
            return Err(Failure::new(Code::TooLarge, format!("at most {} event ids per notification_read frame ({n} sent); nothing was marked", limits::MAX_READ_IDS_PER_FRAME)));
        }
        Ok(())
    }

    #[durable_object]
    pub struct UserChannel {
        pub(in crate::objects::channel) state: State,
        pub(in crate::objects::channel) env: Env,
        pub(in crate::objects::channel) store: ChannelStore<ObjectSql>,
        budgets: Budgets,
    }

    impl DurableObject for UserChannel {
        fn new(state: State, env: Env) -> Self {
            answer_pings_while_asleep(&state);
            let lapse = crate::runtime::bindings::number(&env, crate::runtime::bindings::PRESENCE_LAPSE_MS, crate::presence::REPORT_LAPSE_MS);
            let store = ChannelStore::new(ObjectSql::new(state.storage())).with_report_lapse(lapse);
            if let Err(e) = store.ensure_schema() {
                log::error("schema", e, &[("object", "channel".into())]);
            }
            let budgets = Budgets::from_env(&env);
            UserChannel { state, env, store, budgets }
        }

        async fn fetch(&self, req: Request) -> Result<Response> {
            self.route(req).await.or_else(ApiError::into_response)
        }

        async fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
            let WebSocketIncomingMessage::String(text) = message else {
                send(&ws, Outgoing::error(&Failure::bad("binary frames are not supported"), None, None));
                return Ok(());
            };
            let Some(me) = ws.deserialize_attachment::<ChannelSession>().ok().flatten() else { return Ok(()) };
            // One budget per user, shared by all their channel sockets (§5.1 [1.2]).
            if !self.budgets.admit(&ws, &me.user_id, &text) {
                return Ok(());
            }
            match parse_frame(&text) {
                Err((f, id)) => send(&ws, Outgoing::error(&f, id, None)),
                Ok(frame) => match frame.kind.as_str() {
                    "ping" => send(&ws, Outgoing::reply("pong", frame.id, json!({}))),
                    "auth" => self.renew(&ws, me, frame).await,
                    "watch_presence" => self.watch(&ws, &me.user_id, frame).await,
                    "presence" => self.presence_frame(&ws, &me.user_id, frame).await,
                    "watch_posts" => self.watch_posts(&ws, me, frame).await,
                    "playback" => self.playback(&ws, &me.user_id, frame).await,
                    "notification_read" => match read_ids_fit(&frame) {
                        Ok(()) => self.read_from_socket(&ws, &me.user_id, frame).await,
                        Err(f) => send(&ws, Outgoing::error(&f, frame.id, None)),
                    },
                    other => {
                        let f = Failure::new(Code::UnknownType, format!("{other:?} is not handled on the personal channel"));
                        send(&ws, Outgoing::error(&f, frame.id, None));
                    }
                },
            }
            Ok(())
        }

        /// A presence lease or a room report lapsed (§5.6); a socket's token expired (§5.5). Each
        /// sets the alarm again only earlier than what is set, so the earliest need wins.
        async fn alarm(&self) -> Result<Response> {
            self.expire_sockets().await;
            self.lapse().await;
            Response::ok("")
        }

        async fn websocket_close(&self, ws: WebSocket, code: usize, _reason: String, _clean: bool) -> Result<()> {
            let _ = ws.close(Some(close::echo(code)), Some("closed"));
            self.closed(&ws).await;
            Ok(())
        }

        async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
            self.closed(&ws).await;
            Ok(())
        }
    }

    /// `since_seq` of the upgrade (checked by the Worker before it got here).
    fn since_seq(req: &Request) -> Option<i64> {
        let url = req.url().ok()?;
        let v = url.query_pairs().find(|(k, _)| k == "since_seq")?.1;
        v.parse::<i64>().ok().filter(|n| *n >= 0)
    }

    impl UserChannel {
        async fn route(&self, mut req: Request) -> ApiResult {
            let call = Incoming::of(&req)?;
            match call.path.as_str() {
                CONNECT_PATH => {
                    let exp = connect_exp(&req);
                    let answer = self.open_socket(&req, &call.actor(), exp, since_seq(&req))?;
                    if is_upgrade(&req) {
                        self.arm_expiry(exp).await;
                    }
                    Ok(answer)
                }
                PushNotification::PATH => reply(&self.receive(&read(&mut req).await?).await?),
                ImportLegacy::PATH => {
                    let i: ImportLegacy = read(&mut req).await?;
                    super::legacy_inbox::hand_over(&self.env, &self.store, &i.user_id).await;
                    reply(&Done {})
                }
                TellCount::PATH => {
                    self.tell_count(read::<TellCount>(&mut req).await?.count);
                    reply(&Done {})
                }
                ReadPresence::PATH => reply(&self.presence_for(&call.actor(), read(&mut req).await?)?),
                SetPresence::PATH => reply(&self.set_presence(&call.actor(), read(&mut req).await?).await?),
                AddWatcher::PATH => reply(&self.add_watcher(read(&mut req).await?)?),
                Unwatch::PATH => reply(&self.remove_watcher(read(&mut req).await?)?),
                PushPresence::PATH => reply(&self.push_presence(read(&mut req).await?)?),
                WatchedCounts::PATH => reply(&self.watched_counts(read(&mut req).await?)),
                RoomSockets::PATH => reply(&self.room_sockets(read(&mut req).await?).await?),
                SetAudience::PATH => reply(&self.set_audience(read(&mut req).await?).await?),
                _ => Err(ApiError::not_found("no such channel call")),
            }
        }

        /// Opens a socket; after the 101 it registers with the inbox shard and gets what was
        /// kept: with `since_seq`, every item above it, else the unread ones (§5.3 [1.2]).
        /// At most 16 per user (§5.1 [1.2]); without `Upgrade`, a probe of that (§5.5 [1.2]).
        fn open_socket(&self, req: &Request, actor: &crate::model::Actor, exp: u64, since: Option<i64>) -> ApiResult {
            if self.state.get_websockets().len() >= limits::MAX_SOCKETS_PER_USER_CHANNEL && !actor.is_service {
                return Err(too_many_connections(limits::MAX_SOCKETS_PER_USER_CHANNEL, "on the personal channel"));
            }
            if !is_upgrade(req) {
                return probe_ok();
            }
            let pair = WebSocketPair::new()?;
            self.state.accept_web_socket(&pair.server);
            let session = ChannelSession { user_id: actor.user_id.clone(), session_id: uuid::Uuid::new_v4().to_string(), exp, mark: None, posts: Vec::new() };
            pair.server.serialize_attachment(&session)?;
            self.store.remember_user(&actor.user_id)?;
            self.store.touch(now_ms())?;
            self.attach(&pair.server, &actor.user_id, since)?;
            Ok(Response::from_websocket(pair.client)?)
        }

        /// `watch_presence` at most once a second (§5.1 [1.2]); otherwise the wait left, in ms.
        pub(in crate::objects::channel) fn watch_allowed(&self) -> std::result::Result<(), (Failure, u64)> {
            match self.store.take_turn("watch_presence_at", now_ms(), limits::WATCH_PRESENCE_EVERY_MS) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(ms)) => Err((Failure::new(Code::RateLimited, "watch_presence is accepted at most once a second"), ms)),
                Err(e) => Err((Failure::new(Code::Internal, format!("storage: {e}")), 1_000)),
            }
        }

        /// A socket went: the user may be offline for presence, and for deliveries.
        async fn closed(&self, ws: &WebSocket) {
            if self.state.get_websockets().iter().all(|s| s == ws) {
                if let Some(me) = ws.deserialize_attachment::<ChannelSession>().ok().flatten() {
                    self.budgets.forget(&me.user_id);
                    self.detach(&me.user_id);
                }
            }
            self.posts_socket_gone(ws).await;
            self.socket_gone(ws).await;
        }
    }
}
