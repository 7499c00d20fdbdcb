//! A client-side text OT written independently of `src/ot/text.rs`, so that simulations check
//! the server against the protocol's rule rather than against itself.
//!
//! An operation is kept as the protocol's sequential primitives; composing two is concatenating
//! them. To transform, each operation is laid out over the characters of its base text: which
//! base characters it deletes, and what it inserts into each gap between them. Text inserted where
//! the same operation deletes is anchored at the start of the deleted range (PROTOCOL §3.3
//! [1.1]); two operations inserting into one gap are ordered by the tie-break flag.

use sidechain_edge::ot::text::TextPrimitive;

/// One operation laid out over a base text of `deleted.len()` characters.
struct Layout {
    deleted: Vec<bool>,
    /// Text inserted into gap `g` (before base character `g`; gap `n` is the end).
    gaps: Vec<String>,
}

#[derive(Clone)]
enum Item {
    Base(usize),
    New(char),
}

fn layout(prims: &[TextPrimitive], base_len: usize) -> Layout {
    // Deleted base characters stay as tombstones, invisible to positions.
    let mut items: Vec<(Item, bool)> = (0..base_len).map(|i| (Item::Base(i), true)).collect();
    let visible_index = |items: &[(Item, bool)], pos: usize| -> Option<usize> {
        items.iter().enumerate().filter(|(_, (_, v))| *v).nth(pos).map(|(i, _)| i)
    };
    for p in prims {
        match p {
            TextPrimitive::Insert { position, content } => {
                // Right after the visible character before `position`, ahead of any tombstones.
                let at = if *position == 0 { 0 } else { visible_index(&items, position - 1).expect("insert in range") + 1 };
                for (k, c) in content.chars().enumerate() {
                    items.insert(at + k, (Item::New(c), true));
                }
            }
            TextPrimitive::Delete { position, length } => {
                for _ in 0..*length {
                    let i = visible_index(&items, *position).expect("delete in range");
                    match items[i].0 {
                        Item::Base(_) => items[i].1 = false,
                        Item::New(_) => {
                            items.remove(i);
                        }
                    }
                }
            }
        }
    }
    let mut out = Layout { deleted: vec![false; base_len], gaps: vec![String::new(); base_len + 1] };
    let mut gap = 0;
    for (item, visible) in items {
        match item {
            Item::Base(i) => {
                out.deleted[i] = !visible;
                gap = i + 1;
            }
            Item::New(c) => out.gaps[gap].push(c),
        }
    }
    out
}

fn len_after(prims: &[TextPrimitive], base_len: usize) -> usize {
    prims.iter().fold(base_len, |n, p| match p {
        TextPrimitive::Insert { content, .. } => n + content.chars().count(),
        TextPrimitive::Delete { length, .. } => n - length,
    })
}

/// `a` rewritten to apply after `b`; both were made against a text of `base_len` characters.
/// `a_first`: at a gap where both insert, `a`'s text goes first.
pub fn transform(a: &[TextPrimitive], b: &[TextPrimitive], base_len: usize, a_first: bool) -> Vec<TextPrimitive> {
    let (la, lb) = (layout(a, base_len), layout(b, base_len));
    let mut out = Emitter::default();
    for g in 0..=base_len {
        if a_first {
            out.insert(&la.gaps[g]);
            out.retain(lb.gaps[g].chars().count());
        } else {
            out.retain(lb.gaps[g].chars().count());
            out.insert(&la.gaps[g]);
        }
        if g < base_len && !lb.deleted[g] {
            if la.deleted[g] {
                out.delete();
            } else {
                out.retain(1);
            }
        }
    }
    out.finish()
}

/// Writes a left-to-right walk as sequential primitives. Deleted characters wait until something
/// is kept, so that text inserted right after them is sent first (positioned after them) and
/// stays anchored after the deleted range rather than at its start.
#[derive(Default)]
struct Emitter {
    out: Vec<TextPrimitive>,
    pos: usize,
    pending_delete: usize,
}

impl Emitter {
    fn flush(&mut self) {
        if self.pending_delete > 0 {
            self.out.push(TextPrimitive::Delete { position: self.pos, length: self.pending_delete });
            self.pending_delete = 0;
        }
    }
    fn retain(&mut self, n: usize) {
        if n > 0 {
            self.flush();
            self.pos += n;
        }
    }
    fn delete(&mut self) {
        self.pending_delete += 1;
    }
    fn insert(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        self.out.push(TextPrimitive::Insert { position: self.pos + self.pending_delete, content: s.to_string() });
        self.flush();
        self.pos += s.chars().count();
    }
    fn finish(mut self) -> Vec<TextPrimitive> {
        self.flush();
        self.out
    }
}

/// Applies sequential primitives to a text.
pub fn apply(text: &str, prims: &[TextPrimitive]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for p in prims {
        match p {
            TextPrimitive::Insert { position, content } => {
                let tail = chars.split_off(*position);
                chars.extend(content.chars());
                chars.extend(tail);
            }
            TextPrimitive::Delete { position, length } => {
                chars.drain(*position..position + length);
            }
        }
    }
    chars.into_iter().collect()
}

/// A pair transform for the client rule: (mine after theirs, theirs after mine).
pub fn transform_pair(
    mine: &[TextPrimitive],
    theirs: &[TextPrimitive],
    base_len: usize,
    mine_first: bool,
) -> (Vec<TextPrimitive>, Vec<TextPrimitive>) {
    (transform(mine, theirs, base_len, mine_first), transform(theirs, mine, base_len, !mine_first))
}

pub fn length_after(prims: &[TextPrimitive], base_len: usize) -> usize {
    len_after(prims, base_len)
}
