//! The vocabulary shared by the document kinds (`doc`) and the room (`room`): who acts, what a
//! log entry is, the storage writes and messages an event produces, and what the room reads back
//! from storage. It imports neither `doc` nor `room`, so the core has no cycle.

mod bounded_map;
mod oplog;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::geom::Rect;
use crate::ot::canvas::Stroke;
use crate::ot::canvas_index::StrokeRow;
use crate::ot::engagement::{CommentRecord, UserState};
use crate::protocol::Outgoing;

pub use bounded_map::BoundedMap;
pub use oplog::OpLog;

/// Who acts: the token's user and what they may do in this document. The Worker builds it after
/// authenticating and passes it to the objects; the room reads it on every submit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: String,
    pub name: String,
    pub can_write: bool,
    /// Service tokens may also moderate (remove others' comments).
    #[serde(default)]
    pub is_service: bool,
    /// The token grants read or write on this `post:` document itself (a private post needs it,
    /// §5.5 [1.2]); other documents ignore it.
    #[serde(default)]
    pub post_grant: bool,
}

impl Actor {
    /// An actor inside the system (reports between objects), never a client.
    pub fn system(name: &str) -> Actor {
        Actor { user_id: name.to_string(), name: name.to_string(), can_write: false, is_service: false, post_grant: false }
    }
}

/// One connected socket, as kept in its hibernation attachment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub client_id: String,
    pub user_id: String,
    pub name: String,
    pub can_write: bool,
}

impl Session {
    pub fn actor(&self) -> Actor {
        Actor { user_id: self.user_id.clone(), name: self.name.clone(), can_write: self.can_write, is_service: false, post_grant: false }
    }
}

/// One accepted operation as stored in the log and replayed to clients.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogEntry {
    pub version: u64,
    pub client_id: String,
    pub user_id: String,
    pub seq: u64,
    /// The client's own timestamp (or the server's when the client sent none).
    pub timestamp: u64,
    pub server_timestamp: u64,
    /// The version the client made the op against; it was transformed over the ops after it.
    pub base_version: u64,
    /// The op as applied, in the sequential wire form of its document kind, as JSON text.
    pub ops: Box<RawValue>,
    pub original_position: Option<usize>,
    #[serde(default)]
    pub transformed_position: Option<usize>,
}

impl PartialEq for LogEntry {
    fn eq(&self, o: &Self) -> bool {
        serde_json::to_string(self).ok() == serde_json::to_string(o).ok()
    }
}

impl LogEntry {
    pub fn operation_id(&self) -> String {
        format!("{}:{}", self.client_id, self.seq)
    }

    /// What the entry costs against the log's byte budget.
    pub fn weight(&self) -> usize {
        self.ops.get().len() + self.client_id.len() + self.user_id.len() + 96
    }

    /// Versions this op was transformed against.
    pub fn transformed_from(&self) -> std::ops::Range<u64> {
        self.base_version + 1..self.version
    }

    /// The `operation` / `sync_operation` message of this entry.
    pub fn broadcast(&self, kind: &'static str, document_id: &str, reply_to: Option<String>) -> Outgoing {
        #[derive(Serialize)]
        struct Payload<'a> {
            document_id: &'a str,
            version: u64,
            client_id: &'a str,
            user_id: &'a str,
            seq: u64,
            timestamp: u64,
            server_timestamp: u64,
            ops: &'a RawValue,
            original_position: Option<usize>,
            transformed_position: Option<usize>,
            #[serde(serialize_with = "versions")]
            transformed_from: std::ops::Range<u64>,
        }
        fn versions<S: serde::Serializer>(r: &std::ops::Range<u64>, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(r.clone())
        }
        Outgoing::reply(kind, reply_to, Payload {
            document_id,
            version: self.version,
            client_id: &self.client_id,
            user_id: &self.user_id,
            seq: self.seq,
            timestamp: self.timestamp,
            server_timestamp: self.server_timestamp,
            ops: &self.ops,
            original_position: self.original_position,
            transformed_position: self.transformed_position,
            transformed_from: self.transformed_from(),
        })
    }
}

