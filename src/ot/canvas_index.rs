//! What a canvas room keeps in memory (§8): per stroke its id, box, data size and the last
//! writer's version, timestamp and client (all that last-writer-wins and delete/clear need), and
//! an R*-tree of the boxes. The stroke data itself stays in storage.
//!
//! Why an R*-tree (`rstar`), measured by `cargo bench --bench canvas_index` on 100,000 strokes
//! against a linear scan of packed boxes and a uniform grid: a screen-sized view takes it ~5 µs
//! p50 / ~7 µs p95 where the scan takes ~400 / 550 µs; it needs no cell size (a grid tuned for
//! pixel coordinates degenerates to a scan on a canvas drawn in unit coordinates, and the server
//! cannot know which a client uses); moving a stroke costs ~5 µs and waking bulk-loads 100,000
//! boxes in ~40 ms. A view over more than 5% of the canvas's area is answered by reading the
//! slots in order instead (the tree's answer to a quarter of the canvas cost 0.8 / 2.9 ms with
//! sorting; the scan 0.7 / 0.9 ms).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};
use serde::{Deserialize, Serialize};

use crate::geom::Rect;

type Leaf = GeomWithData<Rectangle<[f64; 2]>, u32>;

fn leaf(r: &Rect, slot: u32) -> Leaf {
    Leaf::new(Rectangle::from_corners([r.min_x, r.min_y], [r.max_x, r.max_y]), slot)
}

/// One stroke's index row, as storage returns it when the room wakes (never the data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrokeRow {
    pub stroke_id: String,
    /// `None`: no box, always in view.
    pub bbox: Option<Rect>,
    /// Version, client timestamp and client of the last write.
    pub version: u64,
    pub timestamp: u64,
    pub client_id: String,
    /// Length of the stored data's JSON text, in bytes.
    pub bytes: u32,
}

/// A stroke's entry, as read or as put back when an operation is undone.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub bbox: Option<Rect>,
    pub version: u64,
    pub timestamp: u64,
    pub client_id: Rc<str>,
    pub bytes: u32,
}

struct Slot {
    id: Rc<str>,
    bbox: Option<Rect>,
    version: u64,
    timestamp: u64,
    client: u32,
    bytes: u32,
}

/// Client ids shared by the strokes they wrote, freed with their last stroke.
#[derive(Default)]
struct Clients {
    names: Vec<(Rc<str>, u32)>,
    by_name: HashMap<Rc<str>, u32>,
    free: Vec<u32>,
}

impl Clients {
    fn acquire(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.by_name.get(name) {
            self.names[i as usize].1 += 1;
            return i;
        }
        let name: Rc<str> = Rc::from(name);
        let i = match self.free.pop() {
            Some(i) => {
                self.names[i as usize] = (Rc::clone(&name), 1);
                i
            }
            None => {
                self.names.push((Rc::clone(&name), 1));
                (self.names.len() - 1) as u32
            }
        };
        self.by_name.insert(name, i);
        i
    }

    fn release(&mut self, i: u32) {
        let (name, count) = &mut self.names[i as usize];
        *count -= 1;
        if *count == 0 {
            self.by_name.remove(&**name);
            self.free.push(i);
        }
    }

    fn name(&self, i: u32) -> &Rc<str> {
        &self.names[i as usize].0
    }
}

/// Slots in fixed chunks: growing never copies (and never holds old and new copies at once,
/// as a doubling `Vec` of 100,000 slots would: 8 MiB more at the peak).
#[derive(Default)]
struct Slots {
    chunks: Vec<Box<[Option<Slot>]>>,
    len: usize,
}

const CHUNK: usize = 2048;

/// Above this share of the canvas's area, a view query scans the slots instead of the tree
/// (measured in `bench/canvas_index.rs`: the tree's answer costs about as much as the scan at
/// a few per cent of the canvas, and several times more at a quarter).
const SCAN_ABOVE: f64 = 0.05;

