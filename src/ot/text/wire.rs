//! The wire side of text operations: sequential primitives in and out of traversals, exactly
//! preserving where inserted text is anchored (PROTOCOL §3.3), and diffs.

use serde::{Deserialize, Serialize};

use super::{char_len, compose, Comp, TextOp};

/// One primitive as it travels on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TextPrimitive {
    Insert { position: usize, content: String },
    Delete { position: usize, length: usize },
}

impl TextPrimitive {
    pub fn position(&self) -> usize {
        match self {
            TextPrimitive::Insert { position, .. } | TextPrimitive::Delete { position, .. } => *position,
        }
    }
}

/// Why a primitive list cannot be applied to a text of a given length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextError {
    Empty,
    EmptyInsert,
    EmptyDelete,
    OutOfBounds { position: usize, length: usize, doc_len: usize },
}

impl std::fmt::Display for TextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextError::Empty => write!(f, "operation has no primitives"),
            TextError::EmptyInsert => write!(f, "insert content is empty"),
            TextError::EmptyDelete => write!(f, "delete length is zero"),
            TextError::OutOfBounds { position, length, doc_len } => write!(
                f,
                "range {position}..{} is outside the document (length {doc_len})",
                position.saturating_add(*length)
            ),
        }
    }
}

impl TextOp {
    fn from_primitive(p: &TextPrimitive, doc_len: usize) -> Result<Self, TextError> {
        let mut op = TextOp::default();
        match p {
            TextPrimitive::Insert { position, content } => {
                if content.is_empty() {
                    return Err(TextError::EmptyInsert);
                }
                if *position > doc_len {
                    return Err(TextError::OutOfBounds { position: *position, length: 0, doc_len });
                }
                op.push(Comp::Retain(*position));
                op.push(Comp::Insert(content.clone(), char_len(content)));
            }
            TextPrimitive::Delete { position, length } => {
                if *length == 0 {
                    return Err(TextError::EmptyDelete);
                }
                match position.checked_add(*length) {
                    Some(end) if end <= doc_len => {}
                    _ => {
                        return Err(TextError::OutOfBounds {
                            position: *position,
                            length: *length,
                            doc_len,
                        })
                    }
                }
                op.push(Comp::Retain(*position));
                op.push(Comp::Delete(*length));
            }
        }
        Ok(op.trim())
    }

    /// Rebuilds the traversal of primitives that were validated when they were applied.
    pub fn from_applied(prims: &[TextPrimitive]) -> Self {
        prims.iter().fold(TextOp::default(), |acc, p| {
            let mut step = TextOp::default();
            match p {
                TextPrimitive::Insert { position, content } => {
                    step.push(Comp::Retain(*position));
                    step.push(Comp::Insert(content.clone(), char_len(content)));
                }
                TextPrimitive::Delete { position, length } => {
                    step.push(Comp::Retain(*position));
                    step.push(Comp::Delete(*length));
                }
            }
            compose(&acc, &step.trim())
        })
    }

    /// Builds one traversal from sequential primitives, validating each against the text length
    /// it will meet (starting from `base_len`).
    pub fn from_primitives(prims: &[TextPrimitive], base_len: usize) -> Result<Self, TextError> {
        if prims.is_empty() {
            return Err(TextError::Empty);
        }
        let mut acc = TextOp::default();
        let mut len = base_len;
        for p in prims {
            let step = TextOp::from_primitive(p, len)?;
            len = (len as isize + step.len_delta()) as usize;
            acc = compose(&acc, &step);
        }
        Ok(acc)
    }

    /// The sequential primitive form of this traversal.
    pub fn to_primitives(&self) -> Vec<TextPrimitive> {
        let mut out = Vec::new();
        self.each_primitive(|position, c| {
            out.push(match c {
                Comp::Insert(s, _) => TextPrimitive::Insert { position, content: s.clone() },
                _ => TextPrimitive::Delete { position, length: c.len() },
            })
        });
        out
    }

    /// Calls `f(position, component)` for each insert and delete in sequential order. A delete
    /// followed by an insert at one spot is sent as the insert (after the text still to be
    /// deleted) and then the delete, so the text stays anchored after the deleted range: the
    /// form `[delete p, insert p]` means the other anchoring (§3.3), and the wire must not lose
    /// which one the op has.
    fn each_primitive(&self, mut f: impl FnMut(usize, &Comp)) {
        let mut pos = 0;
        let mut pending: Option<&Comp> = None; // a delete not yet emitted, at `pos`
        for c in &self.comps {
            match c {
                Comp::Retain(n) => {
                    if let Some(d) = pending.take() {
                        f(pos, d);
                    }
                    pos += n;
                }
                Comp::Delete(_) => {
                    if let Some(d) = pending.replace(c) {
                        f(pos, d); // cannot happen in a normalised op; kept exact anyway
                    }
                }
                Comp::Insert(_, n) => {
                    match pending.take() {
                        Some(d) => {
                            f(pos + d.len(), c);
                            f(pos, d);
                        }
                        None => f(pos, c),
                    }
                    pos += n;
                }
            }
        }
        if let Some(d) = pending {
            f(pos, d);
        }
    }
}

/// Primitives turning `old` into `new`: one delete and one insert around the common prefix and
/// suffix (code points), or nothing when they are equal.
pub fn diff(old: &str, new: &str) -> Vec<TextPrimitive> {
    let old: Vec<char> = old.chars().collect();
    let new: Vec<char> = new.chars().collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..].iter().rev().zip(new[prefix..].iter().rev()).take_while(|(a, b)| a == b).count();
    let deleted = old.len() - prefix - suffix;
    let inserted: String = new[prefix..new.len() - suffix].iter().collect();
    let mut out = Vec::new();
    if deleted > 0 {
        out.push(TextPrimitive::Delete { position: prefix, length: deleted });
    }
    if !inserted.is_empty() {
        out.push(TextPrimitive::Insert { position: prefix, content: inserted });
    }
    out
}

/// Serialises a traversal as its sequential primitives without copying the inserted text.
pub struct Sequential<'a>(pub &'a TextOp);

impl serde::Serialize for Sequential<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Prim<'b>(usize, &'b Comp);
        impl serde::Serialize for Prim<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(3))?;
                match self.1 {
                    Comp::Insert(text, _) => {
                        m.serialize_entry("type", "insert")?;
                        m.serialize_entry("position", &self.0)?;
                        m.serialize_entry("content", text)?;
                    }
                    Comp::Delete(n) => {
                        m.serialize_entry("type", "delete")?;
                        m.serialize_entry("position", &self.0)?;
                        m.serialize_entry("length", n)?;
                    }
                    Comp::Retain(_) => {}
                }
                m.end()
            }
        }
        let mut seq = s.serialize_seq(None)?;
        let mut result = Ok(());
        self.0.each_primitive(|pos, c| {
            if result.is_ok() {
                result = seq.serialize_element(&Prim(pos, c));
            }
        });
        result?;
        seq.end()
    }
}

impl TextOp {
    /// Position of the first primitive of the sequential form.
    pub fn first_position(&self) -> Option<usize> {
        let mut first = None;
        self.each_primitive(|pos, _| {
            first.get_or_insert(pos);
        });
        first
    }
}
