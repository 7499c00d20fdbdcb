//! The room's sockets: connect (client_id claimed before the 101), each message through the
//! budget and the room, and the close; presence and stats hear of room changes after the answer.

use serde_json::json;
use worker::{Request, Response, WebSocket, WebSocketIncomingMessage, WebSocketPair};

use super::host::{attachment_of, Attachment};
use super::metrics::REPORT_INTERVAL_MS;
use super::DocumentRoom;
use crate::geom::Rect;
use crate::model::{Actor, Session};
use crate::room::viewport::parse_viewport_query;
use crate::protocol::{Code, Failure, Outgoing};
use crate::runtime::clock::{clock_ms, new_session_id, now_ms};
use crate::runtime::http::{ApiError, ApiResult};
use crate::runtime::log;
use crate::runtime::sockets::{close, send};

/// What a connect asks for: `?client_id=…&since=…&batch=1&viewport=x,y,w,h`.
struct ConnectQuery {
    client_id: String,
    since: Option<u64>,
    batch: bool,
    viewport: Option<Rect>,
}

fn connect_query(req: &Request) -> Result<ConnectQuery, ApiError> {
    let url = req.url()?;
    let get = |k: &str| url.query_pairs().find(|(key, _)| key == k).map(|(_, v)| v.into_owned());
    let client_id = get("client_id").ok_or_else(|| ApiError::bad_request("client_id is required"))?;
    let since = get("since").map(|v| v.parse::<u64>().map_err(|_| ApiError::bad_request("since must be a non-negative integer"))).transpose()?;
    let viewport = get("viewport").map(|v| parse_viewport_query(&v)).transpose()?;
    Ok(ConnectQuery { client_id, since, batch: get("batch").as_deref() == Some("1"), viewport })
}

impl DocumentRoom {
    pub(super) async fn open_socket(&self, req: &Request, actor: Actor) -> ApiResult {
        let q = connect_query(req)?;
        let me = Session { session_id: new_session_id(), client_id: q.client_id, user_id: actor.user_id, name: actor.name, can_write: actor.can_write };
        // The client_id is checked and claimed before the socket is accepted (§1 [1.1]).
        let mut effects = match self.host.with_room(|room, store| room.admit(&me, store))? {
            Ok(effects) => effects,
            Err(f) => {
                self.host.metrics.refused_connection(f.code.as_str());
                self.report_soon().await;
                return Err(f.into());
            }
        };
        let pair = WebSocketPair::new()?;
        let order = self.host.next_order();
        self.host.accept(&pair.server, &Attachment { session: me.clone(), viewport: q.viewport, batch: q.batch }, order)?;
        let present = self.host.sessions();
        let connected = self.host.with_room(|room, _| room.connect(&me, q.since, &present))?;
        effects.to_sender = connected.to_sender;
        effects.to_others = connected.to_others;
        effects.follow_ups = connected.follow_ups;
        effects.writes.extend(connected.writes);
        if let Ok(follow) = self.host.commit_now(order, effects, (&pair.server, &me)) {
            self.schedule(follow).await;
        }
        self.report_room_change(&me.user_id);
        Ok(Response::from_websocket(pair.client)?)
    }

    pub(super) async fn on_message(&self, ws: &WebSocket, message: WebSocketIncomingMessage) {
        let Some(me) = attachment_of(ws).map(|a| a.session) else {
            let _ = ws.close(Some(close::UNAVAILABLE), Some("socket has no session"));
            return;
        };
        let text = match message {
            WebSocketIncomingMessage::String(s) => s,
            WebSocketIncomingMessage::Binary(_) => {
                return send(ws, Outgoing::error(&Failure::bad("binary frames are not supported; send JSON text"), None, None));
            }
        };
        if !self.budgets.admit(ws, &me.session_id, &text) {
            return;
        }
        let started = clock_ms();
        let present = self.host.sessions();
        match self.host.with_room(|room, store| room.on_frame(&me, &text, now_ms(), &present, store)) {
            // Stored strokes stream in the same step as the commit (a viewport, a sync).
            Ok(effects) if effects.follow_ups.stream.is_some() => {
                if let Ok(follow) = self.host.commit_now(self.host.next_order(), effects, (ws, &me)) {
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
        self.budgets.forget(&me.session_id);
        self.host.remove_socket(&me.session_id);
        let remaining = self.host.sessions();
        if let Ok(effects) = self.host.with_room(|room, _| room.disconnect(&me, &remaining)) {
            self.commit(effects, None).await;
        }
        self.report_room_change(&me.user_id);
    }

    /// The alarm reports the tally once per interval.
    async fn report_soon(&self) {
        if self.host.metrics.needs_alarm() {
            self.host.schedule_alarm(now_ms() + REPORT_INTERVAL_MS).await;
        }
    }
}
