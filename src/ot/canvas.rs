//! Canvas documents (§3.3): a map stroke_id → stroke. Conflicts are settled per stroke:
//! concurrent creates both stand (distinct ids), of two concurrent updates the later client
//! timestamp wins (ties: larger client_id), delete beats update, `clear_all` removes the strokes
//! that exist when it is applied, and an op on a missing stroke is a `noop`.
//!
//! The canvas in memory is only an index ([`CanvasIndex`]): the rules above need each stroke's
//! last writer, never its data, which stays in storage (§8).

use std::collections::HashMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::canvas_index::{CanvasIndex, Entry, StrokeRow};
use crate::geom::{stroke_bbox, Rect, Reach};
use crate::limits;
use crate::protocol::{opt_str, Code, Failure};

/// Stroke data is kept as the client sent it, as compact JSON text: a tree of `Value`s would
/// cost ~24 bytes per number on wasm32 (a full 16 MiB canvas would need hundreds of MiB).
pub type Data = Box<RawValue>;

/// A stroke as written to storage: its data and its index columns.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stroke {
    pub data: Data,
    /// The version, client timestamp and client of the last write, for last-writer-wins.
    pub version: u64,
    pub timestamp: u64,
    pub client_id: String,
    /// The box of `data` (§8); `None`: always in view. Rows from before 1.2 lack it: see
    /// [`Stroke::row`].
    #[serde(default)]
    pub bbox: Option<Rect>,
}

impl PartialEq for Stroke {
    fn eq(&self, o: &Self) -> bool {
        self.data.get() == o.data.get() && self.version == o.version && self.timestamp == o.timestamp && self.client_id == o.client_id && self.bbox == o.bbox
    }
}

impl Stroke {
    /// The index row of this stroke (the box recomputed from the data, so rows written before
    /// boxes were stored convert too).
    pub fn row(&self, stroke_id: &str) -> StrokeRow {
        StrokeRow {
            stroke_id: stroke_id.to_string(),
            bbox: stroke_bbox(self.data.get()),
            version: self.version,
            timestamp: self.timestamp,
            client_id: self.client_id.clone(),
            bytes: self.data.get().len() as u32,
        }
    }
}

#[derive(Clone, Debug)]
pub enum CanvasOp {
    Create { stroke_id: String, data: Data },
    Update { stroke_id: String, data: Data },
    Delete { stroke_id: String },
    ClearAll,
}

impl PartialEq for CanvasOp {
    fn eq(&self, o: &Self) -> bool {
        use CanvasOp::*;
        match (self, o) {
            (Create { stroke_id: a, data: x }, Create { stroke_id: b, data: y }) | (Update { stroke_id: a, data: x }, Update { stroke_id: b, data: y }) => {
                a == b && x.get() == y.get()
            }
            (Delete { stroke_id: a }, Delete { stroke_id: b }) => a == b,
            (ClearAll, ClearAll) => true,
            _ => false,
        }
    }
}

impl CanvasOp {
    pub fn data(&self) -> Option<&Data> {
        match self {
            CanvasOp::Create { data, .. } | CanvasOp::Update { data, .. } => Some(data),
            _ => None,
        }
    }

    pub fn stroke_id(&self) -> Option<&str> {
        match self {
            CanvasOp::Create { stroke_id, .. } | CanvasOp::Update { stroke_id, .. } | CanvasOp::Delete { stroke_id } => Some(stroke_id),
            CanvasOp::ClearAll => None,
        }
    }

