//! Viewports (§8): which sockets an applied canvas operation reaches, what `initial_state` and
//! `strokes_in_view` carry, the `viewport` inputs, and version announcements for skipped ops.

mod common;

use common::{session, MemoryStore};
use serde_json::{json, Value};
use sidechain_edge::geom::{Reach, Rect};
use sidechain_edge::model::{Effects, StrokeStream};
use sidechain_edge::protocol::Outgoing;
use sidechain_edge::room::viewport::{parse_viewport_payload, parse_viewport_query, Announce, Announcer};
use sidechain_edge::room::CanvasRoom;

struct Canvas {
    room: CanvasRoom,
    store: MemoryStore,
    seq: u64,
}

fn view(x: f64, y: f64, w: f64, h: f64) -> Rect {
    Rect::from_view(x, y, w, h).unwrap()
}

/// A stroke through the given points (each `[x, y]`).
fn line(points: &[[f64; 2]]) -> Value {
    json!({"points": points, "color": "black"})
}

impl Canvas {
    fn new() -> Self {
        Canvas { room: CanvasRoom::new("canvas:v"), store: MemoryStore::default(), seq: 0 }
    }

    /// Sends `ops` as client c1 and returns the effects (the host would commit them).
    fn send(&mut self, ops: Value) -> Effects {
        self.seq += 1;
        let frame = json!({"type": "operation", "payload": {"seq": self.seq, "version": self.room.version(), "ops": ops}}).to_string();
        let me = session(1, true);
        let fx = self.room.on_frame(&me, &frame, 1, &[me.clone()], &self.store);
        assert_eq!(fx.to_sender[0].kind, "operation_ack", "{}", fx.to_sender[0].payload_json());
        self.store.absorb(&fx);
        fx
    }

    fn create(&mut self, id: &str, data: Value) -> Effects {
        self.send(json!([{"type": "stroke_create", "stroke_id": id, "data": data}]))
    }

    /// The frames the host would stream for `plan` to a socket whose viewport is `from`.
    fn stream(&self, from: Option<Rect>, plan: &StrokeStream) -> Vec<Outgoing> {
        let me = session(2, false);
        let mut out = Vec::new();
        self.room.stream(&me, from.as_ref(), plan, &[me.clone()], &self.store, &mut |m| out.push(m)).unwrap();
        out
    }
}

/// The broadcast `operation` of an op's effects.
fn broadcast(fx: &Effects) -> &Outgoing {
    fx.to_others.iter().find(|m| m.kind == "operation").expect("an operation broadcast")
}

fn ids(strokes: &Value) -> Vec<String> {
    let mut v: Vec<String> = strokes.as_object().unwrap().keys().cloned().collect();
    v.sort();
    v
}

#[test]
fn an_operation_reaches_views_its_stroke_touches_before_or_after() {
    let mut c = Canvas::new();
    let fx = c.create("a", line(&[[0.0, 0.0], [10.0, 10.0]]));
    let left = view(-100.0, -100.0, 100.0, 100.0); // touches a's corner at (0, 0)
    let right = view(500.0, 0.0, 100.0, 100.0);
    let reach = &broadcast(&fx).reach;
    assert!(reach.reaches(Some(&left)) && !reach.reaches(Some(&right)) && reach.reaches(None));
    // Moving a from the left to the right: both views hear of it (before and after).
    let fx = c.send(json!([{"type": "stroke_update", "stroke_id": "a", "data": line(&[[550.0, 50.0]])}]));
    let reach = &broadcast(&fx).reach;
    assert!(reach.reaches(Some(&left)) && reach.reaches(Some(&right)));
    assert!(!reach.reaches(Some(&view(200.0, 200.0, 10.0, 10.0))));
    // A delete reaches where the stroke was.
    let fx = c.send(json!([{"type": "stroke_delete", "stroke_id": "a"}]));
    assert!(broadcast(&fx).reach.reaches(Some(&right)) && !broadcast(&fx).reach.reaches(Some(&left)));
}

