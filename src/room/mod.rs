//! The state machine of one document, free of any runtime types (like tldraw's TLSyncRoom).
//!
//! Every entry point takes the current state plus one input (a frame, a connect, a close, the
//! clock) and returns [`Effects`](crate::model::Effects): messages for the sender, messages for
//! everybody else, the storage writes that must be durable before any of those messages leave,
//! and the follow-ups to schedule after. The document's Durable Object persists the writes and
//! delivers the messages; tests drive the same functions directly.
//! What differs between document kinds lives behind [`Document`].

mod awareness;
mod canvas;
mod dyn_room;
mod frames;
mod sessions;
mod submit;
pub mod viewport;
pub mod yjs;

use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Serialize;

use crate::doc::Document;
use crate::limits;
use crate::model::{AwarenessEntry, BoundedMap, ClientRecord, LogEntry, Lookup, OpLog, SavedRoom, SinceSnapshot, TypingEntry};
use crate::protocol::{Code, Failure};

pub use dyn_room::{restore_room, DynRoom};
pub use submit::{claim_of, Claim, Submitted};
pub use yjs::{YEffects, YRoom};

pub struct Room<D: Document> {
    document_id: String,
    incarnation: String,
    doc: D,
    owner: Option<String>,
    version: u64,
    /// Operations and log bytes since the stored snapshot.
    since_snapshot: SinceSnapshot,
    log: OpLog<D::Cached>,
    /// Storage holds every operation after this version: those older than the log's first are
    /// read back only when a client needs them (`ensure_log`).
    stored_floor: u64,
    /// Client records read from storage, kept current by this room's own writes.
    clients: BoundedMap<ClientRecord>,
    awareness: BTreeMap<String, AwarenessEntry>,
    /// Coalesced awareness relays and checkpoints (off unless the host turns it on).
    relay: awareness::Coalescer,
    typing: BTreeMap<String, TypingEntry>,
}

impl<D: Document> Room<D> {
    pub fn new(document_id: &str) -> Room<D> {
        Room::restore(document_id, SavedRoom::default()).expect("an empty room always restores")
    }

    /// Rebuilds a room from its snapshot plus the log tail after it (never the whole history).
    pub fn restore(document_id: &str, mut stored: SavedRoom) -> Result<Room<D>, String> {
        let doc = D::restore(&mut stored)?;
        let mut room = Room {
            document_id: document_id.to_string(),
            incarnation: std::mem::take(&mut stored.incarnation),
            doc,
            owner: stored.owner,
            version: stored.snapshot_version,
            since_snapshot: SinceSnapshot::default(),
            log: OpLog::default(),
            stored_floor: 0,
            clients: BoundedMap::new(limits::CACHED_CLIENTS),
            awareness: stored.awareness.into_iter().collect(),
            relay: Default::default(),
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
        let floor = room.log.oldest_replayable(room.version);
        room.stored_floor = stored.retained_after.map_or(floor, |after| after.min(floor));
        Ok(room)
    }

    pub fn document_id(&self) -> &str {
        &self.document_id
    }
    pub fn doc(&self) -> &D {
        &self.doc
    }
    pub(crate) fn doc_mut(&mut self) -> &mut D {
        &mut self.doc
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
        // Storage keeps at least the last LOG_RETAINED_OPS versions (`mark_flushed`).
        let stored = self.stored_floor.max(self.version.saturating_sub(limits::LOG_RETAINED_OPS));
        self.log.oldest_replayable(self.version).min(stored)
    }

    /// Makes the log hold every operation after `from` that storage still has (a woken room
    /// holds only those after its snapshot). What storage no longer holds, or the budgets
    /// cannot take, is given up: the room then answers `version_too_old`, as it always did.
    pub fn ensure_log(&mut self, from: u64, lookup: &dyn Lookup) -> Result<(), Failure> {
        let floor = self.log.oldest_replayable(self.version);
        let from = from.max(self.oldest_replayable());
        if from >= floor {
            return Ok(());
        }
        // Only what fits beside what the log already holds is read.
        let room = limits::LOG_RETAINED_BYTES.saturating_sub(self.log.bytes());
        let entries = lookup.log_entries(from, floor, room).map_err(|e| Failure::new(Code::Internal, format!("storage read failed: {e}")))?;
        // The run that ends just before the log's first entry: storage may have trimmed older ones.
        let run = entries.iter().rev().zip((from + 1..=floor).rev()).take_while(|(e, v)| e.version == *v).count();
        let whole = run as u64 == floor - from;
        let skip = entries.len() - run;
        let older = entries.into_iter().skip(skip).map(|e| D::cache(&e).map(|c| (Rc::new(e), c))).collect::<Result<Vec<_>, String>>();
        let fitted = self.log.prepend(older.map_err(|e| Failure::new(Code::Internal, e))?);
        if !whole || !fitted {
            self.stored_floor = self.log.oldest_replayable(self.version);
        }
        Ok(())
    }

    /// Oldest version `v` such that every op after `v` is in memory (`ensure_log` reads more).
    pub fn held_from(&self) -> u64 {
        self.log.oldest_replayable(self.version)
    }

    /// Ops after `since`, if all are in memory (after `ensure_log(since)`: if all are held).
    pub fn ops_since(&self, since: u64) -> Option<impl Iterator<Item = &LogEntry>> {
        if since > self.version || since < self.held_from() {
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
