//! The canvas plan's wire shape (§8), normalised at the edge of parsing like the plugin's
//! (`plugin_shapes`), so nothing past it knows it exists:
//!
//! `{"type":"operation","room":R,"timestamp":T,"data":{"operation_type":K,"stroke_data":S,"client_version":V}}`
//! reads as the operation `{"document_id":R,"client_id":<the socket's>,"type":K,"stroke_id":S.stroke_id,"data":S,"version":V,"timestamp":T}`:
//! - `room` is the document id (it must be this socket's document, as any `document_id`);
//! - `client_version` is the document version the operation was made against (`version`);
//! - `stroke_data` is the stroke as the plan's client holds it, so it is the stroke's `data`
//!   whole (`stroke_id` included): `initial_state` gives the same object back;
//! - the plan sends no `seq`: the operation is the client's next seq against `client_version`,
//!   like the plugin's (§4.7), so a resend after a reconnect cannot be recognised as a duplicate;
//! - the envelope's `timestamp` (ms), when a number, is the client timestamp for last-writer-wins.

use serde_json::{Map, Value};

use crate::protocol::Failure;

/// The contract's operation object for a plan-shaped `operation` frame; `None` when `frame` is
/// not one (it has a `payload`, or no `data` with `operation_type`).
pub fn plan_operation(frame: &Map<String, Value>, socket_client_id: &str) -> Option<Result<Map<String, Value>, Failure>> {
    if frame.get("payload").is_some_and(|p| !p.is_null()) {
        return None;
    }
    let data = frame.get("data")?.as_object()?;
    let kind = data.get("operation_type")?;
    Some(normalise(frame, data, kind, socket_client_id))
}

fn normalise(frame: &Map<String, Value>, data: &Map<String, Value>, kind: &Value, client_id: &str) -> Result<Map<String, Value>, Failure> {
    let kind = kind.as_str().ok_or_else(|| Failure::bad("data.operation_type must be a string"))?;
    let mut op = Map::new();
    match frame.get("room") {
        Some(Value::String(room)) => {
            op.insert("document_id".into(), Value::String(room.clone()));
        }
        None | Some(Value::Null) => {}
        Some(_) => return Err(Failure::bad("room must be a string")),
    }
    op.insert("client_id".into(), Value::String(client_id.to_string()));
    op.insert("type".into(), Value::String(kind.to_ascii_lowercase()));
    match data.get("client_version") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let v = v.as_u64().ok_or_else(|| Failure::bad("data.client_version must be a non-negative integer"))?;
            op.insert("version".into(), Value::from(v));
        }
    }
    if let Some(t) = frame.get("timestamp").and_then(Value::as_u64) {
        op.insert("timestamp".into(), Value::from(t));
    }
    match data.get("stroke_data") {
        None | Some(Value::Null) => {}
        Some(Value::Object(stroke)) => {
            if let Some(id) = stroke.get("stroke_id") {
                op.insert("stroke_id".into(), id.clone());
            }
            op.insert("data".into(), Value::Object(stroke.clone()));
        }
        Some(_) => return Err(Failure::bad("data.stroke_data must be an object")),
    }
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(v: Value) -> Option<Result<Value, String>> {
        plan_operation(v.as_object().unwrap(), "c-1").map(|r| r.map(Value::Object).map_err(|f| f.message))
    }

    #[test]
    fn the_plans_frame_reads_as_the_contracts_operation() {
        let stroke = json!({"stroke_id": "s1", "points": [[0, 0], [4, 4]], "color": "red"});
        let frame = json!({"type": "operation", "room": "canvas:a", "timestamp": 1702569600123u64,
            "data": {"operation_type": "stroke_create", "stroke_data": stroke, "client_version": 7}});
        assert_eq!(
            plan(frame).unwrap().unwrap(),
            json!({"document_id": "canvas:a", "client_id": "c-1", "type": "stroke_create", "stroke_id": "s1", "data": stroke, "version": 7, "timestamp": 1702569600123u64})
        );
        let clear = json!({"type": "operation", "room": "canvas:a", "data": {"operation_type": "CLEAR_ALL"}});
        assert_eq!(plan(clear).unwrap().unwrap(), json!({"document_id": "canvas:a", "client_id": "c-1", "type": "clear_all"}));
    }

    #[test]
    fn other_frames_are_left_alone_and_bad_fields_are_named() {
        assert!(plan(json!({"type": "operation", "payload": {"type": "stroke_delete", "stroke_id": "s"}})).is_none());
        assert!(plan(json!({"type": "operation", "data": {"stroke_data": {}}})).is_none());
        let bad = |data: Value, room: Value| plan(json!({"type": "operation", "room": room, "data": data})).unwrap().unwrap_err();
        assert!(bad(json!({"operation_type": 3}), json!("canvas:a")).contains("operation_type"));
        assert!(bad(json!({"operation_type": "stroke_delete", "client_version": -1}), json!("canvas:a")).contains("client_version"));
        assert!(bad(json!({"operation_type": "stroke_delete", "stroke_data": "s1"}), json!("canvas:a")).contains("stroke_data"));
        assert!(bad(json!({"operation_type": "stroke_delete"}), json!(5)).contains("room"));
    }
}
