//! The room's sockets: connect (client_id claimed before the 101), each message through the
//! budget and the room, and the close; presence and stats hear of room changes after the answer.

use serde_json::json;
use worker::{Request, WebSocket, WebSocketIncomingMessage, WebSocketPair};

use super::host::{attachment_of, Attachment};
use super::metrics::REPORT_INTERVAL_MS;
use super::DocumentRoom;
use crate::geom::Rect;
use crate::model::{Actor, Session};
use crate::room::viewport::parse_viewport_query;
use crate::limits;
use crate::model::Effects;
use crate::protocol::{parse_frame, Code, Failure, Frame, Outgoing};
use crate::runtime::clock::{clock_ms, new_session_id, now_ms};
use crate::runtime::http::{ApiError, ApiResult};
use crate::runtime::sockets::{is_upgrade, probe_ok, too_many_connections};
use crate::runtime::log;
use crate::runtime::sockets::{close, send};

/// What a connect asks for: `?client_id=…&since=…&batch=1&viewport=x,y,w,h`, and the token's
/// `exp` (set by the Worker).
struct ConnectQuery {
    client_id: String,
    since: Option<u64>,
    batch: bool,
    viewport: Option<Rect>,
    exp: u64,
    plugin: bool,
}

fn connect_query(req: &Request) -> Result<ConnectQuery, ApiError> {
    let url = req.url()?;
    let get = |k: &str| url.query_pairs().find(|(key, _)| key == k).map(|(_, v)| v.into_owned());
    let client_id = get("client_id").ok_or_else(|| ApiError::bad_request("client_id is required"))?;
    let since = get("since").map(|v| v.parse::<u64>().map_err(|_| ApiError::bad_request("since must be a non-negative integer"))).transpose()?;
    let viewport = get("viewport").map(|v| parse_viewport_query(&v)).transpose()?;
    let exp = get("exp").and_then(|v| v.parse().ok()).unwrap_or(0);
    let plugin = get("dialect").as_deref() == Some("plugin");
    Ok(ConnectQuery { client_id, since, batch: get("batch").as_deref() == Some("1"), viewport, exp, plugin })
}

/// An in-band `auth` frame (§5.5 [1.2]); every other frame goes to the room.
fn auth_frame(text: &str) -> Option<Frame> {
    if !text.contains("\"auth\"") {
        return None;
    }
    parse_frame(text).ok().filter(|f| f.kind == "auth")
}

impl DocumentRoom {
    /// Every check of a connect, in the order a probe answers them (§5.5 [1.2]): the revocation
    /// and a private post's grant (403), the user's sockets here (429), the client_id (409).
    pub(super) async fn admit_socket(&self, actor: &Actor, me: &Session) -> Result<Effects, ApiError> {
        self.may_use(actor)?;
        let mine = self.host.sessions().iter().filter(|s| s.user_id == me.user_id).count();
        if !actor.is_service && mine >= limits::MAX_SOCKETS_PER_USER_DOC {
            return Err(too_many_connections(limits::MAX_SOCKETS_PER_USER_DOC, "on one document"));
        }
        // The client_id is checked before the socket is accepted; its first operation claims it.
        match self.host.with_room(|room, store| room.admit(me, now_ms(), store))? {
            Ok(effects) => Ok(effects),
            Err(f) => {
                self.host.metrics.refused_connection(f.code.as_str());
                self.report_soon().await;
                Err(f.into())
            }
        }
    }

    pub(super) async fn open_socket(&self, req: &Request, actor: Actor) -> ApiResult {
        if self.is_yjs() {
            return self.open_yjs_socket(req, actor).await;
        }
        let q = connect_query(req)?;
        let me = Session { session_id: new_session_id(), client_id: q.client_id, user_id: actor.user_id.clone(), name: actor.name.clone(), can_write: actor.can_write };
        let mut effects = self.admit_socket(&actor, &me).await?;
        if !is_upgrade(req) {
            return probe_ok();
        }
        let pair = WebSocketPair::new()?;
        let order = self.host.next_order();
        self.host.accept(&pair.server, &Attachment { session: me.clone(), viewport: q.viewport, batch: q.batch, exp: q.exp, plugin: q.plugin }, order)?;
        if let Some(due) = self.expiry_due(q.exp) {
            self.host.schedule_alarm(due).await;
        }
        let present = self.host.sessions();
        let connected = self.host.with_room(|room, store| {
            // A failed read only costs the replay: the socket gets the full state instead.
            if let Some(since) = q.since {
                let _ = room.ensure_log(since, store);
            }
            room.connect(&me, q.since, &present)
        })?;
        effects.to_sender = connected.to_sender;
        effects.to_others = connected.to_others;
        effects.follow_ups = connected.follow_ups;
        effects.writes.extend(connected.writes);
        if let Ok(follow) = self.host.commit_now(order, effects, Default::default(), (&pair.server, &me)) {
            self.schedule(follow).await;
        }
        self.report_room_change(&me.user_id);
        Ok(crate::runtime::sockets::upgraded_uncompressed(pair.client)?)
    }