#[test]
fn width_widens_the_box() {
    let mut c = Canvas::new();
    let fx = c.create("w", json!({"points": [{"x": 0, "y": 0}], "width": 10}));
    assert!(broadcast(&fx).reach.reaches(Some(&view(5.0, 5.0, 1.0, 1.0))), "within width / 2 of the point");
    assert!(!broadcast(&fx).reach.reaches(Some(&view(5.5, 0.0, 1.0, 1.0))));
}

#[test]
fn several_primitives_count_if_any_does_and_clear_all_and_unbounded_reach_everyone() {
    let mut c = Canvas::new();
    let far = view(1000.0, 1000.0, 10.0, 10.0);
    let fx = c.send(json!([
        {"type": "stroke_create", "stroke_id": "p", "data": line(&[[0.0, 0.0]])},
        {"type": "stroke_create", "stroke_id": "q", "data": line(&[[1005.0, 1005.0]])}
    ]));
    assert!(broadcast(&fx).reach.reaches(Some(&far)), "q is in the far view");
    assert!(!broadcast(&fx).reach.reaches(Some(&view(400.0, 400.0, 1.0, 1.0))));
    // A stroke without points has no box: every view.
    let fx = c.create("text", json!({"text": "hello"}));
    assert_eq!(broadcast(&fx).reach, Reach::All);
    let fx = c.send(json!([{"type": "stroke_create", "stroke_id": "r", "data": line(&[[0.0, 0.0]])}, {"type": "stroke_update", "stroke_id": "text", "data": {"t": 1}}]));
    assert_eq!(broadcast(&fx).reach, Reach::All, "one unbounded primitive makes the op reach all");
    let fx = c.send(json!([{"type": "clear_all"}]));
    assert_eq!(broadcast(&fx).reach, Reach::All);
    // Within one op the box before it and after it count, not the intermediate ones.
    c.create("m", line(&[[0.0, 0.0]]));
    let fx = c.send(json!([
        {"type": "stroke_update", "stroke_id": "m", "data": line(&[[300.0, 300.0]])},
        {"type": "stroke_update", "stroke_id": "m", "data": line(&[[600.0, 600.0]])}
    ]));
    let reach = &broadcast(&fx).reach;
    assert!(reach.reaches(Some(&view(0.0, 0.0, 1.0, 1.0))) && reach.reaches(Some(&view(600.0, 600.0, 1.0, 1.0))));
    assert!(!reach.reaches(Some(&view(300.0, 300.0, 1.0, 1.0))), "the intermediate box was never seen");
}

#[test]
fn initial_state_for_a_viewport_carries_its_strokes_the_unbounded_ones_and_the_total() {
    let mut c = Canvas::new();
    for i in 0..20 {
        c.create(&format!("s{i:02}"), line(&[[f64::from(i) * 100.0, 0.0], [f64::from(i) * 100.0 + 50.0, 50.0]]));
    }
    c.create("note", json!({"text": "no points"}));
    let connect = c.room.connect(&session(2, false), None, &[session(2, false)]);
    assert!(connect.to_sender.is_empty(), "the state is streamed, not built in effects");
    let plan = connect.follow_ups.stream.expect("a catch-up to stream");
    let frames = c.stream(Some(view(150.0, 0.0, 200.0, 10.0)), &plan);
    assert_eq!(frames.iter().map(|m| m.kind).collect::<Vec<_>>(), ["initial_state", "sync_status"]);
    let state = frames[0].payload();
    assert_eq!(ids(&state["strokes"]), ["note", "s01", "s02", "s03"], "s01 ends at 150, the view's left edge: touching counts");
    assert_eq!(state["strokes_total"], 21);
    assert_eq!(state["kind"], "canvas");
    assert_eq!(state["version"], 21);
    assert_eq!(state["strokes"]["s02"], line(&[[200.0, 0.0], [250.0, 50.0]]));
    let everything = c.stream(None, &plan);
    assert_eq!(ids(&everything[0].payload()["strokes"]).len(), 21);
}

