//! Client error reports (§4.4): validation of a batch, all or nothing, with every problem named.

use serde::Serialize;
use serde_json::{Map, Value};

pub const SOURCES: [&str; 6] = ["Network", "Audio", "UI", "Sync", "Storage", "Other"];
pub const SEVERITIES: [&str; 4] = ["Info", "Warning", "Error", "Critical"];
pub const MAX_BATCH: usize = 100;
pub const MAX_MESSAGE_CHARS: usize = 1000;
pub const MAX_CONTEXT_BYTES: usize = 4 * 1024;
pub const MAX_OCCURRENCES: u64 = 1_000_000;
/// Reports older than this (2020-01-01) or more than a day ahead of the server are refused.
const EARLIEST_TIMESTAMP_MS: u64 = 1_577_836_800_000;
/// A timestamp below this is seconds since the epoch, not milliseconds (§4.4 [1.1]).
const SECONDS_BELOW: u64 = 100_000_000_000;
const FUTURE_SLACK_MS: u64 = 24 * 3600 * 1000;
/// A report matching one first seen within this window is merged into it.
pub const DEDUPE_WINDOW_MS: u64 = 3600 * 1000;
/// `GET /errors/stats?hours=` bounds.
pub const STATS_MAX_HOURS: u64 = 720;
pub const STATS_DEFAULT_HOURS: u64 = 24;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReport {
    pub source: String,
    pub severity: String,
    pub message: String,
    /// The context object as JSON text.
    pub context: Option<String>,
    pub timestamp: u64,
    pub occurrences: u64,
}

/// One problem in a batch: which item (none for the batch itself) and which field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldIssue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub message: String,
}

fn issue(index: Option<usize>, field: &str, message: impl Into<String>) -> FieldIssue {
    FieldIssue { index, field: field.to_string(), message: message.into() }
}

fn one_of(v: Option<&Value>, allowed: &[&str], field: &str, i: usize, issues: &mut Vec<FieldIssue>) -> String {
    match v.and_then(Value::as_str) {
        Some(s) if allowed.contains(&s) => s.to_string(),
        Some(s) => {
            issues.push(issue(Some(i), field, format!("{s:?} is not one of {}", allowed.join(", "))));
            String::new()
        }
        None => {
            issues.push(issue(Some(i), field, format!("required: one of {}", allowed.join(", "))));
            String::new()
        }
    }
}

fn parse_item(i: usize, item: &Map<String, Value>, now_ms: u64, issues: &mut Vec<FieldIssue>) -> ErrorReport {
    let source = one_of(item.get("source"), &SOURCES, "source", i, issues);
    let severity = one_of(item.get("severity"), &SEVERITIES, "severity", i, issues);
    let message = match item.get("message").and_then(Value::as_str) {
        Some(m) if (1..=MAX_MESSAGE_CHARS).contains(&m.chars().count()) => m.to_string(),
        Some(_) => {
            issues.push(issue(Some(i), "message", "must have 1 to 1,000 characters"));
            String::new()
        }
        None => {
            issues.push(issue(Some(i), "message", "required string"));
            String::new()
        }
    };
    let context = match item.get("context") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            let text = Value::Object(m.clone()).to_string();
            if text.len() > MAX_CONTEXT_BYTES {
                issues.push(issue(Some(i), "context", "must be at most 4 KiB as JSON"));
            }
            Some(text)
        }
        Some(_) => {
            issues.push(issue(Some(i), "context", "must be a JSON object"));
            None
        }
    };
    // §4.4 [1.1]: below 100,000,000,000 it is seconds (the shipped plugin's ErrorTracker sends them).
    let timestamp = item.get("timestamp").and_then(Value::as_u64).map(|t| if t < SECONDS_BELOW { t.saturating_mul(1000) } else { t });
    let timestamp = match timestamp {
        Some(t) if t >= EARLIEST_TIMESTAMP_MS && t <= now_ms + FUTURE_SLACK_MS => t,
        Some(_) => {
            issues.push(issue(Some(i), "timestamp", "must be milliseconds since the epoch, after 2020 and not in the future"));
            0
        }
        None => {
            issues.push(issue(Some(i), "timestamp", "required: milliseconds since the epoch"));
            0
        }
    };
    let occurrences = match item.get("occurrences") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_OCCURRENCES).contains(&n) => n,
            _ => {
                issues.push(issue(Some(i), "occurrences", "must be an integer from 1 to 1,000,000"));
                1
            }
        },
    };
    ErrorReport { source, severity, message, context, timestamp, occurrences }
}

