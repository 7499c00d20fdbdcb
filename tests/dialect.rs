//! The plugin's dialect (§6.1 [1.2]): the nested inbound operation, and the serialiser that adds
//! the plugin's fields to the contract's frames (a superset of v1), tested on real room output.

mod common;

use common::{op_frame, session};
use serde_json::{json, Value};
use sidechain_edge::dialect::{self, client_id_value, iso8601, parse_iso8601, Dialect};
use sidechain_edge::model::NoLookup;
use sidechain_edge::ot::text::TextPrimitive;
use sidechain_edge::protocol::Outgoing;
use sidechain_edge::room::TextRoom as Room;

fn ins(position: usize, content: &str) -> TextPrimitive {
    TextPrimitive::Insert { position, content: content.into() }
}

fn plugin(m: &Outgoing) -> Value {
    serde_json::from_str(&dialect::frame(m, Dialect::Plugin, "f-1", 1_702_569_600_123)).unwrap()
}

fn v1(m: &Outgoing) -> Value {
    serde_json::from_str(&dialect::frame(m, Dialect::V1, "f-1", 1_702_569_600_123)).unwrap()
}

/// Every field of `small` is in `big` with the same value, except the keys listed.
fn superset(big: &Value, small: &Value, except: &[&str]) {
    for (k, v) in small.as_object().unwrap() {
        if !except.contains(&k.as_str()) {
            assert_eq!(&big[k], v, "field {k} changed");
        }
    }
}

#[test]
fn iso_timestamps_round_trip_and_bad_text_is_refused() {
    assert_eq!(iso8601(1_702_569_600_123), "2023-12-14T16:00:00.123Z");
    assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    for ms in [0u64, 1, 86_399_999, 951_782_400_000, 1_702_569_600_123, 4_102_444_800_000] {
        assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms));
    }
    assert_eq!(parse_iso8601("2023-12-14T16:00:00Z"), Some(1_702_569_600_000));
    assert_eq!(parse_iso8601("2023-12-14T16:00:00.5+00:00"), Some(1_702_569_600_500));
    for bad in ["", "yesterday", "2023-13-01T00:00:00Z", "2023-12-14T16:00:00", "2023-12-14T24:00:00Z", "-2023-12-14T16:00:00Z", "2023-12-14T16:00:00.xZ"] {
        assert_eq!(parse_iso8601(bad), None, "{bad}");
    }
}

#[test]
fn integer_client_ids_read_back_as_integers_and_others_stay_text() {
    assert_eq!(client_id_value("12345"), json!(12345));
    assert_eq!(client_id_value("0"), json!(0));
    for text in ["007", "laptop", "-5", "1.5", "", "9007199254740992", "123456789012345678901"] {
        assert_eq!(client_id_value(text), json!(text), "{text}");
    }
}