impl Slots {
    fn get(&self, i: u32) -> Option<&Slot> {
        let i = i as usize;
        self.chunks.get(i / CHUNK).and_then(|c| c[i % CHUNK].as_ref())
    }

    fn slot_mut(&mut self, i: u32) -> Option<&mut Option<Slot>> {
        let i = i as usize;
        self.chunks.get_mut(i / CHUNK).map(|c| &mut c[i % CHUNK])
    }

    /// Puts `slot` at `i`, which is a freed slot or the next new one.
    fn set(&mut self, i: u32, slot: Slot) {
        if i as usize >= self.len {
            if self.len % CHUNK == 0 {
                self.chunks.push((0..CHUNK).map(|_| None).collect());
            }
            self.len += 1;
        }
        if let Some(s) = self.slot_mut(i) {
            *s = Some(slot);
        }
    }
}

#[derive(Default)]
pub struct CanvasIndex {
    by_id: BTreeMap<Rc<str>, u32>,
    slots: Slots,
    free: Vec<u32>,
    clients: Clients,
    tree: RTree<Leaf>,
    /// Strokes without a box: in every view.
    unbounded: BTreeSet<u32>,
    bytes: u64,
}

impl CanvasIndex {
    /// Builds the index from the rows storage holds (bulk-loads the tree).
    pub fn from_rows(rows: Vec<StrokeRow>) -> Result<CanvasIndex, String> {
        let mut index = CanvasIndex::default();
        let mut leaves = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            let slot = index.slots.len as u32;
            let id: Rc<str> = Rc::from(row.stroke_id);
            match &row.bbox {
                Some(b) => leaves.push(leaf(b, slot)),
                None => {
                    index.unbounded.insert(slot);
                }
            }
            index.bytes += u64::from(row.bytes);
            let client = index.clients.acquire(&row.client_id);
            ids.push((Rc::clone(&id), slot));
            index.slots.set(slot, Slot { id, bbox: row.bbox, version: row.version, timestamp: row.timestamp, client, bytes: row.bytes });
        }
        let n = ids.len();
        index.by_id = ids.into_iter().collect();
        if index.by_id.len() != n {
            return Err("stroke rows repeat a stroke id".into());
        }
        index.tree = RTree::bulk_load(leaves);
        Ok(index)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Bytes of stroke data the canvas holds in storage.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn get(&self, id: &str) -> Option<Entry> {
        let slot = self.slot(*self.by_id.get(id)?)?;
        Some(Entry { bbox: slot.bbox, version: slot.version, timestamp: slot.timestamp, client_id: Rc::clone(self.clients.name(slot.client)), bytes: slot.bytes })
    }

    fn slot(&self, i: u32) -> Option<&Slot> {
        self.slots.get(i)
    }

    /// Sets a stroke's entry; returns the one it replaced.
    pub fn put(&mut self, id: &str, e: Entry) -> Option<Entry> {
        let old = self.remove(id);
        let i = self.free.pop().unwrap_or(self.slots.len as u32);
        let id: Rc<str> = Rc::from(id);
        match &e.bbox {
            Some(b) => self.tree.insert(leaf(b, i)),
            None => {
                self.unbounded.insert(i);
            }
        }
        self.bytes += u64::from(e.bytes);
        let client = self.clients.acquire(&e.client_id);
        self.slots.set(i, Slot { id: Rc::clone(&id), bbox: e.bbox, version: e.version, timestamp: e.timestamp, client, bytes: e.bytes });
        self.by_id.insert(id, i);
        old
    }

    pub fn remove(&mut self, id: &str) -> Option<Entry> {
        let i = self.by_id.remove(id)?;
        let slot = self.slots.slot_mut(i)?.take()?;
        match &slot.bbox {
            Some(b) => {
                self.tree.remove(&leaf(b, i));
            }
            None => {
                self.unbounded.remove(&i);
            }
        }
        self.free.push(i);
        self.bytes -= u64::from(slot.bytes);
        let entry = Entry { bbox: slot.bbox, version: slot.version, timestamp: slot.timestamp, client_id: Rc::clone(self.clients.name(slot.client)), bytes: slot.bytes };
        self.clients.release(slot.client);
        Some(entry)
    }

