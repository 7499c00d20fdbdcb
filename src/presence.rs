//! Presence (§4.5): what a user says about themselves, and what others are shown.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::protocol::{Failure, opt_str};

pub const STATUSES: [&str; 3] = ["online", "away", "offline"];
/// Users one `watch_presence` may name.
pub const MAX_WATCHED: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub status: String,
    pub in_studio: bool,
    pub daw_type: Option<String>,
    pub last_active: u64,
    /// `false` hides the user: everyone else sees `offline` (§4.5 [1.1]).
    #[serde(default = "visible_by_default")]
    pub visible: bool,
}

fn visible_by_default() -> bool {
    true
}

impl Presence {
    /// Parses `PUT /api/v1/me/presence`.
    pub fn parse(body: &Value, now_ms: u64) -> Result<Presence, Failure> {
        let obj = body.as_object().ok_or_else(|| Failure::bad("body must be an object"))?;
        let status = opt_str(obj, "status")?.ok_or_else(|| Failure::bad("status is required"))?;
        if !STATUSES.contains(&status) {
            return Err(Failure::bad("status must be online, away or offline"));
        }
        let in_studio = match obj.get("in_studio") {
            Some(Value::Bool(b)) => *b,
            None | Some(Value::Null) => false,
            Some(_) => return Err(Failure::bad("in_studio must be a boolean")),
        };
        let daw_type = opt_str(obj, "daw_type")?.map(str::to_string);
        if daw_type.as_ref().is_some_and(|d| d.is_empty() || d.chars().count() > 64) {
            return Err(Failure::bad("daw_type must have 1 to 64 characters"));
        }
        let visible = match obj.get("visible") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Failure::bad("visible must be a boolean")),
        };
        Ok(Presence { status: status.to_string(), in_studio, daw_type, last_active: now_ms, visible })
    }

    /// The `presence` payload others see: `offline` whenever the user has no open socket or
    /// has hidden themselves (the user still sees their own presence, with `visible`).
    pub fn shown(user_id: &str, stored: Option<&Presence>, connected: bool, last_seen: u64, to_self: bool) -> Value {
        let hidden = stored.is_some_and(|p| !p.visible);
        if to_self {
            let mut own = Presence::shown(user_id, stored, connected, last_seen, false);
            if hidden {
                own = Presence::shown(user_id, stored.map(|p| Presence { visible: true, ..p.clone() }).as_ref(), connected, last_seen, false);
            }
            own["visible"] = json!(!hidden);
            return own;
        }
        let connected = connected && !hidden;
        // A hidden user's activity is not shown either.
        let last_active = if hidden { stored.map_or(0, |p| p.last_active) } else { stored.map_or(last_seen, |p| p.last_active.max(last_seen)) };
        match stored {
            Some(p) if connected => json!({
                "user_id": user_id, "status": p.status, "in_studio": p.in_studio,
                "daw_type": p.daw_type, "last_active": last_active,
            }),
            Some(_) | None if connected => json!({
                "user_id": user_id, "status": "online", "in_studio": false, "daw_type": Value::Null, "last_active": last_active,
            }),
            _ => json!({
                "user_id": user_id, "status": "offline", "in_studio": false, "daw_type": Value::Null,
                "last_active": if last_active == 0 { Value::Null } else { json!(last_active) },
            }),
        }
    }
}

/// The user ids of a `watch_presence` payload.
pub fn parse_watch(payload: &serde_json::Map<String, Value>) -> Result<Vec<String>, Failure> {
    let ids = payload.get("user_ids").and_then(Value::as_array).ok_or_else(|| Failure::bad("user_ids must be an array"))?;
    if ids.len() > MAX_WATCHED {
        return Err(Failure::bad("watch at most 100 users at a time"));
    }
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        match id {
            Value::String(s) if !s.is_empty() && s.len() <= 256 => {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
            _ => return Err(Failure::bad("user_ids must hold non-empty strings")),
        }
    }
    Ok(out)
}

/// A new watch list replacing `old` (§5.1 [1.2]): the users no longer watched.
pub fn unwatched<'a>(old: &'a [String], new: &[String]) -> Vec<&'a String> {
    old.iter().filter(|u| !new.contains(u)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_list_replaces_the_last_one() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(unwatched(&ids(&["a", "b", "c"]), &ids(&["b", "d"])), vec!["a", "c"]);
        assert!(unwatched(&ids(&[]), &ids(&["x"])).is_empty());
        let many: Vec<Value> = (0..101).map(|i| json!(format!("u{i}"))).collect();
        assert!(parse_watch(json!({"user_ids": many}).as_object().unwrap()).is_err(), "at most 100 users");
    }

    #[test]
    fn updates_are_validated() {
        let p = Presence::parse(&json!({"status": "online", "in_studio": true, "daw_type": "Ableton"}), 7).unwrap();
        assert_eq!((p.status.as_str(), p.in_studio, p.daw_type.as_deref(), p.last_active), ("online", true, Some("Ableton"), 7));
        for bad in [json!({}), json!({"status": "busy"}), json!({"status": "away", "in_studio": "yes"}), json!([1])] {
            assert!(Presence::parse(&bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_open_socket_shows_offline_with_last_active() {
        let p = Presence::parse(&json!({"status": "online", "in_studio": true}), 100).unwrap();
        let shown = Presence::shown("u", Some(&p), false, 250, false);
        assert_eq!(shown["status"], "offline");
        assert_eq!(shown["last_active"], 250);
        assert_eq!(Presence::shown("u", Some(&p), true, 0, false)["in_studio"], true);
        assert_eq!(Presence::shown("u", None, false, 0, false)["last_active"], Value::Null);
    }

    #[test]
    fn a_hidden_user_is_offline_to_everyone_else() {
        let p = Presence::parse(&json!({"status": "online", "in_studio": true, "visible": false}), 100).unwrap();
        let others = Presence::shown("u", Some(&p), true, 500, false);
        assert_eq!((others["status"].as_str(), others["in_studio"].as_bool()), (Some("offline"), Some(false)));
        let own = Presence::shown("u", Some(&p), true, 500, true);
        assert_eq!((own["status"].as_str(), own["visible"].as_bool()), (Some("online"), Some(false)));
        assert!(Presence::parse(&json!({"status": "online", "visible": "no"}), 0).is_err());
    }

    #[test]
    fn watch_lists_are_bounded_and_deduplicated() {
        let ok = parse_watch(json!({"user_ids": ["a", "b", "a"]}).as_object().unwrap()).unwrap();
        assert_eq!(ok, ["a", "b"]);
        let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        assert!(parse_watch(json!({"user_ids": many}).as_object().unwrap()).is_err());
        assert!(parse_watch(json!({"user_ids": [1]}).as_object().unwrap()).is_err());
    }
}
