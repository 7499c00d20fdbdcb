//! Live authorization (§5.5 [1.2]): who may use the document now, not only at connect. A
//! revocation refuses a user until a time and closes their sockets; a private post is seen only
//! with a grant on it (or by its owner or a service); a socket lives no longer than its token
//! (its `exp` is in the attachment, the alarm closes it), unless an in-band `auth` renews it.

use serde_json::{json, Value};
use worker::WebSocket;

use super::client::{Revoke, Revoked};
use super::host::Attachment;
use super::DocumentRoom;
use crate::auth::{verify, Access};
use crate::limits;
use crate::model::Actor;
use crate::protocol::{DocKind, Failure, Frame, Outgoing};
use crate::runtime::bindings;
use crate::runtime::clock::now_ms;
use crate::runtime::http::ApiError;
use crate::runtime::sockets::{close, expiry_due, send};

/// What an `auth` frame leads to.
enum Renewal {
    /// The socket goes: (close code, reason).
    Close(u16, &'static str),
    /// Answered with an error; the socket keeps its token.
    Refuse(Failure),
    Renewed { exp: u64, can_write: bool },
}

impl DocumentRoom {
    /// Refuses a revoked user (403 until `until`) and others on a private post (403).
    pub(super) fn may_use(&self, actor: &Actor) -> Result<(), ApiError> {
        if actor.is_service {
            return Ok(());
        }
        let store = self.host.store();
        if let Some(until) = store.revoked_until(&actor.user_id, now_ms())? {
            return Err(ApiError::forbidden(format!("access to this document is revoked until {until}"))
                .with_details(json!({"until": until})));
        }
        let document_id = store.document_id()?.unwrap_or_default();
        if DocKind::of(&document_id) != DocKind::Engagement || !self.is_private() || actor.post_grant {
            return Ok(());
        }
        if store.meta("owner_id")?.as_deref() == Some(actor.user_id.as_str()) {
            return Ok(());
        }
        Err(ApiError::forbidden("this post is private: it needs a read grant on it"))
    }

    /// A private post (§5.5 [1.2]).
    pub(super) fn is_private(&self) -> bool {
        self.host.store().meta("visibility").ok().flatten().as_deref() == Some("private")
    }

    /// `PUT /posts/{id}` `"visibility"`: a private post's counts leave KV at once and never return.
    pub(super) async fn set_visibility(&self, visibility: Option<&str>) -> Result<(), ApiError> {
        let Some(v) = visibility else { return Ok(()) };
        self.host.store().set_meta("visibility", v)?;
        if v == "private" {
            let document_id = self.host.store().document_id()?.unwrap_or_default();
            self.forget_cached_counts(&document_id).await;
        }
        Ok(())
    }

    /// Refuses the user until `until` and closes their sockets here with 4403.
    pub(super) fn revoke(&self, req: Revoke) -> Result<Revoked, ApiError> {
        let now = now_ms();
        let until = req.until.unwrap_or(now + limits::REVOKE_DEFAULT_MS);
        if until <= now {
            return Err(ApiError::bad_request("until must be in the future (ms since the epoch)"));
        }
        self.host.store().revoke(&req.user_id, until)?;
        self.host.with_peers(|peers| {
            for p in peers.iter().filter(|p| p.att.session.user_id == req.user_id) {
                let _ = p.ws.close(Some(close::FORBIDDEN), Some("revoked"));
            }
        });
        Ok(Revoked { user_id: req.user_id, until })
    }

    /// When a socket whose token expires at `exp` (seconds) must be gone.
    pub(super) fn expiry_due(&self, exp: u64) -> Option<u64> {
        expiry_due(&self.env, exp)
    }

    /// The alarm's duty: closes sockets past their token's expiry (4401); the next such time.
    pub(super) async fn expire_sockets(&self) -> Option<u64> {
        let now = now_ms();
        let mut next: Option<u64> = None;
        self.host.with_peers(|peers| {
            for p in peers.iter() {
                match self.expiry_due(p.att.exp) {
                    Some(due) if due <= now => {
                        let _ = p.ws.close(Some(close::TOKEN_EXPIRED), Some("token_expired"));
                    }
                    Some(due) => next = Some(next.map_or(due, |n| n.min(due))),
                    None => {}
                }
            }
        });
        next
    }

    /// An `auth` frame: a newer token of the same user renews the socket and its grants now.
    pub(super) async fn renew(&self, ws: &WebSocket, att: Attachment, frame: Frame) {
        match self.check_renewal(&att, &frame) {
            Renewal::Close(code, reason) => {
                let _ = ws.close(Some(code), Some(reason));
            }
            Renewal::Refuse(f) => send(ws, Outgoing::error(&f, frame.id, None)),
            Renewal::Renewed { exp, can_write } => {
                self.host.update_attachment(&att.session.session_id, |a| {
                    a.exp = exp;
                    a.session.can_write = can_write;
                });
                send(ws, Outgoing::reply("auth_ok", frame.id, json!({"exp": exp})));
                if let Some(due) = self.expiry_due(exp) {
                    self.host.schedule_alarm(due).await;
                }
            }
        }
    }

    fn check_renewal(&self, att: &Attachment, frame: &Frame) -> Renewal {
        let Some(token) = frame.payload.get("token").and_then(Value::as_str) else {
            return Renewal::Refuse(Failure::bad("auth needs {\"token\": \"<jwt>\"}"));
        };
        let Ok(who) = verify(token, &bindings::auth_config(&self.env), now_ms() / 1000) else {
            return Renewal::Close(close::TOKEN_EXPIRED, "invalid token");
        };
        if who.user_id != att.session.user_id {
            return Renewal::Close(close::TOKEN_EXPIRED, "token of another user");
        }
        if who.exp <= att.exp {
            return Renewal::Refuse(Failure::bad(format!("the new token must expire after the current one ({})", att.exp)));
        }
        let document_id = self.host.store().document_id().ok().flatten().unwrap_or_default();
        let access = who.access(&document_id);
        let actor = Actor {
            user_id: who.user_id.clone(),
            name: who.name.clone(),
            can_write: access == Some(Access::Write),
            is_service: who.is_service,
            post_grant: who.granted(&document_id).is_some(),
        };
        if access.is_none() || self.may_use(&actor).is_err() {
            return Renewal::Close(close::FORBIDDEN, "forbidden");
        }
        Renewal::Renewed { exp: who.exp, can_write: actor.can_write }
    }
}
