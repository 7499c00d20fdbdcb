//! The state machine of one document, free of any runtime types (like tldraw's TLSyncRoom).
//!
//! Every entry point takes the current state plus one input (a frame, a connect, a close, the
//! clock) and returns [`Effects`]: messages for the sender, messages for everybody else, and the
//! storage writes that must be durable before any of those messages leave. The Durable Object
//! shell persists the writes and delivers the messages; tests drive the same functions directly.
//! What differs between document kinds lives behind [`Document`].

mod any;
mod cache;
mod frames;
mod log;
mod sessions;
mod submit;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::doc::{Document, Span};
use crate::limits;
use crate::ot::canvas::Stroke;
use crate::ot::engagement::{CommentRecord, UserState};
use crate::protocol::Outgoing;

pub use any::{restore_room, AnyRoom};
pub use cache::BoundedMap;
pub use log::OpLog;
pub use submit::{Actor, OpRequest, Submitted};

/// A storage read: `Err` when storage failed (never to be taken as "absent").
pub type Found<T> = Result<Option<T>, String>;

/// Reads of per-client and per-user state the room keeps in storage rather than in memory, so
/// that waking never loads more than the snapshot and the log tail. Synchronous: the object's
/// SQLite answers in place.
pub trait Lookup {
    fn client(&self, client_id: &str) -> Found<ClientRecord>;
    fn engagement_user(&self, user_id: &str) -> Found<UserState>;
    fn comment(&self, comment_id: &str) -> Found<CommentRecord>;
}

/// For rooms that live only in memory (tests, benchmarks): nothing was stored before.
pub struct NoLookup;

impl Lookup for NoLookup {
    fn client(&self, _: &str) -> Found<ClientRecord> {
        Ok(None)
    }
    fn engagement_user(&self, _: &str) -> Found<UserState> {
        Ok(None)
    }
    fn comment(&self, _: &str) -> Found<CommentRecord> {
        Ok(None)
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

/// A storage write the shell must make durable before delivering the effects' messages.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Shared with the room's log: the entry is made once.
    AppendOp(std::rc::Rc<LogEntry>),
    PutClient(String, ClientRecord),
    Snapshot { version: u64, content: String },
    PutAwareness(String, AwarenessEntry),
    DeleteAwareness(String),
    PutTyping(String, TypingEntry),
    DeleteTyping(String),
    PutEngagementUser(String, UserState),
    PutComment(String, CommentRecord),
    PutStroke(String, Stroke),
    RemoveStroke(String),
    ClearStrokes,
    /// A notification for the post's owner, kept until their channel has it.
    QueueNotification(Notification),
}

/// An event for a user's personal channel; `event_id` makes delivery idempotent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub event_id: String,
    pub user_id: String,
    pub payload: Value,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effects {
    pub to_sender: Vec<Outgoing>,
    pub to_others: Vec<Outgoing>,
    pub writes: Vec<Write>,
}

impl Effects {
    fn reply(msg: Outgoing) -> Self {
        Effects { to_sender: vec![msg], ..Effects::default() }
    }
}

/// What storage holds for a room; the shell reads it on wake.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    /// This life of the document id (a deleted id that is reused gets a new one).
    pub incarnation: String,
    pub snapshot_version: u64,
    /// Text content, or the counters as JSON for a post.
    pub snapshot: String,
    pub owner: Option<String>,
    /// A canvas's strokes (its state lives in rows, current with every op).
    pub strokes: Vec<(String, Stroke)>,
    /// The retained log tail, in version order; it covers every version after the snapshot.
    pub tail: Vec<LogEntry>,
    pub awareness: Vec<(String, AwarenessEntry)>,
    pub typing: Vec<(String, TypingEntry)>,
}

