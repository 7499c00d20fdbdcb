//! Group commit (§9), natively: several clients' operations applied in memory in arrival order,
//! committed as one storage transaction, then delivered by the pure plan. A batch whose commit
//! fails leaves storage as it was, and the room rebuilt from storage takes the same operations
//! again; `operations` frames keep versions strictly increasing and gap-free.

mod common;

use std::rc::Rc;

use common::{insert_at, op_frame, room_store, session};
use serde_json::{json, Value};
use sidechain_edge::model::{Effects, Session};
use sidechain_edge::objects::document::delivery::{plan, Queued, Recipient};
use sidechain_edge::objects::document::storage::RoomStore;
use sidechain_edge::room::{PostRoom, TextRoom};
use sidechain_edge::runtime::sql_sqlite::MemorySql;

/// One event per writer, each based on version `base` (concurrent), applied in arrival order.
fn batch(room: &mut TextRoom, store: &RoomStore<MemorySql>, writers: &[Session], base: u64, seq: u64) -> Vec<Effects> {
    writers
        .iter()
        .map(|w| room.on_frame(w, &op_frame(&format!("m{seq}"), &w.client_id, seq, base, &insert_at(0, &w.client_id)), 1_000, writers, store))
        .collect()
}

fn frames_of(texts: &[Rc<str>]) -> Vec<Value> {
    texts.iter().map(|t| serde_json::from_str(t).unwrap()).collect()
}

#[test]
fn a_batch_whose_commit_fails_acks_nothing_and_the_rebuilt_room_takes_it_again() {
    let store = room_store();
    let writers: Vec<Session> = (1..=3).map(|n| session(n, true)).collect();
    let mut room = TextRoom::new("doc");
    for effects in batch(&mut room, &store, &writers, 0, 1) {
        store.persist(&effects.writes).unwrap();
    }
    let before = room.content();

    // The room runs ahead of storage: three events applied in memory, one transaction for all.
    let mut pending = batch(&mut room, &store, &writers, 3, 2);
    assert_eq!(room.version(), 6);
    let writes: Vec<_> = pending.iter_mut().flat_map(|e| std::mem::take(&mut e.writes)).collect();
    store.sql().fail_after(Some(2));
    assert!(store.persist(&writes).is_err());
    store.sql().fail_after(None);
    // The host drops the room and delivers nothing of the batch: acks only ever leave after Ok.
    assert_eq!(store.last_version().unwrap(), 3, "no write of the batch is durable");
    let mut rebuilt = TextRoom::restore("doc", store.load().unwrap()).unwrap();
    assert_eq!((rebuilt.version(), rebuilt.content()), (3, before));

    // The clients never got an ack, so they resend: accepted, not taken for duplicates.
    let resent = batch(&mut rebuilt, &store, &writers, 3, 2);
    let all: Vec<_> = resent.iter().flat_map(|e| e.writes.clone()).collect();
    store.persist(&all).unwrap();
    for e in &resent {
        let ack: Value = serde_json::from_str(e.to_sender[0].payload_json()).unwrap();
        assert_ne!(ack["status"], "duplicate", "{ack}");
    }
    assert_eq!(store.last_version().unwrap(), 6);
}

#[test]
fn operations_frames_carry_each_batch_in_version_order_without_gaps() {
    let store = room_store();
    let writers: Vec<Session> = (1..=4).map(|n| session(n, true)).collect();
    let mut room = TextRoom::new("doc");
    let mut ids = 0u64;
    let mut next_id = || {
        ids += 1;
        format!("f{ids}")
    };
    let recipients: Vec<Recipient> = writers
        .iter()
        .enumerate()
        .map(|(i, w)| Recipient { session_id: &w.session_id, since: 0, batch: i != 3, viewport: None, dialect: Default::default() })
        .collect();
    let mut seen: Vec<Vec<u64>> = vec![Vec::new(); 4];
    let mut base = 0;
    for round in 1..=5 {
        let effects = batch(&mut room, &store, &writers, base, round);
        base = room.version();
        let queued: Vec<Queued> = effects
            .into_iter()
            .enumerate()
            .map(|(i, e)| Queued { order: (round * 10 + i as u64), sender: Some(writers[i].session_id.clone()), to_sender: e.to_sender, to_others: e.to_others })
            .collect();
        let p = plan("doc", &queued, &recipients, 1_000, &mut next_id);
        // Every batching socket gets one frame per batch, the same text for all.
        for r in 0..3 {
            assert_eq!(p.frames[r].len(), 1, "one operations frame per batch");
            assert!(Rc::ptr_eq(&p.frames[r][0], &p.frames[0][0]), "made once for the room");
            let frame = &frames_of(&p.frames[r])[0];
            assert_eq!(frame["type"], "operations");
            seen[r].extend(frame["payload"]["operations"].as_array().unwrap().iter().map(|op| op["version"].as_u64().unwrap()));
        }
        // The socket without ?batch=1 gets the frames of §3.3: its ack and the others' operations.
        let plain = frames_of(&p.frames[3]);
        assert_eq!(plain.iter().filter(|f| f["type"] == "operation_ack").count(), 1);
        seen[3].extend(plain.iter().map(|f| f["payload"]["version"].as_u64().unwrap()));
    }
    for versions in &seen {
        assert_eq!(*versions, (1..=20).collect::<Vec<u64>>(), "strictly increasing, gap-free, own operations included");
    }
}