    pub(super) async fn on_message(&self, ws: &WebSocket, message: WebSocketIncomingMessage) {
        let Some(att) = self.host.attachment(ws) else {
            let _ = ws.close(Some(close::UNAVAILABLE), Some("socket has no session"));
            return;
        };
        let me = att.session.clone();
        let text = match message {
            WebSocketIncomingMessage::String(s) => s,
            WebSocketIncomingMessage::Binary(frame) if self.is_yjs() => {
                return self.on_yjs_frame(ws, &me, frame).await;
            }
            WebSocketIncomingMessage::Binary(_) => {
                return send(ws, Outgoing::error(&Failure::bad("binary frames are not supported; send JSON text"), None, None));
            }
        };
        // One budget per (user, document), shared by the user's sockets here (§5.1 [1.2]).
        if !self.budgets.admit(ws, &me.user_id, &text) {
            return;
        }
        if let Some(frame) = auth_frame(&text) {
            return self.renew(ws, att, frame).await;
        }
        // A Yjs socket speaks binary; its text pings are the runtime's (§7).
        if self.is_yjs() {
            return;
        }
        let started = clock_ms();
        let present = self.host.sessions();
        match self.host.with_room(|room, store| room.on_frame(&me, &text, now_ms(), &present, store)) {
            // Stored strokes stream in the same step as the commit (a viewport, a sync).
            Ok(effects) if effects.follow_ups.stream.is_some() => {
                if let Ok(follow) = self.host.commit_now(self.host.next_order(), effects, Default::default(), (ws, &me)) {
                    self.schedule(follow).await;
                }
            }
            Ok(effects) => {
                self.commit(effects, Some(&me)).await;
            }
            Err(e) => send(ws, Outgoing::error(&Failure::new(Code::Internal, e.message), None, None)),
        }
        self.host.metrics.message(clock_ms() - started);
        self.report_soon().await;
    }

    pub(super) async fn on_close(&self, ws: &WebSocket, code: usize, clean: bool) {
        if let Some(me) = attachment_of(ws).map(|a| a.session) {
            let document_id = self.host.store().document_id().ok().flatten();
            log::event("close", &[
                ("document_id", json!(document_id)),
                ("user_id", json!(me.user_id)),
                ("client_id", json!(me.client_id)),
                ("code", json!(code)),
                ("clean", json!(clean)),
            ]);
        }
        self.drop_socket(ws).await;
        // Complete the closing handshake; the socket may already be gone.
        let _ = ws.close(Some(close::echo(code)), Some("closed"));
    }

    pub(super) async fn drop_socket(&self, ws: &WebSocket) {
        let Some(me) = attachment_of(ws).map(|a| a.session) else { return };
        self.host.remove_socket(&me.session_id);
        let remaining = self.host.sessions();
        if !remaining.iter().any(|s| s.user_id == me.user_id) {
            self.budgets.forget(&me.user_id);
            self.ybudgets.forget(&me.user_id);
        }
        if self.is_yjs() {
            self.close_yjs_socket(&me).await;
            return self.report_room_change(&me.user_id);
        }
        if let Ok(effects) = self.host.with_room(|room, _| room.disconnect(&me, &remaining)) {
            self.commit(effects, None).await;
        }
        self.report_room_change(&me.user_id);
    }

    /// Whether this is a `ydoc:` document (its sockets speak binary y-websocket frames).
    pub(super) fn is_yjs(&self) -> bool {
        self.host.is_yjs()
    }

    /// The alarm reports the tally once per interval.
    pub(super) async fn report_soon(&self) {
        if self.host.metrics.needs_alarm() {
            self.host.schedule_alarm(now_ms() + REPORT_INTERVAL_MS).await;
        }
    }
}
