//! Yjs documents (§7 [1.2]) natively: the y-websocket protocol of the room, durable-before-
//! relayed effects, duplicates, read-only sockets, awareness ownership, and the object's real
//! storage (snapshot + log merged at the §7 thresholds, waking from the snapshot and the tail).

mod common;

use common::yjs::{room_text, update_frame, YClient};
use common::{load_trace, room_store, session};
use sidechain_edge::limits;
use sidechain_edge::model::Write;
use sidechain_edge::room::yjs::PERMISSION_DENIED;
use sidechain_edge::room::{restore_room, YRoom};
use sidechain_edge::runtime::sql::Sql;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::Message;
use yrs::updates::encoder::Encode;

fn awareness(client: u64, clock: u32, json: &str) -> Vec<u8> {
    let mut clients = std::collections::HashMap::new();
    clients.insert(yrs::block::ClientID::new(client), AwarenessUpdateEntry { clock, json: json.into() });
    Message::Awareness(AwarenessUpdate { clients }).encode_v1()
}

fn decode_awareness(frame: &[u8]) -> AwarenessUpdate {
    use yrs::updates::decoder::Decode;
    match Message::decode_v1(frame).unwrap() {
        Message::Awareness(u) => u,
        other => panic!("expected awareness, got {other:?}"),
    }
}

#[test]
fn an_update_is_logged_in_the_same_effects_that_relay_it_and_a_duplicate_changes_nothing() {
    let (a, b) = (session(1, true), session(2, true));
    let mut room = YRoom::new("ydoc:x");
    let mut alice = YClient::new(11);
    let u = alice.insert(0, "hello");
    let fx = room.y_message(&a, &update_frame(u.clone()), 1);
    assert_eq!((room.version(), fx.applied, fx.relays().len()), (1, 1, 1));
    assert!(matches!(fx.effects.writes[0], Write::AppendOp(_)), "the relay waits for this write");
    let mut bob = YClient::new(22);
    bob.receive(&fx.relays()[0]);
    assert_eq!(bob.text(), "hello");
    // The same update again, and an empty one: no version, no write, no relay.
    for frame in [update_frame(u), update_frame(vec![0, 0])] {
        let fx = room.y_message(&b, &frame, 2);
        assert!(fx.relays().is_empty() && fx.effects.writes.is_empty() && fx.close.is_none());
    }
    assert_eq!(room.version(), 1);
}

#[test]
fn a_client_syncs_with_step_1_and_gets_what_it_lacks_as_step_2() {
    let a = session(1, true);
    let mut room = YRoom::new("ydoc:x");
    let mut alice = YClient::new(11);
    room.y_message(&a, &update_frame(alice.insert(0, "shared text")), 1);
    let greeting = room.y_connect();
    assert_eq!(greeting.len(), 1, "step 1 only: nobody has awareness yet");
    let bob = YClient::new(22);
    let fx = room.y_message(&session(2, true), &bob.step1(), 2);
    let mut bob = bob;
    bob.receive(&fx.to_sender[0]);
    assert_eq!(bob.text(), "shared text");
}

/// An update whose predecessor the room lacks waits in memory (yrs's pending part): it changes
/// nothing yet, so it is neither logged nor relayed, and it must not be served either (step 2,
/// REST) — a client would hold what a crash loses. Once the predecessor comes, both apply, are
/// logged and relayed; a room woken from storage serves exactly what the live one does.
#[test]
fn an_update_waiting_for_its_predecessor_is_served_only_once_it_applies() {
    let a = session(1, true);
    let store = room_store();
    let mut room = YRoom::new("ydoc:x");
    let mut alice = YClient::new(11);
    let first = alice.insert(0, "hello");
    let second = alice.insert(5, " world");
    let fx = room.y_message(&a, &update_frame(second), 1);
    assert!(fx.effects.writes.is_empty() && fx.relays().is_empty() && fx.applied == 0);
    let mut bob = YClient::new(22);
    let fx = room.y_message(&session(2, true), &bob.step1(), 2);
    bob.receive(&fx.to_sender[0]);
    assert!(!bob.has_pending(), "step 2 served an update the room never stored");
    let mut reader = YClient::new(33);
    reader.receive(&update_frame(room.y_state().1));
    assert!(!reader.has_pending(), "the REST state holds an update the room never stored");

    let fx = room.y_message(&a, &update_frame(first), 3);
    store.persist(&fx.effects.writes).unwrap();
    assert_eq!((fx.applied, fx.relays().len()), (1, 1));
    bob.receive(&fx.relays()[0]);
    assert_eq!((bob.text().as_str(), bob.has_pending()), ("hello world", false));
    let mut woke = restore_room("ydoc:x", store.load().unwrap()).unwrap();
    let carol = YClient::new(44);
    let served = |r: &mut YRoom| r.y_message(&session(4, true), &carol.step1(), 4).to_sender;
    assert_eq!(served(woke.as_yjs().unwrap()), served(&mut room));
}