#[test]
fn a_viewport_change_sends_the_strokes_that_entered() {
    let mut c = Canvas::new();
    for i in 0..10 {
        c.create(&format!("s{i}"), line(&[[f64::from(i) * 100.0, 0.0]]));
    }
    c.create("note", json!({}));
    let me = session(2, false);
    let fx = c.room.on_frame(&me, r#"{"type":"viewport","id":"v1","payload":{"x":250,"y":-10,"width":200,"height":20}}"#, 1, &[me.clone()], &c.store);
    let plan = fx.follow_ups.stream.expect("a viewport change to stream");
    let to = view(250.0, -10.0, 200.0, 20.0);
    assert_eq!(plan, StrokeStream::Viewport { to: Some(to), reply_to: Some("v1".into()) });
    // From [0, 300] to [250, 450]: s4 entered (s3 was already in view; note is always).
    let frames = c.stream(Some(view(0.0, -10.0, 300.0, 20.0)), &plan);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].kind, "strokes_in_view");
    assert_eq!(frames[0].payload()["version"], 11);
    assert_eq!(ids(&frames[0].payload()["strokes"]), ["s4"]);
    assert_eq!(frames[0].reply_to.as_deref(), Some("v1"));
    // Zooming out to everything brings every stroke not yet seen; from everything, nothing.
    let all = StrokeStream::Viewport { to: None, reply_to: None };
    assert_eq!(ids(&c.stream(Some(to), &all)[0].payload()["strokes"]), ["s0", "s1", "s2", "s5", "s6", "s7", "s8", "s9"]);
    assert!(c.stream(None, &plan).is_empty());
    // The payload null (an empty payload) means everything.
    let fx = c.room.on_frame(&me, r#"{"type":"viewport","payload":null}"#, 1, &[me.clone()], &c.store);
    assert_eq!(fx.follow_ups.stream, Some(StrokeStream::Viewport { to: None, reply_to: None }));
}

#[test]
fn large_catch_ups_come_in_pages() {
    let mut c = Canvas::new();
    let blob: Vec<u32> = (0..6_000).collect(); // about 29 KB of JSON per stroke
    let per_stroke = serde_json::to_string(&json!({"points": [[0, 0]], "blob": blob})).unwrap().len();
    let n = sidechain_edge::limits::STROKE_PAGE_BYTES / per_stroke * 2 + 3;
    for i in 0..n {
        c.send(json!([{"type": "stroke_create", "stroke_id": format!("s{i:04}"), "data": {"points": [[0, 0]], "blob": blob}}]));
    }
    let plan = c.room.connect(&session(2, false), None, &[]).follow_ups.stream.unwrap();
    let frames = c.stream(None, &plan);
    let kinds: Vec<&str> = frames.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, ["initial_state", "strokes_in_view", "strokes_in_view", "sync_status"]);
    let mut seen = 0;
    for f in &frames[..3] {
        assert!(f.payload_json().len() <= sidechain_edge::limits::STROKE_PAGE_BYTES + 4096);
        seen += f.payload()["strokes"].as_object().unwrap().len();
    }
    assert_eq!(seen, n);
    assert_eq!(frames[0].payload()["strokes_total"], n);
}

#[test]
fn a_stroke_missing_from_storage_is_an_error_not_a_silent_gap() {
    let mut c = Canvas::new();
    c.create("a", line(&[[0.0, 0.0]]));
    c.store.strokes.clear();
    let me = session(2, false);
    let plan = StrokeStream::CatchUp { reply_to: None };
    let err = c.room.stream(&me, None, &plan, &[], &c.store, &mut |_| {}).unwrap_err();
    assert_eq!(err.code.as_str(), "internal");
}