    /// The wire form, as applied.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn parse_one(m: &Map<String, Value>) -> Result<CanvasOp, Failure> {
        let kind = opt_str(m, "type")?.ok_or_else(|| Failure::bad("operation type is required"))?;
        let stroke_id = || -> Result<String, Failure> {
            match opt_str(m, "stroke_id")? {
                Some(id) if (1..=128).contains(&id.chars().count()) => Ok(id.to_string()),
                Some(_) => Err(Failure::bad("stroke_id must have 1 to 128 characters")),
                None => Err(Failure::bad("stroke_id is required")),
            }
        };
        let data = || -> Result<Data, Failure> {
            let d = m.get("data").ok_or_else(|| Failure::bad("data is required"))?;
            let text = d.to_string();
            if text.len() > limits::MAX_STROKE_BYTES {
                return Err(Failure::new(Code::TooLarge, "stroke data exceeds 32 KiB"));
            }
            RawValue::from_string(text).map_err(|e| Failure::bad(format!("data: {e}")))
        };
        match kind {
            "stroke_create" => Ok(CanvasOp::Create { stroke_id: stroke_id()?, data: data()? }),
            "stroke_update" => Ok(CanvasOp::Update { stroke_id: stroke_id()?, data: data()? }),
            "stroke_delete" => Ok(CanvasOp::Delete { stroke_id: stroke_id()? }),
            "clear_all" => Ok(CanvasOp::ClearAll),
            "cursor_move" | "selection" => {
                Err(Failure::new(Code::InvalidOperation, format!("{kind} is not an operation: send it as awareness")))
            }
            other => Err(Failure::new(Code::InvalidOperation, format!("{other:?} is not an operation on a canvas"))),
        }
    }

    /// The flat one-primitive form, or `ops: [...]` applied in sequence as one operation.
    pub fn parse(op: &Map<String, Value>) -> Result<Vec<CanvasOp>, Failure> {
        super::parse_primitives(op, CanvasOp::parse_one)
    }
}

impl Serialize for CanvasOp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        match self {
            CanvasOp::Create { stroke_id, data } | CanvasOp::Update { stroke_id, data } => {
                m.serialize_entry("type", if matches!(self, CanvasOp::Create { .. }) { "stroke_create" } else { "stroke_update" })?;
                m.serialize_entry("stroke_id", stroke_id)?;
                m.serialize_entry("data", data)?;
            }
            CanvasOp::Delete { stroke_id } => {
                m.serialize_entry("type", "stroke_delete")?;
                m.serialize_entry("stroke_id", stroke_id)?;
            }
            CanvasOp::ClearAll => m.serialize_entry("type", "clear_all")?,
        }
        m.end()
    }
}

/// Who writes, and against which version, for last-writer-wins.
pub struct Writer<'a> {
    pub base_version: u64,
    pub version: u64,
    pub timestamp: u64,
    pub client_id: &'a str,
}

/// A change to make durable.
#[derive(Clone, Debug, PartialEq)]
pub enum StrokeChange {
    Put(String, Stroke),
    Remove(String),
    Clear,
}

/// What an applied operation did: the primitives that took effect (empty: a noop), the changes
/// to store, and who must hear of it (the boxes of its strokes before and after it).
#[derive(Debug)]
pub struct Outcome {
    pub applied: Vec<CanvasOp>,
    pub changes: Vec<StrokeChange>,
    pub reach: Reach,
}

#[derive(Debug, Default)]
pub struct Canvas {
    index: CanvasIndex,
}

/// How to undo one primitive when the whole operation is refused.
enum Undo {
    Restore(String, Option<Entry>),
    Unclear(CanvasIndex),
}

