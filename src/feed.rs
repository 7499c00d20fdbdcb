//! Feed reads of posts (§6.2 [1.2]): the batch counts' id list and the comment page's query,
//! parsed and checked before anything is asked of a post's object.

use serde_json::{json, Value};

use crate::ot::engagement::CommentRecord;
use crate::protocol::valid_document_id;

/// At most this many posts in one `GET /api/v1/posts/engagement?ids=`.
pub const MAX_FEED_IDS: usize = 100;
/// Post objects asked at once for the counts KV did not have.
pub const FEED_FAN_OUT: usize = 10;
/// `GET /api/v1/posts/{id}/comments?limit=` bounds.
pub const COMMENTS_MAX_LIMIT: u64 = 100;
pub const COMMENTS_DEFAULT_LIMIT: u64 = 20;

/// The `ids` of the batch read: 1–100 comma-separated post ids, each valid as `post:{id}`,
/// repeats dropped (first occurrence kept).
pub fn parse_feed_ids(raw: Option<&str>) -> Result<Vec<String>, String> {
    let raw = raw.unwrap_or("");
    if raw.trim().is_empty() {
        return Err("ids is required: 1 to 100 comma-separated post ids".into());
    }
    let mut ids: Vec<String> = Vec::new();
    for id in raw.split(',') {
        if !valid_document_id(&format!("post:{id}")) || id.is_empty() {
            return Err(format!("post id {id:?} must match ^[A-Za-z0-9_.:@-]{{1,251}}$"));
        }
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
        if ids.len() > MAX_FEED_IDS {
            return Err(format!("at most {MAX_FEED_IDS} post ids per request"));
        }
    }
    Ok(ids)
}

/// A comment page: newest first, strictly before `before` (`(created_at, comment_id)`; a bare
/// time has no id and excludes every comment of that millisecond).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentsQuery {
    pub limit: u64,
    pub before: Option<(u64, Option<String>)>,
}

/// Parses `limit` and `before` (`next_before` of the last page, `"{created_at}:{comment_id}"`,
/// or milliseconds since the epoch).
pub fn parse_comments_query(limit: Option<&str>, before: Option<&str>) -> Result<CommentsQuery, String> {
    let limit = match limit {
        None | Some("") => COMMENTS_DEFAULT_LIMIT,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if (1..=COMMENTS_MAX_LIMIT).contains(&n) => n,
            _ => return Err(format!("limit must be an integer from 1 to {COMMENTS_MAX_LIMIT}")),
        },
    };
    let bad = |b: &str| format!("before must be a next_before cursor or milliseconds since the epoch, not {b:?}");
    let before = match before.filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => match b.split_once(':') {
            Some((t, id)) if !id.is_empty() && id.len() <= 128 => Some((t.parse().map_err(|_| bad(b))?, Some(id.to_string()))),
            Some(_) => return Err(bad(b)),
            None => Some((b.parse().map_err(|_| bad(b))?, None)),
        },
    };
    Ok(CommentsQuery { limit, before })
}

/// The cursor naming a comment, for `next_before`.
pub fn comment_cursor(created_at: u64, comment_id: &str) -> String {
    format!("{created_at}:{comment_id}")
}

/// The comment page's body from its rows (newest first): `next_before` names the last row when
/// the page is full (more may follow), else null.
pub fn comments_page_json(rows: &[(String, CommentRecord)], limit: u64) -> Value {
    let comments: Vec<Value> = rows
        .iter()
        .map(|(id, c)| json!({"comment_id": id, "user_id": c.user_id, "name": c.name, "text": c.text, "created_at": c.created_at}))
        .collect();
    let next = match rows.last() {
        Some((id, c)) if rows.len() as u64 >= limit => json!(comment_cursor(c.created_at, id)),
        _ => Value::Null,
    };
    json!({"comments": comments, "next_before": next})
}

/// `watch_posts` lists at most this many posts (§6.2 [1.2]).
pub const MAX_WATCH_POSTS: usize = 100;
/// All of one user's channel sockets together watch at most this many distinct posts: the
/// bound on the work one user can ask of the shards and channels (a post's own cost does not
/// grow with its watchers: at most one call per inbox shard per change).
pub const MAX_WATCHED_POSTS_PER_USER: usize = 200;
/// `watch_posts` is accepted at most once a second per channel.
pub const WATCH_POSTS_EVERY_MS: u64 = 1_000;
/// A post pushes its counts to its watchers at most once a second.
pub const WATCH_PUSH_EVERY_MS: u64 = 1_000;

/// The payload of `watch_posts`: `{"post_ids":[…]}`, 0–100 post ids valid as `post:{id}`,
/// repeats dropped. An empty list stops watching.
pub fn parse_watch_posts(payload: &serde_json::Map<String, Value>) -> Result<Vec<String>, crate::protocol::Failure> {
    use crate::protocol::{Code, Failure};
    let list = payload.get("post_ids").and_then(Value::as_array).ok_or_else(|| Failure::bad("post_ids must be an array of post ids"))?;
    if list.len() > MAX_WATCH_POSTS {
        return Err(Failure::new(Code::TooLarge, format!("at most {MAX_WATCH_POSTS} post_ids per watch_posts ({} sent); nothing changed", list.len())));
    }
    let mut ids: Vec<String> = Vec::with_capacity(list.len());
    for v in list {
        let id = v.as_str().ok_or_else(|| Failure::bad("post_ids must hold strings"))?;
        if id.is_empty() || !valid_document_id(&format!("post:{id}")) {
            return Err(Failure::bad(format!("post id {id:?} must match ^[A-Za-z0-9_.:@-]{{1,251}}$")));
        }
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

/// The distinct posts of several sockets' watch lists, in first-seen order.
pub fn watch_union<'a>(lists: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for id in lists.into_iter().flatten() {
        if seen.insert(id.as_str()) {
            out.push(id.clone());
        }
    }
    out
}
