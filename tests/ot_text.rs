//! Examples of the text engine: sequential primitives, code points, splits, tie-breaks, errors.

use ropey::Rope;
use sidechain_edge::ot::text::{diff, transform, TextError, TextOp, TextPrimitive};


fn ins(position: usize, content: &str) -> TextPrimitive {
    TextPrimitive::Insert { position, content: content.into() }
}
fn del(position: usize, length: usize) -> TextPrimitive {
    TextPrimitive::Delete { position, length }
}
fn run(text: &str, op: &TextOp) -> String {
    let mut r = Rope::from_str(text);
    op.apply(&mut r);
    r.to_string()
}

#[test]
fn sequential_primitives_compose() {
    let op = TextOp::from_primitives(&[del(0, 5), ins(0, "bye")], 11).unwrap();
    assert_eq!(run("hello world", &op), "bye world");
    // Canonical form: the text an op inserts where it deletes sits at the start of the range.
    assert_eq!(op.to_primitives(), vec![ins(0, "bye"), del(3, 5)]);
}

/// PROTOCOL §3.3 [1.1]: on `abc`, c-a replaces `b` by `y` while c-b types `x` at 1; the
/// replacement is anchored at the start of the deleted range, so it ties with `x` and the
/// smaller client_id (`c-a`) goes first: `ayxc`, whichever arrives first.
#[test]
fn a_replacement_ties_with_a_concurrent_insert_at_its_start() {
    let a = TextOp::from_primitives(&[del(1, 1), ins(1, "y")], 3).unwrap();
    let b = TextOp::from_primitives(&[ins(1, "x")], 3).unwrap();
    assert_eq!(run(&run("abc", &b), &transform(&a, &b, true)), "ayxc");
    assert_eq!(run(&run("abc", &a), &transform(&b, &a, false)), "ayxc");
    // With the ids the other way round, x goes first.
    assert_eq!(run(&run("abc", &b), &transform(&a, &b, false)), "axyc");
}

/// Text inserted right after a range the same op deletes stays after it: the wire form says so
/// (insert first, positioned after the doomed text, then the delete), so clients and server
/// agree on where it is anchored.
#[test]
fn text_after_a_deleted_range_keeps_its_anchor_on_the_wire() {
    let op = TextOp::from_primitives(&[ins(1, "x"), del(0, 1)], 2).unwrap();
    assert_eq!(run("ab", &op), "xb");
    assert_eq!(op.to_primitives(), vec![ins(1, "x"), del(0, 1)]);
    let concurrent = TextOp::from_primitives(&[ins(0, "z")], 2).unwrap();
    // z was typed before `a`, x after it: z stays first for either tie-break.
    for a_first in [true, false] {
        assert_eq!(run(&run("ab", &concurrent), &transform(&op, &concurrent, a_first)), "zxb");
    }
}

#[test]
fn code_points_not_bytes() {
    let op = TextOp::from_primitives(&[ins(6, "!")], 7).unwrap();
    assert_eq!(run("héllo 👋", &op), "héllo !👋");
    assert!(TextOp::from_primitives(&[ins(8, "x")], 7).is_err());
}

#[test]
fn delete_split_by_concurrent_insert_keeps_the_insert() {
    let a = TextOp::from_primitives(&[del(1, 4)], 6).unwrap();
    let b = TextOp::from_primitives(&[ins(3, "XY")], 6).unwrap();
    let a2 = transform(&a, &b, false);
    assert_eq!(a2.to_primitives(), vec![del(1, 2), del(3, 2)]);
    assert_eq!(run(&run("abcdef", &b), &a2), "aXYf");
}

#[test]
fn tie_break_orders_concurrent_inserts() {
    let a = TextOp::from_primitives(&[ins(1, "A")], 2).unwrap();
    let b = TextOp::from_primitives(&[ins(1, "B")], 2).unwrap();
    let left = run(&run("xy", &b), &transform(&a, &b, true));
    let right = run(&run("xy", &a), &transform(&b, &a, false));
    assert_eq!(left, "xABy");
    assert_eq!(left, right);
}

#[test]
fn diff_turns_old_into_new() {
    for (a, b) in [("hello world", "hello brave world"), ("abc", ""), ("", "xyz"), ("same", "same"), ("héllo 👋", "hallo 👋!")] {
        let op = TextOp::from_primitives(&diff(a, b), a.chars().count());
        match op {
            Ok(op) => assert_eq!(run(a, &op), b),
            Err(TextError::Empty) => assert_eq!(a, b),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn errors_are_reported_not_panicked() {
    assert_eq!(TextOp::from_primitives(&[], 0), Err(TextError::Empty));
    assert_eq!(TextOp::from_primitives(&[ins(0, "")], 0), Err(TextError::EmptyInsert));
    assert_eq!(TextOp::from_primitives(&[del(0, 0)], 3), Err(TextError::EmptyDelete));
    assert!(TextOp::from_primitives(&[del(usize::MAX, 2)], 3).is_err());
}
