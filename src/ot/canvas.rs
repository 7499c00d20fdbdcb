//! Canvas documents (§3.3): a map stroke_id → stroke. Conflicts are settled per stroke:
//! concurrent creates both stand (distinct ids), of two concurrent updates the later client
//! timestamp wins (ties: larger client_id), delete beats update, `clear_all` removes the strokes
//! that exist when it is applied, and an op on a missing stroke is a `noop`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::limits;
use crate::protocol::{opt_str, Code, Failure};

/// Stroke data is kept as the client sent it, as compact JSON text: a tree of `Value`s would
/// cost ~24 bytes per number on wasm32 (a full 16 MiB canvas would need hundreds of MiB).
pub type Data = Box<RawValue>;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stroke {
    pub data: Data,
    /// The version, client timestamp and client of the last write, for last-writer-wins.
    pub version: u64,
    pub timestamp: u64,
    pub client_id: String,
}

impl PartialEq for Stroke {
    fn eq(&self, o: &Self) -> bool {
        self.data.get() == o.data.get() && self.version == o.version && self.timestamp == o.timestamp && self.client_id == o.client_id
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

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Canvas {
    strokes: BTreeMap<String, Stroke>,
    bytes: usize,
}

/// How to undo one primitive when the whole operation is refused.
enum Undo {
    Restore(String, Option<Stroke>),
    Unclear(BTreeMap<String, Stroke>, usize),
}

impl Canvas {
    pub fn from_strokes(strokes: impl IntoIterator<Item = (String, Stroke)>) -> Canvas {
        let strokes: BTreeMap<String, Stroke> = strokes.into_iter().collect();
        let bytes = strokes.values().map(|s| s.data.get().len()).sum();
        Canvas { strokes, bytes }
    }

    pub fn len(&self) -> usize {
        self.strokes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strokes.is_empty()
    }

    /// Serialises `{stroke_id: data}` as in `initial_state`, straight from the stored text.
    pub fn serialize_strokes<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.strokes.iter().map(|(k, st)| (k, &st.data)))
    }

    fn put(&mut self, id: &str, stroke: Stroke) -> Option<Stroke> {
        self.bytes += stroke.data.get().len();
        let old = self.strokes.insert(id.to_string(), stroke);
        if let Some(old) = &old {
            self.bytes -= old.data.get().len();
        }
        old
    }

    fn remove(&mut self, id: &str) -> Option<Stroke> {
        let old = self.strokes.remove(id);
        if let Some(old) = &old {
            self.bytes -= old.data.get().len();
        }
        old
    }

    /// Applies `ops` in sequence as one operation, each primitive seeing the ones before it (an
    /// operation's own earlier write is never "concurrent"). Returns the primitives that took
    /// effect (empty: a noop) and the changes to store; a limit breach leaves the canvas untouched.
    pub fn apply(&mut self, ops: Vec<CanvasOp>, w: &Writer) -> Result<(Vec<CanvasOp>, Vec<StrokeChange>), Failure> {
        let mut applied = Vec::new();
        let mut undo = Vec::new();
        let mut mine: std::collections::HashSet<String> = Default::default();
        for op in ops {
            let effective = match &op {
                CanvasOp::Create { stroke_id, .. } => !self.strokes.contains_key(stroke_id),
                CanvasOp::Update { stroke_id, .. } => match self.strokes.get(stroke_id) {
                    Some(_) if mine.contains(stroke_id) => true,
                    // Written after this op's base: concurrent, so the later timestamp wins.
                    Some(s) if s.version > w.base_version => (w.timestamp, w.client_id) > (s.timestamp, s.client_id.as_str()),
                    Some(_) => true,
                    None => false,
                },
                CanvasOp::Delete { stroke_id } => self.strokes.contains_key(stroke_id),
                CanvasOp::ClearAll => !self.strokes.is_empty(),
            };
            if !effective {
                continue;
            }
            undo.push(self.step(&op, w));
            if let CanvasOp::Create { stroke_id, .. } | CanvasOp::Update { stroke_id, .. } = &op {
                mine.insert(stroke_id.clone());
            }
            applied.push(op);
        }
        let breach = if self.strokes.len() > limits::MAX_STROKES {
            Some("the canvas would exceed 10,000 strokes")
        } else if self.bytes > limits::MAX_CANVAS_BYTES {
            Some("the canvas would exceed 16 MiB of stroke data")
        } else {
            None
        };
        if let Some(why) = breach {
            for u in undo.into_iter().rev() {
                match u {
                    Undo::Restore(id, Some(s)) => {
                        self.put(&id, s);
                    }
                    Undo::Restore(id, None) => {
                        self.remove(&id);
                    }
                    Undo::Unclear(strokes, bytes) => *self = Canvas { strokes, bytes },
                }
            }
            return Err(Failure::new(Code::TooLarge, why));
        }
        let changes = applied.iter().map(|op| self.change_of(op, w)).collect();
        Ok((applied, changes))
    }

    fn stroke(&self, data: &Data, w: &Writer) -> Stroke {
        Stroke { data: data.clone(), version: w.version, timestamp: w.timestamp, client_id: w.client_id.to_string() }
    }

    fn step(&mut self, op: &CanvasOp, w: &Writer) -> Undo {
        match op {
            CanvasOp::Create { stroke_id, data } | CanvasOp::Update { stroke_id, data } => {
                Undo::Restore(stroke_id.clone(), self.put(stroke_id, self.stroke(data, w)))
            }
            CanvasOp::Delete { stroke_id } => Undo::Restore(stroke_id.clone(), self.remove(stroke_id)),
            CanvasOp::ClearAll => {
                let old = std::mem::take(self);
                Undo::Unclear(old.strokes, old.bytes)
            }
        }
    }

    fn change_of(&self, op: &CanvasOp, w: &Writer) -> StrokeChange {
        match op {
            CanvasOp::Create { stroke_id, data } | CanvasOp::Update { stroke_id, data } => StrokeChange::Put(stroke_id.clone(), self.stroke(data, w)),
            CanvasOp::Delete { stroke_id } => StrokeChange::Remove(stroke_id.clone()),
            CanvasOp::ClearAll => StrokeChange::Clear,
        }
    }
}