/// A parsed `operation` payload with the kind-specific body `O` (`room::submit` parses it).
#[derive(Clone, Debug, PartialEq)]
pub struct OpRequest<O> {
    pub document_id: Option<String>,
    pub client_id: String,
    /// Absent only on HTTP: the server then takes the client's next seq.
    pub seq: Option<u64>,
    /// Absent on HTTP (and for posts, whose ops need no transform): the current version.
    pub version: Option<u64>,
    pub timestamp: Option<u64>,
    pub body: O,
}

/// What the room remembers of one client: who owns the id, its last seq, and where that seq's
/// op landed (None: it was a noop), so a repeat can be answered `duplicate`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The user the client_id belongs to in this document (empty in rows from before ownership).
    #[serde(default)]
    pub user_id: String,
    pub last_seq: u64,
    #[serde(default)]
    pub last_version: Option<u64>,
    /// When the client's last operation came (ms; 0 in rows from before v1.2): the claim lapses
    /// 30 days later (§5.1 [1.2]).
    #[serde(default)]
    pub last_used: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AwarenessEntry {
    pub client_id: String,
    pub user_id: String,
    pub state: Box<RawValue>,
}

impl PartialEq for AwarenessEntry {
    fn eq(&self, o: &Self) -> bool {
        self.client_id == o.client_id && self.user_id == o.user_id && self.state.get() == o.state.get()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypingEntry {
    pub user_id: String,
    pub name: String,
    pub deadline: u64,
}

/// An event for a user's personal channel; `event_id` makes delivery idempotent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub event_id: String,
    pub user_id: String,
    pub payload: Value,
}

/// A storage write the host must make durable before delivering the effects' messages.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Shared with the room's log: the entry is made once.
    AppendOp(std::rc::Rc<LogEntry>),
    PutClient(String, ClientRecord),
    Snapshot { version: u64, content: String },
    /// A binary snapshot (a Yjs document's state, §7): stored as BLOB rows, never as text.
    SnapshotBytes { version: u64, bytes: Vec<u8> },
    PutAwareness(String, AwarenessEntry),
    DeleteAwareness(String),
    PutTyping(String, TypingEntry),
    DeleteTyping(String),
    PutEngagementUser(String, UserState),
    PutComment(String, CommentRecord),
    PutStroke(String, Stroke),
    RemoveStroke(String),
    ClearStrokes,
    /// A notification for the post's owner, kept until their inbox has it.
    QueueNotification(Notification),
}

/// What the host schedules once the writes are durable: the room says what happened, so
/// nothing has to rediscover it by reading the writes again (tldraw's room events).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FollowUps {
    /// One entry per operation appended to the log: the versions it was transformed over (its
    /// sync lag). Appended operations are copied to D1 after a short delay.
    pub appended: Vec<u64>,
    /// A typing flag was set that expires at this time.
    pub typing_deadline: Option<u64>,
    /// The document's summary (a post's counts) changed: the cache is stale.
    pub counts_changed: bool,
    /// Owner notifications were queued in the outbox.
    pub notifications_queued: bool,
    /// Canvas: stroke data the host streams to the sender from storage, after `to_sender`
    /// (through `CanvasRoom::stream`), because it may be larger than the room's memory.
    pub stream: Option<StrokeStream>,
    /// Coalesced awareness: call the room's `tick_awareness` at this time (a timer, not an
    /// alarm: nothing is written for it).
    pub awareness_due: Option<u64>,
}

/// Stroke data a canvas socket must be sent from storage (§8).
#[derive(Clone, Debug, PartialEq)]
pub enum StrokeStream {
    /// Catching up (connect, or a `sync` older than the log): `initial_state` with the strokes
    /// in the socket's viewport, further pages as `strokes_in_view`, then `sync_status`.
    CatchUp { reply_to: Option<String> },
    /// The socket asked for viewport `to` (None: everything): the strokes that entered it, as
    /// `strokes_in_view`. The host keeps `to` as the socket's viewport from now on.
    Viewport { to: Option<Rect>, reply_to: Option<String> },
}

