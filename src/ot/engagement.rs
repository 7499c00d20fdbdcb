//! Engagement counters of a post (§3.3, §4.3). Operations need no transform: each is checked
//! against the acting user's own state (one like / repost / save per user, a comment removed
//! once), so counts equal a recount of the per-user state and never go negative.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::protocol::{opt_str, Code, Failure};

pub const MAX_COMMENT_CHARS: usize = 2000;
pub const MAX_EMOJI_CHARS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Like,
    Unlike,
    Repost,
    Unrepost,
    Save,
    Unsave,
    Comment,
    Uncomment,
    /// The main backend's import (§6.3): built by the server only, never parsed from a client.
    Import,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        use Action::*;
        [Like, Unlike, Repost, Unrepost, Save, Unsave, Comment, Uncomment].into_iter().find(|a| a.as_str() == s)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Like => "like",
            Action::Unlike => "unlike",
            Action::Repost => "repost",
            Action::Unrepost => "unrepost",
            Action::Save => "save",
            Action::Unsave => "unsave",
            Action::Comment => "comment",
            Action::Uncomment => "uncomment",
            Action::Import => "import",
        }
    }
    /// The owner notification this action triggers, if any.
    pub fn notification_kind(self) -> Option<&'static str> {
        match self {
            Action::Like => Some("post_liked"),
            Action::Comment => Some("new_comment"),
            Action::Repost => Some("post_reposted"),
            _ => None,
        }
    }
}

/// Distinct emojis one post counts; a like with a new one beyond this is refused (`too_large`).
pub const MAX_REACTIONS: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub like_count: u64,
    pub comment_count: u64,
    pub repost_count: u64,
    pub save_count: u64,
    /// Likes made with an emoji, per emoji (§4.3 [1.1]).
    #[serde(default)]
    pub reactions: BTreeMap<String, u64>,
}

impl Counts {
    pub fn to_json(&self, post_id: &str, version: u64) -> Value {
        json!({
            "post_id": post_id,
            "like_count": self.like_count,
            "comment_count": self.comment_count,
            "repost_count": self.repost_count,
            "save_count": self.save_count,
            "reactions": self.reactions,
            "version": version,
        })
    }

    pub(crate) fn react(&mut self, emoji: &Option<String>, up: bool) -> Result<(), Failure> {
        let Some(e) = emoji else { return Ok(()) };
        if up {
            if !self.reactions.contains_key(e) && self.reactions.len() >= MAX_REACTIONS {
                return Err(Failure::new(Code::TooLarge, "this post already counts 64 different reactions; like it with one of them"));
            }
            *self.reactions.entry(e.clone()).or_default() += 1;
        } else if let Some(n) = self.reactions.get_mut(e) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.reactions.remove(e);
            }
        }
        Ok(())
    }
}

/// What one user has done to the post.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    pub liked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    pub reposted: bool,
    pub saved: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentRecord {
    pub user_id: String,
    pub text: String,
    pub deleted: bool,
    /// When the comment was made, ms since the epoch (server time; an import's own time). 0 for
    /// comments stored before this field.
    #[serde(default)]
    pub created_at: u64,
    /// The author's display name as it was then (§6.2), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A parsed `modify` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modify {
    pub action: Action,
    pub emoji: Option<String>,
    pub comment_id: Option<String>,
    pub text: Option<String>,
}

