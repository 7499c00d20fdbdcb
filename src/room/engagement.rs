//! The engagement step of a submit: check a `modify` against the acting user's own state, count
//! it, and say who must hear of it (`engagement_update` to every socket, a notification to the
//! post's owner).

use serde_json::{json, Value};

use super::submit::{Actor, Step};
use super::{Lookup, Notification, Room, Write};
use crate::ot::engagement::{apply, Action, Change, Modify};
use crate::protocol::{Failure, Outgoing};

impl Room {
    pub fn post_id(&self) -> &str {
        self.document_id.strip_prefix("post:").unwrap_or(&self.document_id)
    }

    pub(super) fn engagement_step(&mut self, actor: &Actor, m: &Modify, new_comment_id: &str, lookup: &dyn Lookup) -> Result<Step, Failure> {
        let user = match self.users.get(&actor.user_id) {
            Some(u) => Some(u.clone()),
            None => lookup.engagement_user(&actor.user_id),
        };
        let comment_id = m.comment_id.clone().unwrap_or_else(|| new_comment_id.to_string());
        let comment = match m.action {
            Action::Comment | Action::Uncomment => match self.comments.get(&comment_id) {
                Some(c) => Some(c.clone()),
                None => lookup.comment(&comment_id),
            },
            _ => None,
        };
        let may_moderate = actor.is_service || self.owner.as_deref() == Some(actor.user_id.as_str());
        let mut counts = self.counts;
        let Some(change) = apply(&mut counts, &actor.user_id, user.as_ref(), comment.as_ref(), m, new_comment_id, may_moderate)? else {
            return Ok(Step::Noop("nothing changes: the user's state already says so"));
        };
        self.counts = counts;
        let mut op = json!({"type": "modify", "action": m.action.as_str()});
        let mut writes = Vec::new();
        match change {
            Change::User(u) => {
                if let Some(e) = &u.emoji {
                    op["emoji"] = json!(e);
                }
                self.users.insert(actor.user_id.clone(), u.clone());
                writes.push(Write::PutEngagementUser(actor.user_id.clone(), u));
            }
            Change::Comment(id, record) => {
                op["comment_id"] = json!(id);
                if m.action == Action::Comment {
                    op["text"] = json!(record.text);
                }
                self.comments.insert(id.clone(), record.clone());
                writes.push(Write::PutComment(id, record));
            }
        }
        // `submit` assigns the next version to this op.
        let version = self.version + 1;
        let counts_json = counts.to_json(self.post_id(), version);
        if let (Some(kind), Some(owner)) = (m.action.notification_kind(), self.owner.as_ref()) {
            if *owner != actor.user_id {
                writes.push(Write::QueueNotification(Notification {
                    event_id: format!("{}@{version}", self.document_id),
                    user_id: owner.clone(),
                    payload: json!({
                        "kind": kind,
                        "post_id": self.post_id(),
                        "actor": {"id": actor.user_id, "name": actor.name},
                        "counts": counts_json,
                    }),
                }));
            }
        }
        Ok(Step::Applied {
            ops: Value::Array(vec![op]),
            traversal: None,
            transformed: false,
            writes,
            to_all: vec![Outgoing::new("engagement_update", counts_json)],
        })
    }
}
