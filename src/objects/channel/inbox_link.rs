//! The channel's link to its user's inbox shard (§4.8): it registers its sockets there (attach
//! on every connect, detach when the last one closes), hands each socket what was kept while
//! none was open, pushes what the shard sends once per event id, and keeps the unread count its
//! sockets were last told.

use serde_json::{json, Value};
use worker::{Env, WebSocket};

use super::client::{PushNotification, PushTaken};
use super::storage::Count;
use super::UserChannel;
use crate::objects::inbox_shard::client::{call_for, Attach, Detach, HandedOver, MarkRead, MarkedRead};
use crate::protocol::{Code, Failure, Frame, Outgoing};
use crate::runtime::clock::{frame_id, now_ms};
use crate::runtime::http::ApiError;
use crate::runtime::log;
use crate::runtime::sockets::{close, send, send_text};

fn count_frame(c: Count) -> Outgoing {
    Outgoing::new("notification_count", json!({ "unread": c.unread }))
}

/// Sends a kept item (and, for an activity, its timeline update) to one socket; false when the
/// socket could not take it.
fn send_item(ws: &WebSocket, item: &Value) -> bool {
    let taken = send_text(ws, &Outgoing::new("notification", item).into_frame(&frame_id(), now_ms()));
    if taken && item["kind"] == "activity" {
        send(ws, Outgoing::new("activity_update", item));
    }
    taken
}

/// Marks events read in `user_id`'s inbox shard; the caller tells the sockets the new count.
pub async fn mark_read(env: &Env, req: &MarkRead) -> Result<MarkedRead, ApiError> {
    call_for(env, &req.user_id, req).await
}

impl UserChannel {
    /// A socket opened: after the 101, tell the shard the user is online and hand this socket
    /// what was kept, then the unread count.
    pub(super) fn attach(&self, ws: &WebSocket, user_id: &str) -> worker::Result<()> {
        let generation = self.store.next_generation()?;
        let (env, ws, user_id) = (self.env.clone(), ws.clone(), user_id.to_string());
        let store = super::storage::ChannelStore::new(self.store.sql().clone());
        self.state.wait_until(async move {
            super::legacy_inbox::hand_over(&env, &store, &user_id).await;
            let attached = match call_for(&env, &user_id, &Attach { user_id: user_id.clone(), generation }).await {
                Ok(a) => a,
                Err(e) => {
                    // Without the shard's registration this socket would get no pushes: close
                    // it, so the client reconnects (with backoff) and registers again.
                    log::error("inbox_attach", e.message, &[("user_id", user_id.as_str().into())]);
                    let _ = ws.close(Some(close::UNAVAILABLE), Some("the inbox is unavailable; reconnect"));
                    return;
                }
            };
            // Hand the socket what no socket has had yet; confirm to the shard only what it took.
            let mut handed: Vec<String> = Vec::new();
            for item in &attached.items {
                let Some(id) = item["event_id"].as_str() else { continue };
                let seen_before = store.mark_seen(id).map(|fresh| !fresh).unwrap_or(false);
                if seen_before || send_item(&ws, item) {
                    handed.push(id.to_string());
                } else {
                    let _ = store.unsee(id);
                }
            }
            if !handed.is_empty() {
                if let Err(e) = call_for(&env, &user_id, &HandedOver { user_id: user_id.clone(), event_ids: handed }).await {
                    log::error("inbox_handed_over", e.message, &[("user_id", user_id.as_str().into())]);
                }
            }
            if let Ok(count) = store.newest_count(attached.count) {
                send(&ws, count_frame(count));
            }
        });
        Ok(())
    }

    /// The last socket closed: the user is offline for deliveries (unless a newer connect came).
    pub(super) fn detach(&self, user_id: &str) {
        let generation = self.store.generation().unwrap_or(0);
        let (env, user_id) = (self.env.clone(), user_id.to_string());
        self.state.wait_until(async move {
            if let Err(e) = call_for(&env, &user_id, &Detach { user_id: user_id.clone(), generation }).await {
                log::error("inbox_detach", e.message, &[("user_id", user_id.as_str().into())]);
            }
        });
    }

    /// A push from the shard: to every socket, once per event id. 410 when no socket is open,
    /// so the shard keeps it for the next connect.
    pub(super) fn receive(&self, push: &PushNotification) -> Result<PushTaken, ApiError> {
        let sockets = self.state.get_websockets();
        if sockets.is_empty() {
            return Err(ApiError::new(410, "gone", "no socket is open"));
        }
        let event_id = push.item["event_id"].as_str().unwrap_or_default();
        let fresh = self.store.mark_seen(event_id)?;
        if fresh {
            sockets.iter().for_each(|ws| {
                send_item(ws, &push.item);
            });
        }
        self.tell_count(push.count);
        Ok(PushTaken { status: if fresh { "delivered" } else { "duplicate" }.into() })
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
