//! The state machine of one text document, free of any runtime types.
//!
//! Every entry point takes the current state plus one input (a frame, a connect, a close, the
//! clock) and returns [`Effects`]: messages for the sender, messages for everybody else, and the
//! storage writes that must be durable before any of those messages leave. The Durable Object
//! shell persists the writes and delivers the messages; tests drive the same functions directly.

mod engagement;
mod frames;
mod sessions;
mod submit;

use std::collections::{BTreeMap, HashMap, VecDeque};

use ropey::Rope;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::limits;
use crate::ot::canvas::{self, Canvas, Stroke};
use crate::ot::engagement::{CommentRecord, Counts, UserState};
use crate::ot::text::{TextOp, TextPrimitive};
use crate::protocol::{DocKind, Outgoing};

pub use submit::{Actor, OpBody, OpRequest, Submitted};

/// Reads of per-client and per-user state the room keeps in storage rather than in memory, so
/// that waking never loads more than the snapshot and the log tail. Synchronous: the object's
/// SQLite answers in place.
pub trait Lookup {
    fn client(&self, client_id: &str) -> Option<ClientRecord>;
    fn engagement_user(&self, user_id: &str) -> Option<UserState>;
    fn comment(&self, comment_id: &str) -> Option<CommentRecord>;
}

/// For rooms that live only in memory (tests, benchmarks): nothing was stored before.
pub struct NoLookup;

impl Lookup for NoLookup {
    fn client(&self, _: &str) -> Option<ClientRecord> {
        None
    }
    fn engagement_user(&self, _: &str) -> Option<UserState> {
        None
    }
    fn comment(&self, _: &str) -> Option<CommentRecord> {
        None
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The op as applied, in the sequential wire form of its document kind.
    pub ops: Value,
    pub original_position: Option<usize>,
}

impl LogEntry {
    pub fn operation_id(&self) -> String {
        format!("{}:{}", self.client_id, self.seq)
    }

    pub fn transformed_position(&self) -> Option<usize> {
        self.ops.get(0).and_then(|p| p.get("position")).and_then(Value::as_u64).map(|p| p as usize)
    }

    /// Versions this op was transformed against.
    pub fn transformed_from(&self) -> Vec<u64> {
        (self.base_version + 1..self.version).collect()
    }