#[test]
fn a_crowd_on_a_post_gets_counts_not_each_like_and_comments_reach_everyone() {
    let store = room_store();
    let people: Vec<Session> = (1..=4).map(|n| session(n, true)).collect();
    let mut room = PostRoom::new("post:p1");
    let frame = |id: &str, who: &Session, action: &str| {
        let extra = if action == "comment" { json!({"text": "great mix"}) } else { json!({}) };
        let mut payload = json!({"document_id": "post:p1", "client_id": who.client_id, "seq": 1, "type": "modify", "action": action});
        payload.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"type": "operation", "id": id, "payload": payload}).to_string()
    };
    // Three likes and a comment arrive during one pending commit.
    let actions = ["like", "like", "like", "comment"];
    let queued: Vec<Queued> = people
        .iter()
        .zip(actions)
        .enumerate()
        .map(|(i, (who, action))| {
            let e = room.on_frame(who, &frame(&format!("m{i}"), who, action), 1_000, &people, &store);
            Queued { order: i as u64, sender: Some(who.session_id.clone()), to_sender: e.to_sender, to_others: e.to_others }
        })
        .collect();
    // Socket 4 (the commenter) is a v1 socket without ?batch=1; the likers batch.
    let recipients: Vec<Recipient> = people
        .iter()
        .enumerate()
        .map(|(i, w)| Recipient { session_id: &w.session_id, since: 0, batch: i != 3, viewport: None, dialect: Default::default() })
        .collect();
    let mut n = 0;
    let p = plan("post:p1", &queued, &recipients, 1_000, &mut || {
        n += 1;
        format!("f{n}")
    });
    for (r, who) in people.iter().enumerate().take(3) {
        let frames = frames_of(&p.frames[r]);
        let ops: Vec<&Value> = frames.iter().filter(|f| f["type"] == "operations").flat_map(|f| f["payload"]["operations"].as_array().unwrap()).collect();
        // Its own like (its ack) and the comment; nobody else's like.
        let clients: Vec<&str> = ops.iter().map(|o| o["client_id"].as_str().unwrap()).collect();
        assert_eq!(clients, [who.client_id.as_str(), "c4"], "{frames:?}");
        let counts: Vec<&Value> = frames.iter().filter(|f| f["type"] == "engagement_update").collect();
        assert_eq!(counts.len(), 1, "one engagement_update per batch: {frames:?}");
        assert_eq!((counts[0]["payload"]["like_count"].as_u64(), counts[0]["payload"]["comment_count"].as_u64()), (Some(3), Some(1)));
        assert_eq!(counts[0]["payload"]["version"], 4, "the counts carry the version the socket skipped to");
    }
    // The v1 socket keeps §3.3: every other operation, and its own ack.
    let plain = frames_of(&p.frames[3]);
    assert_eq!(plain.iter().filter(|f| f["type"] == "operation").count(), 3);
    assert_eq!(plain.iter().filter(|f| f["type"] == "operation_ack").count(), 1);
}

#[test]
fn a_batch_stores_exactly_what_its_events_committed_one_by_one_would() {
    use sidechain_edge::runtime::sql::Sql;
    let (batched, one_by_one) = (room_store(), room_store());
    let people: Vec<Session> = (1..=5).map(|n| session(n, true)).collect();
    let mut room = PostRoom::new("post:p2");
    let mut writes = Vec::new();
    for round in 1..=6u64 {
        for who in &people {
            let action = ["like", "unlike", "save", "repost", "unsave", "comment"][(round as usize + who.client_id.len()) % 6];
            let text = if action == "comment" { json!("hi") } else { Value::Null };
            let frame = json!({"type": "operation", "id": "m", "payload": {"client_id": who.client_id, "seq": round, "type": "modify", "action": action, "text": text}});
            let e = room.on_frame(who, &frame.to_string(), 1_000 + round, &people, &batched);
            one_by_one.persist(&e.writes).unwrap();
            writes.extend(e.writes);
        }
    }
    batched.persist(&writes).unwrap();
    let dump = |s: &sidechain_edge::objects::document::storage::RoomStore<MemorySql>| {
        let tables = ["SELECT key || '=' || value FROM meta ORDER BY key", "SELECT user_id || state FROM engagement_users ORDER BY user_id", "SELECT client_id || record FROM clients ORDER BY client_id", "SELECT comment_id || record FROM comments ORDER BY comment_id", "SELECT entry FROM ops ORDER BY version"];
        tables.iter().map(|q| s.sql().texts(q, vec![]).unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(dump(&batched), dump(&one_by_one));
    assert!(room.version() > 20, "most actions change something");
    assert_eq!(dump(&batched)[4].len() as u64, room.version(), "every operation is in the log");
}
