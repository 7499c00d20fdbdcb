//! The channel's link to its user's inbox shard (§4.8, §5.3 [1.2]): it registers its sockets
//! there (attach on every connect, detach when the last one closes), hands each new socket what
//! was kept (every item above the client's `since_seq`, or the unread ones), and sends each
//! socket the pushed items in seq order, each at most once: a socket's attachment holds the
//! highest seq it was sent, and a socket that missed some catches up from the shard.

use serde_json::{json, Value};
use worker::{Env, WebSocket};

use super::client::{PushNotification, PushTaken};
use super::storage::{ChannelStore, Count};
use super::object::ChannelSession;
use super::UserChannel;
use crate::objects::inbox_shard::client::{call_for, Attach, CatchUp, MarkRead, MarkedRead};
use crate::protocol::{Code, Failure, Frame, Outgoing};
use crate::runtime::clock::{frame_id, now_ms};
use crate::runtime::http::ApiError;
use crate::runtime::log;
use crate::runtime::sockets::{close, send, send_text};
use crate::runtime::sql_worker::ObjectSql;

fn count_frame(c: Count) -> Outgoing {
    Outgoing::new("notification_count", json!({ "unread": c.unread }))
}

fn seq_of(item: &Value) -> i64 {
    item["seq"].as_i64().unwrap_or(0)
}

/// Sends an item (and, for an activity, its timeline update) to one socket; false when the
/// socket could not take it.
fn send_item(ws: &WebSocket, item: &Value) -> bool {
    let taken = send_text(ws, &Outgoing::new("notification", item).into_frame(&frame_id(), now_ms()));
    if taken && item["kind"] == "activity" {
        send(ws, Outgoing::new("activity_update", item));
    }
    taken
}

fn session(ws: &WebSocket) -> Option<ChannelSession> {
    ws.deserialize_attachment::<ChannelSession>().ok().flatten()
}

/// Sends `ws` the items (oldest first) above the seq it was last sent, and records the new mark.
fn send_above_mark(ws: &WebSocket, items: &[Value]) {
    let Some(mut me) = session(ws) else { return };
    let Some(mut mark) = me.mark else { return };
    for item in items {
        if seq_of(item) <= mark {
            continue;
        }
        if !send_item(ws, item) {
            break;
        }
        mark = seq_of(item);
    }
    me.mark = Some(mark);
    let _ = ws.serialize_attachment(&me);
}

/// A socket that may have missed pushes gets every kept item above its mark from the shard.
async fn catch_up(env: &Env, user_id: &str, ws: &WebSocket) {
    let Some(mark) = session(ws).and_then(|s| s.mark) else { return };
    match call_for(env, user_id, &CatchUp { user_id: user_id.to_string(), since: mark }).await {
        Ok(c) => send_above_mark(ws, &c.items),
        Err(e) => log::error("inbox_catch_up", e.message, &[("user_id", user_id.into())]),
    }
}

/// After the 101: registers the socket with the shard, sends it what was kept and the count.
async fn attach_socket(env: Env, store: ChannelStore<ObjectSql>, ws: WebSocket, user_id: String, generation: i64, since: Option<i64>) {
    super::legacy_inbox::hand_over(&env, &store, &user_id).await;
    let attached = match call_for(&env, &user_id, &Attach { user_id: user_id.clone(), generation, since }).await {
        Ok(a) => a,
        Err(e) => {
            // Without the shard's registration this socket would get no pushes: close it, so
            // the client reconnects (with backoff) and registers again.
            log::error("inbox_attach", e.message, &[("user_id", user_id.as_str().into())]);
            let _ = ws.close(Some(close::UNAVAILABLE), Some("the inbox is unavailable; reconnect"));
            return;
        }
    };
    for item in &attached.items {
        if !send_item(&ws, item) {
            return;
        }
    }
    if let Some(mut me) = session(&ws) {
        me.mark = Some(attached.head);
        let _ = ws.serialize_attachment(&me);
    }
    if let Ok(count) = store.newest_count(attached.count) {
        send(&ws, count_frame(count));
    }
    // A push that reached the channel before this socket was ready skipped it.
    if store.push_seq().unwrap_or(0) > attached.head {
        catch_up(&env, &user_id, &ws).await;
    }
}

