//! Post documents: engagement counters. Operations need no transform: each `modify` is checked
//! against the acting user's own state (read through [`Lookup`], cached in a bounded map), and
//! the post's owner hears of others' likes, comments and reposts through a durable outbox.

use serde::Serializer;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::{raw_json, Applied, Document, Step, StepCtx};
use crate::geom::Reach;
use crate::limits;
use crate::post_import::{merge, ImportBatch};
use crate::ot::engagement::{apply, Acting, Action, Change, CommentRecord, Counts, Modify, UserState};
use crate::protocol::{Code, DocKind, Failure, Outgoing};
use crate::model::{BoundedMap, LogEntry, Lookup, Notification, OpLog, SavedRoom, SinceSnapshot, Write};

pub struct PostDoc {
    counts: Counts,
    users: BoundedMap<UserState>,
    comments: BoundedMap<CommentRecord>,
    /// An import waiting for its step (§6.3).
    pending_import: Option<ImportBatch>,
}

pub fn post_id(document_id: &str) -> &str {
    document_id.strip_prefix("post:").unwrap_or(document_id)
}

fn read_failed(e: String) -> Failure {
    Failure::new(Code::Internal, format!("storage read failed: {e}"))
}

impl PostDoc {
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    fn user(&self, user_id: &str, lookup: &dyn Lookup) -> Result<Option<UserState>, Failure> {
        match self.users.get(user_id) {
            Some(u) => Ok(Some(u.clone())),
            None => lookup.engagement_user(user_id).map_err(read_failed),
        }
    }

    fn comment(&self, comment_id: &str, lookup: &dyn Lookup) -> Result<Option<CommentRecord>, Failure> {
        match self.comments.get(comment_id) {
            Some(c) => Ok(Some(c.clone())),
            None => lookup.comment(comment_id).map_err(read_failed),
        }
    }
}

impl PostDoc {
    /// Merges the staged import: one operation, no notifications; a repeat changes nothing.
    fn step_import(&mut self, ctx: &StepCtx, lookup: &dyn Lookup) -> Result<Step<()>, Failure> {
        let batch = self.pending_import.take().ok_or_else(|| Failure::bad("no import staged"))?;
        let mut counts = self.counts.clone();
        let users = &self.users;
        let comments = &self.comments;
        let merged = merge(
            &mut counts,
            &batch,
            &mut |id| match users.get(id) {
                Some(u) => Ok(Some(u.clone())),
                None => lookup.engagement_user(id),
            },
            &mut |id| Ok(comments.get(id).is_some() || lookup.comment(id)?.is_some()),
        )
        .map_err(read_failed)?;
        if merged.is_empty() {
            return Ok(Step::Noop("everything imported is already counted"));
        }
        let counts_json = counts.to_json(post_id(ctx.document_id), ctx.version);
        self.counts = counts;
        let op = json!({"type": "modify", "action": "import", "likes": merged.likes, "reposts": merged.reposts, "saves": merged.saves, "comments": merged.new_comments});
        let mut writes = Vec::with_capacity(merged.users.len() + merged.comments.len());
        for (id, u) in merged.users {
            self.users.insert(&id, u.clone());
            writes.push(Write::PutEngagementUser(id, u));
        }
        for (id, c) in merged.comments {
            self.comments.insert(&id, c.clone());
            writes.push(Write::PutComment(id, c));
        }
        Ok(changed(&op, writes, Vec::new(), &counts_json, Reach::All))
    }
}

/// The owner's notification of someone else's like, comment or repost (§4.3 [1.1]).
fn owner_notification(ctx: &StepCtx, action: Action, counts_json: &Value, detail: Value) -> Option<Notification> {
    let (kind, owner) = (action.notification_kind()?, ctx.owner?);
    let user_id = ctx.actor.user_id.as_str();
    if owner == user_id {
        return None;
    }
    let mut payload = json!({
        "kind": kind,
        "post_id": post_id(ctx.document_id),
        "actor": {"id": user_id, "name": ctx.actor.name},
        "counts": counts_json,
    });
    if kind != "post_reposted" {
        for (k, v) in detail.as_object().into_iter().flatten() {
            payload[k] = v.clone();
        }
    }
    Some(Notification { event_id: format!("{}@{}", ctx.document_id, scoped(ctx.version, ctx.incarnation)), user_id: owner.to_string(), payload })
}

/// Ids unique across every life of the document id: the version, and the incarnation.
fn scoped(version: u64, incarnation: &str) -> String {
    if incarnation.is_empty() {
        version.to_string()
    } else {
        format!("{version}-{incarnation}")
    }
}

