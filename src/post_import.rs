//! The main backend's engagement (§6.3 [1.2]): `on_behalf_of` on engagement actions, and the
//! import of a post's existing likes, reposts, saves and comments, parsed and checked whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ot::engagement::{CommentRecord, Counts, UserState, MAX_COMMENT_CHARS, MAX_EMOJI_CHARS};

/// Entries (likes + reposts + saves + comments) one import call may carry.
pub const MAX_IMPORT_ENTRIES: usize = 10_000;
const MAX_ID_CHARS: usize = 256;
const MAX_COMMENT_ID_CHARS: usize = 128;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedComment {
    pub comment_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub text: String,
    pub created_at: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportBatch {
    /// (user_id, emoji)
    pub likes: Vec<(String, Option<String>)>,
    pub reposts: Vec<String>,
    pub saves: Vec<String>,
    pub comments: Vec<ImportedComment>,
    pub owner_id: Option<String>,
}

/// `on_behalf_of` in an engagement action's body: only a service token may name another user.
/// Err is (status, message).
pub fn on_behalf_of(body: &Value, is_service: bool) -> Result<Option<String>, (u16, String)> {
    match body.get("on_behalf_of") {
        None | Some(Value::Null) => Ok(None),
        Some(_) if !is_service => Err((403, "on_behalf_of needs a service token".into())),
        Some(Value::String(s)) if valid_id(s, MAX_ID_CHARS) => Ok(Some(s.clone())),
        Some(_) => Err((400, "on_behalf_of must be a user id of 1 to 256 characters".into())),
    }
}

fn valid_id(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

struct Issues(Vec<String>);

impl Issues {
    fn id(&mut self, v: Option<&Value>, at: &str, max: usize) -> String {
        match v.and_then(Value::as_str) {
            Some(s) if valid_id(s, max) => s.to_string(),
            _ => {
                self.0.push(format!("{at}: required, 1 to {max} characters"));
                String::new()
            }
        }
    }
    fn list<'a>(&mut self, body: &'a Value, key: &str) -> &'a [Value] {
        match body.get(key) {
            None | Some(Value::Null) => &[],
            Some(Value::Array(a)) => a,
            Some(_) => {
                self.0.push(format!("{key}: must be an array"));
                &[]
            }
        }
    }
}

fn like(item: &Value, at: &str, issues: &mut Issues) -> (String, Option<String>) {
    let user = issues.id(item.get("user_id"), &format!("{at}.user_id"), MAX_ID_CHARS);
    let emoji = match item.get("emoji") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if (1..=MAX_EMOJI_CHARS).contains(&e.chars().count()) => Some(e.clone()),
        Some(_) => {
            issues.0.push(format!("{at}.emoji: 1 to 16 characters"));
            None
        }
    };
    (user, emoji)
}

fn comment(item: &Value, at: &str, issues: &mut Issues) -> ImportedComment {
    let comment_id = issues.id(item.get("comment_id"), &format!("{at}.comment_id"), MAX_COMMENT_ID_CHARS);
    let user_id = issues.id(item.get("user_id"), &format!("{at}.user_id"), MAX_ID_CHARS);
    let name = match item.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) if n.chars().count() <= MAX_ID_CHARS => Some(n.clone()),
        Some(_) => {
            issues.0.push(format!("{at}.name: a string of at most 256 characters"));
            None
        }
    };
    let text = match item.get("text").and_then(Value::as_str) {
        Some(t) if (1..=MAX_COMMENT_CHARS).contains(&t.chars().count()) => t.to_string(),
        _ => {
            issues.0.push(format!("{at}.text: required, 1 to 2,000 characters"));
            String::new()
        }
    };
    let created_at = match item.get("created_at").and_then(Value::as_u64) {
        Some(t) if t < (1 << 53) => t,
        _ => {
            issues.0.push(format!("{at}.created_at: required, milliseconds since the epoch"));
            0
        }
    };
    ImportedComment { comment_id, user_id, name, text, created_at }
}

