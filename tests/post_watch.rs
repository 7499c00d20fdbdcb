//! Feed watches (§6.2 [1.2]) in the pure parts: the `watch_posts` payload and its bounds (the
//! attacker's test first: one user cannot make the shards and posts do unbounded work), and the
//! inbox shard's watcher rows, on a real in-memory SQLite.

use serde_json::json;
use sidechain_edge::feed::{parse_watch_posts, watch_union, MAX_WATCHED_POSTS_PER_USER, MAX_WATCH_POSTS};
use sidechain_edge::objects::inbox_shard::storage::InboxStore;
use sidechain_edge::protocol::Code;
use sidechain_edge::runtime::sql_sqlite::MemorySql;

fn shard() -> InboxStore<MemorySql> {
    let s = InboxStore::new(MemorySql::new());
    s.ensure_schema().unwrap();
    s
}

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn one_user_cannot_ask_for_unbounded_watches() {
    let too_many = json!({"post_ids": ids(MAX_WATCH_POSTS + 1, "p")});
    assert_eq!(parse_watch_posts(too_many.as_object().unwrap()).unwrap_err().code, Code::TooLarge);
    for bad in [json!({}), json!({"post_ids": "p1"}), json!({"post_ids": [1]}), json!({"post_ids": [""]}), json!({"post_ids": ["a b"]}), json!({"post_ids": ["x".repeat(252)]})] {
        assert_eq!(parse_watch_posts(bad.as_object().unwrap()).unwrap_err().code, Code::BadRequest, "{bad}");
    }
    let dup = json!({"post_ids": ["a", "b", "a"]});
    assert_eq!(parse_watch_posts(dup.as_object().unwrap()).unwrap(), ["a", "b"]);
    assert!(parse_watch_posts(json!({"post_ids": []}).as_object().unwrap()).unwrap().is_empty(), "an empty list stops watching");
    // 16 sockets of 100 different posts each: the union is what the channel bounds.
    let lists: Vec<Vec<String>> = (0..16).map(|s| ids(100, &format!("s{s}-"))).collect();
    let union = watch_union(lists.iter().map(Vec::as_slice));
    assert_eq!(union.len(), 1600);
    assert!(union.len() > MAX_WATCHED_POSTS_PER_USER, "the channel refuses such a union");
    let same: Vec<Vec<String>> = (0..16).map(|_| ids(100, "p")).collect();
    assert_eq!(watch_union(same.iter().map(Vec::as_slice)).len(), 100, "tabs watching one feed count once");
}

#[test]
fn a_shard_registers_with_a_post_once_however_many_of_its_users_watch_it() {
    let s = shard();
    assert_eq!(s.set_watches("u1", &["a".into(), "b".into()]).unwrap(), ["a", "b"]);
    assert!(s.set_watches("u2", &["a".into(), "c".into()]).unwrap() == ["c"], "a is registered already");
    assert_eq!(s.watchers("a").unwrap(), ["u1", "u2"]);
    // A user's list is replaced, not added to.
    assert!(s.set_watches("u1", &["c".into()]).unwrap().is_empty());
    assert_eq!(s.watchers("a").unwrap(), ["u2"]);
    assert_eq!(s.watchers("b").unwrap(), Vec::<String>::new());
    assert!(!s.watched("b").unwrap(), "b's post hears it is no longer watched here on its next push");
    // A channel that lost its sockets drops out whole; one that stopped watching a post, for that post.
    s.drop_watch("u2", Some("a")).unwrap();
    assert!(!s.watched("a").unwrap());
    s.drop_watch("u1", None).unwrap();
    assert_eq!(s.watchers("c").unwrap(), ["u2"]);
    // The post registered again once a user of this shard watches it anew.
    assert_eq!(s.set_watches("u3", &["a".into()]).unwrap(), ["a"]);
}

#[test]
fn ten_thousand_watchers_of_one_post_are_one_query_for_the_shard() {
    let s = shard();
    for u in 0..2_000 {
        s.set_watches(&format!("user-{u}"), &["hot".into(), format!("own-{u}")]).unwrap();
    }
    assert_eq!(s.watchers("hot").unwrap().len(), 2_000);
    assert_eq!(s.watchers("own-7").unwrap(), ["user-7"]);
}
