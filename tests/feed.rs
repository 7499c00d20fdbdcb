//! Feed reads (§6.2): the batch read's id list, the comment page's query, and the page itself
//! over the object's SQLite (old comments migrated to the listing columns).

use sidechain_edge::feed::{comments_page_json, parse_comments_query, parse_feed_ids, CommentsQuery, COMMENTS_DEFAULT_LIMIT};
use sidechain_edge::model::Write;
use sidechain_edge::objects::document::storage::{RoomStore, MIGRATIONS};
use sidechain_edge::ot::engagement::CommentRecord;
use sidechain_edge::runtime::sql::Sql;
use sidechain_edge::runtime::sql_sqlite::MemorySql;

#[test]
fn feed_ids_parse_dedupe_and_bound() {
    assert_eq!(parse_feed_ids(Some("a,b,a,c")).unwrap(), vec!["a", "b", "c"]);
    let hundred: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
    assert_eq!(parse_feed_ids(Some(&hundred.join(","))).unwrap().len(), 100);
    // 100 distinct plus repeats is still 100.
    assert_eq!(parse_feed_ids(Some(&format!("{},p0,p1", hundred.join(",")))).unwrap().len(), 100);
    let many: Vec<String> = (0..101).map(|i| format!("p{i}")).collect();
    assert!(parse_feed_ids(Some(&many.join(","))).unwrap_err().contains("at most 100"));
    for bad in [None, Some(""), Some(" "), Some("a,,b"), Some("a,b/c"), Some("a, b"), Some("é"), Some(&*"x".repeat(252))] {
        assert!(parse_feed_ids(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn comment_queries_parse() {
    assert_eq!(parse_comments_query(None, None).unwrap(), CommentsQuery { limit: COMMENTS_DEFAULT_LIMIT, before: None });
    assert_eq!(parse_comments_query(Some("5"), Some("1700000000000:c12-x")).unwrap().before, Some((1_700_000_000_000, Some("c12-x".into()))));
    assert_eq!(parse_comments_query(None, Some("1700000000000")).unwrap().before, Some((1_700_000_000_000, None)));
    // Ids may hold a colon: only the first one splits.
    assert_eq!(parse_comments_query(None, Some("5:legacy:9")).unwrap().before, Some((5, Some("legacy:9".into()))));
    for (l, b) in [(Some("0"), None), (Some("101"), None), (Some("x"), None), (None, Some("x:1")), (None, Some("5:")), (None, Some("-1"))] {
        assert!(parse_comments_query(l, b).is_err(), "{l:?} {b:?}");
    }
}

fn comment(user: &str, at: u64, deleted: bool) -> CommentRecord {
    CommentRecord { user_id: user.into(), text: format!("by {user}"), deleted, created_at: at, name: Some(user.to_uppercase()) }
}

#[test]
fn comment_pages_walk_newest_first_without_skipping_ties_or_removed() {
    let store = RoomStore::new(MemorySql::new());
    store.ensure_schema().unwrap();
    let mut writes = Vec::new();
    for i in 0..25u64 {
        // Five comments share each millisecond.
        writes.push(Write::PutComment(format!("c{i:02}"), comment(&format!("u{i}"), 1000 + i / 5, i % 7 == 3)));
    }
    store.persist(&writes).unwrap();
    let live: Vec<String> = (0..25u64).filter(|i| i % 7 != 3).map(|i| format!("c{i:02}")).rev().collect();
    let mut seen = Vec::new();
    let mut before: Option<(u64, Option<String>)> = None;
    loop {
        let rows = store.comments_page(4, before.as_ref().map(|(t, id)| (*t, id.as_deref()))).unwrap();
        let page = comments_page_json(&rows, 4);
        seen.extend(page["comments"].as_array().unwrap().iter().map(|c| c["comment_id"].as_str().unwrap().to_string()));
        match page["next_before"].as_str() {
            Some(c) => before = parse_comments_query(None, Some(c)).unwrap().before,
            None => break,
        }
    }
    assert_eq!(seen, live);
    let first = comments_page_json(&store.comments_page(1, None).unwrap(), 1);
    assert_eq!(first["comments"][0], serde_json::json!({"comment_id": "c23", "user_id": "u23", "name": "U23", "text": "by u23", "created_at": 1004}));
}

#[test]
fn comments_stored_before_the_listing_columns_are_listed_after_the_migration() {
    let sql = MemorySql::new();
    // The schema as it was (migrations 1 and 2), with comments written the old way.
    sidechain_edge::runtime::sql::migrate(&sql, &MIGRATIONS[..2]).unwrap();
    sql.run("INSERT INTO comments (comment_id, record) VALUES ('old1', '{\"user_id\":\"a\",\"text\":\"hi\",\"deleted\":false}')", vec![]).unwrap();
    sql.run("INSERT INTO comments (comment_id, record) VALUES ('old2', '{\"user_id\":\"b\",\"text\":\"gone\",\"deleted\":true}')", vec![]).unwrap();
    let store = RoomStore::new(sql);
    store.ensure_schema().unwrap();
    store.persist(&[Write::PutComment("new".into(), comment("c", 5000, false))]).unwrap();
    let ids: Vec<String> = store.comments_page(10, None).unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec!["new", "old1"]);
}

#[test]
fn a_document_belongs_to_every_channel_its_prefixes_name() {
    use sidechain_edge::channels::{channel_ids_of, valid_channel_id};
    assert_eq!(channel_ids_of("channel:abc:description"), vec!["abc"]);
    assert_eq!(channel_ids_of("channel:a:b:c"), vec!["a", "a:b"]);
    assert!(channel_ids_of("channel:abc").is_empty());
    assert!(channel_ids_of("channel::x").is_empty());
    assert!(channel_ids_of("post:abc:x").is_empty());
    assert!(channel_ids_of("canvas:channel:x").is_empty());
    assert!(valid_channel_id("a:b") && valid_channel_id("abc-1_2.3@x"));
    for bad in ["", "a/b", "é", &"x".repeat(250)] {
        assert!(!valid_channel_id(bad), "{bad}");
    }
}
