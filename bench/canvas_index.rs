//! Canvas viewport queries on 100,000 strokes (figures, not pass/fail):
//! `cargo bench --bench canvas_index`. The room's index (`CanvasIndex`, an R*-tree) against the
//! two alternatives it was chosen over: a linear scan of packed boxes and a uniform grid, on
//! three layouts (uniform on a 100,000-unit canvas, clustered, and the same drawing in unit
//! coordinates, where a grid's cell size is a guess). Views are a 1920×1080 screen zoomed out
//! ×1, ×10 and ×100; each query's result is checked against the scan.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use sidechain_edge::geom::Rect;
use sidechain_edge::ot::canvas_index::{CanvasIndex, Entry, StrokeRow};

const N: usize = 100_000;
const QUERIES: usize = 2_000;

struct Rng(u64);

impl Rng {
    fn f(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn layout(kind: &str, rng: &mut Rng) -> (Vec<Rect>, f64) {
    let unit = if kind == "unit" { 1.0 / 100_000.0 } else { 1.0 };
    let boxes = (0..N)
        .map(|i| {
            let (cx, cy) = match kind {
                "clustered" => {
                    let c = (i % 20) as f64;
                    ((c * 7919.0) % 100_000.0 + (rng.f() - 0.5) * 6000.0, (c * 24_997.0) % 100_000.0 + (rng.f() - 0.5) * 6000.0)
                }
                _ => (rng.f() * 100_000.0, rng.f() * 100_000.0),
            };
            let s = 10.0 + rng.f() * 400.0;
            Rect::from_view(cx * unit, cy * unit, s * unit, s * 0.7 * unit).unwrap()
        })
        .collect();
    (boxes, unit)
}

fn views(unit: f64, zoom: f64, rng: &mut Rng) -> Vec<Rect> {
    (0..QUERIES).map(|_| Rect::from_view(rng.f() * 100_000.0 * unit, rng.f() * 100_000.0 * unit, 1920.0 * zoom * unit, 1080.0 * zoom * unit).unwrap()).collect()
}

/// The scan baseline: every box tested, no structure.
fn scan(boxes: &[Rect], v: &Rect, out: &mut Vec<u32>) {
    out.extend(boxes.iter().enumerate().filter(|(_, b)| b.intersects(v)).map(|(i, _)| i as u32));
}

/// The grid baseline: cells of a fixed size (boxes spanning more than 16 cells kept aside),
/// falling back to the scan when a view covers more cells than are occupied.
struct Grid<'a> {
    cell: f64,
    cells: HashMap<(i64, i64), Vec<u32>>,
    big: Vec<u32>,
    boxes: &'a [Rect],
}

impl<'a> Grid<'a> {
    fn new(cell: f64, boxes: &'a [Rect]) -> Self {
        let mut g = Grid { cell, cells: HashMap::new(), big: vec![], boxes };
        for (i, b) in boxes.iter().enumerate() {
            let ((x0, y0), (x1, y1)) = (g.at(b.min_x, b.min_y), g.at(b.max_x, b.max_y));
            if (x1 - x0 + 1) * (y1 - y0 + 1) > 16 {
                g.big.push(i as u32);
                continue;
            }
            for x in x0..=x1 {
                for y in y0..=y1 {
                    g.cells.entry((x, y)).or_default().push(i as u32);
                }
            }
        }
        g
    }

    fn at(&self, x: f64, y: f64) -> (i64, i64) {
        ((x / self.cell).floor() as i64, (y / self.cell).floor() as i64)
    }

