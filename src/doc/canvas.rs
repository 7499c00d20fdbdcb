//! Canvas documents: strokes settled per stroke by [`crate::ot::canvas`]. The strokes live in
//! rows written with every operation, so waking reads them and replays nothing.

use serde::Serializer;
use serde_json::{Map, Value};

use super::{raw_json, Applied, Document, Step, StepCtx};
use crate::ot::canvas::{Canvas, CanvasOp, StrokeChange, Writer};
use crate::protocol::{DocKind, Failure};
use crate::model::{LogEntry, Lookup, OpLog, SavedRoom, SinceSnapshot, Write};

pub struct CanvasDoc {
    canvas: Canvas,
}

impl CanvasDoc {
    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }
}

impl Document for CanvasDoc {
    const KIND: DocKind = DocKind::Canvas;
    const STATE_FIELD: &'static str = "strokes";
    type Op = Vec<CanvasOp>;
    type Cached = ();

    fn parse_op(op: &Map<String, Value>) -> Result<Self::Op, Failure> {
        CanvasOp::parse(op)
    }

    fn restore(stored: &mut SavedRoom) -> Result<Self, String> {
        Ok(CanvasDoc { canvas: Canvas::from_strokes(std::mem::take(&mut stored.strokes)) })
    }

    fn replay(&mut self, entry: &LogEntry) -> Result<(), String> {
        Err(format!("canvas log is ahead of its strokes at version {}", entry.version))
    }

    fn cache(_: &LogEntry) -> Result<(), String> {
        Ok(())
    }

    fn step(&mut self, ctx: &StepCtx, ops: Self::Op, _: &OpLog<()>, _: &dyn Lookup) -> Result<Step<()>, Failure> {
        let writer = Writer { base_version: ctx.base, version: ctx.version, timestamp: ctx.timestamp, client_id: ctx.client_id };
        let (applied, changes) = self.canvas.apply(ops, &writer)?;
        if applied.is_empty() {
            return Ok(Step::Noop("nothing to do: the strokes are gone, or a later concurrent update won"));
        }
        let writes = changes
            .into_iter()
            .map(|c| match c {
                StrokeChange::Put(id, s) => Write::PutStroke(id, s),
                StrokeChange::Remove(id) => Write::RemoveStroke(id),
                StrokeChange::Clear => Write::ClearStrokes,
            })
            .collect();
        Ok(Step::Applied(Applied {
            ops: raw_json(&applied),
            cached: (),
            transformed: ctx.base + 1 < ctx.version,
            transformed_position: None,
            writes,
            notifications: vec![],
            summary_changed: false,
            to_all: vec![],
        }))
    }

    /// The strokes are current in their rows; the snapshot only records the version.
    fn snapshot(&self, _: SinceSnapshot) -> Option<String> {
        Some(String::new())
    }

    fn serialize_state<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.canvas.serialize_strokes(s)
    }
}
