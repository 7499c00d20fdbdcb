//! The runtime half's storage, natively: each Durable Object's SQLite logic on a real in-memory
//! SQLite (the engine the objects run on), driven the way the objects drive it.

mod common;

use common::{insert_at, op_frame, room_store, session};
use serde_json::json;
use sidechain_edge::metrics::{Report, Tally};
use sidechain_edge::model::{Effects, Lookup, SavedRoom, Write};
use sidechain_edge::objects::document::storage::RoomStore;
use sidechain_edge::objects::inbox_shard::client::{Deliver, Import, LegacyActivity, LegacyItem, MarkRead, ReadPage};
use sidechain_edge::objects::inbox_shard::storage::{InboxStore, ITEMS_KEPT};
use sidechain_edge::objects::stats::storage::StatsStore;
use sidechain_edge::room::{restore_room, TextRoom};
use sidechain_edge::runtime::sql::Sql;
use sidechain_edge::runtime::sql_sqlite::MemorySql;



/// Drives a room through `n` inserts, committing each event's writes to `store`.
fn type_into(room: &mut TextRoom, store: &RoomStore<MemorySql>, n: u64) {
    let me = session(1, true);
    for seq in 1..=n {
        let frame = op_frame("m", "c1", seq, room.version(), &insert_at(0, "ab"));
        let effects: Effects = room.on_frame(&me, &frame, 1_000 + seq, &[me.clone()], store);
        assert!(effects.follow_ups.appended.len() == 1, "{:?}", effects.to_sender);
        store.persist(&effects.writes).unwrap();
    }
}

#[test]
fn a_room_wakes_from_its_storage_as_it_was() {
    let store = room_store();
    let mut room = TextRoom::new("doc");
    type_into(&mut room, &store, 250);
    let saved: SavedRoom = store.load().unwrap();
    assert_eq!(saved.incarnation, "life1");
    assert!(saved.snapshot_version >= 200, "snapshots are taken as the log grows");
    let woke = restore_room("doc", saved).unwrap();
    assert_eq!((woke.version(), woke.text()), (250, Some(room.content())));
    // Client records are read through Lookup, not loaded on wake.
    assert_eq!(store.client("c1").unwrap().unwrap().last_seq, 250);
}

#[test]
fn flushed_history_leaves_only_the_retained_window() {
    let store = room_store();
    let mut room = TextRoom::new("doc");
    type_into(&mut room, &store, 1_200);
    let first = store.unflushed(200).unwrap();
    assert_eq!((first.len(), first[0].version), (200, 1));
    store.mark_flushed(1_200, 1_200).unwrap();
    assert!(store.unflushed(200).unwrap().is_empty());
    let kept = store.sql().first_int("SELECT COUNT(*) FROM ops", vec![]).unwrap().unwrap();
    assert_eq!(kept, 1_000, "the log keeps what replays and transforms need");
    let woke = restore_room("doc", store.load().unwrap()).unwrap();
    assert_eq!(woke.text(), Some(room.content()));
}

#[test]
fn a_failed_commit_writes_nothing() {
    let store = room_store();
    let mut room = TextRoom::new("doc");
    type_into(&mut room, &store, 3);
    let me = session(1, true);
    let effects = room.on_frame(&me, &op_frame("m", "c1", 4, 3, &insert_at(0, "x")), 9, &[me.clone()], &store);
    store.sql().fail_after(Some(1));
    assert!(store.persist(&effects.writes).is_err());
    store.sql().fail_after(None);
    assert_eq!(store.last_version().unwrap(), 3, "the append was rolled back with the rest");
    assert_eq!(store.client("c1").unwrap().unwrap().last_seq, 3);
}

#[test]
fn the_owner_outbox_keeps_notifications_until_delivered() {
    let store = room_store();
    let n = sidechain_edge::model::Notification { event_id: "e1".into(), user_id: "owner".into(), payload: json!({"kind": "post_liked"}) };
    store.persist(&[Write::QueueNotification(n.clone())]).unwrap();
    assert_eq!(store.outbox().unwrap(), vec![n]);
    store.outbox_done("e1").unwrap();
    assert!(store.outbox().unwrap().is_empty());
}

fn inbox() -> InboxStore<MemorySql> {
    let s = InboxStore::new(MemorySql::new());
    s.ensure_schema().unwrap();
    s
}

fn deliver(event: &str, users: &[&str]) -> Deliver {
    Deliver { event_id: event.into(), item: json!({"kind": "new_follower", "payload": {}}), user_ids: users.iter().map(|u| u.to_string()).collect(), shard: String::new(), group: None, store: true }
}

fn page(store: &InboxStore<MemorySql>, user: &str, before: Option<u64>) -> serde_json::Value {
    store.page(&ReadPage { user_id: user.into(), limit: Some(100), before, timeline: false }).unwrap()
}

#[test]
fn an_event_is_kept_once_per_user_and_pushed_to_online_ones() {
    let s = inbox();
    s.attach("alice", 1, None).unwrap();
    let pushes = s.keep(&deliver("e1", &["alice", "bob"]), 100).unwrap();
    assert_eq!(pushes.iter().map(|p| p.user_id.as_str()).collect::<Vec<_>>(), ["alice"]);
    assert_eq!(pushes[0].count.unread, 1);
    // A redelivery keeps nothing twice; the online user is handed it again.
    let again = s.keep(&deliver("e1", &["alice", "bob"]), 200).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((s.unread("alice").unwrap(), s.unread("bob").unwrap()), (1, 1));
    assert_eq!(s.holders("e1").unwrap().len(), 2);
}

