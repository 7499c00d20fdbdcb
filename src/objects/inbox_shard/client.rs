//! The calls an `InboxShard` answers, typed for both ends, and (in the Worker) delivery of one
//! event to users, grouped by the shard each lives in.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call;

/// An unread count and the shard clock it was read at: a channel keeps the newest it was told,
/// so counts that cross on the way never step back.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Count {
    pub unread: i64,
    pub clock: i64,
}

/// One event for some users of this shard: kept for each of them, pushed to the online ones.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deliver {
    pub event_id: String,
    /// The notification; `event_id`, `created_at` and `read` are set per user.
    pub item: Value,
    pub user_ids: Vec<String>,
    /// The shard the sender addressed; every user must live there.
    pub shard: String,
    /// An owner notification's aggregation group (`{post_id}|{kind}`, §5.2 [1.2]): merged into
    /// the user's unread item of the group, if there is one.
    #[serde(default)]
    pub group: Option<String>,
    /// False for a transient event (`"store": false`, §5.4 [1.2]): pushed to open channels only.
    #[serde(default = "kept_by_default")]
    pub store: bool,
}

fn kept_by_default() -> bool {
    true
}
#[derive(Serialize, Deserialize)]
pub struct Delivered {
    pub kept: usize,
    pub pushed: usize,
}
call!(Deliver, "/deliver", Delivered);

/// A channel's socket (of this generation) opened: the user is online; the reply holds, with
/// `since`, the kept items with a seq above it, else the unread ones (§5.3 [1.2]; at most 500,
/// oldest first), the user's latest seq and the unread count.
#[derive(Serialize, Deserialize)]
pub struct Attach {
    pub user_id: String,
    pub generation: i64,
    #[serde(default)]
    pub since: Option<i64>,
}
#[derive(Serialize, Deserialize)]
pub struct Attached {
    pub items: Vec<Value>,
    pub head: i64,
    pub count: Count,
}
call!(Attach, "/attach", Attached);

/// The kept items with a seq above `since` (a socket that missed a push catches up).
#[derive(Serialize, Deserialize)]
pub struct CatchUp {
    pub user_id: String,
    pub since: i64,
}
#[derive(Serialize, Deserialize)]
pub struct CaughtUp {
    pub items: Vec<Value>,
}
call!(CatchUp, "/catch-up", CaughtUp);

/// A channel's last socket (of this generation) closed.
#[derive(Serialize, Deserialize)]
pub struct Detach {
    pub user_id: String,
    pub generation: i64,
}
#[derive(Serialize, Deserialize)]
pub struct Detached {
    /// A newer connect registered meanwhile: the user is still online.
    pub online: bool,
}
call!(Detach, "/detach", Detached);

/// Marks events read (`event_ids`), or all of them (`None`).
#[derive(Serialize, Deserialize)]
pub struct MarkRead {
    pub user_id: String,
    pub event_ids: Option<Vec<String>>,
}
#[derive(Serialize, Deserialize)]
pub struct MarkedRead {
    pub count: Count,
    /// The generation registered online, if the user has a channel socket open.
    pub generation: Option<i64>,
}
impl MarkRead {
    /// `{"event_ids":[…]}` (at most the 500 an inbox keeps) or `{"all":true}`, for `user_id`.
    pub fn parse(user_id: &str, body: &Value) -> Result<MarkRead, crate::protocol::Failure> {
        use crate::protocol::Failure;
        if body.get("all") == Some(&Value::Bool(true)) {
            return Ok(MarkRead { user_id: user_id.to_string(), event_ids: None });
        }
        let ids = body.get("event_ids").and_then(Value::as_array).ok_or_else(|| Failure::bad("send {\"event_ids\":[…]} or {\"all\":true}"))?;
        if ids.len() > crate::limits::INBOX_ITEMS_KEPT {
            return Err(Failure::bad("at most 500 event ids at a time"));
        }
        let ids = ids.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| Failure::bad("event_ids must hold strings"))).collect::<Result<Vec<_>, _>>()?;
        Ok(MarkRead { user_id: user_id.to_string(), event_ids: Some(ids) })
    }
}

call!(MarkRead, "/read", MarkedRead);

/// A page of a user's notifications (or, with `timeline`, activities), newest first.
#[derive(Serialize, Deserialize)]
pub struct ReadPage {
    pub user_id: String,
    pub limit: Option<u64>,
    pub before: Option<u64>,
    pub timeline: bool,
}
call!(ReadPage, "/page", Value);

/// The users of this shard whose inbox holds an event (operators and tests check a fan-out
/// with it: one call per shard rather than one per user).
#[derive(Serialize, Deserialize)]
pub struct Holders {
    pub event_id: String,
}
#[derive(Serialize, Deserialize)]
pub struct HolderList {
    pub user_ids: Vec<String>,
}
call!(Holders, "/holders", HolderList);

/// What one channel kept before the inbox shards, handed over once.
#[derive(Serialize, Deserialize)]
pub struct Import {
    pub user_id: String,
    pub inbox: Vec<LegacyItem>,
    pub activities: Vec<LegacyActivity>,
}
#[derive(Serialize, Deserialize)]
pub struct Imported {
    pub imported: usize,
}
call!(Import, "/import", Imported);

/// A row of a channel's inbox from before the shards.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LegacyItem {
    pub event_id: String,
    pub created_at: f64,
    pub read: f64,
    pub delivered: f64,
    pub item: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LegacyActivity {
    pub created_at: f64,
    pub item: String,
}

#[cfg(target_arch = "wasm32")]
pub use calls::*;

#[cfg(target_arch = "wasm32")]
mod calls {
    use std::collections::BTreeMap;

    use serde_json::Value;
    use worker::Env;

    use super::Deliver;
    use crate::runtime::bindings;
    use crate::runtime::http::ApiError;
    use crate::runtime::rpc::{self, Call, ObjectRef};
    use crate::sharding::inbox_shard;

    /// The shard object named `shard` (`inbox-N`).
    pub fn shard<'a>(env: &'a Env, shard: &'a str) -> ObjectRef<'a> {
        ObjectRef { env, binding: bindings::INBOX_SHARD, name: shard, actor: None, document_id: None }
    }

    /// Makes call `C` to the shard holding `user_id`'s inbox.
    pub async fn call_for<C: Call>(env: &Env, user_id: &str, req: &C) -> Result<C::Reply, ApiError> {
        rpc::call(&shard(env, &inbox_shard(user_id)), req).await
    }

    /// Delivers `item` as `event_id` to `user_ids`: one call per inbox shard they live in (one,
    /// for a queue message made by `Publish::split`; regrouped anyway, so a message from any
    /// older layout still reaches the right shards). Ok once every shard kept it for each of
    /// them and every online channel took it.
    pub async fn deliver(env: &Env, event_id: &str, item: &Value, user_ids: &[String], group: Option<&str>, store: bool) -> Result<(), String> {
        let mut by_shard: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for u in user_ids {
            by_shard.entry(inbox_shard(u)).or_default().push(u.clone());
        }
        for (name, users) in by_shard {
            let req = Deliver { event_id: event_id.to_string(), item: item.clone(), user_ids: users, shard: name.clone(), group: group.map(str::to_string), store };
            rpc::call(&shard(env, &name), &req).await.map_err(|e| format!("{name} answered {}: {}", e.status, e.message))?;
        }
        Ok(())
    }
}
