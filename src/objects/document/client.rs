//! The calls a `DocumentRoom` answers, as typed requests and replies used by both ends, and
//! (in the Worker) the functions that make them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::call;
use crate::runtime::rpc::{Done, RawJson};

/// An operation submitted over REST (`POST /api/v1/operations/apply`, engagement actions);
/// replies with the ack.
#[derive(Serialize, Deserialize)]
pub struct Apply {
    pub operation: Map<String, Value>,
}
call!(Apply, "/apply", RawJson);

/// The new text of a text document (`PUT /channels/{id}/description`), turned into operations.
#[derive(Serialize, Deserialize)]
pub struct ReplaceText {
    pub text: String,
    /// The version the caller read; a changed document is a conflict.
    pub version: Option<u64>,
}
#[derive(Serialize, Deserialize)]
pub struct TextReplaced {
    pub status: String,
    pub version: u64,
    pub content: String,
}
call!(ReplaceText, "/text", TextReplaced);

/// `GET /documents/{id}`: the state with its version.
#[derive(Serialize, Deserialize)]
pub struct ReadDocument {
    /// `ydoc:` documents: also the plain content of the `Y.Text` of this name (§7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}
call!(ReadDocument, "/document", RawJson);

/// A Yjs update over REST (`POST /documents/ydoc:{id}/update`, §7), base64 (standard).
#[derive(Serialize, Deserialize)]
pub struct ApplyYjsUpdate {
    pub update: String,
}
#[derive(Serialize, Deserialize)]
pub struct YjsApplied {
    pub version: u64,
}
call!(ApplyYjsUpdate, "/yjs-update", YjsApplied);

/// A post's counts (when KV missed).
#[derive(Serialize, Deserialize)]
pub struct ReadCounts {}
call!(ReadCounts, "/counts", RawJson);

/// A page of a post's live comments, newest first (§6.2): `{"comments","next_before"}`.
#[derive(Serialize, Deserialize)]
pub struct ReadComments {
    pub limit: u64,
    /// Strictly before this `created_at` (and, at that time, this comment id).
    pub before_at: Option<u64>,
    pub before_id: Option<String>,
}
call!(ReadComments, "/comments", RawJson);

/// The main backend's import of a post's existing engagement (§6.3); replies with the ack of
/// the one operation it makes (`noop` when everything was already there).
#[derive(Serialize, Deserialize)]
pub struct ImportEngagement {
    pub batch: crate::post_import::ImportBatch,
}
call!(ImportEngagement, "/import", RawJson);

/// A room event for every socket (`POST /documents/{id}/broadcast`).
#[derive(Serialize, Deserialize)]
pub struct Broadcast {
    /// `{"name","data"}`, checked by the route.
    pub event: Value,
}
#[derive(Serialize, Deserialize)]
pub struct Broadcasted {
    pub document_id: String,
    pub sockets: usize,
}
call!(Broadcast, "/broadcast", Broadcasted);

/// A user's presence, for every socket of the room (from the user's channel).
#[derive(Serialize, Deserialize)]
pub struct ShowPresence {
    pub payload: Value,
}
call!(ShowPresence, "/presence", Done);

/// Registers a post's owner (`PUT /posts/{id}`): the caller, or the named user.
#[derive(Serialize, Deserialize)]
pub struct SetOwner {
    pub owner_id: Option<String>,
    /// `"public"` or `"private"` (§5.5 [1.2]); None leaves it as it is.
    #[serde(default)]
    pub visibility: Option<String>,
}
#[derive(Serialize, Deserialize)]
pub struct OwnerSet {
    pub post_id: String,
    pub owner_id: String,
}
call!(SetOwner, "/owner", OwnerSet);

/// One page of history from D1, after the object flushed what it acked.
#[derive(Serialize, Deserialize)]
pub struct ReadHistory {
    pub since: u64,
    pub limit: u64,
}
call!(ReadHistory, "/history", RawJson);

/// `POST /documents/{id}/revoke` (§5.5 [1.2]): the user is refused until `until` (ms) and their
/// sockets here are closed with 4403.
#[derive(Serialize, Deserialize)]
pub struct Revoke {
    pub user_id: String,
    pub until: Option<u64>,
}
#[derive(Serialize, Deserialize)]
pub struct Revoked {
    pub user_id: String,
    pub until: u64,
}
call!(Revoke, "/revoke", Revoked);

/// `GET /documents/{id}/metrics`.
#[derive(Serialize, Deserialize)]
pub struct ReadMetrics {}
call!(ReadMetrics, "/metrics", Value);

/// Deletes the document: state, log, history, cached counts; sockets closed with 4404.
#[derive(Serialize, Deserialize)]
pub struct DeleteDocument {}
#[derive(Serialize, Deserialize)]
pub struct Deleted {
    pub document_id: String,
    pub deleted: bool,
}
call!(DeleteDocument, "/delete", Deleted);

/// The KV key of a post's cached counts (only the post's object writes it).
pub fn counts_cache_key(post_id: &str) -> String {
    format!("engagement:{post_id}")
}

/// The path of a socket upgrade handed to the object.
pub const CONNECT_PATH: &str = "/connect";

#[cfg(target_arch = "wasm32")]
pub fn object<'a>(env: &'a worker::Env, document_id: &'a str, actor: &'a crate::model::Actor) -> crate::runtime::rpc::ObjectRef<'a> {
    crate::runtime::rpc::ObjectRef { env, binding: crate::runtime::bindings::DOCUMENT_ROOM, name: document_id, actor: Some(actor), document_id: Some(document_id) }
}