impl Modify {
    pub fn parse(op: &Map<String, Value>) -> Result<Modify, Failure> {
        let kind = opt_str(op, "type")?.ok_or_else(|| Failure::bad("operation type is required"))?;
        if kind != "modify" {
            return Err(Failure::new(Code::InvalidOperation, format!("{kind:?} is not an operation on a post; use modify")));
        }
        let action = opt_str(op, "action")?.ok_or_else(|| Failure::bad("action is required"))?;
        let action = Action::parse(action)
            .ok_or_else(|| Failure::new(Code::InvalidOperation, format!("unknown action {action:?}")))?;
        let emoji = opt_str(op, "emoji")?.map(str::to_string);
        if emoji.as_ref().is_some_and(|e| e.is_empty() || e.chars().count() > MAX_EMOJI_CHARS) {
            return Err(Failure::bad("emoji must have 1 to 16 characters"));
        }
        // Comment ids are the server's: one sent with `comment` is ignored, so nobody can take or
        // pre-empt another user's id; `uncomment` names the id the server assigned.
        let comment_id = match action {
            Action::Uncomment => opt_str(op, "comment_id")?.map(str::to_string),
            _ => None,
        };
        if comment_id.as_ref().is_some_and(|c| c.is_empty() || c.chars().count() > 128) {
            return Err(Failure::bad("comment_id must have 1 to 128 characters"));
        }
        let text = opt_str(op, "text")?.map(str::to_string);
        match action {
            Action::Comment => match &text {
                Some(t) if (1..=MAX_COMMENT_CHARS).contains(&t.chars().count()) => {}
                Some(_) => return Err(Failure::new(Code::TooLarge, "comment text must have 1 to 2,000 characters")),
                None => return Err(Failure::bad("a comment needs text")),
            },
            Action::Uncomment if comment_id.is_none() => return Err(Failure::bad("uncomment needs comment_id")),
            _ => {}
        }
        Ok(Modify { action, emoji, comment_id, text })
    }
}

/// The result of applying a modify: the new per-user / comment state to store, or nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    User(UserState),
    Comment(String, CommentRecord),
}

/// Who acts, and what a new comment is made of.
pub struct Acting<'a> {
    pub user_id: &'a str,
    pub name: Option<&'a str>,
    pub now: u64,
    /// A new comment gets this id.
    pub new_comment_id: &'a str,
    /// The post's owner or a service: may remove anyone's comment.
    pub may_moderate: bool,
}

/// Applies `m` by `who` to the counts. `user` is that user's state, `comment` the record of
/// `m.comment_id` (both as stored, None when absent). Returns None when nothing changes.
pub fn apply(counts: &mut Counts, who: &Acting, user: Option<&UserState>, comment: Option<&CommentRecord>, m: &Modify) -> Result<Option<Change>, Failure> {
    let (user_id, may_moderate) = (who.user_id, who.may_moderate);
    let mut u = user.cloned().unwrap_or_default();
    let flip = |flag: &mut bool, to: bool, count: &mut u64| -> bool {
        if *flag == to {
            return false;
        }
        *flag = to;
        *count = if to { *count + 1 } else { count.saturating_sub(1) };
        true
    };
    let changed = match m.action {
        Action::Like => {
            let changed = flip(&mut u.liked, true, &mut counts.like_count);
            if changed {
                counts.react(&m.emoji, true)?;
                u.emoji = m.emoji.clone();
            }
            changed
        }
        Action::Unlike => {
            let changed = flip(&mut u.liked, false, &mut counts.like_count);
            if changed {
                counts.react(&u.emoji, false)?;
            }
            u.emoji = None;
            changed
        }
        Action::Repost => flip(&mut u.reposted, true, &mut counts.repost_count),
        Action::Unrepost => flip(&mut u.reposted, false, &mut counts.repost_count),
        Action::Save => flip(&mut u.saved, true, &mut counts.save_count),
        Action::Unsave => flip(&mut u.saved, false, &mut counts.save_count),
        Action::Comment => {
            let id = who.new_comment_id.to_string();
            counts.comment_count += 1;
            let record = CommentRecord {
                user_id: user_id.to_string(),
                text: m.text.clone().unwrap_or_default(),
                deleted: false,
                created_at: who.now,
                name: who.name.map(str::to_string),
            };
            return Ok(Some(Change::Comment(id, record)));
        }
        // An import is merged by `post_import::merge`, never one user's action.
        Action::Import => return Ok(None),
        Action::Uncomment => {
            let id = m.comment_id.clone().unwrap_or_default();
            return match comment {
                Some(c) if c.user_id != user_id && !may_moderate => {
                    Err(Failure::new(Code::Forbidden, "only the author may remove a comment"))
                }
                Some(c) if c.deleted => Ok(None),
                Some(c) => {
                    counts.comment_count = counts.comment_count.saturating_sub(1);
                    Ok(Some(Change::Comment(id, CommentRecord { deleted: true, ..c.clone() })))
                }
                None => Ok(None),
            };
        }
    };
    Ok(changed.then_some(Change::User(u)))
}
