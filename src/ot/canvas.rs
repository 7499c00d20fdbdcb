//! Canvas documents (§3.3): a map stroke_id → stroke. Conflicts are settled per stroke:
//! concurrent creates both stand (distinct ids), of two concurrent updates the later client
//! timestamp wins (ties: larger client_id), delete beats update, `clear_all` removes the strokes
//! that exist when it is applied, and an op on a missing stroke is a `noop`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::limits;
use crate::protocol::{opt_str, Code, Failure};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stroke {
    pub data: Value,
    /// The version, client timestamp and client of the last write, for last-writer-wins.
    pub version: u64,
    pub timestamp: u64,
    pub client_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CanvasOp {
    Create { stroke_id: String, data: Value },
    Update { stroke_id: String, data: Value },
    Delete { stroke_id: String },
    ClearAll,
}

impl CanvasOp {
    /// The wire form, as applied.
    pub fn to_json(&self) -> Value {
        match self {
            CanvasOp::Create { stroke_id, data } => json!({"type": "stroke_create", "stroke_id": stroke_id, "data": data}),
            CanvasOp::Update { stroke_id, data } => json!({"type": "stroke_update", "stroke_id": stroke_id, "data": data}),
            CanvasOp::Delete { stroke_id } => json!({"type": "stroke_delete", "stroke_id": stroke_id}),
            CanvasOp::ClearAll => json!({"type": "clear_all"}),
        }
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
        let data = || -> Result<Value, Failure> {
            let d = m.get("data").cloned().ok_or_else(|| Failure::bad("data is required"))?;
            if d.to_string().len() > limits::MAX_STROKE_BYTES {
                return Err(Failure::new(Code::TooLarge, "stroke data exceeds 32 KiB"));
            }
            Ok(d)
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

impl Canvas {
    pub fn from_strokes(strokes: impl IntoIterator<Item = (String, Stroke)>) -> Canvas {
        let strokes: BTreeMap<String, Stroke> = strokes.into_iter().collect();
        let bytes = strokes.values().map(|s| s.data.to_string().len()).sum();
        Canvas { strokes, bytes }
    }

    /// `{stroke_id: data}` as in `initial_state`.
    pub fn to_json(&self) -> Value {
        Value::Object(self.strokes.iter().map(|(k, s)| (k.clone(), s.data.clone())).collect())
    }

    fn put(&mut self, id: &str, stroke: Stroke) {
        self.bytes += stroke.data.to_string().len();
        if let Some(old) = self.strokes.insert(id.to_string(), stroke) {
            self.bytes -= old.data.to_string().len();
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some(old) = self.strokes.remove(id) {
            self.bytes -= old.data.to_string().len();
        }
    }

    /// Applies `ops` in sequence as one operation. Returns the primitives that took effect (empty:
    /// a noop) and the changes to store; a limit breach leaves the canvas untouched.
    pub fn apply(&mut self, ops: &[CanvasOp], w: &Writer) -> Result<(Vec<CanvasOp>, Vec<StrokeChange>), Failure> {
        let mut trial = TrialSize { count: self.strokes.len(), bytes: self.bytes };
        for op in ops {
            trial.step(self, op)?;
        }
        let mut applied = Vec::new();
        let mut changes = Vec::new();
        for op in ops {
            let effective = match op {
                CanvasOp::Create { stroke_id, .. } => !self.strokes.contains_key(stroke_id),
                CanvasOp::Update { stroke_id, .. } => match self.strokes.get(stroke_id) {
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
            changes.push(self.replay(op, w.version, w.timestamp, w.client_id));
            applied.push(op.clone());
        }
        Ok((applied, changes))
    }

    /// Applies an op that already took effect (from the log), returning the change.
    pub fn replay(&mut self, op: &CanvasOp, version: u64, timestamp: u64, client_id: &str) -> StrokeChange {
        match op {
            CanvasOp::Create { stroke_id, data } | CanvasOp::Update { stroke_id, data } => {
                let stroke = Stroke { data: data.clone(), version, timestamp, client_id: client_id.to_string() };
                self.put(stroke_id, stroke.clone());
                StrokeChange::Put(stroke_id.clone(), stroke)
            }
            CanvasOp::Delete { stroke_id } => {
                self.remove(stroke_id);
                StrokeChange::Remove(stroke_id.clone())
            }
            CanvasOp::ClearAll => {
                self.strokes.clear();
                self.bytes = 0;
                StrokeChange::Clear
            }
        }
    }
}

/// Counts and bytes an op sequence would leave, to refuse it before touching anything.
struct TrialSize {
    count: usize,
    bytes: usize,
}

impl TrialSize {
    fn step(&mut self, canvas: &Canvas, op: &CanvasOp) -> Result<(), Failure> {
        match op {
            CanvasOp::Create { stroke_id, data } if !canvas.strokes.contains_key(stroke_id) => {
                self.count += 1;
                self.bytes += data.to_string().len();
            }
            CanvasOp::Update { stroke_id, data } => {
                let old = canvas.strokes.get(stroke_id).map_or(0, |s| s.data.to_string().len());
                self.bytes = (self.bytes + data.to_string().len()).saturating_sub(old);
            }
            CanvasOp::ClearAll => *self = TrialSize { count: 0, bytes: 0 },
            _ => {}
        }
        if self.count > limits::MAX_STROKES {
            return Err(Failure::new(Code::TooLarge, "the canvas would exceed 10,000 strokes"));
        }
        if self.bytes > limits::MAX_CANVAS_BYTES {
            return Err(Failure::new(Code::TooLarge, "the canvas would exceed 16 MiB of stroke data"));
        }
        Ok(())
    }
}

/// Reads the applied primitives of a log entry back.
pub fn ops_from_json(v: &Value) -> Vec<CanvasOp> {
    v.as_array()
        .map(|items| items.iter().filter_map(|i| i.as_object().and_then(|m| CanvasOp::parse_one(m).ok())).collect())
        .unwrap_or_default()
}
