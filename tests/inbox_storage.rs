//! The inbox shard's storage under v1.2 (§5.2 aggregated owner notifications, §5.3 delivery by
//! cursor, §5.4 transient events), on a real in-memory SQLite, driven as the shard drives it —
//! written as the attacker first: like/unlike and comment floods against one owner.

use serde_json::{json, Value};
use sidechain_edge::objects::inbox_shard::client::{Deliver, Import, LegacyItem, MarkRead, ReadPage};
use sidechain_edge::objects::inbox_shard::group::ACTORS_TRACKED;
use sidechain_edge::objects::inbox_shard::storage::{InboxStore, MIGRATIONS};
use sidechain_edge::runtime::sql::{migrate, Sql};
use sidechain_edge::runtime::sql_sqlite::MemorySql;

fn inbox() -> InboxStore<MemorySql> {
    let s = InboxStore::new(MemorySql::new());
    s.ensure_schema().unwrap();
    s
}

fn follow(event: &str, user: &str) -> Deliver {
    Deliver { event_id: event.into(), item: json!({"kind": "new_follower", "payload": {}}), user_ids: vec![user.into()], shard: String::new(), group: None, store: true }
}

/// An owner notification as a post's outbox sends it: a fresh event id per action.
fn owner_note(event: &str, kind: &str, actor: &str, detail: Value) -> Deliver {
    let mut item = json!({"kind": kind, "post_id": "p1", "actor": {"id": actor, "name": format!("User {actor}")}, "counts": {}});
    for (k, v) in detail.as_object().unwrap() {
        item[k] = v.clone();
    }
    Deliver { event_id: event.into(), item, user_ids: vec!["owner".into()], shard: String::new(), group: Some(format!("p1|{kind}")), store: true }
}

fn all_notifications(s: &InboxStore<MemorySql>, user: &str) -> Vec<Value> {
    let (mut out, mut before) = (Vec::new(), None);
    loop {
        let p = s.page(&ReadPage { user_id: user.into(), limit: Some(100), before, timeline: false }).unwrap();
        out.extend(p["notifications"].as_array().unwrap().iter().cloned());
        match p["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => return out,
        }
    }
}

fn unread_of_post(items: &[Value]) -> Vec<&Value> {
    items.iter().filter(|i| i["post_id"] == "p1" && i["read"] == false).collect()
}