    /// Payload of `operation` / `sync_operation` frames.
    pub fn broadcast_payload(&self, document_id: &str) -> Value {
        json!({
            "document_id": document_id,
            "version": self.version,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "seq": self.seq,
            "timestamp": self.timestamp,
            "server_timestamp": self.server_timestamp,
            "ops": self.ops,
            "original_position": self.original_position,
            "transformed_position": self.transformed_position(),
            "transformed_from": self.transformed_from(),
        })
    }
}

/// What the room remembers of one client: its last seq and the ack that answered it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub last_seq: u64,
    pub last_ack: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AwarenessEntry {
    pub client_id: String,
    pub user_id: String,
    pub state: Value,
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
    AppendOp(LogEntry),
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

pub struct Room {
    document_id: String,
    kind: DocKind,
    doc: Rope,
    counts: Counts,
    canvas: Canvas,
    owner: Option<String>,
    version: u64,
    snapshot_version: u64,
    /// Retained ops, text ones with their traversals cached for transforms.
    log: VecDeque<(LogEntry, Option<TextOp>)>,
    /// Caches of what [`Lookup`] returned, kept current by this room's own writes.
    clients: HashMap<String, ClientRecord>,
    users: HashMap<String, UserState>,
    comments: HashMap<String, CommentRecord>,
    awareness: BTreeMap<String, AwarenessEntry>,
    typing: BTreeMap<String, TypingEntry>,
}

impl Room {
    pub fn new(document_id: &str) -> Room {
        Room::restore(document_id, Stored::default()).expect("an empty room always restores")
    }

    /// Rebuilds a room from its snapshot plus the log tail after it.
    pub fn restore(document_id: &str, stored: Stored) -> Result<Room, String> {
        let kind = DocKind::of(document_id);
        let counts = match kind {
            DocKind::Engagement if !stored.snapshot.is_empty() => {
                serde_json::from_str(&stored.snapshot).map_err(|e| format!("bad counters snapshot: {e}"))?
            }
            _ => Counts::default(),
        };
        let text = if kind == DocKind::Text { stored.snapshot.as_str() } else { "" };
        let mut room = Room {
            document_id: document_id.to_string(),
            kind,
            doc: Rope::from_str(text),
            counts,
            canvas: Canvas::from_strokes(stored.strokes),
            owner: stored.owner,
            version: stored.snapshot_version,
            snapshot_version: stored.snapshot_version,
            log: VecDeque::new(),
            clients: HashMap::new(),
            users: HashMap::new(),
            comments: HashMap::new(),
            awareness: stored.awareness.into_iter().collect(),
            typing: stored.typing.into_iter().collect(),
        };
        for entry in stored.tail {
            let op = match kind {
                DocKind::Text => {
                    let prims: Vec<TextPrimitive> = serde_json::from_value(entry.ops.clone())
                        .map_err(|e| format!("bad text op at version {}: {e}", entry.version))?;
                    Some(TextOp::from_applied(&prims))
                }
                _ => None,
            };
            if entry.version > room.version {
                // Posts and canvases keep their state current with every op; text replays its tail.
                let fits = op.as_ref().is_none_or(|op| op.base_len() <= room.doc.len_chars());
                if entry.version != room.version + 1 || !fits || kind == DocKind::Engagement {
                    return Err(format!("log is inconsistent at version {}", entry.version));
                }
                match &op {
                    Some(op) => op.apply(&mut room.doc),
                    None => {
                        for c in canvas::ops_from_json(&entry.ops) {
                            room.canvas.replay(&c, entry.version, entry.timestamp, &entry.client_id);
                        }
                    }
                }
                room.version = entry.version;
            }
            room.log.push_back((entry, op));
        }
        room.trim_log();
        Ok(room)
    }

    pub fn document_id(&self) -> &str {
        &self.document_id
    }
    pub fn kind(&self) -> DocKind {
        self.kind
    }
    pub fn counts(&self) -> Counts {
        self.counts
    }
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
    pub fn set_owner(&mut self, owner: Option<String>) {
        self.owner = owner;
    }
    /// The kind-specific state as in `initial_state` and `GET /documents/{id}`: the field name and value.
    pub fn state_field(&self) -> (&'static str, Value) {
        match self.kind {
            DocKind::Engagement => ("counts", json!(self.counts)),
            DocKind::Canvas => ("strokes", self.canvas.to_json()),
            DocKind::Text => ("content", Value::String(self.content())),
        }
    }
    pub fn version(&self) -> u64 {
        self.version
    }
    pub fn content(&self) -> String {
        self.doc.to_string()
    }
    pub fn len_chars(&self) -> usize {
        self.doc.len_chars()
    }
    pub fn len_bytes(&self) -> usize {
        self.doc.len_bytes()
    }
    pub fn retained_ops(&self) -> usize {
        self.log.len()
    }
    /// Oldest version `v` such that every op after `v` is still held.
    pub fn oldest_replayable(&self) -> u64 {
        self.log.front().map_or(self.version, |(e, _)| e.version - 1)
    }

    /// Ops after `since`, if all are still held.
    pub fn ops_since(&self, since: u64) -> Option<impl Iterator<Item = &LogEntry>> {
        if since > self.version || since < self.oldest_replayable() {
            return None;
        }
        Some(self.log.iter().map(|(e, _)| e).filter(move |e| e.version > since))
    }

    fn trim_log(&mut self) {
        while self.log.len() as u64 > limits::LOG_RETAINED_OPS {
            self.log.pop_front();
        }
    }
}