impl FollowUps {
    pub fn merge(&mut self, o: FollowUps) {
        self.appended.extend(o.appended);
        self.typing_deadline = match (self.typing_deadline, o.typing_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.counts_changed |= o.counts_changed;
        self.notifications_queued |= o.notifications_queued;
        self.stream = o.stream.or(self.stream.take());
        self.awareness_due = match (self.awareness_due, o.awareness_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// The outcome of one event in a room: messages for the sender and for everybody else, the
/// writes that must be durable before any of them leave, and what to schedule after.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effects {
    pub to_sender: Vec<Outgoing>,
    pub to_others: Vec<Outgoing>,
    pub writes: Vec<Write>,
    pub follow_ups: FollowUps,
}

impl Effects {
    pub fn reply(msg: Outgoing) -> Self {
        Effects { to_sender: vec![msg], ..Effects::default() }
    }
}

/// What storage holds for a room, read when it wakes: the snapshot and the log tail after it,
/// never the whole history.
#[derive(Clone, Debug, Default)]
pub struct SavedRoom {
    /// This life of the document id (a deleted id that is reused gets a new one).
    pub incarnation: String,
    pub snapshot_version: u64,
    /// Text content, or the counters as JSON for a post.
    pub snapshot: String,
    /// A binary snapshot (Yjs), when the last one was written as bytes.
    pub snapshot_bytes: Vec<u8>,
    pub owner: Option<String>,
    /// A canvas's index rows, one per stroke (its state lives in rows, current with every op);
    /// never the stroke data, which is read through [`Lookup::strokes`] when needed.
    pub stroke_rows: Vec<StrokeRow>,
    /// The retained log tail, in version order; it covers every version after the snapshot.
    pub tail: Vec<LogEntry>,
    /// Storage also holds every operation after this version older than `tail`: a woken room
    /// reads them ([`Lookup::log_entries`]) only when a client needs them (None: nothing more).
    pub retained_after: Option<u64>,
    pub awareness: Vec<(String, AwarenessEntry)>,
    pub typing: Vec<(String, TypingEntry)>,
}

impl SavedRoom {
    /// Keeps the awareness and typing rows of live sockets only: a socket that vanished while
    /// the room was away (hibernation, restart) must not show its cursor or typing flag.
    /// Yjs awareness rows are keyed `{session_id}|{yjs client}` (a socket may own several).
    pub fn retain_live(&mut self, live: &[&str]) {
        self.awareness.retain(|(key, _)| live.contains(&key.split('|').next().unwrap_or(key)));
        self.typing.retain(|(sid, _)| live.contains(&sid.as_str()));
    }
}

/// Operations and log bytes since the last snapshot.
#[derive(Clone, Copy, Debug, Default)]
pub struct SinceSnapshot {
    pub ops: u64,
    pub bytes: usize,
}

/// A storage read: `Err` when storage failed (never to be taken as "absent").
pub type StoreRead<T> = Result<Option<T>, String>;

/// Reads of per-client and per-user state the room keeps in storage rather than in memory, so
/// that waking never loads more than the snapshot and the log tail. Synchronous: the object's
/// SQLite answers in place.
pub trait Lookup {
    fn client(&self, client_id: &str) -> StoreRead<ClientRecord>;
    fn engagement_user(&self, user_id: &str) -> StoreRead<UserState>;
    fn comment(&self, comment_id: &str) -> StoreRead<CommentRecord>;

    /// The logged operations with versions in (`after`, `upto`], oldest first (whichever of them
    /// storage still holds), only the newest that fit in `budget` bytes.
    fn log_entries(&self, _after: u64, _upto: u64, _budget: usize) -> Result<Vec<LogEntry>, String> {
        Ok(Vec::new())
    }

    /// Canvas: calls `each(stroke_id, data_json)` for each listed stroke that exists (the data
    /// exactly as last written by `Write::PutStroke`), in any order. `ids` hold at most [`crate::limits::STROKE_READ_IDS`] ids, so one `IN (…)` query fits SQLite's
    /// bound-parameter limit. One row at a time keeps memory flat.
    fn strokes(&self, _ids: &[&str], _each: &mut dyn FnMut(&str, &str)) -> Result<(), String> {
        Err("this store holds no stroke data".into())
    }
}

/// For rooms that live only in memory (tests, benchmarks): nothing was stored before.
pub struct NoLookup;

impl Lookup for NoLookup {
    fn client(&self, _: &str) -> StoreRead<ClientRecord> {
        Ok(None)
    }
    fn engagement_user(&self, _: &str) -> StoreRead<UserState> {
        Ok(None)
    }
    fn comment(&self, _: &str) -> StoreRead<CommentRecord> {
        Ok(None)
    }
    fn strokes(&self, _: &[&str], _: &mut dyn FnMut(&str, &str)) -> Result<(), String> {
        Ok(())
    }
}
