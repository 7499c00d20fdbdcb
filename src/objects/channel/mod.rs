//! `UserChannel`: one Durable Object per user holding that user's personal-channel sockets
//! (hibernating). Notifications are kept in the user's inbox shard; the channel registers its
//! sockets there and pushes to them (`inbox_link`), holds the user's presence and who watches it
//! (`presence`), and hands a pre-shard inbox to the shard once (`legacy_inbox`). This file holds
//! the object and its router.

pub mod client;
pub mod storage;

#[cfg(target_arch = "wasm32")]
mod inbox_link;
#[cfg(target_arch = "wasm32")]
mod legacy_inbox;
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
    use crate::protocol::{parse_frame, Code, Failure, Outgoing};
    use crate::runtime::clock::now_ms;
    use crate::runtime::http::{ApiError, ApiResult};
    use crate::runtime::log;
    use crate::runtime::rpc::{read, reply, Call, Done, Incoming};
    use crate::runtime::sockets::{answer_pings_while_asleep, close, send, Budgets};
    use crate::runtime::sql_worker::ObjectSql;

    /// A channel socket's attachment.
    #[derive(Serialize, Deserialize)]
    pub(in crate::objects::channel) struct ChannelSession {
        pub user_id: String,
        pub session_id: String,
        /// The highest notification seq this socket was sent; None until its catch-up on
        /// connect went out (pushes skip it until then).
        #[serde(default)]
        pub mark: Option<i64>,
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
            let store = ChannelStore::new(ObjectSql::new(state.storage()));
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
            if !self.budgets.admit(&ws, &me.session_id, &text) {
                return Ok(());
            }
            match parse_frame(&text) {
                Err((f, id)) => send(&ws, Outgoing::error(&f, id, None)),
                Ok(frame) => match frame.kind.as_str() {
                    "ping" => send(&ws, Outgoing::reply("pong", frame.id, json!({}))),
                    "watch_presence" => self.watch(&ws, &me.user_id, frame).await,
                    "notification_read" => self.read_from_socket(&ws, &me.user_id, frame).await,
                    other => {
                        let f = Failure::new(Code::UnknownType, format!("{other:?} is not handled on the personal channel"));
                        send(&ws, Outgoing::error(&f, frame.id, None));
                    }
                },
            }
            Ok(())
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
                CONNECT_PATH => self.open_socket(&call.actor(), since_seq(&req)),
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
                PushPresence::PATH => reply(&self.push_presence(read(&mut req).await?)?),
                RoomSockets::PATH => reply(&self.room_sockets(read(&mut req).await?).await?),
                _ => Err(ApiError::not_found("no such channel call")),
            }
        }

        /// Opens a socket; after the 101 it registers with the inbox shard and gets what was
        /// kept: with `since_seq`, every item above it, else the unread ones (§5.3 [1.2]).
        fn open_socket(&self, actor: &crate::model::Actor, since: Option<i64>) -> ApiResult {
            let pair = WebSocketPair::new()?;
            self.state.accept_web_socket(&pair.server);
            let session = ChannelSession { user_id: actor.user_id.clone(), session_id: uuid::Uuid::new_v4().to_string(), mark: None };
            pair.server.serialize_attachment(&session)?;
            self.store.remember_user(&actor.user_id)?;
            self.store.touch(now_ms())?;
            self.attach(&pair.server, &actor.user_id, since)?;
            Ok(Response::from_websocket(pair.client)?)
        }

        /// A socket went: the user may be offline for presence, and for deliveries.
        async fn closed(&self, ws: &WebSocket) {
            if self.state.get_websockets().iter().all(|s| s == ws) {
                if let Some(me) = ws.deserialize_attachment::<ChannelSession>().ok().flatten() {
                    self.detach(&me.user_id);
                }
            }
            self.socket_gone(ws).await;
        }
    }
}