/// §9: the updates committed together are relayed as one message. A client that gets the merge
/// ends where one that got every update did, its own updates among them or not.
#[test]
fn the_updates_of_one_commit_are_relayed_as_one_merged_message() {
    let mut room = YRoom::new("ydoc:x");
    let mut writers: Vec<YClient> = (1..=3).map(|i| YClient::new(10 + i)).collect();
    let mut updates = Vec::new();
    for round in 0..3 {
        for (i, w) in writers.iter_mut().enumerate() {
            let fx = room.y_message(&session(i + 1, true), &update_frame(w.insert(0, &format!("{i}{round} "))), round);
            updates.extend(fx.updates);
        }
    }
    // The third writer also deletes what the first wrote in round 0 (it has seen it).
    writers[2].receive(&update_frame(updates[0].clone()));
    let fx = room.y_message(&session(3, true), &update_frame(writers[2].delete_all_of("00 ")), 9);
    updates.extend(fx.updates);
    let batch: Vec<&[u8]> = updates.iter().map(|u| u.as_slice()).collect();
    let merged = sidechain_edge::room::yjs::relay_frames(&batch);
    assert_eq!(merged.len(), 1, "one frame for the whole commit");
    let (mut one_by_one, mut at_once) = (YClient::new(40), YClient::new(41));
    for u in &updates {
        one_by_one.receive(&update_frame(u.clone()));
    }
    at_once.receive(&merged[0]);
    assert_eq!(at_once.text(), one_by_one.text());
    assert_eq!(at_once.text(), room_text(&room));
    assert!(!at_once.text().contains("00 "));
    // A writer gets its own updates back among the others' and skips them.
    let first = &mut writers[0];
    first.receive(&merged[0]);
    assert_eq!((first.text(), first.has_pending()), (room_text(&room), false));
}

#[test]
fn a_read_only_socket_is_refused_and_its_update_dropped() {
    let reader = session(3, false);
    let mut room = YRoom::new("ydoc:x");
    let mut carol = YClient::new(33);
    // Its empty step 2 at connect is no write attempt.
    let fx = room.y_message(&reader, &[0, 1, 2, 0, 0], 1);
    assert!(fx.to_sender.is_empty());
    let fx = room.y_message(&reader, &update_frame(carol.insert(0, "nope")), 2);
    let denials = YClient::new(1).receive(&fx.to_sender[0]);
    assert_eq!(denials, vec![PERMISSION_DENIED.to_string()]);
    assert!(fx.relays().is_empty() && fx.effects.writes.is_empty() && fx.close.is_none(), "the socket stays open");
    assert_eq!((room.version(), room_text(&room)), (0, String::new()));
}

#[test]
fn bad_frames_close_the_socket_and_change_nothing() {
    let a = session(1, true);
    let mut room = YRoom::new("ydoc:x");
    for frame in [vec![0, 2, 200], vec![0, 2, 3, 9, 9, 9], vec![7]] {
        let fx = room.y_message(&a, &frame, 1);
        assert_eq!(fx.close.map(|c| c.0), Some(1007), "{frame:?}");
        assert!(fx.effects.writes.is_empty());
    }
    let fx = room.y_message(&a, &vec![0u8; limits::YJS_MAX_FRAME_BYTES + 1], 1);
    assert_eq!(fx.close, Some((1009, "too_large")));
    assert_eq!(room.version(), 0);
}