#[test]
fn an_inbox_keeps_the_latest_500_and_remembers_older_ids() {
    let s = inbox();
    for i in 0..(ITEMS_KEPT + 40) {
        s.keep(&deliver(&format!("e{i}"), &["u"]), 1_000 + i).unwrap();
    }
    let mut seen = 0;
    let mut before = None;
    loop {
        let p = page(&s, "u", before);
        seen += p["notifications"].as_array().unwrap().len();
        match p["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert!(seen as i64 >= ITEMS_KEPT && seen as i64 <= ITEMS_KEPT + 20, "{seen}");
    // The oldest event left a stub: delivering it again keeps nothing new.
    assert!(s.keep(&deliver("e0", &["u"]), 9_999).unwrap().is_empty());
    assert!(s.holders("e0").unwrap().is_empty());
}

#[test]
fn online_generations_never_let_an_old_close_win() {
    let s = inbox();
    s.attach("u", 2, None).unwrap();
    assert!(s.went_offline("u", 1).unwrap(), "a close older than the connect leaves the user online");
    assert_eq!(s.generation("u").unwrap(), Some(2));
    assert!(!s.went_offline("u", 2).unwrap());
    assert_eq!(s.generation("u").unwrap(), None);
}

// §5.3 [1.2] replaces the "handed over" bookkeeping: a connect gets the kept items above the
// client's since_seq (or, without one, the unread ones).
#[test]
fn read_marks_and_connect_handover() {
    let s = inbox();
    for e in ["a", "b", "c"] {
        s.keep(&deliver(e, &["u"]), 10).unwrap();
    }
    let (items, head, count) = s.attach("u", 1, None).unwrap();
    assert_eq!((items.len(), head, count.unread), (3, 3, 3));
    assert_eq!(s.attach("u", 2, Some(2)).unwrap().0.len(), 1, "only what the client had not seen");
    let (count, generation) = s.mark_read(&MarkRead::parse("u", &json!({"event_ids": ["a"]})).unwrap()).unwrap();
    assert_eq!((count.unread, generation), (2, Some(2)));
    let (all, _) = s.mark_read(&MarkRead::parse("u", &json!({"all": true})).unwrap()).unwrap();
    assert!(all.unread == 0 && all.clock > count.clock, "counts carry an increasing clock");
    assert!(MarkRead::parse("u", &json!({"event_ids": vec!["x"; 501]})).is_err());
}

#[test]
fn a_pre_shard_inbox_is_imported_as_it_was() {
    let s = inbox();
    let import = Import {
        user_id: "u".into(),
        inbox: vec![LegacyItem { event_id: "old".into(), created_at: 50.0, read: 1.0, delivered: 1.0, item: json!({"kind": "k"}).to_string() }],
        activities: vec![LegacyActivity { created_at: 40.0, item: json!({"kind": "activity"}).to_string() }],
    };
    assert_eq!(s.import(&import).unwrap(), 2);
    s.import(&import).unwrap();
    let p = page(&s, "u", None);
    assert_eq!(p["notifications"].as_array().unwrap().len(), 1, "an import twice keeps it once");
    assert_eq!((p["notifications"][0]["read"].as_bool(), p["notifications"][0]["created_at"].as_u64()), (Some(true), Some(50)));
    let t = s.page(&ReadPage { user_id: "u".into(), limit: None, before: None, timeline: true }).unwrap();
    assert_eq!(t["activities"].as_array().unwrap().len(), 1);
    assert!(s.page(&ReadPage { user_id: "u".into(), limit: Some(0), before: None, timeline: false }).is_err());
}

#[test]
fn stats_keep_live_rooms_and_the_last_minute() {
    let s = StatsStore::new(MemorySql::new());
    s.ensure_schema().unwrap();
    let tally = Tally { messages: 5, operations: 2, ..Tally::default() };
    s.record(&Report { document_id: "a".into(), connections: Some(3), at: 100_000, seq: 0, tally: tally.clone() }).unwrap();
    s.record(&Report { document_id: "b".into(), connections: Some(1), at: 100_500, seq: 0, tally }).unwrap();
    // A report older than the stored one does not win; a close empties the room.
    s.record(&Report { document_id: "a".into(), connections: Some(9), at: 90_000, seq: 0, tally: Tally::default() }).unwrap();
    s.record(&Report { document_id: "b".into(), connections: Some(0), at: 101_000, seq: 0, tally: Tally::default() }).unwrap();
    // Same millisecond: the room's counter orders them; an emptied room is not revived.
    s.record(&Report { document_id: "c".into(), connections: Some(0), at: 102_000, seq: 7, tally: Tally::default() }).unwrap();
    s.record(&Report { document_id: "c".into(), connections: Some(2), at: 102_000, seq: 6, tally: Tally::default() }).unwrap();
    let snap = s.snapshot(105_000).unwrap();
    assert_eq!((snap.connections, snap.active_documents, snap.last_minute.messages), (3, 1, 10));
    assert_eq!(s.snapshot(200_000).unwrap().last_minute.messages, 0, "a minute later the tallies have aged out");
}

#[test]
fn a_room_count_not_renewed_lapses() {
    let s = StatsStore::new(MemorySql::new()).with_lapse(180_000);
    s.ensure_schema().unwrap();
    let live = |doc: &str, n: u32, at: u64| Report { document_id: doc.into(), connections: Some(n), at, seq: 0, tally: Tally::default() };
    s.record(&live("restarted", 4, 100_000)).unwrap();
    s.record(&live("renewed", 2, 100_000)).unwrap();
    s.record(&live("renewed", 2, 160_000)).unwrap();
    assert_eq!(s.snapshot(270_000).unwrap().connections, 6);
    // 3 minutes after its last report, a room whose sockets vanished with its runtime stops counting.
    let snap = s.snapshot(280_001).unwrap();
    assert_eq!((snap.connections, snap.active_documents), (2, 1));
}
