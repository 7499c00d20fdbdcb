//! The runtime side of one room (tldraw's TLSocketRoom around the pure TLSyncRoom): the room
//! rebuilt lazily from storage, the room's sockets decoded once per wake, the queue of events
//! waiting for the next commit (`group_commit.rs`) and the alarm time.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use worker::{State, WebSocket};

use super::metrics::RoomMetrics;
use super::storage::RoomStore;
use crate::dialect::{self, Dialect};
use crate::geom::Rect;
use crate::model::{Effects, Session};
use crate::protocol::{DocKind, Outgoing};
use crate::room::viewport::Announcer;
use crate::room::{restore_room, DynRoom};
use crate::runtime::clock::{frame_id, now_ms};
use crate::runtime::http::ApiError;
use crate::runtime::sockets::SharedFrame;
use crate::runtime::sql_worker::ObjectSql;

/// What a socket keeps in its hibernation attachment: its session, plus how it is served.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attachment {
    #[serde(flatten)]
    pub session: Session,
    /// Canvas: the socket's viewport (None: everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewport: Option<Rect>,
    /// `?batch=1`: operations come as `operations` frames (§9).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
    /// The token's `exp` (seconds; 0: none): the alarm closes the socket after it (§5.5 [1.2]).
    #[serde(default)]
    pub exp: u64,
    /// `?dialect=plugin` (§6.1 [1.2]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plugin: bool,
}

impl Attachment {
    pub fn dialect(&self) -> Dialect {
        if self.plugin {
            Dialect::Plugin
        } else {
            Dialect::V1
        }
    }
}

/// A socket of the room.
pub struct Peer {
    pub ws: WebSocket,
    pub att: Attachment,
    /// The order of the event that connected it (0: connected before this wake).
    pub since: u64,
}

/// An event waiting for the commit: its effects, who sent it, and who waits for the outcome.
pub struct Pending {
    pub order: u64,
    pub sender: Option<Session>,
    pub effects: Effects,
    /// A Yjs event's binary frames.
    pub frames: super::delivery::YFrames,
    pub done: Option<futures_channel::oneshot::Sender<Result<crate::model::FollowUps, String>>>,
}

pub struct RoomHost {
    state: State,
    /// What the room handled, for the metrics.
    pub metrics: RoomMetrics,
    store: RoomStore<ObjectSql>,
    room: RefCell<Option<Box<dyn DynRoom>>>,
    peers: RefCell<Option<Vec<Peer>>>,
    /// The peers' sessions, shared by every message until a socket comes or goes.
    sessions: RefCell<Option<Rc<Vec<Session>>>>,
    /// The alarm time we know is set, so the hot path rarely asks storage.
    alarm_at: Cell<Option<u64>>,
    /// The last version known copied to D1 (read once per wake; it only times the next flush).
    pub(super) flushed_hint: Cell<Option<u64>>,
    /// Events applied in memory, waiting for the next commit, in arrival order.
    pub(super) queue: RefCell<Vec<Pending>>,
    /// A commit is being made durable: new events wait for the next one.
    pub(super) committing: Cell<bool>,
    order: Cell<u64>,
    /// Canvas: versions sockets skipped, announced at most once a second.
    pub(super) announcer: RefCell<Announcer>,
    /// The earliest in-memory timer due (awareness relays, version announcements, held counts),
    /// and whether a handler is already waiting for timers.
    timer_due: Cell<Option<u64>>,
    pub(super) timers_running: Cell<bool>,
    /// The latest `engagement_update` held back by the 100 ms coalescing, and when one last left.
    pub(super) held_counts: RefCell<Option<Outgoing>>,
    pub(super) counts_sent_at: Cell<u64>,
    /// When the room last renewed its presence and stats reports (`reports.rs`).
    pub(super) reports_renewed_at: Cell<u64>,
    /// The KV counts are known stale (a cache write is scheduled); a post's counts.
    pub(super) kv_dirty: Cell<bool>,
    /// An owner-outbox delivery is running; another was asked for meanwhile.
    pub(super) outbox_busy: Cell<bool>,
    pub(super) outbox_again: Cell<bool>,
    /// Who sent the recent events (hashes of session ids): how long to gather a batch.
    pub(super) recent_senders: RefCell<std::collections::VecDeque<u64>>,
    /// Whether the document is a `ydoc:` one, once its id is known: an object's id never changes
    /// kind, so every message and broadcast need not read it from storage.
    yjs: Cell<Option<bool>>,
}

