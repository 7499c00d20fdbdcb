//! Live authorization on the personal channel (§5.5 [1.2]): a socket lives no longer than its
//! token. The token's `exp` is in the socket's attachment; the channel's alarm closes sockets past
//! it with 4401 `token_expired`; an in-band `auth` with a later token of the same user renews it.

use std::time::Duration;

use serde_json::{json, Value};
use worker::WebSocket;

use super::object::ChannelSession;
use super::UserChannel;
use crate::auth::verify;
use crate::protocol::{Failure, Frame, Outgoing};
use crate::runtime::bindings;
use crate::runtime::clock::now_ms;
use crate::runtime::sockets::{close, expiry_due, send};

impl UserChannel {
    /// Makes sure the alarm fires by the time a socket with this `exp` must be gone.
    pub(super) async fn arm_expiry(&self, exp: u64) {
        if let Some(due) = expiry_due(&self.env, exp) {
            self.alarm_by(due).await;
        }
    }

    /// Sets the alarm to `due` unless one is set earlier (presence lapses share it).
    async fn alarm_by(&self, due: u64) {
        let storage = self.state.storage();
        if let Ok(Some(t)) = storage.get_alarm().await {
            if (t as u64) <= due && (t as u64) > now_ms() {
                return;
            }
        }
        let _ = storage.set_alarm(Duration::from_millis(due.saturating_sub(now_ms()))).await;
    }

    /// The alarm: closes the sockets whose token expired; the next alarm for the others.
    pub(super) async fn expire_sockets(&self) {
        let now = now_ms();
        let mut next: Option<u64> = None;
        for ws in self.state.get_websockets() {
            let Some(me) = ws.deserialize_attachment::<ChannelSession>().ok().flatten() else { continue };
            match expiry_due(&self.env, me.exp) {
                Some(due) if due <= now => {
                    let _ = ws.close(Some(close::TOKEN_EXPIRED), Some("token_expired"));
                }
                Some(due) => next = Some(next.map_or(due, |n| n.min(due))),
                None => {}
            }
        }
        if let Some(due) = next {
            self.alarm_by(due).await;
        }
    }

    /// `auth` `{"token"}`: the same user's later token renews the socket; another user's, or an
    /// invalid one, closes it with 4401.
    pub(super) async fn renew(&self, ws: &WebSocket, mut me: ChannelSession, frame: Frame) {
        let Some(token) = frame.payload.get("token").and_then(Value::as_str) else {
            return send(ws, Outgoing::error(&Failure::bad("auth needs {\"token\": \"<jwt>\"}"), frame.id, None));
        };
        let who = match verify(token, &bindings::auth_config(&self.env), now_ms() / 1000) {
            Ok(who) if who.user_id == me.user_id => who,
            _ => {
                let _ = ws.close(Some(close::TOKEN_EXPIRED), Some("invalid token"));
                return;
            }
        };
        if who.exp <= me.exp {
            let f = Failure::bad(format!("the new token must expire after the current one ({})", me.exp));
            return send(ws, Outgoing::error(&f, frame.id, None));
        }
        me.exp = who.exp;
        let _ = ws.serialize_attachment(&me);
        send(ws, Outgoing::reply("auth_ok", frame.id, json!({"exp": who.exp})));
        self.arm_expiry(who.exp).await;
    }
}
