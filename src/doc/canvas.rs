//! Canvas documents: strokes settled per stroke by [`crate::ot::canvas`]. The room holds only
//! the stroke index; the data lives in rows written with every operation and is read back
//! through [`Lookup::strokes`] in pages when a socket needs it (§8). Waking reads the index rows
//! and replays nothing.

use serde::Serializer;
use serde_json::{Map, Value};

use super::{raw_json, Applied, Document, Step, StepCtx};
use crate::limits;
use crate::model::{LogEntry, Lookup, OpLog, SavedRoom, SinceSnapshot, Write};
use crate::ot::canvas::{Canvas, CanvasOp, Outcome, StrokeChange, Writer};
use crate::protocol::{Code, DocKind, Failure};

#[derive(Debug)]
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
    const STREAMS_STATE: bool = true;
    type Op = Vec<CanvasOp>;
    type Cached = ();

    fn parse_op(op: &Map<String, Value>) -> Result<Self::Op, Failure> {
        CanvasOp::parse(op)
    }

    fn restore(stored: &mut SavedRoom) -> Result<Self, String> {
        Ok(CanvasDoc { canvas: Canvas::from_rows(std::mem::take(&mut stored.stroke_rows))? })
    }

    fn replay(&mut self, entry: &LogEntry) -> Result<(), String> {
        Err(format!("canvas log is ahead of its strokes at version {}", entry.version))
    }

    fn cache(_: &LogEntry) -> Result<(), String> {
        Ok(())
    }

    fn step(&mut self, ctx: &StepCtx, ops: Self::Op, _: &OpLog<()>, _: &dyn Lookup) -> Result<Step<()>, Failure> {
        let writer = Writer { base_version: ctx.base, version: ctx.version, timestamp: ctx.timestamp, client_id: ctx.client_id };
        let Outcome { applied, changes, reach } = self.canvas.apply(ops, &writer)?;
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
            reach,
        }))
    }

    /// The strokes are current in their rows; the snapshot only records the version.
    fn snapshot(&self, _: SinceSnapshot) -> Option<String> {
        Some(String::new())
    }

    /// The data is in storage: callers stream it with [`write_strokes`] instead.
    fn serialize_state<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("a canvas's strokes are read from storage in pages"))
    }
}

/// Splits strokes `(id, data bytes)` into pages whose JSON takes at most `budget` bytes (a
/// stroke larger than the budget gets a page of its own).
pub fn pages<'a>(strokes: &'a [(&'a str, u32)], budget: usize) -> Vec<&'a [(&'a str, u32)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 2usize);
    for (i, (id, b)) in strokes.iter().enumerate() {
        let b = id.len() + 4 + *b as usize;
        if i > start && bytes + b > budget {
            out.push(&strokes[start..i]);
            (start, bytes) = (i, 2);
        }
        bytes += b;
    }
    if start < strokes.len() {
        out.push(&strokes[start..]);
    }
    out
}

/// What `{…}` of `page` takes as JSON, unless ids need escaping: the capacity to reserve.
pub fn page_bytes(page: &[(&str, u32)]) -> usize {
    2 + page.iter().map(|(id, b)| id.len() + 4 + *b as usize).sum::<usize>()
}

/// Appends `{"stroke_id": data, …}` for `page` to `buf`, reading the data through `lookup` a
/// bounded number of ids at a time. Every stroke of the page must be in storage.
pub fn write_strokes(buf: &mut String, page: &[(&str, u32)], lookup: &dyn Lookup) -> Result<(), Failure> {
    buf.push('{');
    let mut first = true;
    for chunk in page.chunks(limits::STROKE_READ_IDS) {
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| *id).collect();
        let mut found = 0;
        let mut corrupt = None;
        lookup
            .strokes(&ids, &mut |id, data| {
                // Stored data was valid JSON when written; a corrupt row must not break the frame.
                if serde_json::from_str::<serde::de::IgnoredAny>(data).is_err() {
                    corrupt = Some(id.to_string());
                    return;
                }
                if !std::mem::take(&mut first) {
                    buf.push(',');
                }
                push_json_str(buf, id);
                buf.push(':');
                buf.push_str(data);
                found += 1;
            })
            .map_err(|e| Failure::new(Code::Internal, format!("storage read failed: {e}")))?;
        if let Some(id) = corrupt {
            return Err(Failure::new(Code::Internal, format!("stored stroke {id:?} is not JSON")));
        }
        if found != chunk.len() {
            return Err(Failure::new(Code::Internal, format!("{} stroke rows are missing from storage", chunk.len() - found)));
        }
    }
    buf.push('}');
    Ok(())
}

/// Appends `s` as a JSON string.
pub fn push_json_str(buf: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push('"');
        buf.push_str(s);
        buf.push('"');
    } else {
        buf.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    }
}
