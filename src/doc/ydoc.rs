//! Yjs documents (§7 [1.2]): one Yjs document on the `yrs` crate, the Rust port of Yjs and
//! wire-compatible with it. An update is applied only if it changes something (Yjs updates are
//! idempotent: a second copy changes nothing); what it changed is re-encoded as the effective
//! update, which is what the log keeps and the room relays. Stored rows hold updates as base64
//! JSON strings (standard alphabet), the log's merged snapshot as the whole state.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serializer;
use serde_json::{Map, Value};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Transact, Update};

use super::{raw_json, Applied, Document, Step, StepCtx};
use crate::limits;
use crate::model::{LogEntry, Lookup, OpLog, SavedRoom, SinceSnapshot};
use crate::protocol::{Code, DocKind, Failure};

/// Why an update was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YFail {
    /// Not a Yjs v1 update.
    Malformed(String),
    /// The encoded document would pass [`limits::YJS_MAX_DOC_BYTES`].
    TooLarge,
}

impl From<YFail> for Failure {
    fn from(f: YFail) -> Failure {
        match f {
            YFail::Malformed(m) => Failure::new(Code::InvalidOperation, m),
            YFail::TooLarge => Failure::new(Code::TooLarge, "the encoded Yjs document would pass 16 MiB; nothing was applied"),
        }
    }
}

pub struct YDoc {
    doc: Doc,
    /// An upper bound of the encoded document's size: its last full encoding plus every
    /// effective update since (merging never makes an encoding larger than its parts).
    approx_bytes: usize,
}

pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub fn unb64(text: &str) -> Result<Vec<u8>, String> {
    B64.decode(text.trim()).map_err(|e| format!("not base64 (standard alphabet): {e}"))
}

/// The bytes of a logged update (its `ops` is a JSON string of base64).
pub fn logged_update(entry: &LogEntry) -> Result<Vec<u8>, String> {
    let text: String = serde_json::from_str(entry.ops.get()).map_err(|e| format!("bad Yjs log row at version {}: {e}", entry.version))?;
    unb64(&text)
}

impl Default for YDoc {
    fn default() -> Self {
        YDoc { doc: Doc::new(), approx_bytes: 2 }
    }
}

impl YDoc {
    /// A document holding `update` (a stored snapshot).
    pub fn from_update(update: &[u8]) -> Result<YDoc, String> {
        let mut d = YDoc::default();
        if !update.is_empty() {
            d.apply(update).map_err(|e| format!("stored Yjs snapshot does not decode: {e:?}"))?;
        }
        d.approx_bytes = update.len().max(2);
        Ok(d)
    }

    /// Applies `update`; the effective update when it changed the document, None when it
    /// changed nothing (empty, or wholly known). Nothing is applied when it fails.
    pub fn apply(&mut self, update: &[u8]) -> Result<Option<Vec<u8>>, YFail> {
        let decoded = Update::decode_v1(update).map_err(|e| YFail::Malformed(format!("not a Yjs update: {e}")))?;
        if decoded.is_empty() {
            return Ok(None);
        }
        if self.approx_bytes + update.len() > limits::YJS_MAX_DOC_BYTES {
            self.approx_bytes = self.encoded_len();
            if self.approx_bytes + update.len() > limits::YJS_MAX_DOC_BYTES {
                return Err(YFail::TooLarge);
            }
        }
        let mut txn = self.doc.transact_mut();
        txn.apply_update(decoded).map_err(|e| YFail::Malformed(format!("the update does not apply: {e}")))?;
        if !txn.has_changes() {
            return Ok(None);
        }
        let effective = txn.encode_update_v1();
        drop(txn);
        self.approx_bytes += effective.len();
        Ok(Some(effective))
    }

    /// Whether `update` carries anything at all (a read-only socket's empty sync step 2 is not
    /// refused). A malformed update counts as non-empty.
    pub fn is_nonempty_update(update: &[u8]) -> bool {
        Update::decode_v1(update).map_or(true, |u| !u.is_empty())
    }

    pub fn state_vector(&self) -> StateVector {
        self.doc.transact().state_vector()
    }

