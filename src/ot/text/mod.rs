//! Text operational transform.
//!
//! Clients speak in *sequential primitives* (`insert {position, content}`, `delete {position,
//! length}`), each position relative to the text after the previous primitive. Internally an
//! operation is a *traversal*: a left-to-right walk over the base text made of retain / insert /
//! delete components. Traversals compose and transform with the classic linear algorithms, and
//! convert back to sequential primitives for the wire. All lengths count Unicode scalar values.

use ropey::Rope;

mod wire;

pub use wire::{diff, Sequential, TextError, TextPrimitive};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Comp {
    Retain(usize),
    /// Inserted text with its length in code points, cached.
    Insert(String, usize),
    Delete(usize),
}

impl Comp {
    fn len(&self) -> usize {
        match self {
            Comp::Retain(n) | Comp::Delete(n) | Comp::Insert(_, n) => *n,
        }
    }
}

/// A traversal over a base text. Normalised: no empty components, neighbours of one kind merged,
/// no trailing retain. An insert and a delete at one spot keep their order, because it says where
/// the text is anchored (PROTOCOL §3.3): `[insert, delete]` puts the text at the start of the
/// deleted range, `[delete, insert]` after it; `compose` produces the one the primitives meant,
/// and a concurrent insert at the anchor ties with it and the client_id rule decides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextOp {
    comps: Vec<Comp>,
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Splits `s` after `n` code points.
fn split_chars(s: &str, n: usize) -> (&str, &str) {
    match s.char_indices().nth(n) {
        Some((byte, _)) => s.split_at(byte),
        None => (s, ""),
    }
}

impl TextOp {
    pub fn is_noop(&self) -> bool {
        self.comps.iter().all(|c| matches!(c, Comp::Retain(_)))
    }

    fn push(&mut self, comp: Comp) {
        if comp.len() == 0 {
            return;
        }
        match (self.comps.last_mut(), comp) {
            (Some(Comp::Retain(a)), Comp::Retain(b)) => *a += b,
            (Some(Comp::Delete(a)), Comp::Delete(b)) => *a += b,
            (Some(Comp::Insert(s, n)), Comp::Insert(t, m)) => {
                s.push_str(&t);
                *n += m;
            }
            (_, comp) => self.comps.push(comp),
        }
    }

    fn trim(mut self) -> Self {
        if let Some(Comp::Retain(_)) = self.comps.last() {
            self.comps.pop();
        }
        self
    }

    /// Code points the base text must have at least (what the traversal walks over).
    pub fn base_len(&self) -> usize {
        self.comps
            .iter()
            .map(|c| match c {
                Comp::Retain(n) | Comp::Delete(n) => *n,
                Comp::Insert(..) => 0,
            })
            .sum()
    }

    /// Change in length, in code points.
    pub fn len_delta(&self) -> isize {
        self.comps
            .iter()
            .map(|c| match c {
                Comp::Insert(_, n) => *n as isize,
                Comp::Delete(n) => -(*n as isize),
                Comp::Retain(_) => 0,
            })
            .sum()
    }

    /// Bytes of UTF-8 this op inserts.
    pub fn inserted_bytes(&self) -> usize {
        self.comps
            .iter()
            .map(|c| if let Comp::Insert(s, _) = c { s.len() } else { 0 })
            .sum()
    }

    /// Bytes of UTF-8 this op removes from `doc` (positions are in `doc`'s coordinates).
    pub fn deleted_bytes(&self, doc: &Rope) -> usize {
        let mut src = 0;
        let mut bytes = 0;
        for c in &self.comps {
            match c {
                Comp::Retain(n) => src += n,
                Comp::Delete(n) => {
                    bytes += doc.char_to_byte(src + n) - doc.char_to_byte(src);
                    src += n;
                }
                Comp::Insert(..) => {}
            }
        }
        bytes
    }

    /// Applies the op to `doc`. The caller guarantees `base_len() <= doc.len_chars()`.
    pub fn apply(&self, doc: &mut Rope) {
        let mut pos = 0;
        for c in &self.comps {
            match c {
                Comp::Retain(n) => pos += n,
                Comp::Insert(s, n) => {
                    doc.insert(pos, s);
                    pos += n;
                }
                Comp::Delete(n) => doc.remove(pos..pos + n),
            }
        }
    }
}