    fn query(&self, v: &Rect, seen: &mut [bool], out: &mut Vec<u32>) {
        let ((x0, y0), (x1, y1)) = (self.at(v.min_x, v.min_y), self.at(v.max_x, v.max_y));
        if (x1 - x0 + 1).saturating_mul(y1 - y0 + 1) > self.cells.len() as i64 {
            return scan(self.boxes, v, out);
        }
        for x in x0..=x1 {
            for y in y0..=y1 {
                for &i in self.cells.get(&(x, y)).into_iter().flatten() {
                    if !seen[i as usize] && self.boxes[i as usize].intersects(v) {
                        seen[i as usize] = true;
                        out.push(i);
                    }
                }
            }
        }
        out.extend(self.big.iter().filter(|&&i| self.boxes[i as usize].intersects(v)));
        out.iter().for_each(|&i| seen[i as usize] = false);
    }
}

fn percentiles(mut t: Vec<f64>) -> (f64, f64) {
    t.sort_by(|a, b| a.total_cmp(b));
    (t[t.len() / 2], t[t.len() * 95 / 100])
}

fn timed(mut f: impl FnMut(usize) -> usize) -> (f64, f64, usize) {
    let mut times = Vec::with_capacity(QUERIES);
    let mut hits = 0;
    for q in 0..QUERIES {
        let start = Instant::now();
        hits += f(q);
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let (p50, p95) = percentiles(times);
    (p50, p95, hits / QUERIES)
}

fn main() {
    println!("| layout | view | strokes in view | index p50 µs | index p95 µs | scan p50 / p95 µs | grid p50 / p95 µs |");
    println!("|---|---|---|---|---|---|---|");
    for kind in ["uniform", "clustered", "unit"] {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (boxes, unit) = layout(kind, &mut rng);
        let rows: Vec<StrokeRow> = boxes
            .iter()
            .enumerate()
            .map(|(i, b)| StrokeRow { stroke_id: format!("stroke-{i:06}"), bbox: Some(*b), version: 1, timestamp: 1, client_id: format!("c{}", i % 50), bytes: 600 })
            .collect();
        let start = Instant::now();
        let mut index = CanvasIndex::from_rows(rows).unwrap();
        let load_ms = start.elapsed().as_secs_f64() * 1e3;
        // One cell size for every canvas: the server cannot know which scale a client draws in.
        let grid = Grid::new(512.0, &boxes);
        let mut seen = vec![false; N];
        for zoom in [1.0, 10.0, 100.0] {
            let vs = views(unit, zoom, &mut rng);
            let mut out = Vec::new();
            let index_t = timed(|q| index.in_view(Some(&vs[q])).len());
            let scan_t = timed(|q| {
                out.clear();
                scan(&boxes, &vs[q], &mut out);
                out.len()
            });
            let grid_t = timed(|q| {
                out.clear();
                grid.query(&vs[q], &mut seen, &mut out);
                out.len()
            });
            for v in vs.iter().take(50) {
                out.clear();
                scan(&boxes, v, &mut out);
                assert_eq!(index.in_view(Some(v)).len(), out.len(), "the index agrees with the scan");
            }
            println!(
                "| {kind} | ×{zoom} | {} | {:.1} | {:.1} | {:.0} / {:.0} | {:.1} / {:.1} |",
                index_t.2, index_t.0, index_t.1, scan_t.0, scan_t.1, grid_t.0, grid_t.1
            );
        }
        let start = Instant::now();
        for i in 0..10_000 {
            let id = format!("stroke-{i:06}");
            let b = boxes[i];
            let moved = Rect::from_view(b.min_x + 5.0 * unit, b.min_y, b.max_x - b.min_x, b.max_y - b.min_y);
            index.put(&id, Entry { bbox: moved, version: 2, timestamp: 2, client_id: Rc::from("c1"), bytes: 600 });
        }
        let move_us = start.elapsed().as_secs_f64() * 1e6 / 10_000.0;
        let start = Instant::now();
        let everything = index.in_view(None).len();
        let all_ms = start.elapsed().as_secs_f64() * 1e3;
        println!("| {kind} | load {load_ms:.0} ms; move a stroke {move_us:.1} µs; list all {everything} {all_ms:.1} ms | | | | | |");
    }
}