impl RoomHost {
    pub fn new(state: State) -> Self {
        let store = RoomStore::new(ObjectSql::new(state.storage()));
        if let Err(e) = store.ensure_schema() {
            crate::runtime::log::error("schema", e, &[("object", "document".into())]);
        }
        RoomHost {
            state,
            metrics: RoomMetrics::default(),
            store,
            room: RefCell::new(None),
            peers: RefCell::new(None),
            sessions: RefCell::new(None),
            alarm_at: Cell::new(None),
            flushed_hint: Cell::new(None),
            queue: RefCell::new(Vec::new()),
            committing: Cell::new(false),
            order: Cell::new(0),
            announcer: RefCell::new(Announcer::default()),
            timer_due: Cell::new(None),
            timers_running: Cell::new(false),
            held_counts: RefCell::new(None),
            counts_sent_at: Cell::new(0),
            reports_renewed_at: Cell::new(0),
            kv_dirty: Cell::new(false),
            outbox_busy: Cell::new(false),
            outbox_again: Cell::new(false),
            recent_senders: RefCell::new(std::collections::VecDeque::with_capacity(64)),
            yjs: Cell::new(None),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn store(&self) -> &RoomStore<ObjectSql> {
        &self.store
    }

    /// The next event's place in arrival order.
    pub fn next_order(&self) -> u64 {
        self.order.set(self.order.get() + 1);
        self.order.get()
    }

    /// Runs `f` on the room, loading it from storage first if this instance has none.
    pub fn with_room<T>(&self, f: impl FnOnce(&mut dyn DynRoom, &RoomStore<ObjectSql>) -> T) -> Result<T, ApiError> {
        let mut slot = self.room.borrow_mut();
        if slot.is_none() {
            let document_id = self.store.document_id()?.ok_or_else(|| ApiError::internal("room has no document id"))?;
            let mut saved = self.store.load()?;
            let sessions = self.sessions();
            saved.retain_live(&sessions.iter().map(|s| s.session_id.as_str()).collect::<Vec<_>>());
            let mut room = restore_room(&document_id, saved).map_err(ApiError::internal)?;
            // Cursors are relayed every 50 ms at most and never stored per frame (§8); the
            // host's timers (`timers.rs`) deliver what the room holds back.
            room.coalesce_awareness(true);
            *slot = Some(room);
        }
        let room = slot.as_mut().ok_or_else(|| ApiError::internal("room missing"))?;
        Ok(f(room.as_mut(), &self.store))
    }

    /// Forgets the in-memory room: it ran ahead of storage (a failed commit); the next event
    /// rebuilds it from what is durable.
    pub fn drop_room(&self) {
        *self.room.borrow_mut() = None;
    }

    /// Forgets everything in memory (the document was deleted).
    pub fn forget(&self) {
        self.drop_room();
        *self.peers.borrow_mut() = None;
        *self.sessions.borrow_mut() = None;
        self.queue.borrow_mut().clear();
        self.alarm_at.set(None);
    }

    fn ensure_peers(&self) {
        if self.peers.borrow().is_some() {
            return;
        }
        let all = self.state.get_websockets().into_iter().filter_map(|ws| attachment_of(&ws).map(|att| Peer { ws, att, since: 0 })).collect();
        *self.peers.borrow_mut() = Some(all);
    }

    /// Runs `f` on the room's sockets.
    pub fn with_peers<T>(&self, f: impl FnOnce(&mut Vec<Peer>) -> T) -> T {
        self.ensure_peers();
        let mut peers = self.peers.borrow_mut();
        f(peers.get_or_insert_with(Vec::new))
    }

    /// Sessions of every socket in the room.
    pub fn sessions(&self) -> Rc<Vec<Session>> {
        if let Some(s) = self.sessions.borrow().as_ref() {
            return s.clone();
        }
        let s = Rc::new(self.with_peers(|p| p.iter().map(|p| p.att.session.clone()).collect::<Vec<_>>()));
        *self.sessions.borrow_mut() = Some(s.clone());
        s
    }

    pub fn socket_count(&self) -> usize {
        self.with_peers(|p| p.len())
    }

    /// Accepts a socket into the hibernation API; `since` is the order of its connect event.
    pub fn accept(&self, ws: &WebSocket, att: &Attachment, since: u64) -> worker::Result<()> {
        self.state.accept_web_socket(ws);
        ws.serialize_attachment(att)?;
        self.with_peers(|p| p.push(Peer { ws: ws.clone(), att: att.clone(), since }));
        *self.sessions.borrow_mut() = None;
        Ok(())
    }

    pub fn remove_socket(&self, session_id: &str) {
        self.with_peers(|p| p.retain(|p| p.att.session.session_id != session_id));
        *self.sessions.borrow_mut() = None;
        self.announcer.borrow_mut().forget(session_id);
    }

    /// Keeps a socket's new viewport in memory and in its attachment.
    pub fn set_viewport(&self, session_id: &str, viewport: Option<Rect>) {
        self.update_attachment(session_id, |a| a.viewport = viewport);
    }

    /// Changes a socket's attachment in memory and in the runtime (a new viewport, a renewed token).
    pub fn update_attachment(&self, session_id: &str, f: impl FnOnce(&mut Attachment)) {
        self.with_peers(|peers| {
            if let Some(p) = peers.iter_mut().find(|p| p.att.session.session_id == session_id) {
                f(&mut p.att);
                let _ = p.ws.serialize_attachment(&p.att);
            }
        });
        *self.sessions.borrow_mut() = None;
    }

    /// Whether this is a `ydoc:` document (§7: its sockets take binary frames only).
    pub fn is_yjs(&self) -> bool {
        if let Some(known) = self.yjs.get() {
            return known;
        }
        let Some(id) = self.store.document_id().ok().flatten() else { return false };
        let yjs = DocKind::is_yjs(&id);
        self.yjs.set(Some(yjs));
        yjs
    }

    /// Sends one message to every socket of the room now (room events, presence); a Yjs
    /// room's sockets understand no JSON frames and get none.
    pub fn broadcast(&self, m: Outgoing) {
        if self.is_yjs() {
            return;
        }
        let (id, now) = (frame_id(), now_ms());
        let mut frames: [Option<SharedFrame>; 2] = [None, None];
        self.with_peers(|p| p.iter().for_each(|p| {
            let d = p.att.dialect();
            frames[d.is_plugin() as usize].get_or_insert_with(|| SharedFrame::new(&dialect::frame(&m, d, &id, now))).send(&p.ws);
        }));
    }

    /// Makes sure an alarm fires no later than `at` (epoch ms).
    pub async fn schedule_alarm(&self, at: u64) {
        if self.alarm_at.get().is_some_and(|t| t <= at) {
            return;
        }
        let storage = self.state.storage();
        if let Ok(Some(t)) = storage.get_alarm().await {
            if (t as u64) <= at && (t as u64) > now_ms() {
                self.alarm_at.set(Some(t as u64));
                return;
            }
        }
        let delay = at.saturating_sub(now_ms());
        if storage.set_alarm(Duration::from_millis(delay)).await.is_ok() {
            self.alarm_at.set(Some(at));
        }
    }

    /// Asks for the in-memory timers to run at `at` (the earliest asked wins).
    pub fn timer_at(&self, at: u64) {
        self.timer_due.set(Some(self.timer_due.get().map_or(at, |t| t.min(at))));
    }

    pub fn timer_pending(&self) -> bool {
        self.timer_due.get().is_some()
    }

    /// The timer time, if one is due; cleared.
    pub fn take_timer(&self) -> Option<u64> {
        self.timer_due.take()
    }

    /// The alarm fired (or was deleted): nothing is known to be set.
    pub fn alarm_cleared(&self) {
        self.alarm_at.set(None);
    }
}

impl RoomHost {
    /// The attachment of `ws`: the loaded peer's copy when there is one (comparing sockets costs
    /// less than decoding an attachment on every message), else decoded from the runtime.
    pub fn attachment(&self, ws: &WebSocket) -> Option<Attachment> {
        let target = js_socket(ws);
        let known = self.peers.borrow().as_ref().and_then(|peers| peers.iter().find(|p| js_socket(&p.ws) == target).map(|p| p.att.clone()));
        known.or_else(|| attachment_of(ws))
    }
}

fn js_socket(ws: &WebSocket) -> &wasm_bindgen::JsValue {
    let raw: &worker::web_sys::WebSocket = ws.as_ref();
    raw.as_ref()
}

/// The attachment of `ws` as the runtime keeps it.
pub fn attachment_of(ws: &WebSocket) -> Option<Attachment> {
    ws.deserialize_attachment::<Attachment>().ok().flatten()
}