impl Document for PostDoc {
    const KIND: DocKind = DocKind::Engagement;
    const STATE_FIELD: &'static str = "counts";
    type Op = Modify;
    type Cached = ();

    fn parse_op(op: &Map<String, Value>) -> Result<Modify, Failure> {
        Modify::parse(op)
    }

    fn restore(stored: &mut SavedRoom) -> Result<Self, String> {
        let counts = match stored.snapshot.as_str() {
            "" => Counts::default(),
            s => serde_json::from_str(s).map_err(|e| format!("bad counters snapshot: {e}"))?,
        };
        Ok(PostDoc { counts, users: BoundedMap::new(limits::CACHED_USERS), comments: BoundedMap::new(limits::CACHED_COMMENTS), pending_import: None })
    }

    fn replay(&mut self, entry: &LogEntry) -> Result<(), String> {
        Err(format!("post log is ahead of its counters at version {}", entry.version))
    }

    fn cache(_: &LogEntry) -> Result<(), String> {
        Ok(())
    }

    fn import_op() -> Option<Modify> {
        Some(Modify { action: Action::Import, emoji: None, comment_id: None, text: None })
    }

    fn stage_import(&mut self, batch: ImportBatch) -> Result<(), Failure> {
        self.pending_import = Some(batch);
        Ok(())
    }

    fn step(&mut self, ctx: &StepCtx, m: Modify, _: &OpLog<()>, lookup: &dyn Lookup) -> Result<Step<()>, Failure> {
        if m.action == Action::Import {
            return self.step_import(ctx, lookup);
        }
        let user_id = ctx.actor.user_id.as_str();
        let user = self.user(user_id, lookup)?;
        let comment = match (m.action, &m.comment_id) {
            (Action::Uncomment, Some(id)) => self.comment(id, lookup)?,
            _ => None,
        };
        let new_comment_id = format!("c{}", scoped(ctx.version, ctx.incarnation));
        let may_moderate = ctx.actor.is_service || ctx.owner == Some(user_id);
        let mut counts = self.counts.clone();
        let who = Acting { user_id, name: Some(ctx.actor.name.as_str()).filter(|n| !n.is_empty()), now: ctx.now, new_comment_id: &new_comment_id, may_moderate };
        let Some(change) = apply(&mut counts, &who, user.as_ref(), comment.as_ref(), &m)? else {
            return Ok(Step::Noop("nothing changes: the user's state already says so"));
        };
        let counts_json = counts.to_json(post_id(ctx.document_id), ctx.version);
        self.counts = counts;
        let mut op = json!({"type": "modify", "action": m.action.as_str()});
        let mut writes = Vec::new();
        // What the owner's notification says beyond who did it (§4.3 [1.1]).
        let mut detail = json!({});
        match change {
            Change::User(u) => {
                if let Some(e) = &u.emoji {
                    op["emoji"] = json!(e);
                }
                detail["emoji"] = json!(u.emoji);
                self.users.insert(user_id, u.clone());
                writes.push(Write::PutEngagementUser(user_id.to_string(), u));
            }
            Change::Comment(id, record) => {
                op["comment_id"] = json!(id);
                if m.action == Action::Comment {
                    op["text"] = json!(record.text);
                    detail = json!({"comment_id": id, "text": record.text});
                }
                self.comments.insert(&id, record.clone());
                writes.push(Write::PutComment(id, record));
            }
        }
        let notifications = owner_notification(ctx, m.action, &counts_json, detail).into_iter().collect();
        // A comment's text is news to everyone; a counter action is only its counts.
        let reach = if op.get("comment_id").is_some() { Reach::All } else { Reach::Unbatched };
        Ok(changed(&op, writes, notifications, &counts_json, reach))
    }

    /// The counters are small: a snapshot with every operation, so waking replays nothing.
    fn snapshot(&self, _: SinceSnapshot) -> Option<String> {
        serde_json::to_string(&self.counts).ok()
    }

    fn serialize_state<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&self.counts, s)
    }

    fn summary(&self, document_id: &str, version: u64) -> Option<Box<RawValue>> {
        Some(raw_json(&self.counts.to_json(post_id(document_id), version)))
    }
}

/// A post operation that changed the counts: its wire form, writes, the owner's notifications,
/// and `engagement_update` for every socket of the post.
fn changed(op: &Value, writes: Vec<Write>, notifications: Vec<Notification>, counts_json: &Value, reach: Reach) -> Step<()> {
    Step::Applied(Applied {
        ops: raw_json(&[op]),
        cached: (),
        transformed: false,
        transformed_position: None,
        writes,
        notifications,
        summary_changed: true,
        to_all: vec![Outgoing::new("engagement_update", counts_json)],
        reach,
    })
}
