//! The OT test vectors for client authors (docs/ot-vectors.json, made with ot-text-unicode by
//! scripts/gen-ot-vectors.mjs) checked against the server's engine: each transformed op, applied
//! after the other, gives `final`, and the engine's own transforms give the same text.

use ropey::Rope;
use serde::Deserialize;
use sidechain_edge::ot::text::{transform, TextOp, TextPrimitive};

#[derive(Deserialize)]
struct Side {
    client_id: String,
    ops: Vec<TextPrimitive>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    base: String,
    a: Side,
    b: Side,
    a_after_b: Vec<TextPrimitive>,
    b_after_a: Vec<TextPrimitive>,
    #[serde(rename = "final")]
    end: String,
}

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

fn apply(text: &str, prims: &[TextPrimitive]) -> String {
    let mut rope = Rope::from_str(text);
    if !prims.is_empty() {
        TextOp::from_primitives(prims, rope.len_chars()).expect("vector op fits its text").apply(&mut rope);
    }
    rope.to_string()
}

fn op(prims: &[TextPrimitive], len: usize) -> TextOp {
    if prims.is_empty() {
        TextOp::default()
    } else {
        TextOp::from_primitives(prims, len).expect("vector op fits its base")
    }
}

#[test]
fn the_engine_agrees_with_every_vector() {
    let raw = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ot-vectors.json")).expect("docs/ot-vectors.json");
    let vectors: Vectors = serde_json::from_str(&raw).expect("vector JSON");
    assert!(vectors.cases.len() >= 500, "{} cases", vectors.cases.len());
    for c in &vectors.cases {
        let n = c.base.chars().count();
        let after_a = apply(&c.base, &c.a.ops);
        let after_b = apply(&c.base, &c.b.ops);
        assert_eq!(apply(&after_b, &c.a_after_b), c.end, "{}: a_after_b", c.name);
        assert_eq!(apply(&after_a, &c.b_after_a), c.end, "{}: b_after_a", c.name);
        let (a, b) = (op(&c.a.ops, n), op(&c.b.ops, n));
        let a_first = c.a.client_id.as_bytes() < c.b.client_id.as_bytes();
        let mut text = Rope::from_str(&after_b);
        transform(&a, &b, a_first).apply(&mut text);
        assert_eq!(text.to_string(), c.end, "{}: the engine's a after b", c.name);
        let mut text = Rope::from_str(&after_a);
        transform(&b, &a, !a_first).apply(&mut text);
        assert_eq!(text.to_string(), c.end, "{}: the engine's b after a", c.name);
    }
}
