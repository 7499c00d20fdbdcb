//! Algebraic properties of the text engine on random documents and operations.

mod common;

use common::reference;
use proptest::prelude::*;
use ropey::Rope;
use sidechain_edge::ot::text::{compose, diff, transform, TextOp, TextPrimitive};

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof![Just('a'), Just('b'), Just('é'), Just('👋'), Just(' ')], 0..20)
        .prop_map(|v| v.into_iter().collect())
}

/// A random sequence of valid primitives against a text of `len` code points.
fn op_for(len: usize) -> impl Strategy<Value = Vec<TextPrimitive>> {
    proptest::collection::vec((any::<u16>(), any::<u16>(), 0u8..3, "[xyz🎧]{1,3}"), 1..4).prop_map(move |raw| {
        let mut len = len;
        let mut out = Vec::new();
        for (p, l, kind, s) in raw {
            if kind == 0 && len > 0 {
                let position = p as usize % len;
                let length = 1 + l as usize % (len - position);
                len -= length;
                out.push(TextPrimitive::Delete { position, length });
            } else {
                len += s.chars().count();
                out.push(TextPrimitive::Insert { position: p as usize % (len - s.chars().count() + 1), content: s });
            }
        }
        out
    })
}

fn apply(s: &str, op: &TextOp) -> String {
    let mut r = Rope::from_str(s);
    op.apply(&mut r);
    r.to_string()
}

fn doc_and_two_ops() -> impl Strategy<Value = (String, Vec<TextPrimitive>, Vec<TextPrimitive>)> {
    text().prop_flat_map(|t| {
        let n = t.chars().count();
        (Just(t), op_for(n), op_for(n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// TP1: both orders of two concurrent ops end in the same text, for either tie-break.
    #[test]
    fn transform_converges((doc, a, b) in doc_and_two_ops(), a_first in any::<bool>()) {
        let n = doc.chars().count();
        let a = TextOp::from_primitives(&a, n).unwrap();
        let b = TextOp::from_primitives(&b, n).unwrap();
        let left = apply(&apply(&doc, &b), &transform(&a, &b, a_first));
        let right = apply(&apply(&doc, &a), &transform(&b, &a, !a_first));
        prop_assert_eq!(left, right);
    }

    /// The engine's transform agrees with an independently written one (tests/common/reference.rs)
    /// on the text both orders produce, for either tie-break.
    #[test]
    fn transform_matches_the_reference((doc, a, b) in doc_and_two_ops(), a_first in any::<bool>()) {
        let n = doc.chars().count();
        let (ta, tb) = (TextOp::from_primitives(&a, n).unwrap(), TextOp::from_primitives(&b, n).unwrap());
        let engine = apply(&apply(&doc, &tb), &transform(&ta, &tb, a_first));
        let independent = reference::apply(&reference::apply(&doc, &b), &reference::transform(&a, &b, n, a_first));
        prop_assert_eq!(engine, independent);
        // And the engine's wire form of the transformed op means the same to the reference.
        let wire = transform(&ta, &tb, a_first).to_primitives();
        prop_assert_eq!(reference::apply(&reference::apply(&doc, &b), &wire), apply(&apply(&doc, &tb), &transform(&ta, &tb, a_first)));
    }

    /// Composition equals applying one after the other.
    #[test]
    fn compose_is_sequential_application((doc, a, _b) in doc_and_two_ops(), extra in op_for(0)) {
        let n = doc.chars().count();
        let a = TextOp::from_primitives(&a, n).unwrap();
        let after_a = apply(&doc, &a);
        let b = TextOp::from_primitives(&extra, after_a.chars().count()).unwrap();
        prop_assert_eq!(apply(&doc, &compose(&a, &b)), apply(&after_a, &b));
    }

    /// The wire form round-trips: primitives → traversal → primitives → same effect.
    #[test]
    fn primitives_round_trip((doc, a, _b) in doc_and_two_ops()) {
        let n = doc.chars().count();
        let op = TextOp::from_primitives(&a, n).unwrap();
        if op.is_noop() {
            prop_assert!(op.to_primitives().is_empty());
            prop_assert_eq!(apply(&doc, &op), doc.clone());
        } else {
            let again = TextOp::from_primitives(&op.to_primitives(), n).unwrap();
            prop_assert_eq!(apply(&doc, &op), apply(&doc, &again));
        }
        prop_assert_eq!(op.clone(), TextOp::from_applied(&op.to_primitives()));
    }

    /// A diff always turns the old text into the new one.
    #[test]
    fn diff_is_exact(old in text(), new in text()) {
        let prims = diff(&old, &new);
        if old == new {
            prop_assert!(prims.is_empty());
        } else {
            let op = TextOp::from_primitives(&prims, old.chars().count()).unwrap();
            prop_assert_eq!(apply(&old, &op), new);
        }
    }

    /// Out-of-range primitives are rejected, never applied or panicked on.
    #[test]
    fn out_of_range_is_an_error(doc in text(), pos in 0usize..100, len in 1usize..100) {
        let n = doc.chars().count();
        let del = TextOp::from_primitives(&[TextPrimitive::Delete { position: pos, length: len }], n);
        prop_assert_eq!(del.is_ok(), pos + len <= n);
        let ins = TextOp::from_primitives(&[TextPrimitive::Insert { position: pos, content: "x".into() }], n);
        prop_assert_eq!(ins.is_ok(), pos <= n);
    }
}
