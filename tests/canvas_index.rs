//! The canvas index (§8) against a brute-force oracle: random strokes on a coarse grid (so
//! touching edges and corners are common), updates, removals, clears, strokes without a box;
//! every view query and every viewport change must match a scan of the oracle.

use std::collections::BTreeMap;
use std::rc::Rc;

use proptest::prelude::*;
use sidechain_edge::geom::{in_view, Rect};
use sidechain_edge::ot::canvas_index::{CanvasIndex, Entry, StrokeRow};

#[derive(Clone, Debug)]
enum Step {
    Put(u8, Option<Rect>, u16),
    Remove(u8),
    Clear,
    Rebuild,
}

/// Coordinates on a grid of 0..=20, so rectangles often share exactly an edge or a corner.
fn rect() -> impl Strategy<Value = Rect> {
    (0i32..=20, 0i32..=20, 0i32..=6, 0i32..=6).prop_map(|(x, y, w, h)| Rect::from_view(f64::from(x), f64::from(y), f64::from(w), f64::from(h)).unwrap())
}

/// Views from a point to most of the canvas, so both ways of answering (the tree for small
/// views, a scan of the slots for large ones) are exercised.
fn view() -> impl Strategy<Value = Rect> {
    (-2i32..=22, -2i32..=22, 0i32..=24, 0i32..=24).prop_map(|(x, y, w, h)| Rect::from_view(f64::from(x), f64::from(y), f64::from(w), f64::from(h)).unwrap())
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (any::<u8>(), proptest::option::weighted(0.9, rect()), 1u16..2000).prop_map(|(id, b, n)| Step::Put(id % 64, b, n)),
        3 => any::<u8>().prop_map(|id| Step::Remove(id % 64)),
        1 => Just(Step::Clear),
        1 => Just(Step::Rebuild),
    ]
}

fn entry(bbox: Option<Rect>, bytes: u16) -> Entry {
    Entry { bbox, version: u64::from(bytes), timestamp: 7, client_id: Rc::from(format!("c{}", bytes % 3)), bytes: u32::from(bytes) }
}

/// What the oracle holds, as the index would list it: `(id, bytes)` in id order.
fn expect(oracle: &BTreeMap<String, (Option<Rect>, u16)>, keep: impl Fn(Option<&Rect>) -> bool) -> Vec<(String, u32)> {
    oracle.iter().filter(|(_, (b, _))| keep(b.as_ref())).map(|(id, (_, n))| (id.clone(), u32::from(*n))).collect()
}

/// A query's answer in id order (the index answers in its own order).
fn owned(v: Vec<(&str, u32)>) -> Vec<(String, u32)> {
    let mut v: Vec<(String, u32)> = v.into_iter().map(|(id, n)| (id.to_string(), n)).collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn queries_match_a_scan(steps in proptest::collection::vec(step(), 1..120), views in proptest::collection::vec(proptest::option::weighted(0.85, view()), 2..6)) {
        let mut index = CanvasIndex::default();
        let mut oracle: BTreeMap<String, (Option<Rect>, u16)> = BTreeMap::new();
        for s in steps {
            match s {
                Step::Put(id, b, n) => {
                    let id = format!("s{id}");
                    let old = index.put(&id, entry(b, n));
                    let was = oracle.insert(id, (b, n));
                    prop_assert_eq!(old.map(|e| (e.bbox, e.bytes)), was.map(|(b, n)| (b, u32::from(n))));
                }
                Step::Remove(id) => {
                    let id = format!("s{id}");
                    prop_assert_eq!(index.remove(&id).is_some(), oracle.remove(&id).is_some());
                }
                Step::Clear => {
                    index = CanvasIndex::default();
                    oracle.clear();
                }
                // What waking does: bulk-load from the stored rows.
                Step::Rebuild => {
                    let rows = oracle.iter().map(|(id, (b, n))| StrokeRow { stroke_id: id.clone(), bbox: *b, version: u64::from(*n), timestamp: 7, client_id: format!("c{}", n % 3), bytes: u32::from(*n) }).collect();
                    index = CanvasIndex::from_rows(rows).unwrap();
                }
            }
            prop_assert_eq!(index.len(), oracle.len());
            prop_assert_eq!(index.bytes(), oracle.values().map(|(_, n)| u64::from(*n)).sum::<u64>());
        }
        for (i, view) in views.iter().enumerate() {
            let got = owned(index.in_view(view.as_ref()));
            prop_assert_eq!(got, expect(&oracle, |b| in_view(b, view.as_ref())), "view {:?}", view);
            let from = views[(i + 1) % views.len()];
            let entering = owned(index.entering(from.as_ref(), view.as_ref()));
            let want = expect(&oracle, |b| from.is_some() && b.is_some() && in_view(b, view.as_ref()) && !in_view(b, from.as_ref()));
            prop_assert_eq!(entering, want, "from {:?} to {:?}", from, view);
        }
        for (id, (b, n)) in &oracle {
            let e = index.get(id).unwrap();
            let client = format!("c{}", n % 3);
            prop_assert_eq!((e.bbox, e.bytes, &*e.client_id), (*b, u32::from(*n), client.as_str()));
        }
    }
}

#[test]
fn a_view_holding_everything_lists_everything() {
    let rows = (0..1000)
        .map(|i| StrokeRow { stroke_id: format!("s{i:04}"), bbox: Rect::from_view(f64::from(i), 0.0, 1.0, 1.0), version: 1, timestamp: 1, client_id: "c".into(), bytes: 10 })
        .collect();
    let index = CanvasIndex::from_rows(rows).unwrap();
    let all = Rect::from_view(-1.0, -1.0, 2000.0, 3.0).unwrap();
    assert_eq!(index.in_view(Some(&all)).len(), 1000);
    assert_eq!(index.in_view(Some(&Rect::from_view(1000.0, 1.0, 5.0, 5.0).unwrap())).iter().map(|(id, _)| *id).collect::<Vec<_>>(), ["s0999"], "a touching corner counts");
    assert!(CanvasIndex::from_rows(vec![
        StrokeRow { stroke_id: "a".into(), bbox: None, version: 1, timestamp: 1, client_id: "c".into(), bytes: 1 },
        StrokeRow { stroke_id: "a".into(), bbox: None, version: 2, timestamp: 1, client_id: "c".into(), bytes: 1 },
    ])
    .is_err());
}