/// Validates a whole batch; any problem rejects it, and every problem is listed.
pub fn parse_batch(body: &Value, now_ms: u64) -> Result<Vec<ErrorReport>, Vec<FieldIssue>> {
    let Some(items) = body.get("errors").and_then(Value::as_array) else {
        return Err(vec![issue(None, "errors", "required: an array of 1 to 100 errors")]);
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(vec![issue(None, "errors", format!("must hold 1 to 100 errors, not {}", items.len()))]);
    }
    let mut issues = Vec::new();
    let mut reports = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_object() {
            Some(obj) => reports.push(parse_item(i, obj, now_ms, &mut issues)),
            None => issues.push(issue(Some(i), "", "each error must be an object")),
        }
    }
    if issues.is_empty() {
        Ok(reports)
    } else {
        Err(issues)
    }
}

/// The `hours` parameter of the stats route.
pub fn stats_hours(raw: Option<&str>) -> Result<u64, String> {
    match raw {
        None => Ok(STATS_DEFAULT_HOURS),
        Some(s) => match s.parse::<u64>() {
            Ok(h) if (1..=STATS_MAX_HOURS).contains(&h) => Ok(h),
            _ => Err(format!("hours must be an integer from 1 to {STATS_MAX_HOURS}")),
        },
    }
}

/// `GET /api/v1/errors` (§6.1 [1.2]) page size bounds.
pub const LIST_MAX_LIMIT: u64 = 200;
pub const LIST_DEFAULT_LIMIT: u64 = 50;

/// The listing's filters and page. `before` is the cursor `"{last_seen}:{id}"` of the last row
/// of the previous page (`next_before`), or a bare `last_seen` in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub resolved: Option<bool>,
    pub severity: Option<String>,
    pub source: Option<String>,
    pub limit: u64,
    pub before: Option<(u64, u64)>,
}

fn choice(raw: Option<&str>, allowed: &[&str], name: &str) -> Result<Option<String>, String> {
    match raw {
        None | Some("") => Ok(None),
        Some(s) if allowed.contains(&s) => Ok(Some(s.to_string())),
        Some(s) => Err(format!("{name} {s:?} is not one of {}", allowed.join(", "))),
    }
}

fn cursor(raw: &str) -> Result<(u64, u64), String> {
    let bad = || format!("before must be a next_before cursor or milliseconds since the epoch, not {raw:?}");
    match raw.split_once(':') {
        Some((t, id)) => Ok((t.parse().map_err(|_| bad())?, id.parse().map_err(|_| bad())?)),
        None => Ok((raw.parse().map_err(|_| bad())?, 0)),
    }
}

/// Parses the listing's query parameters; `get` returns a parameter's raw value.
pub fn parse_list_query(get: impl Fn(&str) -> Option<String>) -> Result<ListQuery, String> {
    let resolved = match get("resolved").as_deref() {
        None | Some("") | Some("all") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(s) => return Err(format!("resolved must be true, false or all, not {s:?}")),
    };
    let severity = choice(get("severity").as_deref(), &SEVERITIES, "severity")?;
    let source = choice(get("source").as_deref(), &SOURCES, "source")?;
    let limit = match get("limit") {
        None => LIST_DEFAULT_LIMIT,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if (1..=LIST_MAX_LIMIT).contains(&n) => n,
            _ => return Err(format!("limit must be an integer from 1 to {LIST_MAX_LIMIT}")),
        },
    };
    let before = get("before").filter(|s| !s.is_empty()).map(|s| cursor(&s)).transpose()?;
    Ok(ListQuery { resolved, severity, source, limit, before })
}

/// `PATCH /api/v1/errors/{id}` body `{"resolved": true|false}`.
pub fn parse_resolve(body: &Value) -> Result<bool, String> {
    match body.get("resolved") {
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err("resolved must be true or false".into()),
        None => Err("required: {\"resolved\": true|false}".into()),
    }
}

/// The id in `/api/v1/errors/{id}`: a positive integer.
pub fn parse_error_id(raw: &str) -> Result<u64, String> {
    match raw.parse::<u64>() {
        Ok(n) if n > 0 && n < (1 << 53) => Ok(n),
        _ => Err(format!("error id must be a positive integer, not {raw:?}")),
    }
}