pub struct Room<D: Document> {
    document_id: String,
    incarnation: String,
    doc: D,
    owner: Option<String>,
    version: u64,
    /// Operations and log bytes since the stored snapshot.
    since_snapshot: Span,
    log: OpLog<D::Cached>,
    /// Client records read from storage, kept current by this room's own writes.
    clients: BoundedMap<ClientRecord>,
    awareness: BTreeMap<String, AwarenessEntry>,
    typing: BTreeMap<String, TypingEntry>,
}

impl<D: Document> Room<D> {
    pub fn new(document_id: &str) -> Room<D> {
        Room::restore(document_id, Stored::default()).expect("an empty room always restores")
    }

    /// Rebuilds a room from its snapshot plus the log tail after it (never the whole history).
    pub fn restore(document_id: &str, mut stored: Stored) -> Result<Room<D>, String> {
        let doc = D::restore(&mut stored)?;
        let mut room = Room {
            document_id: document_id.to_string(),
            incarnation: std::mem::take(&mut stored.incarnation),
            doc,
            owner: stored.owner,
            version: stored.snapshot_version,
            since_snapshot: Span::default(),
            log: OpLog::default(),
            clients: BoundedMap::new(limits::CACHED_CLIENTS),
            awareness: stored.awareness.into_iter().collect(),
            typing: stored.typing.into_iter().collect(),
        };
        for entry in stored.tail {
            let cached = if entry.version > room.version {
                if entry.version != room.version + 1 {
                    return Err(format!("log is inconsistent at version {}", entry.version));
                }
                room.version = entry.version;
                room.since_snapshot.ops += 1;
                room.since_snapshot.bytes += entry.weight();
                room.doc.replay(&entry)?
            } else {
                D::cache(&entry)?
            };
            room.log.push(std::rc::Rc::new(entry), cached);
        }
        Ok(room)
    }

    pub fn document_id(&self) -> &str {
        &self.document_id
    }
    pub fn doc(&self) -> &D {
        &self.doc
    }
    pub fn version(&self) -> u64 {
        self.version
    }
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
    pub fn set_owner(&mut self, owner: Option<String>) {
        self.owner = owner;
    }
    pub fn retained_ops(&self) -> usize {
        self.log.len()
    }
    pub fn retained_bytes(&self) -> usize {
        self.log.bytes()
    }
    /// When the last operation was accepted (0: none retained).
    pub fn updated_at(&self) -> u64 {
        self.log.last().map_or(0, |e| e.server_timestamp)
    }
    /// Oldest version `v` such that every op after `v` is still held.
    pub fn oldest_replayable(&self) -> u64 {
        self.log.oldest_replayable(self.version)
    }

    /// Ops after `since`, if all are still held.
    pub fn ops_since(&self, since: u64) -> Option<impl Iterator<Item = &LogEntry>> {
        if since > self.version || since < self.oldest_replayable() {
            return None;
        }
        Some(self.log.after(since).map(|(e, _)| &**e))
    }

    /// The state as JSON text (`GET /documents/{id}`, `initial_state`).
    pub fn state_json(&self) -> String {
        serde_json::to_string(&StateOf(&self.doc)).unwrap_or_else(|_| "null".into())
    }
}

/// Serialises a document's state through [`Document::serialize_state`].
pub struct StateOf<'a, D: Document>(pub &'a D);

impl<D: Document> Serialize for StateOf<'_, D> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_state(s)
    }
}

pub type TextRoom = Room<crate::doc::TextDoc>;
pub type CanvasRoom = Room<crate::doc::CanvasDoc>;
pub type PostRoom = Room<crate::doc::PostDoc>;

impl TextRoom {
    pub fn content(&self) -> String {
        self.doc.text().unwrap_or_default()
    }
    pub fn len_chars(&self) -> usize {
        self.doc.len_chars()
    }
    pub fn len_bytes(&self) -> usize {
        self.doc.len_bytes()
    }
}

impl PostRoom {
    pub fn counts(&self) -> &crate::ot::engagement::Counts {
        self.doc.counts()
    }
}
