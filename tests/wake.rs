//! Waking a document with a long history costs what waking an empty one does (§9): the room
//! reads its snapshot and the operations after it, and the older retained operations only when
//! a client needs them — an operation made against an old version, a replay, a duplicate. Each
//! is checked against a room woken the old way, with the whole retained log in memory.

mod common;

use common::{op_frame, session, MemoryStore};
use serde_json::Value;
use sidechain_edge::model::{Effects, Lookup, Session};
use sidechain_edge::ot::text::TextPrimitive;
use sidechain_edge::room::TextRoom as Room;

fn ins(position: usize, content: &str) -> Vec<TextPrimitive> {
    vec![TextPrimitive::Insert { position, content: content.into() }]
}

/// 450 operations by three clients: the snapshot is at 400, storage retains all 450.
fn history() -> MemoryStore {
    let mut room = Room::new("doc");
    let mut store = MemoryStore::default();
    for n in 0..450u64 {
        let me = session(1 + (n % 3) as usize, true);
        let fx = room.on_frame(&me, &op_frame("m", &me.client_id, 1 + n / 3, room.version(), &ins(n as usize % 7, "ab")), 1_000 + n, &[me.clone()], &store);
        store.absorb(&fx);
    }
    assert_eq!(store.snapshot_version, 400);
    store
}

/// The room woken from `store` the lazy way (snapshot and tail) and the old way (whole log).
fn woken(store: &MemoryStore) -> (Room, Room) {
    (Room::restore("doc", store.stored_lazily()).unwrap(), Room::restore("doc", store.stored()).unwrap())
}

fn payloads(fx: &Effects) -> Vec<Value> {
    fx.to_sender.iter().chain(&fx.to_others).map(|m| m.payload()).collect()
}

fn frame(room: &mut Room, me: &Session, text: &str, store: &dyn Lookup) -> Vec<Value> {
    payloads(&room.on_frame(me, text, 5_000, &[me.clone()], store))
}

#[test]
fn a_woken_room_holds_only_the_operations_after_its_snapshot() {
    let store = history();
    let (lazy, eager) = woken(&store);
    assert_eq!((lazy.retained_ops(), eager.retained_ops()), (50, 450));
    assert_eq!((lazy.content(), lazy.version()), (eager.content(), 450));
    assert_eq!(lazy.oldest_replayable(), 0, "storage still holds every operation");
}

#[test]
fn an_operation_on_an_old_version_transforms_as_with_the_whole_log() {
    let store = history();
    let (mut lazy, mut eager) = woken(&store);
    let me = session(9, true);
    let op = op_frame("m", &me.client_id, 1, 10, &ins(3, "XYZ"));
    assert_eq!(frame(&mut lazy, &me, &op, &store), frame(&mut eager, &me, &op, &store));
    assert_eq!(lazy.content(), eager.content());
    assert_eq!(lazy.retained_ops(), 441, "it read back the operations after version 10, no more");
}

#[test]
fn a_replay_and_an_old_duplicate_read_the_older_operations_back() {
    let store = history();
    let (mut lazy, mut eager) = woken(&store);
    let me = session(1, true);
    let sync = r#"{"type":"sync","id":"s","payload":{"since":5}}"#;
    let replay = frame(&mut lazy, &me, sync, &store);
    assert_eq!(replay.len(), 2 + 445, "syncing, 445 operations, synced");
    assert_eq!(replay, frame(&mut eager, &me, sync, &store));
    // Client c1's 2nd operation (version 4) again: its original ack, not a new version.
    let (mut lazy, mut eager) = woken(&store);
    let again = op_frame("m", "c1", 2, 3, &ins(0, "ab"));
    let ack = frame(&mut lazy, &me, &again, &store);
    assert_eq!((ack[0]["status"].as_str(), ack[0]["version"].as_u64()), (Some("duplicate"), Some(4)));
    assert_eq!(ack, frame(&mut eager, &me, &again, &store));
}