#[test]
fn like_toggles_and_comment_floods_leave_earlier_notifications_and_one_item_per_kind() {
    let s = inbox();
    for i in 0..40 {
        s.keep(&follow(&format!("f{i}"), "owner"), 1_000 + i).unwrap();
    }
    let attackers = ["a", "b", "c"];
    let mut t = 10_000;
    // 1,000 like/unlike toggles: every like is a fresh owner notification from the post.
    for i in 0..500 {
        t += 1;
        s.keep(&owner_note(&format!("post:p1@{i}"), "post_liked", attackers[i % 3], json!({"emoji": if i % 2 == 0 { "🔥" } else { "❤️" }})), t).unwrap();
    }
    for i in 0..300 {
        t += 1;
        s.keep(&owner_note(&format!("post:p1@c{i}"), "new_comment", attackers[i % 3], json!({"comment_id": format!("c{i}"), "text": format!("spam {i}")})), t).unwrap();
    }
    let items = all_notifications(&s, "owner");
    assert_eq!(items.iter().filter(|i| i["kind"] == "new_follower").count(), 40, "the earlier follows are all readable");
    let post = unread_of_post(&items);
    assert_eq!(post.len(), 2, "one unread item per (post, kind)");
    let likes = post.iter().find(|i| i["kind"] == "post_liked").unwrap();
    assert_eq!(likes["count"], 3, "a user counts once however often they like");
    assert_eq!(likes["actors"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect::<Vec<_>>(), ["b", "a", "c"], "latest three, newest first");
    assert_eq!((likes["emoji"].as_str(), likes["updated"].as_bool()), (Some("❤️"), Some(true)));
    assert_eq!(likes["event_id"], "post:p1@0", "updated in place: the first event id stays");
    let comments = post.iter().find(|i| i["kind"] == "new_comment").unwrap();
    assert_eq!((comments["count"].as_i64(), comments["text"].as_str(), comments["comment_id"].as_str()), (Some(3), Some("spam 299"), Some("c299")));
    assert!(likes["updated_at"].as_i64().unwrap() > likes["created_at"].as_i64().unwrap());
    assert_eq!(s.unread("owner").unwrap(), 42, "updates do not raise unread");
    let actor_rows = s.sql().first_int("SELECT COUNT(*) FROM item_actors", vec![]).unwrap().unwrap();
    assert_eq!(actor_rows, 6, "bounded per item: one row per distinct actor");
}

#[test]
fn after_read_the_next_like_starts_a_new_item_and_the_old_actors_are_forgotten() {
    let s = inbox();
    s.keep(&owner_note("e1", "post_liked", "a", json!({"emoji": null})), 10).unwrap();
    s.keep(&owner_note("e2", "post_liked", "b", json!({"emoji": null})), 11).unwrap();
    s.mark_read(&MarkRead::parse("owner", &json!({"event_ids": ["e1"]})).unwrap()).unwrap();
    assert_eq!(s.sql().first_int("SELECT COUNT(*) FROM item_actors", vec![]).unwrap(), Some(0));
    s.keep(&owner_note("e3", "post_liked", "a", json!({"emoji": "🔥"})), 12).unwrap();
    let items = all_notifications(&s, "owner");
    assert_eq!(items.len(), 2);
    assert_eq!((items[0]["event_id"].as_str(), items[0]["count"].as_i64(), items[0]["read"].as_bool()), (Some("e3"), Some(1), Some(false)));
    assert_eq!((items[1]["event_id"].as_str(), items[1]["count"].as_i64(), items[1]["read"].as_bool()), (Some("e1"), Some(2), Some(true)));
}

#[test]
fn a_redelivered_owner_notification_changes_nothing() {
    let s = inbox();
    s.keep(&owner_note("e1", "post_reposted", "a", json!({})), 10).unwrap();
    s.keep(&owner_note("e2", "post_reposted", "b", json!({})), 11).unwrap();
    let head = s.head("owner").unwrap();
    s.keep(&owner_note("e2", "post_reposted", "b", json!({})), 12).unwrap();
    s.keep(&owner_note("e1", "post_reposted", "a", json!({})), 13).unwrap();
    assert_eq!(s.head("owner").unwrap(), head, "no new seq for a redelivery");
    assert_eq!(all_notifications(&s, "owner")[0]["count"], 2);
}

#[test]
fn distinct_actors_are_tracked_within_a_bound() {
    let s = inbox();
    let n = ACTORS_TRACKED + 44;
    for i in 0..n {
        s.keep(&owner_note(&format!("e{i}"), "post_liked", &format!("u{i}"), json!({"emoji": null})), 10 + i).unwrap();
    }
    assert_eq!(all_notifications(&s, "owner")[0]["count"].as_i64(), Some(n));
    let rows = s.sql().first_int("SELECT COUNT(*) FROM item_actors", vec![]).unwrap().unwrap();
    assert_eq!(rows, ACTORS_TRACKED);
}

#[test]
fn every_kept_or_updated_item_gets_the_next_seq_and_a_cursor_resumes_from_it() {
    let s = inbox();
    s.keep(&follow("f1", "u"), 10).unwrap();
    let (_, head, _) = s.attach("u", 1, None).unwrap();
    assert_eq!(head, 1);
    let pushes = s.keep(&owner_note("l1", "post_liked", "a", json!({"emoji": null})).for_user("u"), 11).unwrap();
    assert_eq!((pushes.len(), pushes[0].from, pushes[0].items.len()), (1, 1, 1), "an online user is pushed what is above the pushed seq");
    assert_eq!(pushes[0].items[0]["seq"], 2);
    s.pushed("u", 2).unwrap();
    let pushes = s.keep(&owner_note("l2", "post_liked", "b", json!({"emoji": null})).for_user("u"), 12).unwrap();
    let updated = &pushes[0].items[0];
    assert_eq!((updated["event_id"].as_str(), updated["seq"].as_i64(), updated["updated"].as_bool()), (Some("l1"), Some(3), Some(true)));
    assert_eq!(pushes[0].count.unread, 2, "the update did not raise unread");
    // A reconnect with the highest seq seen gets nothing; with an older one, the updated item once.
    assert!(s.attach("u", 2, Some(3)).unwrap().0.is_empty());
    let (items, _, _) = s.attach("u", 3, Some(1)).unwrap();
    assert_eq!(items.iter().map(|i| i["seq"].as_i64().unwrap()).collect::<Vec<_>>(), [3]);
    // Without a cursor: the unread ones, oldest first; read ones are not sent again.
    s.mark_read(&MarkRead::parse("u", &json!({"event_ids": ["f1"]})).unwrap()).unwrap();
    let (items, _, _) = s.attach("u", 4, None).unwrap();
    assert_eq!(items.iter().map(|i| i["event_id"].as_str().unwrap()).collect::<Vec<_>>(), ["l1"]);
    let rest = s.page(&ReadPage { user_id: "u".into(), limit: None, before: None, timeline: false }).unwrap();
    assert_eq!(rest["notifications"][0]["seq"], 3, "REST items carry seq");
}

#[test]
fn a_transient_event_is_pushed_to_online_users_only_and_kept_for_nobody() {
    let s = inbox();
    s.attach("on", 1, None).unwrap();
    let mut d = follow("t1", "on");
    d.user_ids.push("off".into());
    d.store = false;
    let pushes = s.keep(&d, 10).unwrap();
    assert_eq!(pushes.iter().map(|p| (p.user_id.as_str(), p.transient)).collect::<Vec<_>>(), [("on", true)]);
    assert!(pushes[0].items[0].get("seq").is_none());
    assert_eq!((s.unread("on").unwrap(), s.unread("off").unwrap(), s.head("on").unwrap()), (0, 0, 0));
    assert!(s.holders("t1").unwrap().is_empty());
}

#[test]
fn trimming_finds_its_edge_through_the_kept_items_index() {
    let s = inbox();
    for i in 0..600 {
        s.keep(&follow(&format!("e{i}"), "u"), 10 + i).unwrap();
    }
    assert!(all_notifications(&s, "u").len() <= 520);
    let plan = s
        .sql()
        .query("EXPLAIN QUERY PLAN SELECT seq FROM inbox WHERE user_id = ? AND item IS NOT NULL ORDER BY seq DESC LIMIT 1 OFFSET 500", vec!["u".into()])
        .unwrap();
    let detail = format!("{plan:?}");
    assert!(detail.contains("inbox_by_seq"), "{detail}");
}

#[test]
fn rows_kept_before_v1_2_get_seqs_in_time_order_and_imports_mark_the_user_checked() {
    let sql = MemorySql::new();
    migrate(&sql, &MIGRATIONS[..2]).unwrap();
    for (id, at) in [("late", 30i64), ("early", 10), ("mid", 20)] {
        sql.run("INSERT INTO inbox (user_id, event_id, created_at, read, delivered, item) VALUES ('u', ?, ?, 0, 1, ?)", vec![id.into(), at.into(), json!({"kind": "k", "event_id": id}).to_string().into()]).unwrap();
    }
    sql.run("INSERT INTO users (user_id, kept, last_created) VALUES ('u', 3, 30)", vec![]).unwrap();
    let s = InboxStore::new(sql);
    s.ensure_schema().unwrap();
    let items = s.attach("u", 1, Some(0)).unwrap().0;
    assert_eq!(items.iter().map(|i| (i["event_id"].as_str().unwrap(), i["seq"].as_i64().unwrap())).collect::<Vec<_>>(), [("early", 1), ("mid", 2), ("late", 3)]);
    assert!(!s.legacy_checked("u").unwrap());
    let old = LegacyItem { event_id: "legacy".into(), created_at: 5.0, read: 0.0, delivered: 1.0, item: json!({"kind": "k", "event_id": "legacy"}).to_string() };
    s.import(&Import { user_id: "u".into(), inbox: vec![old], activities: vec![] }).unwrap();
    assert!(s.legacy_checked("u").unwrap());
    assert_eq!(s.attach("u", 2, Some(3)).unwrap().0[0]["event_id"], "legacy", "an imported item is new to every cursor");
    s.import(&Import { user_id: "nobody".into(), inbox: vec![], activities: vec![] }).unwrap();
    assert!(s.legacy_checked("nobody").unwrap(), "checked even with nothing to import");
}

trait ForUser {
    fn for_user(self, user: &str) -> Self;
}

impl ForUser for Deliver {
    fn for_user(mut self, user: &str) -> Self {
        self.user_ids = vec![user.into()];
        self
    }
}
