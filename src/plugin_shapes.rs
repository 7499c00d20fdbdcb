//! The shipped plugin's wire shapes (§4.7 [1.1]), normalised at the edge of parsing so nothing
//! past it knows they exist: camelCase field names, operation types in any letter case, and
//! (over REST) the document id outside the operation; §6.1 [1.2]: the nested socket operation
//! `{"document_id", "operation": {…}}` and ISO 8601 text timestamps.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// camelCase names the plugin sends and the names they mean; snake_case wins when both are sent.
const RENAMES: [(&str, &str); 3] = [("clientId", "client_id"), ("documentId", "document_id"), ("serverTimestamp", "server_timestamp")];

fn needs_work(op: &Map<String, Value>) -> bool {
    let shouting = |m: &Map<String, Value>| m.get("type").and_then(Value::as_str).is_some_and(|t| t.bytes().any(|b| b.is_ascii_uppercase()));
    RENAMES.iter().any(|(camel, _)| op.contains_key(*camel))
        || shouting(op)
        || op.get("timestamp").is_some_and(Value::is_string)
        || op.get("ops").and_then(Value::as_array).is_some_and(|ops| ops.iter().filter_map(Value::as_object).any(shouting))
}

fn lowercase_type(m: &mut Map<String, Value>) {
    if let Some(Value::String(t)) = m.get_mut("type") {
        t.make_ascii_lowercase();
    }
}

/// The operation object in the contract's own form (borrowed as is when it already is).
pub fn normalize_operation(op: &Map<String, Value>) -> Cow<'_, Map<String, Value>> {
    if !needs_work(op) {
        return Cow::Borrowed(op);
    }
    let mut op = op.clone();
    for (camel, snake) in RENAMES {
        if let Some(v) = op.remove(camel) {
            op.entry(snake).or_insert(v);
        }
    }
    lowercase_type(&mut op);
    // An ISO text timestamp reads as its milliseconds; unreadable text stays, and is refused.
    if let Some(ms) = op.get("timestamp").and_then(Value::as_str).and_then(crate::dialect::parse_iso8601) {
        op.insert("timestamp".into(), Value::from(ms));
    }
    if let Some(Value::Array(ops)) = op.get_mut("ops") {
        ops.iter_mut().filter_map(Value::as_object_mut).for_each(lowercase_type);
    }
    Cow::Owned(op)
}

/// The plugin's nested socket operation (§6.1 [1.2]) as the flat form: the inner operation,
/// named by the outer `document_id` when it names none itself. `Ok(None)`: not the nested form.
pub fn unnest_operation(payload: &Map<String, Value>) -> Result<Option<Map<String, Value>>, crate::protocol::Failure> {
    let op = match payload.get("operation") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(op)) => op,
        Some(_) => return Err(crate::protocol::Failure::bad("payload.operation must be an object")),
    };
    let mut flat = op.clone();
    let named = |m: &Map<String, Value>| ["document_id", "documentId"].iter().any(|k| m.get(*k).is_some_and(|v| !v.is_null()));
    if !named(&flat) {
        if let Some(outer) = ["document_id", "documentId"].iter().find_map(|k| payload.get(*k).filter(|v| !v.is_null())) {
            flat.insert("document_id".into(), outer.clone());
        }
    }
    Ok(Some(flat))
}

/// The document an `apply` body names: the operation's own id, else the body's `documentId`.
pub fn apply_document_id(body: &Value) -> Option<&str> {
    let op = body.get("operation")?;
    ["document_id", "documentId"]
        .iter()
        .find_map(|k| op.get(*k).and_then(Value::as_str))
        .or_else(|| ["document_id", "documentId"].iter().find_map(|k| body.get(*k).and_then(Value::as_str)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_plugins_operation_reads_as_the_contract_says() {
        let plugin = json!({"type": "Insert", "clientId": 12345, "timestamp": 1702569600123u64, "position": 42, "content": "x"});
        let n = normalize_operation(plugin.as_object().unwrap());
        assert_eq!(Value::Object(n.into_owned()), json!({"type": "insert", "client_id": 12345, "timestamp": 1702569600123u64, "position": 42, "content": "x"}));
        let both = json!({"client_id": "mine", "clientId": "theirs", "ops": [{"type": "DELETE", "position": 0, "length": 1}]});
        let n = normalize_operation(both.as_object().unwrap());
        assert_eq!(n["client_id"], "mine");
        assert_eq!(n["ops"][0]["type"], "delete");
        let clean = json!({"type": "insert", "position": 0, "content": "x"});
        assert!(matches!(normalize_operation(clean.as_object().unwrap()), Cow::Borrowed(_)));
    }

    #[test]
    fn the_nested_operation_reads_as_the_flat_form() {
        let nested = json!({"document_id": "d", "operation": {"type": "Insert", "clientId": 7, "timestamp": "2023-12-14T16:00:00.123Z", "position": 0, "content": "x"}});
        let flat = unnest_operation(nested.as_object().unwrap()).unwrap().unwrap();
        let n = normalize_operation(&flat);
        assert_eq!(Value::Object(n.into_owned()), json!({"type": "insert", "client_id": 7, "document_id": "d", "timestamp": 1702569600123u64, "position": 0, "content": "x"}));
        assert!(unnest_operation(json!({"type": "insert"}).as_object().unwrap()).unwrap().is_none());
        assert!(unnest_operation(json!({"operation": 5}).as_object().unwrap()).is_err());
        let own = json!({"document_id": "outer", "operation": {"documentId": "inner"}});
        assert_eq!(unnest_operation(own.as_object().unwrap()).unwrap().unwrap().get("document_id"), None, "the op's own id is kept");
    }

    #[test]
    fn the_outer_document_id_names_the_document_when_the_operation_has_none() {
        assert_eq!(apply_document_id(&json!({"operation": {}, "documentId": "channel:a:description"})), Some("channel:a:description"));
        assert_eq!(apply_document_id(&json!({"operation": {"document_id": "x"}, "documentId": "y"})), Some("x"));
        assert_eq!(apply_document_id(&json!({"operation": {"documentId": "z"}})), Some("z"));
    }
}