impl Canvas {
    pub fn from_rows(rows: Vec<StrokeRow>) -> Result<Canvas, String> {
        Ok(Canvas { index: CanvasIndex::from_rows(rows)? })
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn index(&self) -> &CanvasIndex {
        &self.index
    }

    /// Applies `ops` in sequence as one operation, each primitive seeing the ones before it (an
    /// operation's own earlier write is never "concurrent"). A limit breach leaves the canvas
    /// untouched.
    pub fn apply(&mut self, ops: Vec<CanvasOp>, w: &Writer) -> Result<Outcome, Failure> {
        let mut applied = Vec::new();
        let mut undo = Vec::new();
        let mut mine: std::collections::HashSet<String> = Default::default();
        // Each touched stroke's box before the operation (outer None: it did not exist).
        let mut before: HashMap<String, Option<Option<Rect>>> = HashMap::new();
        let mut cleared = false;
        let mut boxes = Vec::new();
        for op in ops {
            if !self.effective(&op, w, &mine) {
                continue;
            }
            if let Some(id) = op.stroke_id() {
                if !cleared && !before.contains_key(id) {
                    before.insert(id.to_string(), self.index.get(id).map(|e| e.bbox));
                }
            }
            cleared |= matches!(op, CanvasOp::ClearAll);
            let bbox = op.data().and_then(|d| stroke_bbox(d.get()));
            undo.push(self.step(&op, bbox, w));
            boxes.push(bbox);
            if let CanvasOp::Create { stroke_id, .. } | CanvasOp::Update { stroke_id, .. } = &op {
                mine.insert(stroke_id.clone());
            }
            applied.push(op);
        }
        if let Err(f) = self.check_limits() {
            for u in undo.into_iter().rev() {
                match u {
                    Undo::Restore(id, Some(e)) => {
                        self.index.put(&id, e);
                    }
                    Undo::Restore(id, None) => {
                        self.index.remove(&id);
                    }
                    Undo::Unclear(index) => self.index = index,
                }
            }
            return Err(f);
        }
        let reach = if cleared { Reach::All } else { self.reach(before) };
        let changes = applied.iter().zip(boxes).map(|(op, bbox)| Self::change_of(op, bbox, w)).collect();
        Ok(Outcome { applied, changes, reach })
    }

    fn effective(&self, op: &CanvasOp, w: &Writer, mine: &std::collections::HashSet<String>) -> bool {
        match op {
            CanvasOp::Create { stroke_id, .. } => !self.index.contains(stroke_id),
            CanvasOp::Update { stroke_id, .. } => match self.index.get(stroke_id) {
                Some(_) if mine.contains(stroke_id) => true,
                // Written after this op's base: concurrent, so the later timestamp wins.
                Some(s) if s.version > w.base_version => (w.timestamp, w.client_id) > (s.timestamp, &*s.client_id),
                Some(_) => true,
                None => false,
            },
            CanvasOp::Delete { stroke_id } => self.index.contains(stroke_id),
            CanvasOp::ClearAll => !self.index.is_empty(),
        }
    }

    fn check_limits(&self) -> Result<(), Failure> {
        if self.index.len() > limits::MAX_STROKES {
            return Err(Failure::new(Code::TooLarge, format!("the canvas would exceed {} strokes", limits::MAX_STROKES)));
        }
        if self.index.bytes() > limits::MAX_CANVAS_BYTES as u64 {
            return Err(Failure::new(Code::TooLarge, format!("the canvas would exceed {} MiB of stroke data", limits::MAX_CANVAS_BYTES >> 20)));
        }
        Ok(())
    }

    /// The boxes of the touched strokes before and after; a stroke without a box is everywhere.
    fn reach(&self, before: HashMap<String, Option<Option<Rect>>>) -> Reach {
        let mut boxes = Vec::with_capacity(before.len() * 2);
        for (id, was) in before {
            let now = self.index.get(&id).map(|e| e.bbox);
            for b in [was, now].into_iter().flatten() {
                match b {
                    Some(r) => boxes.push(r),
                    None => return Reach::All,
                }
            }
        }
        Reach::Touching(boxes)
    }

    fn entry(data: &Data, bbox: Option<Rect>, w: &Writer) -> Entry {
        Entry { bbox, version: w.version, timestamp: w.timestamp, client_id: Rc::from(w.client_id), bytes: data.get().len() as u32 }
    }

    fn step(&mut self, op: &CanvasOp, bbox: Option<Rect>, w: &Writer) -> Undo {
        match op {
            CanvasOp::Create { stroke_id, data } | CanvasOp::Update { stroke_id, data } => {
                Undo::Restore(stroke_id.clone(), self.index.put(stroke_id, Self::entry(data, bbox, w)))
            }
            CanvasOp::Delete { stroke_id } => Undo::Restore(stroke_id.clone(), self.index.remove(stroke_id)),
            CanvasOp::ClearAll => Undo::Unclear(std::mem::take(&mut self.index)),
        }
    }

    fn change_of(op: &CanvasOp, bbox: Option<Rect>, w: &Writer) -> StrokeChange {
        match op {
            CanvasOp::Create { stroke_id, data } | CanvasOp::Update { stroke_id, data } => StrokeChange::Put(
                stroke_id.clone(),
                Stroke { data: data.clone(), version: w.version, timestamp: w.timestamp, client_id: w.client_id.to_string(), bbox },
            ),
            CanvasOp::Delete { stroke_id } => StrokeChange::Remove(stroke_id.clone()),
            CanvasOp::ClearAll => StrokeChange::Clear,
        }
    }
}