/// Parses a whole import body; every problem is named (`likes[3].user_id: …`), nothing partial.
pub fn parse_import(body: &Value) -> Result<ImportBatch, Vec<String>> {
    if !body.is_object() {
        return Err(vec!["the body must be a JSON object".into()]);
    }
    let mut issues = Issues(Vec::new());
    let (likes, reposts, saves, comments) =
        (issues.list(body, "likes"), issues.list(body, "reposts"), issues.list(body, "saves"), issues.list(body, "comments"));
    let total = likes.len() + reposts.len() + saves.len() + comments.len();
    if total > MAX_IMPORT_ENTRIES {
        return Err(vec![format!("{total} entries: at most {MAX_IMPORT_ENTRIES} a call; call again for more")]);
    }
    let likes = likes.iter().enumerate().map(|(i, v)| like(v, &format!("likes[{i}]"), &mut issues)).collect();
    let reposts = reposts.iter().enumerate().map(|(i, v)| issues.id(Some(v), &format!("reposts[{i}]"), MAX_ID_CHARS)).collect();
    let saves = saves.iter().enumerate().map(|(i, v)| issues.id(Some(v), &format!("saves[{i}]"), MAX_ID_CHARS)).collect();
    let comments = comments.iter().enumerate().map(|(i, v)| comment(v, &format!("comments[{i}]"), &mut issues)).collect();
    let owner_id = match body.get("owner_id") {
        None | Some(Value::Null) => None,
        v => Some(issues.id(v, "owner_id", MAX_ID_CHARS)),
    };
    let batch = ImportBatch { likes, reposts, saves, comments, owner_id };
    if issues.0.is_empty() {
        Ok(batch)
    } else {
        Err(issues.0)
    }
}

/// What an import changed: the users' new states and the new comments to store, and how many
/// of each kind were added (entries already there add nothing).
#[derive(Debug, Default)]
pub struct Merged {
    pub users: Vec<(String, UserState)>,
    pub comments: Vec<(String, CommentRecord)>,
    pub likes: u64,
    pub reposts: u64,
    pub saves: u64,
    pub new_comments: u64,
}

impl Merged {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.comments.is_empty()
    }
}

/// Merges `batch` into the counts: a like, repost or save counts only for a user who had not
/// made it (their state says so), a comment only under an id not seen before. Counts move with
/// the per-user state exactly as single actions move them, so they stay equal to a recount.
/// `user` and `comment_exists` read what is stored.
pub fn merge(
    counts: &mut Counts,
    batch: &ImportBatch,
    user: &mut dyn FnMut(&str) -> Result<Option<UserState>, String>,
    comment_exists: &mut dyn FnMut(&str) -> Result<bool, String>,
) -> Result<Merged, String> {
    let mut states: BTreeMap<String, (UserState, bool)> = BTreeMap::new();
    let mut m = Merged::default();
    let mut state_of = |id: &str, states: &mut BTreeMap<String, (UserState, bool)>| -> Result<(), String> {
        if !states.contains_key(id) {
            states.insert(id.to_string(), (user(id)?.unwrap_or_default(), false));
        }
        Ok(())
    };
    for (id, emoji) in &batch.likes {
        state_of(id, &mut states)?;
        let (u, changed) = states.get_mut(id).ok_or("user state")?;
        if !u.liked {
            u.liked = true;
            counts.like_count += 1;
            // Past the reactions limit the like still counts, without its emoji.
            u.emoji = counts.react(emoji, true).ok().and(emoji.clone());
            (*changed, m.likes) = (true, m.likes + 1);
        }
    }
    for (list, kind) in [(&batch.reposts, 0), (&batch.saves, 1)] {
        for id in list {
            state_of(id, &mut states)?;
            let (u, changed) = states.get_mut(id).ok_or("user state")?;
            let (flag, count, added) = if kind == 0 { (&mut u.reposted, &mut counts.repost_count, &mut m.reposts) } else { (&mut u.saved, &mut counts.save_count, &mut m.saves) };
            if !*flag {
                (*flag, *changed) = (true, true);
                *count += 1;
                *added += 1;
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &batch.comments {
        if !seen.insert(c.comment_id.as_str()) || comment_exists(&c.comment_id)? {
            continue;
        }
        counts.comment_count += 1;
        m.new_comments += 1;
        let record = CommentRecord { user_id: c.user_id.clone(), text: c.text.clone(), deleted: false, created_at: c.created_at, name: c.name.clone() };
        m.comments.push((c.comment_id.clone(), record));
    }
    m.users = states.into_iter().filter(|(_, (_, changed))| *changed).map(|(id, (u, _))| (id, u)).collect();
    Ok(m)
}
