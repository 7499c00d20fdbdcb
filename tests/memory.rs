//! Memory budget (issue "bound memory for any sequence of valid messages"): the worst rooms a
//! client can build with valid messages stay under a stated peak of heap, awake and while waking.
//! A counting allocator measures the peak; natively pointers are 8 bytes, so the wasm32 figures
//! are lower still. The figures are printed (`cargo test --release --test memory -- --nocapture`).

mod common;

use common::{session, MemoryStore};
use serde_json::json;
use sidechain_edge::doc::Document;
use sidechain_edge::limits;
use sidechain_edge::model::{NoLookup, Session, StrokeStream};
use sidechain_edge::room::{CanvasRoom, Room};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{peak_during, BUDGET, MIB};

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

fn op(seq: u64, version: u64, payload: serde_json::Value) -> String {
    let mut p = payload;
    p["seq"] = json!(seq);
    p["version"] = json!(version);
    json!({"type": "operation", "payload": p}).to_string()
}

/// Drives frames from one writer into a room; with `store`, its writes are kept there too
/// (that is the object's SQLite, on disk: measured runs go without it).
fn drive<D: Document>(id: &str, frames: impl Iterator<Item = (u64, serde_json::Value)>, mut store: Option<&mut MemoryStore>) -> Room<D> {
    let me = session(1, true);
    let mut room: Room<D> = Room::new(id);
    for (seq, payload) in frames {
        let frame = op(seq, room.version(), payload);
        assert!(frame.len() <= sidechain_edge::limits::MAX_FRAME_BYTES, "frames stay valid");
        let fx = room.on_frame(&me, &frame, seq, &[me.clone()], &NoLookup);
        assert_eq!(fx.to_sender[0].kind, "operation_ack", "{}", fx.to_sender[0].payload_json());
        if let Some(store) = store.as_deref_mut() {
            store.absorb(&fx);
        }
    }
    room
}

#[test]
fn worst_case_rooms_stay_within_the_budget() {
    let me = session(1, true);
    let mut report = Vec::new();

    // 1. A full 1 MiB text, then 1,000 frames each replacing 65,000 characters of it.
    let big = "x".repeat(65_000);
    let frames = || {
        (1..=1_016u64).map(|seq| {
            if seq <= 16 {
                (seq, json!({"type": "insert", "position": 0, "content": big}))
            } else {
                (seq, json!({"ops": [{"type": "delete", "position": 0, "length": 65_000}, {"type": "insert", "position": 0, "content": big}]}))
            }
        })
    };
    let (room, awake) = peak_during(|| drive::<sidechain_edge::doc::TextDoc>("doc", frames(), None));
    assert_eq!(room.content().len(), 16 * 65_000);
    drop(room);
    let mut store = MemoryStore::default();
    drive::<sidechain_edge::doc::TextDoc>("doc", frames(), Some(&mut store));
    let (woke, waking) = peak_during(|| Room::<sidechain_edge::doc::TextDoc>::restore("doc", store.stored()).unwrap());
    let (_, catch_up) = peak_during(|| woke.catch_up(&me, None, &[me.clone()], None));
    report.push(("text 1 MiB, 1,000 replacements of 65,000 chars", awake, waking, catch_up));
    drop((woke, store));

    // 2. A canvas at §8's limits: 100,000 strokes and 64 MiB of stroke data (points, so a Value
    //    tree would be ~24 bytes per number on wasm32). The room keeps only the index; the data
    //    is in storage and a catch-up streams it in pages (each frame dropped once sent, as the
    //    host's ws.send copies it out of the wasm heap).
    let (awake, waking, catch_up, index) = full_canvas(&me);
    report.push(("canvas 100,000 strokes / 64 MiB (index awake / woken)", awake.max(index), waking, catch_up));

    // 3. A post liked, commented and unliked by 50,000 distinct users: the caches stay bounded.
    let (room, awake) = peak_during(|| {
        let mut room: Room<sidechain_edge::doc::PostDoc> = Room::new("post:p");
        for u in 0..50_000u64 {
            let mut s = session(u as usize, true);
            s.client_id = format!("c{u}");
            let text = "comment text ".repeat(150);
            for (seq, action) in [(1, json!({"type": "modify", "action": "like"})), (2, json!({"type": "modify", "action": "comment", "text": text}))] {
                let frame = op(seq, room.version(), action);
                let fx = room.on_frame(&s, &frame, 1, &[s.clone()], &NoLookup);
                assert_eq!(fx.to_sender[0].kind, "operation_ack");
            }
        }
        room
    });
    assert_eq!(room.counts().like_count, 50_000);
    report.push(("post, 50,000 users liking and commenting", awake, 0, 0));

    println!("| worst case | awake peak MiB | waking peak MiB | + initial_state MiB |");
    println!("|---|---|---|---|");
    for (name, a, w, c) in &report {
        println!("| {name} | {:.1} | {:.1} | {:.1} |", *a as f64 / MIB as f64, *w as f64 / MIB as f64, *c as f64 / MIB as f64);
    }
    for (name, a, w, c) in report {
        // The room and a full initial_state for one joining socket, at once.
        assert!(a + c <= BUDGET && w + c <= BUDGET, "{name}: awake {a}, waking {w}, initial_state {c} bytes; budget {BUDGET}");
    }
}


