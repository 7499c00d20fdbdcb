//! The shipped plugin's reply dialect (§6.1 [1.2]), written once at the edge of serialisation:
//! the room makes every message in the contract's own form, and a socket opened with
//! `?dialect=plugin` (REST: `X-Sidechain-Dialect: plugin`) gets the same frame with the plugin's
//! fields added — a superset, so nothing a v1 reader relies on changes except the envelope
//! `timestamp`, which is ISO 8601 text. Inbound shapes are `plugin_shapes`' business.

use serde_json::{Map, Value};

use crate::protocol::{Failure, Outgoing};

/// How a socket or a request wants its answers written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dialect {
    #[default]
    V1,
    Plugin,
}

impl Dialect {
    /// `?dialect=` / `X-Sidechain-Dialect:` (absent or `v1`: the contract's own form).
    pub fn parse(value: Option<&str>) -> Result<Dialect, Failure> {
        match value.map(str::trim) {
            None | Some("") | Some("v1") => Ok(Dialect::V1),
            Some(v) if v.eq_ignore_ascii_case("plugin") => Ok(Dialect::Plugin),
            Some(v) => Err(Failure::bad(format!("unknown dialect {v:?}; use \"plugin\" or \"v1\""))),
        }
    }

    pub fn is_plugin(self) -> bool {
        self == Dialect::Plugin
    }
}

/// The largest integer a JSON reader with doubles (the plugin's, JavaScript's) reads exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A client_id the plugin sent as a JSON integer reads back as that integer: every client_id
/// that is an integer's canonical decimal text (no sign, no leading zero) is written as one.
pub fn client_id_value(id: &str) -> Value {
    let canonical = !id.is_empty() && id.len() <= 16 && id.bytes().all(|b| b.is_ascii_digit()) && (id == "0" || !id.starts_with('0'));
    match id.parse::<u64>() {
        Ok(n) if canonical && n <= MAX_SAFE_INTEGER => Value::from(n),
        _ => Value::String(id.to_string()),
    }
}

fn integer_client_id(v: &mut Value) {
    if let Value::String(s) = v {
        *v = client_id_value(s);
    }
}

/// `client_id`s of a payload, wherever the contract puts them (the payload itself, `users`,
/// `awareness`, a batch's `operations`).
fn integer_client_ids(p: &mut Map<String, Value>) {
    if let Some(v) = p.get_mut("client_id") {
        integer_client_id(v);
    }
    for list in ["awareness", "operations"] {
        if let Some(Value::Array(items)) = p.get_mut(list) {
            items.iter_mut().filter_map(|i| i.get_mut("client_id")).for_each(integer_client_id);
        }
    }
    if let Some(Value::Array(users)) = p.get_mut("users") {
        for ids in users.iter_mut().filter_map(|u| u.get_mut("client_ids")).filter_map(Value::as_array_mut) {
            ids.iter_mut().for_each(integer_client_id);
        }
    }
}

/// The plugin's view of an applied operation: its first primitive (`ops` still has all) with
/// the positions before and after the transform; null when nothing was applied (a noop).
fn first_primitive(p: &Map<String, Value>) -> Value {
    let Some(Value::Object(first)) = p.get("ops").and_then(|o| o.get(0)) else {
        return Value::Null;
    };
    let mut op = first.clone();
    if let Some(Value::String(t)) = op.get_mut("type") {
        t.make_ascii_lowercase();
    }
    for key in ["original_position", "transformed_position"] {
        op.insert(key.into(), p.get(key).cloned().unwrap_or(Value::Null));
    }
    Value::Object(op)
}

fn iso_of(p: &Map<String, Value>, key: &str) -> Value {
    p.get(key).and_then(Value::as_u64).map_or(Value::Null, |ms| Value::String(iso8601(ms)))
}

/// Adds the plugin's fields to one payload of message type `kind`.
pub fn plugin_payload(kind: &str, p: &mut Map<String, Value>) {
    match kind {
        "operation_ack" => {
            let op = first_primitive(p);
            p.insert("timestamp".into(), iso_of(p, "server_timestamp"));
            p.insert("error".into(), Value::Null);
            p.insert("transformed_operation".into(), op);
        }
        "operation" | "sync_operation" => {
            let op = first_primitive(p);
            p.insert("operation".into(), op);
        }
        "operations" => {
            if let Some(Value::Array(items)) = p.get_mut("operations") {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    let op = first_primitive(item);
                    item.insert("operation".into(), op);
                }
            }
        }
        _ => {}
    }
    integer_client_ids(p);
}

/// A history item (`GET …/operations/history`) in the plugin's form: the first primitive's
/// `type`, `position`, `content`/`length` at top level too.
pub fn plugin_history_item(item: &mut Map<String, Value>) {
    if let Value::Object(first) = first_primitive(item) {
        for key in ["type", "position", "content", "length"] {
            if let Some(v) = first.get(key) {
                item.entry(key).or_insert_with(|| v.clone());
            }
        }
    }
    integer_client_ids(item);
}

/// The payload JSON text of `kind` in the plugin's form (unchanged if it is not an object).
pub fn plugin_payload_text(kind: &str, payload_json: &str) -> String {
    match serde_json::from_str::<Value>(payload_json) {
        Ok(Value::Object(mut p)) => {
            plugin_payload(kind, &mut p);
            Value::Object(p).to_string()
        }
        _ => payload_json.to_string(),
    }
}

/// The frame text of `m` for a socket of `dialect`, with the envelope's id and time.
pub fn frame(m: &Outgoing, dialect: Dialect, id: &str, now: u64) -> String {
    if !dialect.is_plugin() {
        return m.to_frame(id, now);
    }
    let payload = plugin_payload_text(m.kind, m.payload_json());
    let reply_to = m.reply_to.as_ref().map_or_else(|| "null".to_string(), |r| Value::String(r.clone()).to_string());
    format!(
        "{{\"payload\":{payload},\"type\":{},\"id\":{},\"reply_to\":{reply_to},\"timestamp\":\"{}\"}}",
        Value::String(m.kind.into()),
        Value::String(id.into()),
        iso8601(now)
    )
}

/// Milliseconds since the epoch as ISO 8601 UTC text with milliseconds (`2023-12-14T16:00:00.123Z`).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

/// ISO 8601 UTC text (`YYYY-MM-DDTHH:MM:SS[.fff]Z`, `+00:00` also read) as milliseconds since
/// the epoch; None for anything else.
pub fn parse_iso8601(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once(['T', ' '])?;
    let num = |t: &str| -> Option<u64> { (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok()).flatten() };
    let mut d = date.splitn(3, '-');
    let (y, mo, da) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let (h, mi, se) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let millis = match frac.len() {
        0 => 0,
        _ => num(&frac[..frac.len().min(3)])? * 10u64.pow(3 - frac.len().min(3) as u32),
    };
    let days = days_from_civil(y as i64, mo as u32, da as u32);
    Some(((days as u64 * 86_400) + h * 3600 + mi * 60 + se) * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}