#[test]
fn viewport_inputs_are_checked() {
    assert_eq!(parse_viewport_query("0,10,1920,1080").unwrap(), view(0.0, 10.0, 1920.0, 1080.0));
    assert_eq!(parse_viewport_query(" -5.5, 2e3 ,0,0").unwrap(), view(-5.5, 2000.0, 0.0, 0.0));
    for bad in ["", "1,2,3", "1,2,3,4,5", "a,b,c,d", "0,0,-1,5", "NaN,0,1,1", "inf,0,1,1", "1e308,0,1e308,1"] {
        let f = parse_viewport_query(bad).unwrap_err();
        assert_eq!(f.code.as_str(), "bad_request", "{bad}");
    }
    let payload = |v: Value| parse_viewport_payload(v.as_object().unwrap());
    assert_eq!(payload(json!({"x": 1, "y": 2, "width": 3, "height": 4})).unwrap(), Some(view(1.0, 2.0, 3.0, 4.0)));
    assert_eq!(payload(json!({})).unwrap(), None);
    for bad in [json!({"x": 1, "y": 2, "width": 3}), json!({"x": "1", "y": 2, "width": 3, "height": 4}), json!({"x": 1, "y": 2, "width": -3, "height": 4}), json!({"x": 1.7e308, "y": 0, "width": 1.7e308, "height": 1})] {
        assert_eq!(payload(bad.clone()).unwrap_err().code.as_str(), "bad_request", "{bad}");
    }
    // Over the socket: an error frame with the message's id; a text document has no viewports.
    let mut c = Canvas::new();
    let me = session(1, true);
    let fx = c.room.on_frame(&me, r#"{"type":"viewport","id":"x","payload":{"x":0,"y":0,"width":-1,"height":1}}"#, 1, &[], &c.store);
    assert_eq!((fx.to_sender[0].kind, fx.to_sender[0].reply_to.as_deref()), ("error", Some("x")));
    assert!(fx.follow_ups.stream.is_none());
    let mut text: sidechain_edge::room::TextRoom = sidechain_edge::room::Room::new("doc");
    let fx = text.on_frame(&me, r#"{"type":"viewport","payload":null}"#, 1, &[], &c.store);
    assert_eq!(fx.to_sender[0].payload()["code"], "unknown_type");
}

#[test]
fn skipped_versions_are_announced_at_most_once_a_second() {
    let mut a = Announcer::default();
    let Announce::Now(first) = a.skipped("s1", "canvas:v", 5, 1_000) else { panic!("the first skip is announced at once") };
    assert_eq!(first.payload(), json!({"document_id": "canvas:v", "status": "synced", "pending_count": 0, "version": 5}));
    assert_eq!(a.skipped("s1", "canvas:v", 6, 1_200), Announce::At(2_000));
    assert_eq!(a.skipped("s1", "canvas:v", 7, 1_300), Announce::Pending);
    assert_eq!(a.due("canvas:v", 1_999), (vec![], Some(2_000)));
    let (due, next) = a.due("canvas:v", 2_000);
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].0.as_str(), due[0].1.payload()["version"].clone()), ("s1", json!(7)), "the latest skipped version");
    assert_eq!(next, None);
    // A delivered operation makes a pending announcement moot.
    assert_eq!(a.skipped("s1", "canvas:v", 8, 2_500), Announce::At(3_000));
    a.delivered("s1", 9);
    assert_eq!(a.due("canvas:v", 3_000), (vec![], None));
    a.forget("s1");
    assert!(matches!(a.skipped("s1", "canvas:v", 10, 3_100), Announce::Now(_)));
}