/// One stroke of exactly `bytes` bytes of JSON: a polyline of points, padded by a colour string.
fn stroke_data(i: usize, bytes: usize) -> serde_json::Value {
    let (x, y) = ((i % 400) as f64 * 250.0, (i / 400) as f64 * 250.0);
    let points: Vec<[f64; 2]> = (0..24).map(|k| [x + k as f64 * 7.25, y + (k % 5) as f64 * 3.5]).collect();
    let mut data = json!({"points": points, "width": 3, "color": ""});
    let pad = bytes - data.to_string().len();
    data["color"] = json!("#".repeat(pad));
    data
}

/// The full canvas: (awake peak, waking peak, streamed catch-up peak, index retained).
fn full_canvas(me: &Session) -> (usize, usize, usize, usize) {
    let per_stroke = limits::MAX_CANVAS_BYTES / limits::MAX_STROKES;
    let per_op = 80; // about 54 KB a frame, under the 64 KiB frame limit
    let frames = || {
        (0..limits::MAX_STROKES / per_op).map(move |k| {
            let ops: Vec<serde_json::Value> = (k * per_op..(k + 1) * per_op)
                .map(|i| json!({"type": "stroke_create", "stroke_id": format!("stroke-{i:06}"), "data": stroke_data(i, per_stroke)}))
                .collect();
            (k as u64 + 1, json!({"ops": ops}))
        })
    };
    let (room, awake) = peak_during(|| drive::<sidechain_edge::doc::CanvasDoc>("canvas:c", frames(), None));
    assert_eq!(room.doc().canvas().len(), limits::MAX_STROKES);
    drop(room);
    let mut store = MemoryStore::default();
    drive::<sidechain_edge::doc::CanvasDoc>("canvas:c", frames(), Some(&mut store));
    let data: usize = store.strokes.values().map(|s| s.data.get().len()).sum();
    assert!(data > 63 * MIB && data <= limits::MAX_CANVAS_BYTES, "{data} bytes of stroke data");
    let before = counting_alloc::current();
    let (woke, waking) = peak_during(|| CanvasRoom::restore("canvas:c", store.stored()).unwrap());
    let index = counting_alloc::current() - before;
    let plan = StrokeStream::CatchUp { reply_to: None };
    let (frames_sent, everything) = peak_during(|| {
        let mut n = 0;
        woke.stream(me, None, &plan, &[me.clone()], &store, &mut |m| {
            assert!(m.payload_json().len() <= limits::STROKE_PAGE_BYTES + 64 * 1024);
            n += 1;
        })
        .unwrap();
        n
    });
    assert!(frames_sent >= 9, "64 MiB in pages of 8 MiB, then sync_status: {frames_sent}");
    let screen = sidechain_edge::geom::Rect::from_view(10_000.0, 10_000.0, 1920.0, 1080.0);
    let (_, in_view) = peak_during(|| woke.stream(me, screen.as_ref(), &plan, &[me.clone()], &store, &mut drop).unwrap());
    println!("canvas: index retained after waking {:.1} MiB; streaming everything {:.1} MiB, a screen-sized view {:.1} MiB (peaks)", index as f64 / MIB as f64, everything as f64 / MIB as f64, in_view as f64 / MIB as f64);
    (awake, waking, everything.max(in_view), index)
}
