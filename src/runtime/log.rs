//! Structured logs: one JSON object per line, so `wrangler tail` and Workers Logs can filter by
//! field (request id, document, user, event, duration, code).

use serde_json::{Map, Value};

/// Writes one log line: `event` plus the given fields (nulls left out).
pub fn event(event: &str, fields: &[(&str, Value)]) {
    let mut line = Map::new();
    line.insert("event".into(), Value::String(event.into()));
    line.insert("at".into(), Value::from(worker::Date::now().as_millis()));
    for (k, v) in fields {
        if !v.is_null() {
            line.insert((*k).into(), v.clone());
        }
    }
    let text = Value::Object(line).to_string();
    if fields.iter().any(|(k, v)| *k == "status" && v.as_u64().is_some_and(|s| s >= 500)) || event.ends_with("error") {
        worker::console_error!("{text}");
    } else {
        worker::console_log!("{text}");
    }
}

/// One error line: `{"event":"error","what",...,"message"}` plus the given fields, so failures are
/// searchable by kind (`what`) as well as by document or user.
pub fn error(what: &str, message: impl std::fmt::Display, fields: &[(&str, Value)]) {
    let mut all: Vec<(&str, Value)> = vec![("what", Value::from(what)), ("message", Value::from(message.to_string()))];
    all.extend(fields.iter().cloned());
    event("error", &all);
}
