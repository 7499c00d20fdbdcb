//! Canvas rules: concurrent creates stand, the later timestamp wins, delete beats update,
//! clear_all clears what exists, limits refuse without changing anything. The room keeps only
//! the stroke index: the strokes are read back from the test's storage (`MemoryStore`).

mod common;

use common::MemoryStore;
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sidechain_edge::limits;
use sidechain_edge::model::{Actor, Lookup, OpRequest, SavedRoom, Write};
use sidechain_edge::ot::canvas::{CanvasOp, Stroke};
use sidechain_edge::room::{CanvasRoom as Room, Submitted};

fn actor() -> Actor {
    Actor { user_id: "artist".into(), name: "Artist".into(), can_write: true, is_service: false, post_grant: false }
}

struct Canvas {
    room: Room,
    seqs: std::collections::HashMap<String, u64>,
    store: MemoryStore,
}

/// The canvas's `{stroke_id: data}` JSON, its data read from `store`.
fn state_json(room: &Room, store: &dyn Lookup) -> String {
    let mut out = String::new();
    room.write_state(None, store, &mut |chunk| out.push_str(chunk)).unwrap();
    out
}

impl Canvas {
    fn new() -> Self {
        Canvas { room: Room::new("canvas:c"), seqs: Default::default(), store: MemoryStore::default() }
    }
    fn send(&mut self, client: &str, version: u64, timestamp: u64, ops: Vec<CanvasOp>) -> Result<Submitted, String> {
        let seq = self.seqs.entry(client.to_string()).or_default();
        *seq += 1;
        let req = OpRequest { document_id: None, client_id: client.into(), seq: Some(*seq), version: Some(version), timestamp: Some(timestamp), body: ops };
        let done = self.room.submit(&actor(), req, 0, &self.store).map_err(|f| f.code.as_str().to_string())?;
        self.store.absorb(&done.effects);
        Ok(done)
    }
    fn strokes(&self) -> Value {
        serde_json::from_str(&state_json(&self.room, &self.store)).unwrap()
    }
}

fn raw(data: Value) -> Box<RawValue> {
    RawValue::from_string(data.to_string()).unwrap()
}
fn create(id: &str, data: Value) -> CanvasOp {
    CanvasOp::Create { stroke_id: id.into(), data: raw(data) }
}
fn update(id: &str, data: Value) -> CanvasOp {
    CanvasOp::Update { stroke_id: id.into(), data: raw(data) }
}

#[test]
fn concurrent_creates_both_stand() {
    let mut c = Canvas::new();
    c.send("a", 0, 1, vec![create("s1", json!(1))]).unwrap();
    let second = c.send("b", 0, 1, vec![create("s2", json!(2))]).unwrap();
    assert_eq!(second.ack()["status"], "transformed");
    assert_eq!(c.strokes(), json!({"s1": 1, "s2": 2}));
}

proptest! {
    /// Whatever order the server receives concurrent updates in, the latest (timestamp, client) wins.
    #[test]
    fn the_later_update_wins_in_any_arrival_order(updates in proptest::collection::vec((0u64..5, 0usize..3), 1..6), order in any::<u64>()) {
        let mut c = Canvas::new();
        c.send("setup", 0, 0, vec![create("s", json!("first"))]).unwrap();
        let mut arrival: Vec<usize> = (0..updates.len()).collect();
        let mut seed = order;
        for i in (1..arrival.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            arrival.swap(i, (seed >> 33) as usize % (i + 1));
        }
        for &i in &arrival {
            let (ts, client) = updates[i];
            let client = ["a", "b", "c"][client];
            c.send(&format!("{client}{i}"), 1, ts + 1, vec![update("s", json!(format!("{client}{i}@{ts}")))]).unwrap();
        }
        let winner = (0..updates.len()).max_by_key(|&i| (updates[i].0, format!("{}{i}", ["a", "b", "c"][updates[i].1]))).unwrap();
        let (ts, client) = updates[winner];
        prop_assert_eq!(c.strokes(), json!({"s": format!("{}{winner}@{ts}", ["a", "b", "c"][client])}));
    }
}

#[test]
fn a_sequential_update_wins_even_with_an_older_clock() {
    let mut c = Canvas::new();
    c.send("a", 0, 100, vec![create("s", json!(1))]).unwrap();
    c.send("b", 1, 5, vec![update("s", json!(2))]).unwrap();
    assert_eq!(c.strokes(), json!({"s": 2}), "b saw version 1, so its update is not concurrent");
}

#[test]
fn delete_beats_update_in_either_order() {
    for delete_first in [true, false] {
        let mut c = Canvas::new();
        c.send("a", 0, 1, vec![create("s", json!(1))]).unwrap();
        let del = vec![CanvasOp::Delete { stroke_id: "s".into() }];
        let upd = vec![update("s", json!(2))];
        let (first, second) = if delete_first { (del, upd) } else { (upd, del) };
        c.send("x", 1, 50, first).unwrap();
        let last = c.send("y", 1, 60, second).unwrap();
        assert_eq!(c.strokes(), json!({}));
        if delete_first {
            assert_eq!(last.ack()["status"], "noop");
        }
    }
}