    /// The whole document as one update (v1): what it integrated, as [`YDoc::diff`] serves.
    pub fn encode_state(&self) -> Vec<u8> {
        self.diff(&StateVector::default())
    }

    /// What a peer with state vector `sv` lacks, of what the document integrated. Never the
    /// pending part (updates waiting for a predecessor the document lacks): applying one changes
    /// nothing, so it is not logged, and serving it would hand clients what a crash loses (yrs's
    /// `encode_state_as_update` merges it in; `encode_diff` does not).
    pub fn diff(&self, sv: &StateVector) -> Vec<u8> {
        self.doc.transact().encode_diff_v1(sv)
    }

    /// The log is merged into one snapshot when it passes 1,000 updates or 1 MiB (§7).
    pub fn snapshot_due(since: SinceSnapshot) -> bool {
        since.ops >= limits::YJS_MERGE_EVERY_UPDATES || since.bytes >= limits::YJS_MERGE_EVERY_BYTES
    }

    pub fn encoded_len(&self) -> usize {
        self.encode_state().len()
    }

    /// The plain content of the root `Y.Text` named `name` ("" when there is none).
    pub fn text_of(&self, name: &str) -> String {
        let txn = self.doc.transact();
        txn.get_text(name).map(|t| t.get_string(&txn)).unwrap_or_default()
    }

    /// The underlying document (tests read it with yrs's own types).
    pub fn doc(&self) -> &Doc {
        &self.doc
    }
}

impl Document for YDoc {
    const KIND: DocKind = DocKind::Yjs;
    const STATE_FIELD: &'static str = "update";
    type Op = Vec<u8>;
    type Cached = ();

    /// Yjs updates come as binary frames or through `POST /documents/{id}/update`, never as
    /// `operation` objects.
    fn parse_op(_op: &Map<String, Value>) -> Result<Self::Op, Failure> {
        Err(Failure::new(
            Code::InvalidOperation,
            "a ydoc: document takes Yjs updates: binary frames on its socket or POST /api/v1/documents/{id}/update",
        ))
    }

    /// From the binary snapshot (or a text one in base64); the stored copy is let go before
    /// the document is built, so waking never holds three copies of a large document.
    fn restore(stored: &mut SavedRoom) -> Result<Self, String> {
        let bytes = std::mem::take(&mut stored.snapshot_bytes);
        if !bytes.is_empty() {
            return YDoc::from_update(&bytes);
        }
        let snapshot = std::mem::take(&mut stored.snapshot);
        if snapshot.is_empty() {
            return Ok(YDoc::default());
        }
        let bytes = unb64(&snapshot)?;
        drop(snapshot);
        YDoc::from_update(&bytes)
    }

    fn replay(&mut self, entry: &LogEntry) -> Result<(), String> {
        self.apply(&logged_update(entry)?).map(|_| ()).map_err(|e| format!("log row at version {} does not apply: {e:?}", entry.version))
    }

    fn cache(_entry: &LogEntry) -> Result<(), String> {
        Ok(())
    }

    fn step(&mut self, _ctx: &StepCtx, op: Vec<u8>, _log: &OpLog<()>, _lookup: &dyn Lookup) -> Result<Step<()>, Failure> {
        match self.apply(&op)? {
            None => Ok(Step::Noop("the update changes nothing")),
            Some(effective) => Ok(Step::Applied(Applied {
                ops: raw_json(&b64(&effective)),
                cached: (),
                transformed: false,
                transformed_position: None,
                writes: Vec::new(),
                notifications: Vec::new(),
                summary_changed: false,
                to_all: Vec::new(),
                reach: Default::default(),
            })),
        }
    }

    /// The Yjs room writes binary snapshots itself ([`YDoc::snapshot_due`]); this text form
    /// serves only callers of the generic trait.
    fn snapshot(&self, since: SinceSnapshot) -> Option<String> {
        YDoc::snapshot_due(since).then(|| b64(&self.encode_state()))
    }

    fn serialize_state<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b64(&self.encode_state()))
    }
}
