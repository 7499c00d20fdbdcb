//! The calls a `UserChannel` answers, typed for both ends, and (in the Worker) the functions
//! that make them. A channel object is named by its user's id.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::objects::inbox_shard::client::Count;
use crate::call;
use crate::runtime::rpc::Done;

/// Kept notifications for the user's open sockets (from their inbox shard): every item with a
/// seq above `from`, oldest first — or, `transient`, one event for open sockets only. 410 when
/// the channel has no socket open.
#[derive(Serialize, Deserialize)]
pub struct PushNotification {
    pub items: Vec<Value>,
    pub from: i64,
    #[serde(default)]
    pub transient: bool,
    pub count: Count,
}
#[derive(Serialize, Deserialize)]
pub struct PushTaken {
    /// `delivered`, or `duplicate` when the sockets already had this event.
    pub status: String,
}
call!(PushNotification, "/notification", PushTaken);

/// A new unread count (after a REST read), for the sockets if it is newer than theirs.
#[derive(Serialize, Deserialize)]
pub struct TellCount {
    pub count: Count,
}
call!(TellCount, "/count", Done);

/// Hands the channel's pre-shard inbox to the inbox shard now (a REST read found it pending).
#[derive(Serialize, Deserialize)]
pub struct ImportLegacy {
    pub user_id: String,
}
call!(ImportLegacy, "/import-legacy", Done);

/// What the calling actor is shown of this channel's user.
#[derive(Serialize, Deserialize)]
pub struct ReadPresence {
    pub user_id: String,
}
call!(ReadPresence, "/presence", Value);

/// `PUT /api/v1/me/presence` of the calling actor, whose channel this is.
#[derive(Serialize, Deserialize)]
pub struct SetPresence {
    pub body: Value,
}
call!(SetPresence, "/presence/set", Value);

/// Another user's channel subscribes to this user's presence; replies with the current one.
#[derive(Serialize, Deserialize)]
pub struct AddWatcher {
    pub watcher: String,
    pub user_id: String,
}
call!(AddWatcher, "/watch", Value);

/// Another user's channel no longer watches this user (its watch list was replaced, §5.1 [1.2]).
#[derive(Serialize, Deserialize)]
pub struct Unwatch {
    pub watcher: String,
    pub user_id: String,
}
call!(Unwatch, "/unwatch", crate::runtime::rpc::Done);

/// A watched user's presence, for this user's sockets; 410 when none is open.
#[derive(Serialize, Deserialize)]
pub struct PushPresence {
    pub payload: Value,
    /// `presence` (None) or `playback_started` / `playback_stopped`.
    #[serde(default)]
    pub kind: Option<String>,
}
#[derive(Serialize, Deserialize)]
pub struct PresencePushed {
    pub delivered: usize,
}
call!(PushPresence, "/presence/push", PresencePushed);

/// `PUT /api/v1/users/{id}/presence-audience` (service): `body` is `{"user_ids":[…]|null}`.
#[derive(Serialize, Deserialize)]
pub struct SetAudience {
    pub user_id: String,
    pub body: Value,
}
call!(SetAudience, "/presence/audience", Value);

/// How many sockets the user holds in a document room (0: none any more).
#[derive(Serialize, Deserialize)]
pub struct RoomSockets {
    pub user_id: String,
    pub document_id: String,
    pub connections: u32,
}
call!(RoomSockets, "/rooms", Done);

/// A watched post's latest counts (§6.2 [1.2]), from the user's inbox shard, for the sockets
/// that watch it; `watching` false when none does any more.
#[derive(Serialize, Deserialize)]
pub struct WatchedCounts {
    pub post_id: String,
    pub counts: Value,
}
#[derive(Serialize, Deserialize)]
pub struct WatchTaken {
    pub watching: bool,
}
call!(WatchedCounts, "/post-counts", WatchTaken);

/// The path of a socket upgrade handed to the channel.
pub const CONNECT_PATH: &str = "/connect";

#[cfg(target_arch = "wasm32")]
pub use calls::*;

#[cfg(target_arch = "wasm32")]
mod calls {
    use worker::Env;

    use crate::model::Actor;
    use crate::runtime::bindings;
    use crate::runtime::http::ApiError;
    use crate::runtime::rpc::{self, Call, ObjectRef};

    /// `user_id`'s channel, called on behalf of `actor` (None: by the system).
    pub fn object<'a>(env: &'a Env, user_id: &'a str, actor: Option<&'a Actor>) -> ObjectRef<'a> {
        ObjectRef { env, binding: bindings::USER_CHANNEL, name: user_id, actor, document_id: None }
    }

    /// Makes call `C` to `user_id`'s channel on the system's behalf.
    pub async fn call<C: Call>(env: &Env, user_id: &str, req: &C) -> Result<C::Reply, ApiError> {
        rpc::call(&object(env, user_id, None), req).await
    }
}