#[test]
fn clear_all_removes_what_exists_and_ops_on_cleared_strokes_are_noops() {
    let mut c = Canvas::new();
    c.send("a", 0, 1, vec![create("s1", json!(1)), create("s2", json!(2))]).unwrap();
    c.send("a", 1, 2, vec![CanvasOp::ClearAll]).unwrap();
    assert_eq!(c.send("b", 1, 3, vec![update("s1", json!(9))]).unwrap().ack()["status"], "noop");
    assert_eq!(c.send("b", 1, 3, vec![CanvasOp::ClearAll]).unwrap().ack()["status"], "noop");
    c.send("b", 1, 4, vec![create("s3", json!(3))]).unwrap();
    assert_eq!(c.strokes(), json!({"s3": 3}), "a create applied after the clear stands");
}

/// §8 [1.2] raises the limit to 100,000 strokes (it was 10,000).
#[test]
fn stroke_limit_refuses_without_changing_anything() {
    let mut c = Canvas::new();
    let batch = |from: usize| (from..from + 1000).map(|i| create(&format!("s{i}"), json!(i))).collect::<Vec<_>>();
    for k in 0..limits::MAX_STROKES / 1000 {
        let v = c.room.version();
        c.send("a", v, 1, batch(k * 1000)).unwrap();
    }
    let v = c.room.version();
    assert_eq!(c.send("a", v, 1, vec![create("one-too-many", json!(0))]).err().as_deref(), Some("too_large"));
    assert_eq!(c.room.version(), v);
    assert_eq!(c.strokes().as_object().unwrap().len(), limits::MAX_STROKES);
}

#[test]
fn a_restored_canvas_matches() {
    let mut c = Canvas::new();
    let mut rows: std::collections::BTreeMap<String, Stroke> = Default::default();
    let mut absorb = |s: &Submitted| {
        for w in &s.effects.writes {
            match w {
                Write::PutStroke(id, st) => {
                    rows.insert(id.clone(), st.clone());
                }
                Write::RemoveStroke(id) => {
                    rows.remove(id);
                }
                Write::ClearStrokes => rows.clear(),
                _ => {}
            }
        }
    };
    absorb(&c.send("a", 0, 1, vec![create("s1", json!({"pts": [1, 2]})), create("s2", json!(2))]).unwrap());
    absorb(&c.send("a", 1, 2, vec![CanvasOp::Delete { stroke_id: "s2".into() }]).unwrap());
    absorb(&c.send("a", 2, 3, vec![update("s1", json!("moved"))]).unwrap());
    // The room wakes from the index rows alone; the data is read from the rows when needed.
    let stroke_rows = rows.iter().map(|(id, st)| st.row(id)).collect();
    let woke = Room::restore("canvas:c", SavedRoom { snapshot_version: 3, stroke_rows, ..SavedRoom::default() }).unwrap();
    let mut store = MemoryStore::default();
    store.strokes = rows;
    assert_eq!(state_json(&woke, &store), state_json(&c.room, &c.store));
}

/// §3.3 [1.1]: the primitives of one op apply in order; its own create is not "concurrent"
/// with its own update.
#[test]
fn one_ops_primitives_apply_in_order() {
    let mut c = Canvas::new();
    let done = c.send("a", 0, 1, vec![create("s", json!("first")), update("s", json!("second"))]).unwrap();
    assert_eq!(c.strokes(), json!({"s": "second"}));
    assert_eq!(done.ack()["ops"].as_array().unwrap().len(), 2, "both primitives took effect");
    // Later in the same op a concurrent writer's stroke is still judged by timestamp.
    c.send("z", 1, 100, vec![update("s", json!("z-late"))]).unwrap();
    c.send("b", 1, 50, vec![create("t", json!(1)), update("t", json!(2)), update("s", json!("b-early"))]).unwrap();
    assert_eq!(c.strokes(), json!({"s": "z-late", "t": 2}));
}

/// §3.3 [1.1]: `version` is bounded for canvases too: no op transformed over ops the server no
/// longer holds, and `transformed_from` lists at most what it holds.
#[test]
fn canvas_versions_older_than_the_log_are_too_old() {
    let mut c = Canvas::new();
    for i in 0..1_005u64 {
        c.send("a", i, 1, vec![create(&format!("s{i}"), json!(i))]).unwrap();
    }
    assert_eq!(c.send("b", 0, 1, vec![create("late", json!(0))]).err().as_deref(), Some("version_too_old"));
    let v = c.room.version();
    let ok = c.send("c", v - 10, 1, vec![create("recent", json!(0))]).unwrap();
    let broadcast = ok.effects.to_others[0].payload();
    assert_eq!(broadcast["transformed_from"].as_array().unwrap().len(), 10);
}

/// A limit breach in the middle of one op leaves every earlier primitive of it undone. With
/// §8's 64 MiB a clear followed by creates breaches only past the wire's 1,000 primitives of
/// 32 KiB, so the op is handed to the room directly.
#[test]
fn a_refused_op_leaves_no_partial_change() {
    let mut c = Canvas::new();
    c.send("a", 0, 1, vec![create("keep", json!("k"))]).unwrap();
    let big = json!("x".repeat(32_000));
    let v = c.room.version();
    let many: Vec<CanvasOp> = (0..limits::MAX_CANVAS_BYTES / 32_000 + 1).map(|i| create(&format!("b{i}"), big.clone())).collect();
    let refused = c.send("a", v, 1, [vec![CanvasOp::ClearAll], many].concat());
    assert_eq!(refused.err().as_deref(), Some("too_large"));
    assert_eq!(c.strokes(), json!({"keep": "k"}));
    assert_eq!(c.room.version(), v);
}
