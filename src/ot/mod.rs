//! Operational-transform engines, one per document kind, and parsing of their primitives.

pub mod canvas;
pub mod canvas_index;
pub mod engagement;
pub mod text;

use serde_json::{Map, Value};

use crate::limits;
use crate::protocol::{opt_u64, Failure, Code};
use text::TextPrimitive;

/// Reads an operation's primitives: the flat one-primitive form (the op object itself), or
/// `ops: [...]` applied in sequence as one operation. An empty list is allowed: a client whose
/// in-flight op rebased into nothing still resends it after a reconnect, and gets `noop`.
pub fn parse_primitives<T>(op: &Map<String, Value>, parse_one: impl Fn(&Map<String, Value>) -> Result<T, Failure>) -> Result<Vec<T>, Failure> {
    match op.get("ops") {
        Some(Value::Array(items)) => {
            if items.len() > limits::MAX_PRIMITIVES_PER_OP {
                return Err(Failure::new(Code::TooLarge, "too many primitives in one operation"));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Object(m) => parse_one(m).map_err(|f| Failure::new(f.code, format!("ops[{i}]: {}", f.message))),
                    _ => Err(Failure::bad(format!("ops[{i}] must be an object"))),
                })
                .collect()
        }
        Some(Value::Null) | None => parse_one(op).map(|p| vec![p]),
        Some(_) => Err(Failure::bad("ops must be an array")),
    }
}

/// Parses the primitives of a text operation.
pub fn parse_text_primitives(op: &Map<String, Value>) -> Result<Vec<TextPrimitive>, Failure> {
    parse_primitives(op, parse_text_primitive)
}

fn parse_text_primitive(m: &Map<String, Value>) -> Result<TextPrimitive, Failure> {
    let kind = match m.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(Failure::bad("operation type must be a string")),
        None => return Err(Failure::bad("operation type is required")),
    };
    if !matches!(kind, "insert" | "delete") {
        let why = match kind {
            "stroke_create" | "stroke_update" | "stroke_delete" | "clear_all" | "modify" => "is not an operation on a text document",
            _ => "is not a known operation type",
        };
        return Err(Failure::new(Code::InvalidOperation, format!("{kind:?} {why}")));
    }
    let position = opt_u64(m, "position")?.ok_or_else(|| Failure::bad("position is required"))?;
    let position = usize::try_from(position).map_err(|_| Failure::new(Code::InvalidOperation, "position is too large"))?;
    let content = match m.get("content") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(Failure::bad("content must be a string")),
    };
    match kind {
        "insert" => {
            let content = content.ok_or_else(|| Failure::bad("insert needs content"))?;
            if content.len() > limits::MAX_INSERT_BYTES {
                return Err(Failure::new(Code::TooLarge, "insert exceeds 64 KiB"));
            }
            Ok(TextPrimitive::Insert { position, content: content.clone() })
        }
        _ => {
            let length = match (opt_u64(m, "length")?, content) {
                (Some(n), _) => usize::try_from(n).map_err(|_| Failure::new(Code::InvalidOperation, "length is too large"))?,
                (None, Some(c)) => c.chars().count(),
                (None, None) => return Err(Failure::bad("delete needs length or content")),
            };
            Ok(TextPrimitive::Delete { position, length })
        }
    }
}