#[test]
fn awareness_is_relayed_owned_per_socket_and_removed_with_its_socket_only() {
    let (a, b, c) = (session(1, true), session(2, false), session(3, true));
    let mut room = YRoom::new("ydoc:x");
    let fx = room.y_message(&a, &awareness(11, 1, r#"{"user":"alice"}"#), 1);
    assert_eq!(decode_awareness(&fx.to_others[0]).clients.len(), 1);
    room.y_message(&b, &awareness(22, 1, r#"{"user":"bob"}"#), 1);
    // Another socket cannot set or clear a client it does not own.
    let fx = room.y_message(&c, &awareness(11, 9, "null"), 2);
    assert!(fx.to_others.is_empty());
    // A new socket gets everyone's awareness after step 1; a query gets it too.
    assert_eq!(decode_awareness(&room.y_connect()[1]).clients.len(), 2);
    assert_eq!(decode_awareness(&room.y_message(&c, &[3], 3).to_sender[0]).clients.len(), 2);
    let fx = room.y_disconnect(&a);
    let removed = decode_awareness(&fx.to_others[0]);
    let entry = &removed.clients[&yrs::block::ClientID::new(11)];
    assert_eq!((removed.clients.len(), entry.clock, &*entry.json), (1, 2, "null"));
    assert_eq!(room.awareness_clients(), 1, "bob's client stays");
}

#[test]
fn awareness_ownership_survives_a_wake_from_storage() {
    let (a, b) = (session(1, true), session(2, true));
    let store = room_store();
    let mut room = YRoom::new("ydoc:x");
    for (s, client) in [(&a, 11), (&b, 22)] {
        store.persist(&room.y_message(s, &awareness(client, 4, r#"{"cursor":1}"#), 1).effects.writes).unwrap();
    }
    let mut saved = store.load().unwrap();
    saved.retain_live(&["s1", "s2"]);
    let mut woke = restore_room("ydoc:x", saved).unwrap();
    let fx = woke.as_yjs().unwrap().y_disconnect(&a);
    let removed = decode_awareness(&fx.to_others[0]);
    assert_eq!(removed.clients[&yrs::block::ClientID::new(11)].clock, 5);
    assert_eq!(woke.as_yjs().unwrap().awareness_clients(), 1);
    // A socket that vanished while the room slept leaves nothing behind.
    let mut saved = store.load().unwrap();
    saved.retain_live(&["s2"]);
    assert_eq!(saved.awareness.len(), 1);
}

/// A trace replayed by one Yjs client through the room, each event's writes in the object's
/// SQLite: the log is merged at the §7 thresholds and a wake replays only the tail.
#[test]
fn the_log_is_merged_into_a_snapshot_and_a_wake_replays_only_the_tail() {
    let a = session(1, true);
    let store = room_store();
    let mut room = YRoom::new("ydoc:x");
    let mut alice = YClient::new(11);
    let trace = load_trace("sveltecomponent");
    let n = trace.txns.len().min(4_500);
    for (i, t) in trace.txns.iter().take(n).enumerate() {
        let fx = room.y_message(&a, &update_frame(alice.edit(t)), i as u64);
        assert_eq!(fx.applied, 1);
        store.persist(&fx.effects.writes).unwrap();
    }
    let saved = store.load().unwrap();
    let after_snapshot = saved.tail.iter().filter(|e| e.version > saved.snapshot_version).count() as u64;
    assert!(saved.snapshot_version >= limits::YJS_MERGE_EVERY_UPDATES, "merged at least once");
    assert!(after_snapshot < limits::YJS_MERGE_EVERY_UPDATES, "a wake replays {after_snapshot} updates");
    let woke = restore_room("ydoc:x", saved).unwrap();
    assert_eq!(woke.version(), n as u64);
    let mut woke = woke;
    assert_eq!(room_text(woke.as_yjs().unwrap()), alice.text());
}

#[test]
fn a_snapshot_larger_than_one_row_is_stored_in_pieces_text_or_binary() {
    let store = room_store();
    let big = "y".repeat(2_600_000);
    store.persist(&[Write::Snapshot { version: 7, content: big.clone() }]).unwrap();
    let chunks = store.sql().first_int("SELECT COUNT(*) FROM snapshot_chunks", vec![]).unwrap();
    assert_eq!(chunks, Some(3));
    assert_eq!(store.load().unwrap().snapshot, big);
    let state: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    store.persist(&[Write::SnapshotBytes { version: 8, bytes: state.clone() }]).unwrap();
    assert_eq!(store.sql().first_int("SELECT COUNT(*) FROM snapshot_blobs", vec![]).unwrap(), Some(3));
    let saved = store.load().unwrap();
    assert_eq!((saved.snapshot_version, saved.snapshot_bytes == state, saved.snapshot.as_str()), (8, true, ""));
    store.persist(&[Write::Snapshot { version: 9, content: "small".into() }]).unwrap();
    assert!(store.load().unwrap().snapshot_bytes.is_empty());
    assert_eq!(store.load().unwrap().snapshot, "small");
    assert_eq!(store.sql().first_int("SELECT COUNT(*) FROM snapshot_chunks", vec![]).unwrap(), Some(0));
}

#[test]
fn a_document_past_16_mib_refuses_the_update_and_closes_with_1009() {
    let a = session(1, true);
    let mut room = YRoom::new("ydoc:x");
    let mut alice = YClient::new(11);
    let chunk = "z".repeat(1_000_000);
    let mut refused = None;
    for i in 0..20 {
        let fx = room.y_message(&a, &update_frame(alice.insert(0, &chunk)), i);
        if fx.close.is_some() {
            refused = Some((i, fx));
            break;
        }
    }
    let (i, fx) = refused.expect("refused before 20 MB");
    assert_eq!(fx.close, Some((1009, "too_large")));
    assert!(fx.effects.writes.is_empty() && fx.relays().is_empty());
    assert_eq!(room.version(), i);
    assert!(room.y_state().1.len() <= limits::YJS_MAX_DOC_BYTES);
}