#[test]
fn operations_storage_no_longer_holds_are_version_too_old_not_a_wrong_transform() {
    let mut store = history();
    let mut lazy = Room::restore("doc", store.stored_lazily()).unwrap();
    store.ops.retain(|(v, _)| *v > 300); // trimmed after the wake (copied to D1)
    let me = session(9, true);
    let old = frame(&mut lazy, &me, &op_frame("m", &me.client_id, 1, 10, &ins(0, "x")), &store);
    assert_eq!(old[0]["code"], "version_too_old", "{old:?}");
    let recent = frame(&mut lazy, &me, &op_frame("m", &me.client_id, 1, 420, &ins(0, "x")), &store);
    assert_eq!(recent[0]["status"], "transformed", "{recent:?}");
}

#[test]
fn the_objects_storage_loads_the_tail_and_reads_older_operations_on_demand() {
    let store = common::room_store();
    let mut room = Room::new("doc");
    for n in 0..450u64 {
        let me = session(1 + (n % 3) as usize, true);
        let fx = room.on_frame(&me, &op_frame("m", &me.client_id, 1 + n / 3, room.version(), &ins(n as usize % 7, "ab")), 1_000 + n, &[me.clone()], &store);
        store.persist(&fx.writes).unwrap();
    }
    let saved = store.load().unwrap();
    assert_eq!((saved.snapshot_version, saved.tail.len()), (400, 50), "the wake reads the operations after the snapshot only");
    let mut woke = Room::restore("doc", saved).unwrap();
    let me = session(9, true);
    let op = op_frame("m", &me.client_id, 1, 10, &ins(3, "XYZ"));
    assert_eq!(frame(&mut woke, &me, &op, &store), frame(&mut room, &me, &op, &store), "the same transform as the room that never slept");
    assert_eq!(woke.content(), room.content());
}

#[test]
fn older_operations_are_read_back_newest_first_within_the_byte_budget() {
    use sidechain_edge::limits::LOG_RETAINED_BYTES;
    let store = common::room_store();
    let mut room = Room::new("doc");
    let me = session(1, true);
    // 200 operations, every other one inserting 25,000 two-byte characters, 50,000 bytes (and
    // the next deleting them): about 5 MB of log, more than the 4 MiB the room may hold; the
    // budget counts bytes, not characters.
    for n in 0..200u64 {
        let prims = if n % 2 == 0 { ins(0, &"é".repeat(25_000)) } else { vec![TextPrimitive::Delete { position: 0, length: 25_000 }] };
        let fx = room.on_frame(&me, &op_frame("m", &me.client_id, 1 + n, room.version(), &prims), 1_000 + n, &[me.clone()], &store);
        assert!(!fx.writes.is_empty(), "op {n} taken");
        store.persist(&fx.writes).unwrap();
    }
    let got = store.log_entries(0, 200, LOG_RETAINED_BYTES).unwrap();
    let versions: Vec<u64> = got.iter().map(|e| e.version).collect();
    let sizes: usize = got.iter().map(|e| serde_json::to_string(e).unwrap().len()).sum();
    assert!(sizes <= LOG_RETAINED_BYTES, "{sizes} bytes read back");
    assert!(got.len() >= 150 && got.len() < 200, "the newest that fit: {} of 200", got.len());
    assert_eq!(versions, (201 - got.len() as u64..=200).collect::<Vec<_>>(), "contiguous and ending at the newest");
    assert_eq!(store.log_entries(190, 200, LOG_RETAINED_BYTES).unwrap().len(), 10, "a small range is read whole");
    // What the room already holds leaves less: a 1 MB budget reads about a fifth as much.
    let less = store.log_entries(0, 200, 1_000_000).unwrap();
    let bytes: usize = less.iter().map(|e| serde_json::to_string(e).unwrap().len()).sum();
    assert!(bytes <= 1_000_000 && less.len() >= 30 && less.last().map(|e| e.version) == Some(200), "{} ops, {bytes} bytes", less.len());
}
