//! The main backend's engagement (§6.3): on_behalf_of, the import's validation, and the merge
//! (idempotent, counts equal to a recount of the per-user state).

use std::collections::HashMap;

use serde_json::json;
use sidechain_edge::ot::engagement::{CommentRecord, Counts, UserState};
use sidechain_edge::post_import::{merge, on_behalf_of, parse_import, ImportBatch, MAX_IMPORT_ENTRIES};

#[test]
fn on_behalf_of_is_for_services_only() {
    assert_eq!(on_behalf_of(&json!({}), false), Ok(None));
    assert_eq!(on_behalf_of(&json!({"on_behalf_of": null}), false), Ok(None));
    assert_eq!(on_behalf_of(&json!({"on_behalf_of": "u1"}), true), Ok(Some("u1".into())));
    assert_eq!(on_behalf_of(&json!({"on_behalf_of": "u1"}), false).unwrap_err().0, 403);
    for bad in [json!(1), json!(""), json!("x".repeat(257)), json!({"id": "u"}), json!("a\u{0}b")] {
        assert_eq!(on_behalf_of(&json!({"on_behalf_of": bad}), true).unwrap_err().0, 400, "{bad}");
    }
}

#[test]
fn import_bodies_are_checked_whole() {
    let ok = parse_import(&json!({"likes": [{"user_id": "a", "emoji": "🔥"}, {"user_id": "b"}], "reposts": ["a"], "saves": [], "comments": [{"comment_id": "c1", "user_id": "a", "text": "hi", "created_at": 5}], "owner_id": "o"})).unwrap();
    assert_eq!(ok.likes, vec![("a".to_string(), Some("🔥".to_string())), ("b".to_string(), None)]);
    assert_eq!((ok.reposts.len(), ok.comments[0].created_at, ok.owner_id.as_deref()), (1, 5, Some("o")));
    assert_eq!(parse_import(&json!({})).unwrap(), ImportBatch::default());
    let issues = parse_import(&json!({"likes": [{"user_id": 3}], "comments": [{"comment_id": "", "user_id": "u", "text": "x".repeat(2001), "created_at": -1}], "owner_id": ""})).unwrap_err();
    let fields: Vec<&str> = issues.iter().map(|i| i.split(':').next().unwrap()).collect();
    assert_eq!(fields, vec!["likes[0].user_id", "comments[0].comment_id", "comments[0].text", "comments[0].created_at", "owner_id"]);
    let many: Vec<String> = (0..=MAX_IMPORT_ENTRIES).map(|i| format!("u{i}")).collect();
    assert!(parse_import(&json!({"saves": many})).unwrap_err()[0].contains("at most 10000"));
    assert!(parse_import(&json!([1])).is_err());
    assert!(parse_import(&json!({"likes": "all"})).is_err());
}

/// A stored post: per-user state and comments, merged into as the object does.
#[derive(Default)]
struct Post {
    counts: Counts,
    users: HashMap<String, UserState>,
    comments: HashMap<String, CommentRecord>,
}

impl Post {
    fn import(&mut self, batch: &ImportBatch) -> (u64, u64, u64, u64) {
        let (users, comments) = (&self.users, &self.comments);
        let m = merge(&mut self.counts, batch, &mut |id| Ok(users.get(id).cloned()), &mut |id| Ok(comments.contains_key(id))).unwrap();
        let added = (m.likes, m.reposts, m.saves, m.new_comments);
        self.users.extend(m.users);
        self.comments.extend(m.comments);
        added
    }
    fn recount(&self) -> (u64, u64, u64, u64) {
        let n = |f: fn(&UserState) -> bool| self.users.values().filter(|u| f(u)).count() as u64;
        (n(|u| u.liked), self.comments.values().filter(|c| !c.deleted).count() as u64, n(|u| u.reposted), n(|u| u.saved))
    }
    fn counted(&self) -> (u64, u64, u64, u64) {
        (self.counts.like_count, self.counts.comment_count, self.counts.repost_count, self.counts.save_count)
    }
}

#[test]
fn merging_twice_is_merging_once_and_counts_equal_a_recount() {
    let mut post = Post::default();
    post.users.insert("early".into(), UserState { liked: true, emoji: Some("🔥".into()), reposted: false, saved: false });
    post.counts.like_count = 1;
    post.counts.reactions.insert("🔥".into(), 1);
    let batch = parse_import(&json!({
        "likes": (0..300).map(|i| json!({"user_id": format!("u{}", i % 250), "emoji": if i % 3 == 0 { json!("👏") } else { json!(null) }})).chain([json!({"user_id": "early", "emoji": "👏"})]).collect::<Vec<_>>(),
        "reposts": (0..40).map(|i| format!("u{}", i % 30)).collect::<Vec<_>>(),
        "saves": ["s1", "s2", "s1"],
        "comments": (0..60).map(|i| json!({"comment_id": format!("k{}", i % 50), "user_id": "u1", "text": "t", "created_at": i})).collect::<Vec<_>>(),
    }))
    .unwrap();
    assert_eq!(post.import(&batch), (250, 30, 2, 50));
    assert_eq!(post.counted(), post.recount());
    assert_eq!(post.counted(), (251, 50, 30, 2));
    assert_eq!(post.counts.reactions["🔥"], 1, "an earlier like keeps its emoji");
    let after_first = (post.counted(), post.counts.reactions.clone());
    assert_eq!(post.import(&batch), (0, 0, 0, 0));
    assert_eq!((post.counted(), post.counts.reactions.clone()), after_first);
}
