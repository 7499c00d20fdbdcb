//! The publish API of the main backend (§4.8 [1.1]): what `POST /api/v1/notify` and
//! `POST /api/v1/documents/{id}/broadcast` accept, checked field by field.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::protocol::{opt_str, Code, Failure};
use crate::sharding::{shard_of, INBOX_SHARDS};

pub const MAX_RECIPIENTS: usize = 10_000;
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024;
pub const MAX_BROADCAST_BYTES: usize = 16 * 1024;
/// Recipients one queue message carries at most. All of a message's recipients share one inbox
/// shard, so a message is one shard call plus one push per online recipient; 4 messages a batch
/// stay under the 1,000 subrequests of one consumer invocation.
pub const RECIPIENTS_PER_MESSAGE: usize = 200;
/// The recipients' share of a queue message (the rest: payload ≤ 4 KiB, actor ≤ 512 B).
const MAX_IDS_BYTES: usize = 96 * 1024;

/// The longest wait between two delivery attempts of a fan-out message (§5.4 [1.2]).
pub const MAX_RETRY_DELAY_S: u64 = 3_600;

/// The wait before a failed fan-out message's next attempt: its age, at least 1 s and at most
/// an hour, so the waits double (1, 1, 2, 4, 8 … 3,600 s) with no attempt count needed.
pub fn retry_delay_s(age_ms: u64) -> u64 {
    (age_ms / 1000).clamp(1, MAX_RETRY_DELAY_S)
}

/// `^[a-z_]{1,40}$`: notification kinds and room event names.
pub fn valid_name(s: &str) -> bool {
    (1..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// One notification to deliver, as it travels through the queue (recipients in `user_ids`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Publish {
    pub event_id: String,
    pub kind: String,
    pub actor: Option<Value>,
    pub payload: Value,
    pub created_at: u64,
    pub user_ids: Vec<String>,
    /// False: a transient event, pushed to open channels only (§5.4 [1.2]).
    #[serde(default = "stored_by_default", skip_serializing_if = "is_true")]
    pub store: bool,
}

fn stored_by_default() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Publish {
    /// Parses a notify body; `new_event_id` names the event when the caller did not.
    pub fn parse(body: &Value, now: u64, new_event_id: impl FnOnce() -> String) -> Result<Publish, Failure> {
        let obj = body.as_object().ok_or_else(|| Failure::bad("body must be a JSON object"))?;
        let event_id = match opt_str(obj, "event_id")? {
            Some(id) if (1..=128).contains(&id.chars().count()) => id.to_string(),
            Some(_) => return Err(Failure::bad("event_id must have 1 to 128 characters")),
            None => new_event_id(),
        };
        let kind = opt_str(obj, "kind")?.ok_or_else(|| Failure::bad("kind is required"))?;
        if !valid_name(kind) {
            return Err(Failure::bad("kind must match ^[a-z_]{1,40}$"));
        }
        let user_ids = user_ids(obj)?;
        let payload = match obj.get("payload") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => return Err(Failure::bad("payload must be a JSON object")),
        };
        if serde_json::to_string(&payload).map_or(usize::MAX, |s| s.len()) > MAX_PAYLOAD_BYTES {
            return Err(Failure::new(Code::TooLarge, "payload exceeds 4 KiB"));
        }
        if kind == "activity" {
            for field in ["verb", "object_type", "object_id"] {
                if !payload.get(field).is_some_and(|v| v.is_string()) {
                    return Err(Failure::bad(format!("an activity's payload needs {field} (a string)")));
                }
            }
        }
        let actor = match obj.get("actor") {
            None | Some(Value::Null) => None,
            Some(Value::Object(a)) => {
                let id = opt_str(a, "id")?.filter(|s| !s.is_empty()).ok_or_else(|| Failure::bad("actor.id is required"))?;
                let name = opt_str(a, "name")?.unwrap_or(id);
                if id.len() > 256 || name.len() > 256 {
                    return Err(Failure::new(Code::TooLarge, "actor.id and actor.name hold at most 256 bytes"));
                }
                Some(serde_json::json!({"id": id, "name": name}))
            }
            Some(_) => return Err(Failure::bad("actor must be an object {id, name}")),
        };
        let store = match obj.get("store") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Failure::bad("store must be true or false")),
        };
        if !store && kind == "activity" {
            return Err(Failure::bad("an activity is kept in the timeline: it cannot be sent with store: false"));
        }
        Ok(Publish { event_id, kind: kind.to_string(), actor, payload, created_at: now, user_ids, store })
    }

    /// The `notification` payload every recipient gets.
    pub fn notification(&self) -> Value {
        serde_json::json!({
            "kind": self.kind,
            "event_id": self.event_id,
            "actor": self.actor,
            "payload": self.payload,
            "read": false,
            "created_at": self.created_at,
        })
    }

    /// The queue messages of this event: the same notification, recipients grouped by inbox
    /// shard and cut into slices of at most `RECIPIENTS_PER_MESSAGE`.
    pub fn split(&self) -> Vec<Publish> {
        let mut by_shard: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
        for id in &self.user_ids {
            by_shard.entry(shard_of(id, INBOX_SHARDS)).or_default().push(id.clone());
        }
        let mut out = Vec::new();
        for ids in by_shard.into_values() {
            // A queue message holds at most 128 KB: cut by count and by the ids' JSON size.
            let (mut chunk, mut bytes) = (Vec::new(), 0);
            for id in ids {
                let size = serde_json::to_string(&id).map_or(0, |s| s.len()) + 1;
                if !chunk.is_empty() && (chunk.len() == RECIPIENTS_PER_MESSAGE || bytes + size > MAX_IDS_BYTES) {
                    out.push(self.with_users(std::mem::take(&mut chunk)));
                    bytes = 0;
                }
                bytes += size;
                chunk.push(id);
            }
            if !chunk.is_empty() {
                out.push(self.with_users(chunk));
            }
        }
        out
    }

    fn with_users(&self, user_ids: Vec<String>) -> Publish {
        Publish { user_ids, event_id: self.event_id.clone(), kind: self.kind.clone(), actor: self.actor.clone(), payload: self.payload.clone(), created_at: self.created_at, store: self.store }
    }
}

