//! Document kinds behind one trait, the way ShareDB plugs OT types into one submit path: the room
//! ([`crate::room::Room`]) validates, dedupes, versions, logs, acks and broadcasts; a
//! [`Document`] only parses its own primitives, steps its state, and snapshots and restores it.

pub mod canvas;
pub mod canvas_plan;
pub mod post;
pub mod text;
pub mod ydoc;

use serde::Serializer;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::geom::Reach;
use crate::protocol::{DocKind, Failure, Outgoing};
use crate::model::{Actor, LogEntry, Lookup, Notification, OpLog, OpRequest, SavedRoom, SinceSnapshot, Write};

pub use canvas::CanvasDoc;
pub use post::PostDoc;
pub use text::TextDoc;
pub use ydoc::YDoc;

/// What a document is told about the operation being stepped.
pub struct StepCtx<'a> {
    pub document_id: &'a str,
    /// Distinguishes this life of the document id from earlier ones (deleted, then reused).
    pub incarnation: &'a str,
    pub actor: &'a Actor,
    pub client_id: &'a str,
    /// The version the operation was made against.
    pub base: u64,
    /// The version it gets if it applies.
    pub version: u64,
    /// The client's timestamp, or the server's when it sent none.
    pub timestamp: u64,
    /// The server's time of the step (ms since the epoch).
    pub now: u64,
    pub owner: Option<&'a str>,
}

/// What a step decided.
pub enum Step<C> {
    /// Nothing to apply; the seq is consumed.
    Noop(&'static str),
    Applied(Applied<C>),
}

pub struct Applied<C> {
    /// The operation as applied, serialised once: it goes as is into the ack, the broadcast,
    /// the stored log row and the history.
    pub ops: Box<RawValue>,
    /// Kept beside the log entry for later transforms.
    pub cached: C,
    pub transformed: bool,
    pub transformed_position: Option<usize>,
    /// Writes beyond the log entry (per-user state, strokes).
    pub writes: Vec<Write>,
    /// Notifications for the post's owner, queued with the operation.
    pub notifications: Vec<Notification>,
    /// The document's summary (a post's counts) changed.
    pub summary_changed: bool,
    /// Messages for every socket, the submitter included, after the ack.
    pub to_all: Vec<Outgoing>,
    /// Which sockets the operation's broadcast is for (canvas: by viewport, §8).
    pub reach: Reach,
}

pub trait Document: Sized {
    const KIND: DocKind;
    /// A parsed operation body.
    type Op;
    /// What the log keeps beside each entry (text: its traversal).
    type Cached;
    /// The name of the state field in `initial_state` and `GET /documents/{id}`.
    const STATE_FIELD: &'static str;
    /// The state lives in storage, not in the room (canvas): catching up is streamed by the
    /// host (`FollowUps::stream`) and [`Document::serialize_state`] cannot be used.
    const STREAMS_STATE: bool = false;

    /// Parses the kind-specific part of an operation (the flat form or `ops: [...]`).
    fn parse_op(op: &Map<String, Value>) -> Result<Self::Op, Failure>;

    /// A fast read of a whole `operation` frame in its common shape, without a `Value` tree;
    /// `None` sends the frame down the general parser, which decides (and words any error).
    fn parse_frame_fast(_text: &str, _socket_client_id: &str) -> Option<(Option<String>, OpRequest<Self::Op>)> {
        None
    }

    /// The first primitive's position, for `original_position`.
    fn original_position(_op: &Self::Op) -> Option<usize> {
        None
    }

    /// Rebuilds the state as of the snapshot (taking what it needs out of `stored`).
    fn restore(stored: &mut SavedRoom) -> Result<Self, String>;

    /// Re-applies a logged operation newer than the snapshot; returns its cache entry.
    fn replay(&mut self, entry: &LogEntry) -> Result<Self::Cached, String>;

    /// The cache entry of a logged operation the state already includes.
    fn cache(entry: &LogEntry) -> Result<Self::Cached, String>;

    /// Checks `op` against the state, transforming it over `log`'s operations after `ctx.base`,
    /// and applies it. Leaves the state untouched when it fails.
    fn step(&mut self, ctx: &StepCtx, op: Self::Op, log: &OpLog<Self::Cached>, lookup: &dyn Lookup) -> Result<Step<Self::Cached>, Failure>;

    /// The snapshot to store now, if one is due after `since` (None: not yet).
    /// The operation that applies an import staged with `stage_import` (posts only, §6.3).
    fn import_op() -> Option<Self::Op> {
        None
    }

    /// Holds an import for the next `import_op` step.
    fn stage_import(&mut self, _batch: crate::post_import::ImportBatch) -> Result<(), Failure> {
        Err(Failure::bad("only posts take an engagement import"))
    }

    fn snapshot(&self, since: SinceSnapshot) -> Option<String>;

    /// Serialises the state (the value of [`Document::STATE_FIELD`]).
    fn serialize_state<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;

    /// A small summary for caches and acks (a post's counts).
    fn summary(&self, _document_id: &str, _version: u64) -> Option<Box<RawValue>> {
        None
    }

    /// The text, for documents that are text.
    fn text(&self) -> Option<String> {
        None
    }
}

/// Serialises a value known to serialise (plain data) as raw JSON, without parsing it again.
pub fn raw_json(v: &impl serde::Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| serde_json::value::to_raw_value(&()).unwrap_or_default())
}
