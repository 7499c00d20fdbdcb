//! Arbitrary input at every entry point that sees client bytes: nothing panics (a wasm panic
//! resets the instance), every bad input gets an answer, and nothing is applied by a refusal.

mod common;

use common::{session, MemoryStore};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sidechain_edge::auth::{bearer_token, verify, AuthConfig};
use sidechain_edge::doc::{CanvasDoc, Document, PostDoc, TextDoc};
use sidechain_edge::error_reports::{parse_batch, stats_hours};
use sidechain_edge::presence::{parse_watch, Presence};
use sidechain_edge::protocol::{parse_client_id, parse_frame, valid_document_id};
use sidechain_edge::model::OpRequest;
use sidechain_edge::room::{CanvasRoom, Room};

/// Any JSON value, nested a few levels, with the strings and numbers that hurt: huge integers,
/// negative and fractional numbers, non-ASCII and empty strings, the protocol's own words.
fn json_value() -> impl Strategy<Value = Value> {
    let word = prop_oneof![
        // Weighted as before: each word as likely as the empty or the random string.
        8 => one_of(&["insert", "delete", "stroke_create", "stroke_update", "modify", "like", "comment", "uncomment"]),
        1 => Just(String::new()),
        1 => "\\PC{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        (0u64..10).prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        word.prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            14 => one_of(&["type", "position", "length", "content", "ops", "seq", "version", "client_id", "stroke_id", "data", "action", "comment_id", "state", "since"]),
            1 => "[a-z_]{1,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn frame_types() -> impl Strategy<Value = String> {
    prop_oneof![6 => one_of(&["operation", "sync", "awareness", "typing", "stopped_typing", "ping"]), 1 => "\\PC{0,10}"]
}

/// One of the protocol's own words.
fn one_of(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(words).prop_map(str::to_string)
}

fn drive<D: Document + 'static>(document_id: &str, frames: &[String]) -> Result<(), TestCaseError> {
    let mut room: Room<D> = Room::new(document_id);
    let mut store = MemoryStore::default();
    let me = session(1, true);
    for f in frames {
        let before = room.version();
        let fx = room.on_frame(&me, f, 1, &[me.clone()], &store);
        store.absorb(&fx);
        // A canvas streams its catch-up from storage: what the host would send counts too.
        let mut streamed = 0;
        if let Some(plan) = &fx.follow_ups.stream {
            let canvas = (&room as &dyn std::any::Any).downcast_ref::<CanvasRoom>().expect("only canvases stream");
            let sent = canvas.stream(&me, None, plan, &[me.clone()], &store, &mut |_| streamed += 1);
            prop_assert!(sent.is_ok(), "{f}: {sent:?}");
        }
        prop_assert!(!fx.to_sender.is_empty() || !fx.to_others.is_empty() || !fx.writes.is_empty() || streamed > 0 || f.contains("stopped_typing"), "{f} got nothing");
        if fx.to_sender.first().is_some_and(|m| m.kind == "error") {
            prop_assert_eq!(room.version(), before, "an error applied something: {}", f);
            prop_assert!(fx.writes.is_empty(), "an error wrote something: {}", f);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Raw bytes (as the runtime hands them over, lossily decoded) as frames of every kind of room.
    #[test]
    fn arbitrary_frame_text(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let _ = parse_frame(&text);
        drive::<TextDoc>("doc", std::slice::from_ref(&text))?;
        drive::<CanvasDoc>("canvas:c", std::slice::from_ref(&text))?;
        drive::<PostDoc>("post:p", &[text])?;
    }

    /// Well-formed envelopes with arbitrary payloads, several in a row, in every kind of room.
    #[test]
    fn arbitrary_payloads(frames in proptest::collection::vec((frame_types(), json_value(), proptest::option::of("\\PC{0,70}")), 1..8)) {
        let frames: Vec<String> = frames
            .into_iter()
            .map(|(kind, payload, id)| json!({"type": kind, "id": id, "payload": payload}).to_string())
            .collect();
        drive::<TextDoc>("doc", &frames)?;
        drive::<CanvasDoc>("canvas:c", &frames)?;
        drive::<PostDoc>("post:p", &frames)?;
    }

    /// The REST operation body: any object, for every kind (parse only refuses or accepts).
    #[test]
    fn arbitrary_operation_objects(op in proptest::collection::btree_map("[a-z_]{1,10}", json_value(), 0..8)) {
        let op: Map<String, Value> = op.into_iter().collect();
        let _ = OpRequest::parse::<TextDoc>(&op, None);
        let _ = OpRequest::parse::<CanvasDoc>(&op, Some("c1"));
        let _ = OpRequest::parse::<PostDoc>(&op, None);
    }

    /// Authorization headers and tokens: any text, including non-ASCII right after "Bearer".
    #[test]
    fn arbitrary_authorization(header in "\\PC{0,40}", prefix in prop_oneof![Just("Bearer"), Just("bearer "), Just("Bearer "), Just("")]) {
        let h = format!("{prefix}{header}");
        let config = AuthConfig { secret: "s".into(), issuer: Some("i".into()), audience: None };
        if let Some(token) = bearer_token(Some(&h), None) {
            prop_assert!(verify(token, &config, 0).is_err());
        }
        let _ = bearer_token(None, Some(&header));
        prop_assert!(verify(&header, &config, 0).is_err());
    }

    /// Other REST bodies and query values.
    #[test]
    fn arbitrary_rest_bodies(body in json_value(), q in proptest::option::of("\\PC{0,12}")) {
        let _ = parse_batch(&body, 1_700_000_000_000);
        let _ = Presence::parse(&body, 1);
        if let Value::Object(m) = &body {
            let _ = parse_watch(m);
        }
        let _ = stats_hours(q.as_deref());
        let _ = parse_client_id(&body);
        if let Some(id) = &q {
            let _ = valid_document_id(id);
        }
    }
}

#[test]
fn a_non_ascii_byte_right_after_bearer_is_no_token() {
    assert_eq!(bearer_token(Some("Bearer\u{e9}abc"), None), None);
    assert_eq!(bearer_token(Some("B\u{e9}arer abc"), None), None);
    assert_eq!(bearer_token(Some("Bearer abc"), None), Some("abc"));
}

#[test]
fn dot_segments_are_not_document_ids() {
    assert!(!valid_document_id("."));
    assert!(!valid_document_id(".."));
    assert!(valid_document_id("a..b"));
}