fn user_ids(obj: &Map<String, Value>) -> Result<Vec<String>, Failure> {
    let ids = obj.get("user_ids").and_then(Value::as_array).ok_or_else(|| Failure::bad("user_ids must be an array"))?;
    if ids.is_empty() || ids.len() > MAX_RECIPIENTS {
        return Err(Failure::new(Code::BadRequest, "user_ids must list 1 to 10,000 users"));
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let id = match id {
            Value::String(s) if !s.is_empty() && s.len() <= 256 => s.clone(),
            Value::Number(n) if n.is_u64() => n.to_string(),
            _ => return Err(Failure::bad(format!("user_ids[{i}] must be a non-empty string"))),
        };
        if seen.insert(id.clone()) {
            out.push(id);
        }
    }
    Ok(out)
}

/// A room event for every socket of a document: `{"name","data"}`.
pub fn parse_broadcast(body: &Value) -> Result<Value, Failure> {
    let obj = body.as_object().ok_or_else(|| Failure::bad("body must be a JSON object"))?;
    let name = opt_str(obj, "name")?.ok_or_else(|| Failure::bad("name is required"))?;
    if !valid_name(name) {
        return Err(Failure::bad("name must match ^[a-z_]{1,40}$"));
    }
    let data = obj.get("data").cloned().unwrap_or(Value::Null);
    if data.to_string().len() > MAX_BROADCAST_BYTES {
        return Err(Failure::new(Code::TooLarge, "data exceeds 16 KiB"));
    }
    Ok(serde_json::json!({"name": name, "data": data}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn retries_back_off_exponentially_to_an_hour() {
        // Each wait is the message's age: attempts at 0, 1, 2, 4, 8 … s.
        let (mut age, mut waits) = (0u64, Vec::new());
        for _ in 0..16 {
            let w = retry_delay_s(age * 1000);
            waits.push(w);
            age += w;
        }
        assert_eq!(&waits[..6], &[1, 1, 2, 4, 8, 16]);
        assert_eq!(*waits.last().unwrap(), MAX_RETRY_DELAY_S);
        assert!(age > 3 * 3_600, "16 attempts outlast an inbox down for an hour: {age} s");
    }

    #[test]
    fn store_false_makes_a_transient_event_that_travels_as_such() {
        let p = Publish::parse(&json!({"kind": "follower_count_update", "user_ids": ["a"], "store": false}), 5, || "e".into()).unwrap();
        assert!(!p.store);
        let back: Publish = serde_json::from_str(&serde_json::to_string(&p.split()[0]).unwrap()).unwrap();
        assert!(!back.store);
        let old: Publish = serde_json::from_str(r#"{"event_id":"e","kind":"k","actor":null,"payload":{},"created_at":1,"user_ids":["a"]}"#).unwrap();
        assert!(old.store, "a message queued before v1.2 is kept");
        assert!(Publish::parse(&json!({"kind": "k", "user_ids": ["a"], "store": "no"}), 5, || "e".into()).is_err());
    }

    #[test]
    fn a_notify_body_is_checked_and_deduplicated() {
        let body = json!({"kind": "new_follower", "user_ids": ["a", "b", "a", 7], "payload": {"x": 1}, "actor": {"id": "u1"}});
        let p = Publish::parse(&body, 5, || "gen".into()).unwrap();
        assert_eq!((p.event_id.as_str(), p.user_ids.clone()), ("gen", vec!["a".to_string(), "b".into(), "7".into()]));
        assert_eq!(p.actor, Some(json!({"id": "u1", "name": "u1"})));
        assert_eq!(p.notification()["read"], false);
        for bad in [
            json!({"kind": "Bad-Kind", "user_ids": ["a"]}),
            json!({"kind": "k", "user_ids": []}),
            json!({"kind": "k", "user_ids": [""]}),
            json!({"kind": "k", "user_ids": ["a"], "payload": [1]}),
            json!({"kind": "k", "user_ids": ["a"], "payload": {"big": "x".repeat(5000)}}),
            json!({"kind": "activity", "user_ids": ["a"], "payload": {"verb": "posted"}}),
            json!({"kind": "k", "user_ids": ["a"], "actor": {"id": "x".repeat(300)}}),
            json!({"kind": "k", "user_ids": ["a"], "actor": {"id": "a", "name": "n".repeat(300)}}),
        ] {
            assert!(Publish::parse(&bad, 0, || "e".into()).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..10_001).map(|i| i.to_string()).collect();
        assert!(Publish::parse(&json!({"kind": "k", "user_ids": many}), 0, || "e".into()).is_err());
    }

    #[test]
    fn large_lists_split_by_inbox_shard_into_bounded_messages() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("u{i}")).collect();
        let p = Publish::parse(&json!({"kind": "new_post", "user_ids": ids, "event_id": "e1"}), 0, || unreachable!()).unwrap();
        let parts = p.split();
        assert!(parts.iter().all(|m| m.event_id == "e1" && !m.user_ids.is_empty() && m.user_ids.len() <= RECIPIENTS_PER_MESSAGE));
        for m in &parts {
            let shard = shard_of(&m.user_ids[0], INBOX_SHARDS);
            assert!(m.user_ids.iter().all(|u| shard_of(u, INBOX_SHARDS) == shard));
        }
        let mut all: Vec<String> = parts.into_iter().flat_map(|m| m.user_ids).collect();
        all.sort();
        let mut want = p.user_ids.clone();
        want.sort();
        assert_eq!(all, want);
        // One shard's worth of users past the message size is cut, not dropped.
        let same: Vec<String> = (0..50_000).map(|i| format!("v{i}")).filter(|u| shard_of(u, INBOX_SHARDS) == 3).take(450).collect();
        let p = Publish::parse(&json!({"kind": "k", "user_ids": same}), 0, || "e".into()).unwrap();
        assert_eq!(p.split().iter().map(|m| m.user_ids.len()).collect::<Vec<_>>(), [200, 200, 50]);
        // Ids that escape to long JSON are cut by size, so a message stays under 128 KB.
        let wide: Vec<String> = (0..50_000).map(|i| format!("{i}{}", "\u{1}".repeat(200))).filter(|u| shard_of(u, INBOX_SHARDS) == 5).take(200).collect();
        let p = Publish::parse(&json!({"kind": "k", "user_ids": wide}), 0, || "e".into()).unwrap();
        let parts = p.split();
        assert!(parts.len() > 1 && parts.iter().all(|m| serde_json::to_string(m).unwrap().len() < 128 * 1024));
        assert_eq!(parts.iter().map(|m| m.user_ids.len()).sum::<usize>(), 200);
    }

    #[test]
    fn broadcasts_are_named_and_bounded() {
        assert_eq!(parse_broadcast(&json!({"name": "beat_drop", "data": {"bpm": 140}})).unwrap()["name"], "beat_drop");
        assert!(parse_broadcast(&json!({"name": "Nope"})).is_err());
        assert!(parse_broadcast(&json!({"name": "big", "data": "x".repeat(17_000)})).is_err());
    }
}
