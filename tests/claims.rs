//! §5.1 [1.2]: client_id claims are made by operations, lapse after 30 days without one, and a
//! document keeps at most 10,000 of them; history pages are bounded by count and bytes.

mod common;

use common::{insert_at, op_frame, room_store, session};
use sidechain_edge::history_shards::page_cut;
use sidechain_edge::limits::{CLIENT_CLAIM_LAPSE_MS, HISTORY_PAGE_BYTES, MAX_CLIENT_CLAIMS};
use sidechain_edge::model::{ClientRecord, Effects, Lookup, Session, Write};
use sidechain_edge::objects::document::storage::RoomStore;
use sidechain_edge::room::{claim_of, Claim, TextRoom};
use sidechain_edge::runtime::sql_sqlite::MemorySql;

const DAY: u64 = 24 * 3600 * 1000;



/// One operation by `me` at `now`, committed to `store`; the answer's type (or error code).
fn op(room: &mut TextRoom, store: &RoomStore<MemorySql>, me: &Session, seq: u64, now: u64) -> String {
    let fx: Effects = room.on_frame(me, &op_frame("m", &me.client_id, seq, room.version(), &insert_at(0, "x")), now, &[me.clone()], store);
    store.persist(&fx.writes).unwrap();
    let reply = fx.to_sender[0].payload();
    if fx.to_sender[0].kind == "error" { reply["code"].as_str().unwrap().to_string() } else { reply["status"].as_str().unwrap().to_string() }
}

fn plugin(user: usize, can_write: bool) -> Session {
    let mut s = session(user, can_write);
    s.client_id = "12345".into();
    s
}

#[test]
fn a_reader_never_locks_the_writer_out() {
    let store = room_store();
    let mut room = TextRoom::new("doc");
    let (reader, writer) = (plugin(1, false), plugin(2, true));
    // The reader connects first, with the plugin's predictable id, and keeps trying to write.
    assert!(room.admit(&reader, 1_000, &store).is_ok());
    assert_eq!(op(&mut room, &store, &reader, 1, 1_001), "forbidden");
    assert!(store.client("12345").unwrap().is_none(), "a read-only socket claims nothing");
    assert!(room.admit(&writer, 1_002, &store).is_ok());
    assert_eq!(op(&mut room, &store, &writer, 1, 1_003), "accepted");
    assert_eq!(store.client("12345").unwrap().unwrap().user_id, "u2");
    // Now the id is the writer's, for upgrades and for sockets already open.
    let mut thief = plugin(3, true);
    assert_eq!(room.admit(&thief, 1_004, &store).unwrap_err().code.as_str(), "client_id_taken");
    thief.session_id = "late".into();
    assert_eq!(op(&mut room, &store, &thief, 1, 1_005), "client_id_taken");
    assert_eq!(op(&mut room, &store, &writer, 2, 1_006), "accepted");
}

#[test]
fn a_claim_lapses_after_30_days_without_an_operation() {
    let store = room_store();
    let mut room = TextRoom::new("doc");
    let (old, new) = (plugin(1, true), plugin(2, true));
    assert_eq!(op(&mut room, &store, &old, 1, DAY), "accepted");
    let just_before = DAY + CLIENT_CLAIM_LAPSE_MS;
    assert_eq!(room.admit(&new, just_before, &store).unwrap_err().code.as_str(), "client_id_taken");
    // After a wake too: the claim is read from storage with its time.
    let mut woke = TextRoom::restore("doc", store.load().unwrap()).unwrap();
    assert!(woke.admit(&new, just_before + 1, &store).is_ok());
    assert_eq!(op(&mut woke, &store, &new, 1, just_before + 1), "accepted", "the new user starts at seq 1");
    assert_eq!(op(&mut woke, &store, &old, 2, just_before + 2), "client_id_taken");
    // The same user coming back late keeps their own id and its seq.
    assert_eq!(claim_of(&store.client("12345").unwrap().unwrap(), "u2", just_before + 100 * DAY), Claim::Mine);
}

#[test]
fn claims_from_before_v1_2() {
    let connect_only = ClientRecord { user_id: "u1".into(), last_seq: 0, last_version: None, last_used: 0 };
    assert_eq!(claim_of(&connect_only, "u2", DAY), Claim::Free, "a connect-only claim holds nothing");
    let written = ClientRecord { user_id: "u1".into(), last_seq: 4, last_version: Some(9), last_used: 0 };
    assert_eq!(claim_of(&written, "u2", 1000 * DAY), Claim::Taken, "an undated claim never lapses by time");
}

#[test]
fn a_document_keeps_at_most_10000_claims_dropping_the_longest_idle() {
    let store = room_store();
    let record = |user: u64, seq: u64, at: u64| ClientRecord { user_id: format!("u{user}"), last_seq: seq, last_version: Some(seq), last_used: at };
    // The oldest claim is refreshed by a later operation (seq 2), so it is not the idlest.
    store.persist(&[Write::PutClient("c0".into(), record(0, 1, 1))]).unwrap();
    let writes: Vec<Write> = (1..MAX_CLIENT_CLAIMS).map(|i| Write::PutClient(format!("c{i}"), record(i, 1, 10 + i))).collect();
    store.persist(&writes).unwrap();
    store.persist(&[Write::PutClient("c0".into(), record(0, 2, 1_000_000))]).unwrap();
    assert_eq!(store.claims().unwrap(), MAX_CLIENT_CLAIMS);
    store.persist(&[Write::PutClient("fresh".into(), record(99_999, 1, 2_000_000))]).unwrap();
    assert_eq!(store.claims().unwrap(), MAX_CLIENT_CLAIMS);
    assert!(store.client("c1").unwrap().is_none(), "the claim idle the longest went");
    assert!(store.client("c0").unwrap().is_some(), "a claim used lately stays");
    assert!(store.client("fresh").unwrap().is_some());
}

#[test]
fn a_history_page_is_cut_by_count_and_by_bytes() {
    let kib = 1024;
    // 1,000 planted 64 KiB operations: the page stops at 4 MiB, and says more follow.
    let big = vec![64 * kib; 1001];
    let (n, more) = page_cut(&big, 1000, HISTORY_PAGE_BYTES);
    assert_eq!((n, more), (64, true));
    assert!(n * 64 * kib <= HISTORY_PAGE_BYTES);
    // Small operations: the count binds.
    assert_eq!(page_cut(&vec![100; 1001], 1000, HISTORY_PAGE_BYTES), (1000, true));
    assert_eq!(page_cut(&vec![100; 1000], 1000, HISTORY_PAGE_BYTES), (1000, false));
    assert_eq!(page_cut(&[], 100, HISTORY_PAGE_BYTES), (0, false));
    // One operation larger than the budget still makes progress.
    assert_eq!(page_cut(&[5 * 1024 * kib, 10], 100, HISTORY_PAGE_BYTES), (1, true));
}