    /// Every stroke id with its data size, in id order (byte order, as SQLite's BINARY collation).
    pub fn ids(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.by_id.iter().filter_map(|(id, &i)| self.slot(i).map(|s| (&**id, s.bytes)))
    }

    /// The strokes in `view` (None: everything, in id order): those whose box intersects it and
    /// those with none, each with its data size.
    pub fn in_view(&self, view: Option<&Rect>) -> Vec<(&str, u32)> {
        match view {
            None => self.ids().collect(),
            Some(view) if self.is_large(view) => self.scan(*view).map(|(_, s)| (&*s.id, s.bytes)).collect(),
            Some(view) => self.named(self.tree_slots(view)),
        }
    }

    /// The strokes in `to` that were not in `from` (None: everything). Strokes without a box are
    /// in every view, so they never enter one.
    pub fn entering(&self, from: Option<&Rect>, to: Option<&Rect>) -> Vec<(&str, u32)> {
        let Some(from) = from else { return Vec::new() };
        let entered = |b: Option<&Rect>| b.is_some_and(|b| !b.intersects(from));
        match to {
            Some(to) if self.is_large(to) => self.scan(*to).filter(|(_, s)| entered(s.bbox.as_ref())).map(|(_, s)| (&*s.id, s.bytes)).collect(),
            Some(to) => self.named(self.tree_slots(to).into_iter().filter(|&i| entered(self.bbox_of(i))).collect()),
            None => self.named(self.tree.iter().map(|l| l.data).filter(|&i| entered(self.bbox_of(i))).collect()),
        }
    }

    /// Whether `view` covers a large part of the canvas: then reading every slot in order is
    /// faster than walking most of the tree and sorting what it found.
    fn is_large(&self, view: &Rect) -> bool {
        if self.tree.size() == 0 {
            return false;
        }
        let env = self.tree.root().envelope();
        let (lo, hi) = (env.lower(), env.upper());
        let area = (hi[0] - lo[0]) * (hi[1] - lo[1]);
        let overlap = (view.max_x.min(hi[0]) - view.min_x.max(lo[0])).max(0.0) * (view.max_y.min(hi[1]) - view.min_y.max(lo[1])).max(0.0);
        area > 0.0 && overlap > area * SCAN_ABOVE
    }

    /// Slots whose box intersects `view`, and those without a box, from the tree.
    fn tree_slots(&self, view: &Rect) -> Vec<u32> {
        let mut slots: Vec<u32> = self.unbounded.iter().copied().collect();
        let env = AABB::from_corners([view.min_x, view.min_y], [view.max_x, view.max_y]);
        slots.extend(self.tree.locate_in_envelope_intersecting(env).map(|l| l.data));
        slots
    }

    /// Every stroke in `view` (those without a box included), reading the slots in order.
    fn scan(&self, view: Rect) -> impl Iterator<Item = (u32, &Slot)> + '_ {
        let all = self.slots.chunks.iter().flat_map(|c| c.iter()).enumerate();
        all.filter_map(|(i, s)| s.as_ref().map(|s| (i as u32, s))).filter(move |(_, s)| s.bbox.as_ref().is_none_or(|b| b.intersects(&view)))
    }

    fn bbox_of(&self, i: u32) -> Option<&Rect> {
        self.slot(i).and_then(|s| s.bbox.as_ref())
    }

    /// Ids and sizes of `slots`, in slot order: sorting the numbers first makes the slot reads
    /// sequential (sorting 25,000 ids by text instead cost milliseconds in cache misses).
    fn named(&self, mut slots: Vec<u32>) -> Vec<(&str, u32)> {
        slots.sort_unstable();
        slots.into_iter().filter_map(|i| self.slot(i).map(|s| (&*s.id, s.bytes))).collect()
    }
}

impl std::fmt::Debug for CanvasIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanvasIndex").field("strokes", &self.len()).field("bytes", &self.bytes).finish()
    }
}