/// Reads a component list piece by piece, splitting retains, deletes and (where allowed) inserts.
struct Reader<'a> {
    comps: &'a [Comp],
    idx: usize,
    /// Code points already consumed from `comps[idx]`.
    offset: usize,
}

impl<'a> Reader<'a> {
    fn new(op: &'a TextOp) -> Self {
        Reader { comps: &op.comps, idx: 0, offset: 0 }
    }

    fn peek(&self) -> Option<&'a Comp> {
        self.comps.get(self.idx)
    }

    /// Length left in the current component.
    fn remaining(&self) -> usize {
        self.peek().map_or(0, |c| c.len() - self.offset)
    }

    /// Takes up to `n` code points of the current component.
    fn take(&mut self, n: usize) -> Comp {
        let comp = &self.comps[self.idx];
        let n = n.min(comp.len() - self.offset);
        let piece = match comp {
            Comp::Retain(_) => Comp::Retain(n),
            Comp::Delete(_) => Comp::Delete(n),
            Comp::Insert(s, _) => {
                let (_, rest) = split_chars(s, self.offset);
                let (head, _) = split_chars(rest, n);
                Comp::Insert(head.to_string(), n)
            }
        };
        self.offset += n;
        if self.offset == comp.len() {
            self.idx += 1;
            self.offset = 0;
        }
        piece
    }

    fn take_all(&mut self) -> Comp {
        let n = self.remaining();
        self.take(n)
    }
}

/// `a` then `b` as one traversal over `a`'s base.
pub fn compose(a: &TextOp, b: &TextOp) -> TextOp {
    let mut out = TextOp::default();
    let (mut ra, mut rb) = (Reader::new(a), Reader::new(b));
    loop {
        match (ra.peek(), rb.peek()) {
            (_, Some(Comp::Insert(..))) => out.push(rb.take_all()),
            (Some(Comp::Delete(_)), _) => out.push(ra.take_all()),
            (None, None) => break,
            // Past the end of one side its implicit trailing retain lets the other through.
            (Some(_), None) => out.push(ra.take_all()),
            (None, Some(_)) => out.push(rb.take_all()),
            (Some(ca), Some(cb)) => {
                let n = ra.remaining().min(rb.remaining());
                let piece_a = ra.take(n);
                rb.take(n);
                match (ca, cb) {
                    (Comp::Retain(_), Comp::Retain(_)) => out.push(Comp::Retain(n)),
                    (Comp::Retain(_), Comp::Delete(_)) => out.push(Comp::Delete(n)),
                    (Comp::Insert(..), Comp::Retain(_)) => out.push(piece_a),
                    // Inserted by `a`, deleted by `b`: nothing remains.
                    (Comp::Insert(..), Comp::Delete(_)) => {}
                    _ => unreachable!("inserts of b and deletes of a are handled above"),
                }
            }
        }
    }
    out.trim()
}

/// Transforms `a` so that it applies after `b`, where both were made against the same text.
/// `a_first` decides concurrent inserts at one spot: when true `a`'s text lands before `b`'s.
/// With `b' = transform(b, a, !a_first)`, `b ∘ a' == a ∘ b'`.
pub fn transform(a: &TextOp, b: &TextOp, a_first: bool) -> TextOp {
    let mut out = TextOp::default();
    let (mut ra, mut rb) = (Reader::new(a), Reader::new(b));
    loop {
        match (ra.peek(), rb.peek()) {
            (Some(Comp::Insert(..)), next_b) if a_first || !matches!(next_b, Some(Comp::Insert(..))) => {
                out.push(ra.take_all())
            }
            (_, Some(Comp::Insert(_, n))) => {
                out.push(Comp::Retain(*n));
                rb.take_all();
            }
            (None, _) => break,
            (Some(_), None) => out.push(ra.take_all()),
            (Some(ca), Some(cb)) => {
                let n = ra.remaining().min(rb.remaining());
                ra.take(n);
                rb.take(n);
                match (ca, cb) {
                    (Comp::Retain(_), Comp::Retain(_)) => out.push(Comp::Retain(n)),
                    (Comp::Delete(_), Comp::Retain(_)) => out.push(Comp::Delete(n)),
                    // Text `b` deleted: `a` neither keeps nor deletes it again.
                    (Comp::Retain(_) | Comp::Delete(_), Comp::Delete(_)) => {}
                    _ => unreachable!("inserts are handled above"),
                }
            }
        }
    }
    out.trim()
}