/// §8: the canvas plan's frame is an operation like any other (acked, versioned, broadcast).
#[test]
fn the_canvas_plans_operation_frame_is_applied() {
    let mut c = Canvas::new();
    let me = session(1, true);
    let frame = |room: &str, kind: &str, stroke: Value, version: u64| {
        json!({"type": "operation", "id": "p1", "room": room, "timestamp": 5, "data": {"operation_type": kind, "stroke_data": stroke, "client_version": version}}).to_string()
    };
    let stroke = json!({"stroke_id": "s1", "points": [[0, 0], [3, 4]]});
    let fx = c.room.on_frame(&me, &frame("canvas:v", "stroke_create", stroke.clone(), 0), 9, &[me.clone()], &c.store);
    let ack = fx.to_sender[0].payload();
    assert_eq!((fx.to_sender[0].kind, fx.to_sender[0].reply_to.as_deref()), ("operation_ack", Some("p1")));
    assert_eq!((ack["status"].as_str(), ack["seq"].as_u64(), ack["version"].as_u64()), (Some("accepted"), Some(1), Some(1)));
    assert_eq!(ack["ops"], json!([{"type": "stroke_create", "stroke_id": "s1", "data": stroke}]));
    assert!(broadcast(&fx).reach.reaches(Some(&view(3.0, 4.0, 1.0, 1.0))));
    c.store.absorb(&fx);
    let fx = c.room.on_frame(&me, &frame("canvas:v", "stroke_update", json!({"stroke_id": "s1", "points": [[9, 9]]}), 1), 9, &[me.clone()], &c.store);
    assert_eq!(fx.to_sender[0].payload()["seq"], 2, "the plan sends no seq: the client's next one");
    let wrong_room = c.room.on_frame(&me, &frame("canvas:other", "stroke_delete", json!({"stroke_id": "s1"}), 2), 9, &[], &c.store);
    assert_eq!(wrong_room.to_sender[0].payload()["code"], "invalid_operation");
    let ahead = c.room.on_frame(&me, &frame("canvas:v", "stroke_delete", json!({"stroke_id": "s1"}), 99), 9, &[], &c.store);
    assert_eq!(ahead.to_sender[0].payload()["code"], "version_ahead");
    let bad = c.room.on_frame(&me, r#"{"type":"operation","id":"p9","room":"canvas:v","data":{"operation_type":"stroke_create","stroke_data":[1]}}"#, 9, &[], &c.store);
    assert_eq!((bad.to_sender[0].payload()["code"].as_str(), bad.to_sender[0].reply_to.as_deref()), (Some("bad_request"), Some("p9")));
}

proptest::proptest! {
    /// Any `?viewport=` text and any `viewport` payload: an answer, never a panic; what is
    /// accepted is a finite, non-inverted rectangle.
    #[test]
    fn arbitrary_viewport_inputs(q in "\\PC{0,30}", nums in proptest::collection::vec(proptest::num::f64::ANY, 4), keys in proptest::collection::vec("[a-z]{1,6}", 0..5)) {
        if let Ok(r) = parse_viewport_query(&q) {
            proptest::prop_assert!(r.min_x.is_finite() && r.max_y.is_finite() && r.min_x <= r.max_x && r.min_y <= r.max_y);
        }
        let joined = nums.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
        if let Ok(r) = parse_viewport_query(&joined) {
            proptest::prop_assert!(r.max_x.is_finite() && r.min_x <= r.max_x);
        }
        let mut payload = serde_json::Map::new();
        for (k, n) in ["x", "y", "width", "height"].iter().zip(&nums) {
            payload.insert(k.to_string(), serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number));
        }
        for k in keys {
            payload.insert(k, json!("?"));
        }
        let _ = parse_viewport_payload(&payload);
        let mut c = Canvas::new();
        let me = session(1, true);
        let fx = c.room.on_frame(&me, &json!({"type": "viewport", "payload": payload}).to_string(), 1, &[], &c.store);
        proptest::prop_assert!(fx.follow_ups.stream.is_some() != fx.to_sender.first().is_some_and(|m| m.kind == "error"));
    }
}
