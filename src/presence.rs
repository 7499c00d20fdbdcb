//! Presence (§4.5): what a user says about themselves, and what others are shown.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::protocol::{Failure, opt_str};

pub const STATUSES: [&str; 3] = ["online", "away", "offline"];
/// Users one `watch_presence` may name.
pub const MAX_WATCHED: usize = 100;
/// A presence lease's `ttl`, in seconds (§5.6).
pub const LEASE_TTL_SECS: std::ops::RangeInclusive<u64> = 1..=300;
/// Users a presence audience may name (§5.6).
pub const MAX_AUDIENCE: usize = 5_000;
/// When an unrenewed room report lapses (§5.6); rooms renew at a third of it (every 60 s).
pub const REPORT_LAPSE_MS: u64 = 180_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub status: String,
    pub in_studio: bool,
    pub daw_type: Option<String>,
    pub last_active: u64,
    /// `false` hides the user: everyone else sees `offline` (§4.5 [1.1]).
    #[serde(default = "visible_by_default")]
    pub visible: bool,
    /// With `ttl` (§5.6): the status holds without any socket until then (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<u64>,
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
        let lease_until = match obj.get("ttl") {
            None | Some(Value::Null) => None,
            Some(t) => match t.as_u64().filter(|t| LEASE_TTL_SECS.contains(t)) {
                Some(secs) => Some(now_ms + secs * 1000),
                None => return Err(Failure::bad("ttl must be an integer number of seconds from 1 to 300")),
            },
        };
        Ok(Presence { status: status.to_string(), in_studio, daw_type, last_active: now_ms, visible, lease_until })
    }

    /// Whether a lease keeps the stated status without any socket at `now`.
    pub fn leased(&self, now: u64) -> bool {
        self.lease_until.is_some_and(|until| until > now)
    }

    /// What someone outside the user's audience reads: offline, nothing else.
    pub fn hidden(user_id: &str) -> Value {
        Presence::shown(user_id, None, false, 0, false)
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

/// `playback` from the user's channel (§5.6) → the frame type and payload pushed to watchers.
pub fn parse_playback(user_id: &str, payload: &serde_json::Map<String, Value>) -> Result<(&'static str, Value), Failure> {
    let kind = match opt_str(payload, "state")? {
        Some("started") => "playback_started",
        Some("stopped") => "playback_stopped",
        _ => return Err(Failure::bad("state must be \"started\" or \"stopped\"")),
    };
    let track_id = opt_str(payload, "track_id")?;
    if track_id.is_some_and(|t| t.is_empty() || t.len() > 256) {
        return Err(Failure::bad("track_id must have 1 to 256 bytes"));
    }
    let position_ms = match payload.get("position_ms") {
        None | Some(Value::Null) => None,
        Some(p) => Some(p.as_u64().ok_or_else(|| Failure::bad("position_ms must be a non-negative integer"))?),
    };
    Ok((kind, json!({"user_id": user_id, "track_id": track_id, "position_ms": position_ms})))
}

/// `PUT /api/v1/users/{id}/presence-audience`: the user ids, or None for everyone.
pub fn parse_audience(body: &Value) -> Result<Option<Vec<String>>, Failure> {
    let ids = match body.get("user_ids") {
        Some(Value::Null) => return Ok(None),
        Some(Value::Array(ids)) => ids,
        _ => return Err(Failure::bad("user_ids must be an array of user ids or null")),
    };
    if ids.len() > MAX_AUDIENCE {
        return Err(Failure::new(crate::protocol::Code::TooLarge, format!("an audience names at most {MAX_AUDIENCE} users")));
    }
    ids.iter()
        .map(|v| v.as_str().filter(|s| !s.is_empty() && s.len() <= 256).map(str::to_string).ok_or_else(|| Failure::bad("every user id must be a non-empty string")))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
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
    fn a_lease_holds_for_its_ttl_only() {
        let p = Presence::parse(&json!({"status": "online", "in_studio": true, "ttl": 90}), 1_000).unwrap();
        assert_eq!(p.lease_until, Some(91_000));
        assert!(p.leased(90_999) && !p.leased(91_000));
        assert!(!Presence::parse(&json!({"status": "online"}), 0).unwrap().leased(0));
        for bad in [json!(0), json!(301), json!(1.5), json!("90"), json!(-1)] {
            assert!(Presence::parse(&json!({"status": "online", "ttl": bad}), 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn playback_and_audiences_are_validated() {
        let started = json!({"state": "started", "track_id": "t1", "position_ms": 1500});
        let (kind, payload) = parse_playback("u", started.as_object().unwrap()).unwrap();
        assert_eq!((kind, payload), ("playback_started", json!({"user_id": "u", "track_id": "t1", "position_ms": 1500})));
        assert_eq!(parse_playback("u", json!({"state": "stopped"}).as_object().unwrap()).unwrap().0, "playback_stopped");
        for bad in [json!({}), json!({"state": "paused"}), json!({"state": "started", "position_ms": -3}), json!({"state": "started", "track_id": 5})] {
            assert!(parse_playback("u", bad.as_object().unwrap()).is_err(), "{bad}");
        }
        assert_eq!(parse_audience(&json!({"user_ids": null})).unwrap(), None);
        assert_eq!(parse_audience(&json!({"user_ids": ["a"]})).unwrap(), Some(vec!["a".to_string()]));
        let too_many: Vec<String> = (0..=MAX_AUDIENCE).map(|i| i.to_string()).collect();
        assert_eq!(parse_audience(&json!({"user_ids": too_many})).unwrap_err().code, crate::protocol::Code::TooLarge);
        for bad in [json!({}), json!({"user_ids": "a"}), json!({"user_ids": [1]}), json!({"user_ids": [""]})] {
            assert!(parse_audience(&bad).is_err(), "{bad}");
        }
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