/// Marks events read in `user_id`'s inbox shard; the caller tells the sockets the new count.
pub async fn mark_read(env: &Env, req: &MarkRead) -> Result<MarkedRead, ApiError> {
    call_for(env, &req.user_id, req).await
}

impl UserChannel {
    /// A socket opened: after the 101, tell the shard the user is online and hand this socket
    /// what was kept, then the unread count.
    pub(super) fn attach(&self, ws: &WebSocket, user_id: &str, since: Option<i64>) -> worker::Result<()> {
        let generation = self.store.next_generation()?;
        let store = ChannelStore::new(self.store.sql().clone());
        self.state.wait_until(attach_socket(self.env.clone(), store, ws.clone(), user_id.to_string(), generation, since));
        Ok(())
    }

    /// The last socket closed: the user is offline for deliveries (unless a newer connect came).
    pub(super) fn detach(&self, user_id: &str) {
        let generation = self.store.generation().unwrap_or(0);
        let (env, user_id) = (self.env.clone(), user_id.to_string());
        self.state.wait_until(async move {
            let detach = crate::objects::inbox_shard::client::Detach { user_id: user_id.clone(), generation };
            if let Err(e) = call_for(&env, &user_id, &detach).await {
                log::error("inbox_detach", e.message, &[("user_id", user_id.as_str().into())]);
            }
        });
    }

    /// A push from the shard. Kept items go to every ready socket above its mark; a socket whose
    /// mark is below `from` missed some and catches up first. A transient event goes to every
    /// ready socket once per event id. 410 when no socket is open.
    pub(super) async fn receive(&self, push: &PushNotification) -> Result<PushTaken, ApiError> {
        let sockets = self.state.get_websockets();
        if sockets.is_empty() {
            return Err(ApiError::new(410, "gone", "no socket is open"));
        }
        if push.transient {
            let event_id = push.items.first().and_then(|i| i["event_id"].as_str()).unwrap_or_default();
            let fresh = self.store.mark_seen(event_id)?;
            if fresh {
                for ws in sockets.iter().filter(|ws| session(ws).is_some_and(|s| s.mark.is_some())) {
                    for i in &push.items {
                        send_item(ws, i);
                    }
                }
            }
            return Ok(PushTaken { status: if fresh { "delivered" } else { "duplicate" }.into() });
        }
        self.store.note_push_seq(push.items.iter().map(seq_of).max().unwrap_or(0))?;
        let mut behind = Vec::new();
        for ws in &sockets {
            match session(ws).and_then(|s| s.mark) {
                None => {}
                Some(mark) if mark < push.from => behind.push(ws.clone()),
                Some(_) => send_above_mark(ws, &push.items),
            }
        }
        self.tell_count(push.count);
        let user_id = self.store.meta("user_id")?.unwrap_or_default();
        for ws in behind {
            catch_up(&self.env, &user_id, &ws).await;
        }
        Ok(PushTaken { status: "delivered".into() })
    }

    /// `notification_count` to every socket, if `c` is newer than what they were told.
    pub(super) fn tell_count(&self, c: Count) {
        let before = self.store.count().ok().flatten();
        let Ok(now) = self.store.newest_count(c) else { return };
        if before != Some(now) {
            let frame = count_frame(now).into_frame(&frame_id(), now_ms());
            self.state.get_websockets().iter().for_each(|ws| {
                send_text(ws, &frame);
            });
        }
    }

    /// `notification_read` from a socket: marked in the shard; every socket hears the new count.
    pub(super) async fn read_from_socket(&self, ws: &WebSocket, user_id: &str, frame: Frame) {
        let req = match MarkRead::parse(user_id, &Value::Object(frame.payload)) {
            Ok(r) => r,
            Err(f) => return send(ws, Outgoing::error(&f, frame.id, None)),
        };
        match mark_read(&self.env, &req).await {
            Ok(m) => self.tell_count(m.count),
            Err(_) => send(ws, Outgoing::error(&Failure::new(Code::Internal, "the inbox is unavailable; try again"), frame.id, None)),
        }
    }
}
