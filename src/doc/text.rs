//! Text documents: a Unicode string edited with the traversal OT of [`crate::ot::text`].

use std::borrow::Cow;

use ropey::Rope;
use serde::{Deserialize, Serializer};
use serde_json::{Map, Value};

use super::{raw_json, Applied, Document, Step, StepCtx};
use crate::limits;
use crate::ot::parse_text_primitives;
use crate::ot::text::{transform, Sequential, TextOp, TextPrimitive};
use crate::protocol::{Code, DocKind, Failure};
use crate::model::{LogEntry, Lookup, OpLog, OpRequest, SavedRoom, SinceSnapshot};

pub struct TextDoc {
    rope: Rope,
}

impl TextDoc {
    pub fn len_chars(&self) -> usize {
        self.rope.len_chars()
    }
    pub fn len_bytes(&self) -> usize {
        self.rope.len_bytes()
    }
}

fn traversal_of(entry: &LogEntry) -> Result<TextOp, String> {
    let prims: Vec<TextPrimitive> =
        serde_json::from_str(entry.ops.get()).map_err(|e| format!("bad text op at version {}: {e}", entry.version))?;
    Ok(TextOp::from_applied(&prims))
}

impl Document for TextDoc {
    const KIND: DocKind = DocKind::Text;
    const STATE_FIELD: &'static str = "content";
    type Op = Vec<TextPrimitive>;
    type Cached = TextOp;

    fn parse_op(op: &Map<String, Value>) -> Result<Self::Op, Failure> {
        parse_text_primitives(op)
    }

    fn parse_frame_fast(text: &str, socket_client_id: &str) -> Option<(Option<String>, OpRequest<Self::Op>)> {
        text_operation(text, socket_client_id)
    }

    fn original_position(op: &Self::Op) -> Option<usize> {
        op.first().map(TextPrimitive::position)
    }

    fn restore(stored: &mut SavedRoom) -> Result<Self, String> {
        Ok(TextDoc { rope: Rope::from_str(&std::mem::take(&mut stored.snapshot)) })
    }

    fn replay(&mut self, entry: &LogEntry) -> Result<TextOp, String> {
        let op = traversal_of(entry)?;
        if op.base_len() > self.rope.len_chars() {
            return Err(format!("log is inconsistent at version {}", entry.version));
        }
        op.apply(&mut self.rope);
        Ok(op)
    }

    fn cache(entry: &LogEntry) -> Result<TextOp, String> {
        traversal_of(entry)
    }

    fn step(&mut self, ctx: &StepCtx, prims: Self::Op, log: &OpLog<TextOp>, _: &dyn Lookup) -> Result<Step<TextOp>, Failure> {
        if prims.is_empty() {
            return Ok(Step::Noop("the operation is empty"));
        }
        let base_len = log.after(ctx.base).fold(self.rope.len_chars() as isize, |len, (_, op)| len - op.len_delta());
        let base_len = usize::try_from(base_len).map_err(|_| Failure::new(Code::Internal, "log lengths do not add up"))?;
        let mut op = TextOp::from_primitives(&prims, base_len).map_err(|e| Failure::new(Code::InvalidOperation, e.to_string()))?;
        let mut transformed = false;
        for (entry, other) in log.after(ctx.base) {
            let mine_first = ctx.client_id.as_bytes() < entry.client_id.as_bytes();
            op = transform(&op, other, mine_first);
            transformed = true;
        }
        if op.is_noop() {
            return Ok(Step::Noop("the operation was transformed into nothing by concurrent edits"));
        }
        // Transforms preserve lengths; if that ever failed, refuse rather than let the rope panic.
        if op.base_len() > self.rope.len_chars() {
            return Err(Failure::new(Code::Internal, "transformed operation does not fit the document"));
        }
        let new_bytes = self.rope.len_bytes() + op.inserted_bytes() - op.deleted_bytes(&self.rope);
        if new_bytes > limits::MAX_TEXT_BYTES {
            return Err(Failure::new(Code::TooLarge, "the document would exceed 1 MiB of text"));
        }
        op.apply(&mut self.rope);
        Ok(Step::Applied(Applied {
            ops: raw_json(&Sequential(&op)),
            transformed_position: op.first_position(),
            cached: op,
            transformed,
            writes: vec![],
            notifications: vec![],
            summary_changed: false,
            to_all: vec![],
            reach: crate::geom::Reach::All,
        }))
    }

    fn snapshot(&self, since: SinceSnapshot) -> Option<String> {
        let due = since.ops >= limits::SNAPSHOT_EVERY_OPS || since.bytes >= limits::SNAPSHOT_EVERY_BYTES;
        due.then(|| self.rope.to_string())
    }

    fn serialize_state<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.rope)
    }

    fn text(&self) -> Option<String> {
        Some(self.rope.to_string())
    }
}

// The fast read of a text `operation` frame: the common shape (`ops: [...]` with the socket's
// client_id) deserialised straight into typed fields, borrowing the frame's text. Anything
// unusual (the flat form, integer ids, a field of the wrong type, a limit exceeded) returns
// `None` and goes to the general parser, which decides and words the error, so both paths
// accept exactly the same operations.

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Payload<'a>,
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(default, borrow)]
    document_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    client_id: Option<Cow<'a, str>>,
    /// camelCase fields (§4.7) are the general parser's to normalise.
    #[serde(default, rename = "clientId")]
    client_id_camel: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "documentId")]
    document_id_camel: Option<serde::de::IgnoredAny>,
    seq: u64,
    version: u64,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(borrow)]
    ops: Vec<Prim<'a>>,
}

#[derive(Deserialize)]
struct Prim<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    position: u64,
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default)]
    length: Option<u64>,
}

fn primitive(p: Prim) -> Option<TextPrimitive> {
    let position = usize::try_from(p.position).ok()?;
    match (p.kind.as_ref(), p.content, p.length) {
        ("insert", Some(content), _) if content.len() <= limits::MAX_INSERT_BYTES => {
            Some(TextPrimitive::Insert { position, content: content.into_owned() })
        }
        ("delete", _, Some(length)) => Some(TextPrimitive::Delete { position, length: usize::try_from(length).ok()? }),
        ("delete", Some(content), None) => Some(TextPrimitive::Delete { position, length: content.chars().count() }),
        _ => None,
    }
}

/// The message id and the request, when the frame has the common shape.
fn text_operation(text: &str, socket_client_id: &str) -> Option<(Option<String>, OpRequest<Vec<TextPrimitive>>)> {
    if text.len() > limits::MAX_FRAME_BYTES {
        return None;
    }
    let f: Frame = serde_json::from_str(text).ok()?;
    let p = f.payload;
    let id_ok = f.id.as_ref().is_none_or(|id| id.chars().count() <= limits::MAX_MESSAGE_ID_CHARS);
    let client_ok = p.client_id.as_deref().is_none_or(|c| c == socket_client_id);
    let camel = p.client_id_camel.is_some() || p.document_id_camel.is_some();
    if f.kind != "operation" || camel || !id_ok || !client_ok || p.seq == 0 || p.ops.len() > limits::MAX_PRIMITIVES_PER_OP {
        return None;
    }
    let body = p.ops.into_iter().map(primitive).collect::<Option<Vec<_>>>()?;
    let req = OpRequest {
        document_id: p.document_id.map(Cow::into_owned),
        client_id: socket_client_id.to_string(),
        seq: Some(p.seq),
        version: Some(p.version),
        timestamp: p.timestamp,
        body,
    };
    Some((f.id.map(Cow::into_owned), req))
}