#[test]
fn a_plugin_ack_is_the_v1_ack_plus_the_plugins_fields() {
    let mut room = Room::new("doc");
    let (mut a, mut b) = (session(1, true), session(2, true));
    a.client_id = "12345".into();
    b.client_id = "web-tab".into();
    room.on_frame(&b, &op_frame("m0", &b.client_id, 1, 0, &[ins(0, "abc")]), 1, &[a.clone(), b.clone()], &NoLookup);
    // The plugin's nested form (no seq, no version: applied to the current version).
    let nested = r#"{"type":"operation","id":"p-1","payload":{"document_id":"doc","operation":{"type":"Insert","clientId":12345,"timestamp":"2023-12-14T16:00:00.000Z","position":0,"content":"X"}}}"#;
    let fx = room.on_frame(&a, nested, 2, &[a.clone(), b.clone()], &NoLookup);
    let ack = &fx.to_sender[0];
    assert_eq!(ack.kind, "operation_ack");
    let (p1, v) = (plugin(ack), v1(ack));
    assert_eq!(v["timestamp"], json!(1_702_569_600_123u64), "v1 keeps milliseconds");
    assert_eq!(p1["timestamp"], "2023-12-14T16:00:00.123Z", "the envelope time is ISO text");
    assert_eq!(p1["reply_to"], "p-1");
    let p = &p1["payload"];
    superset(p, &v["payload"], &["client_id", "timestamp"]);
    assert_eq!(p["client_id"], json!(12345), "the integer client id comes back an integer");
    assert_eq!(v["payload"]["client_id"], "12345", "v1 keeps the string");
    assert_eq!(p["operation_id"], "12345:1");
    assert_eq!(p["error"], Value::Null);
    assert!(p["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(p["transformed_operation"]["type"], "insert");
    assert_eq!(p["transformed_operation"]["content"], "X");
    assert_eq!(p["transformed_operation"]["original_position"], 0);
    assert_eq!(p["transformed_operation"]["transformed_position"], p["transformed_position"]);
    assert_eq!(p["ops"], v["payload"]["ops"], "ops still has every primitive");
    // Every dialect: a transformed ack says why.
    let c = session(3, true);
    let late = room.on_frame(&c, &op_frame("m1", &c.client_id, 1, 0, &[ins(0, "z")]), 3, &[c.clone()], &NoLookup);
    let late = late.to_sender[0].payload();
    assert_eq!(late["status"], "transformed");
    assert_eq!(late["reason"], "transformed over 2 concurrent operations by u2, u1");
    // The broadcast to b carries the same object as `operation`.
    let cast = fx.to_others.iter().find(|m| m.kind == "operation").unwrap();
    let pc = plugin(cast);
    superset(&pc["payload"], &v1(cast)["payload"], &["client_id"]);
    assert_eq!(pc["payload"]["operation"], p["transformed_operation"]);
}

#[test]
fn client_ids_in_state_awareness_and_batches_are_integers_too() {
    let state = Outgoing::new("initial_state", json!({"users": [{"user_id": "u", "client_ids": ["12345", "tab"]}], "awareness": [{"client_id": "77", "state": {}}]}));
    let p = plugin(&state)["payload"].clone();
    assert_eq!(p["users"][0]["client_ids"], json!([12345, "tab"]));
    assert_eq!(p["awareness"][0]["client_id"], json!(77));
    let batch = Outgoing::new("operations", json!({"operations": [{"client_id": "9", "ops": [{"type": "delete", "position": 1, "length": 2}], "original_position": 1, "transformed_position": 1}]}));
    let item = plugin(&batch)["payload"]["operations"][0].clone();
    assert_eq!(item["client_id"], json!(9));
    assert_eq!(item["operation"], json!({"type": "delete", "position": 1, "length": 2, "original_position": 1, "transformed_position": 1}));
    let noop = Outgoing::new("operation_ack", json!({"client_id": "c", "ops": [], "server_timestamp": 5}));
    assert_eq!(plugin(&noop)["payload"]["transformed_operation"], Value::Null, "a noop applied nothing");
}

#[test]
fn history_items_carry_the_first_primitive_at_top_level() {
    let mut item = json!({"client_id": "12345", "ops": [{"type": "delete", "position": 3, "length": 2}, {"type": "insert", "position": 3, "content": "yo"}]});
    dialect::plugin_history_item(item.as_object_mut().unwrap());
    assert_eq!((item["type"].clone(), item["position"].clone(), item["length"].clone()), (json!("delete"), json!(3), json!(2)));
    assert_eq!(item["client_id"], json!(12345));
    assert_eq!(item["ops"].as_array().unwrap().len(), 2);
}

#[test]
fn dialects_are_named_or_refused() {
    assert_eq!(Dialect::parse(None).unwrap(), Dialect::V1);
    assert_eq!(Dialect::parse(Some("plugin")).unwrap(), Dialect::Plugin);
    assert_eq!(Dialect::parse(Some("v1")).unwrap(), Dialect::V1);
    assert!(Dialect::parse(Some("klingon")).is_err());
}

#[test]
fn a_replay_says_syncing_with_what_is_pending_then_synced() {
    let mut room = Room::new("doc");
    let me = session(1, true);
    for seq in 1..=3 {
        room.on_frame(&me, &op_frame("m", &me.client_id, seq, seq - 1, &[ins(0, "a")]), seq, &[me.clone()], &NoLookup);
    }
    let out = room.catch_up(&me, Some(1), &[me.clone()], None);
    let statuses: Vec<(Value, Value, Value)> = out
        .iter()
        .filter(|m| m.kind == "sync_status")
        .map(|m| (m.payload()["status"].clone(), m.payload()["pending_count"].clone(), m.payload()["version"].clone()))
        .collect();
    assert_eq!(statuses, [(json!("syncing"), json!(2), json!(3)), (json!("synced"), json!(0), json!(3))], "each says the version the replay ends at");
    assert_eq!(out.len(), 4);
    // The same for a `sync` frame on an open socket.
    let sync = room.on_frame(&me, r#"{"type":"sync","id":"s","payload":{"since":1}}"#, 9, &[me.clone()], &NoLookup);
    let kinds: Vec<(String, Value, Value)> = sync.to_sender.iter().map(|m| (m.kind.to_string(), m.payload()["status"].clone(), m.payload()["pending_count"].clone())).collect();
    assert_eq!(
        kinds,
        [("sync_status".into(), json!("syncing"), json!(2)), ("sync_operation".into(), Value::Null, Value::Null), ("sync_operation".into(), Value::Null, Value::Null), ("sync_status".into(), json!("synced"), json!(0))],
        "a sync replay: syncing with what is pending, the operations (as sync_operation), synced"
    );
    let fresh = room.catch_up(&me, None, &[me.clone()], None);
    assert_eq!(fresh.last().unwrap().payload()["pending_count"], 0, "synced has pending_count for every client");
}

#[test]
fn an_operation_of_several_primitives_names_its_first_in_the_plugins_fields_and_keeps_all_in_ops() {
    let mut room = Room::new("doc");
    let (mut a, b) = (session(1, true), session(2, true));
    a.client_id = "777".into();
    room.on_frame(&b, &op_frame("m0", &b.client_id, 1, 0, &[ins(0, "hello world")]), 1, &[a.clone(), b.clone()], &NoLookup);
    let two = [TextPrimitive::Delete { position: 0, length: 6 }, ins(5, "!")];
    let fx = room.on_frame(&a, &op_frame("m1", &a.client_id, 1, 1, &two), 2, &[a.clone(), b.clone()], &NoLookup);
    let ack = plugin(&fx.to_sender[0]);
    let p = &ack["payload"];
    assert_eq!(p["ops"].as_array().map(Vec::len), Some(2), "ops keeps both primitives: {p}");
    assert_eq!(p["transformed_operation"]["type"], "delete");
    assert_eq!(p["transformed_operation"]["position"], 0);
    assert_eq!(p["transformed_operation"]["length"], 6);
    assert!(p["transformed_operation"].get("content").is_none(), "a delete names its length, not content");
    let cast = fx.to_others.iter().find(|m| m.kind == "operation").unwrap();
    assert_eq!(plugin(cast)["payload"]["operation"], p["transformed_operation"], "the broadcast carries the same first primitive");
    assert_eq!(plugin(cast)["payload"]["ops"], p["ops"]);
}
