//! The room state machine, message in → messages and storage writes out.

mod common;

use common::{op_frame, session, MemoryStore};
use serde_json::{json, Value};
use sidechain_edge::limits;
use sidechain_edge::ot::text::TextPrimitive;
use sidechain_edge::protocol::Outgoing;
use sidechain_edge::model::{ClientRecord, Effects, Lookup, NoLookup, StoreRead, Write};
use sidechain_edge::room::TextRoom as Room;
use sidechain_edge::ot::engagement::{CommentRecord, UserState};

fn ins(position: usize, content: &str) -> TextPrimitive {
    TextPrimitive::Insert { position, content: content.into() }
}

fn kinds(out: &[Outgoing]) -> Vec<&'static str> {
    out.iter().map(|o| o.kind).collect()
}

fn submit(room: &mut Room, n: usize, seq: u64, version: u64, prims: &[TextPrimitive]) -> Effects {
    let me = session(n, true);
    room.on_frame(&me, &op_frame("m", &me.client_id, seq, version, prims), 1000 + seq, &[me.clone()], &NoLookup)
}

fn ack(fx: &Effects) -> Value {
    assert_eq!(fx.to_sender[0].kind, "operation_ack", "{:?}", fx.to_sender[0].payload());
    fx.to_sender[0].payload()
}

#[test]
fn connect_sends_state_then_status_and_joins_others() {
    let room = Room::new("doc");
    let a = session(1, true);
    let fx = room.connect(&a, None, &[a.clone()]);
    assert_eq!(kinds(&fx.to_sender), ["initial_state", "sync_status"]);
    assert_eq!(fx.to_sender[0].payload()["role"], "write");
    assert_eq!(kinds(&fx.to_others), ["join"]);
    // A second socket of the same client is not a new join.
    let mut a2 = a.clone();
    a2.session_id = "other".into();
    assert!(room.connect(&a2, None, &[a.clone(), a2.clone()]).to_others.is_empty());
}

#[test]
fn accepted_op_is_acked_broadcast_and_written_before_anything_else() {
    let mut room = Room::new("doc");
    let fx = submit(&mut room, 1, 1, 0, &[ins(0, "hi")]);
    assert_eq!(ack(&fx)["status"], "accepted");
    assert_eq!(ack(&fx)["version"], 1);
    assert_eq!(fx.to_sender[0].reply_to.as_deref(), Some("m"));
    assert_eq!(kinds(&fx.to_others), ["operation"]);
    assert_eq!(fx.to_others[0].payload()["transformed_from"], json!([]));
    assert!(matches!(&fx.writes[0], Write::AppendOp(e) if e.version == 1 && e.seq == 1));
    assert!(matches!(&fx.writes[1], Write::PutClient(id, r) if id == "c1" && r.last_seq == 1));
}

#[test]
fn duplicates_repeat_the_ack_and_write_nothing() {
    let mut room = Room::new("doc");
    let first = submit(&mut room, 1, 1, 0, &[ins(0, "hi")]);
    submit(&mut room, 1, 2, 1, &[ins(0, "yo")]);
    let again = submit(&mut room, 1, 2, 1, &[ins(0, "yo")]);
    assert_eq!(ack(&again)["status"], "duplicate");
    assert_eq!(ack(&again)["version"], 2);
    assert!(again.writes.is_empty() && again.to_others.is_empty());
    let older = submit(&mut room, 1, 1, 0, &[ins(0, "hi")]);
    assert_eq!(ack(&older)["version"], ack(&first)["version"]);
    assert_eq!(ack(&older)["ops"], ack(&first)["ops"]);
    assert_eq!(room.content(), "yohi");
}

#[test]
fn version_and_seq_errors() {
    let mut room = Room::new("doc");
    let code = |fx: &Effects| fx.to_sender[0].payload()["code"].as_str().unwrap().to_string();
    assert_eq!(code(&submit(&mut room, 1, 2, 0, &[ins(0, "x")])), "seq_gap");
    assert_eq!(code(&submit(&mut room, 1, 1, 5, &[ins(0, "x")])), "version_ahead");
    for seq in 1..=(limits::LOG_RETAINED_OPS + 2) {
        submit(&mut room, 1, seq, seq - 1, &[ins(0, "x")]);
    }
    let fx = submit(&mut room, 2, 1, 0, &[ins(0, "x")]);
    assert_eq!(code(&fx), "version_too_old");
    assert_eq!(fx.to_sender[0].payload()["operation_id"], "c2:1");
    assert!(fx.writes.is_empty());
}

#[test]
fn read_only_sockets_cannot_write() {
    let mut room = Room::new("doc");
    let r = session(1, false);
    let fx = room.on_frame(&r, &op_frame("m", "c1", 1, 0, &[ins(0, "x")]), 1, &[r.clone()], &NoLookup);
    assert_eq!(fx.to_sender[0].payload()["code"], "forbidden");
    assert_eq!(room.version(), 0);
}

#[test]
fn noop_consumes_the_seq_but_not_a_version() {
    let mut room = Room::new("doc");
    submit(&mut room, 1, 1, 0, &[ins(0, "abc")]);
    submit(&mut room, 1, 2, 1, &[TextPrimitive::Delete { position: 0, length: 3 }]);
    let fx = submit(&mut room, 2, 1, 1, &[TextPrimitive::Delete { position: 1, length: 1 }]);
    assert_eq!(ack(&fx)["status"], "noop");
    assert_eq!(ack(&fx)["version"], 2);
    assert!(fx.to_others.is_empty());
    assert!(matches!(&fx.writes[..], [Write::PutClient(_, r)] if r.last_seq == 1));
    assert_eq!(ack(&submit(&mut room, 2, 2, 2, &[ins(0, "z")]))["version"], 3);
}

#[test]
fn documents_stop_at_one_mebibyte() {
    let mut room = Room::new("doc");
    let chunk = "x".repeat(60 * 1024);
    let mut seq = 0;
    loop {
        seq += 1;
        let v = room.version();
        let fx = submit(&mut room, 1, seq, v, &[ins(0, &chunk)]);
        if fx.to_sender[0].kind == "error" {
            assert_eq!(fx.to_sender[0].payload()["code"], "too_large");
            break;
        }
    }
    assert!(room.len_bytes() <= limits::MAX_TEXT_BYTES);
    assert!(room.len_bytes() + chunk.len() > limits::MAX_TEXT_BYTES);
}

#[test]
fn a_restored_room_matches_and_wakes_from_snapshot_plus_tail() {
    let mut room = Room::new("doc");
    let mut store = MemoryStore::default();
    for seq in 1..=1234u64 {
        let (v, pos) = (room.version(), (seq as usize * 7) % (room.len_chars() + 1));
        let fx = submit(&mut room, 1, seq, v, &[ins(pos, "ab")]);
        store.absorb(&fx);
    }
    assert_eq!(store.snapshot_version, 1200);
    let stored = store.stored();
    assert!(stored.tail.len() as u64 <= limits::LOG_RETAINED_OPS, "wake reads a bounded tail");
    let mut woke = Room::restore("doc", stored).unwrap();
    assert_eq!(woke.content(), room.content());
    assert_eq!(woke.version(), 1234);
    // After a wake the client records come from storage, through the lookup.
    let me = session(1, true);
    let resend = woke.on_frame(&me, &op_frame("m", "c1", 1234, 1233, &[ins(0, "x")]), 1, &[me.clone()], &store);
    assert_eq!(ack(&resend)["status"], "duplicate");
    let next = woke.on_frame(&me, &op_frame("m", "c1", 1235, 1234, &[ins(0, "x")]), 1, &[me.clone()], &store);
    assert_eq!(ack(&next)["version"], 1235);
    // A replay after the restore still covers the retained window.
    let replay = woke.catch_up(&me, Some(1230), &[me.clone()], None);
    // v1.2 §6.1: the replay is announced by `syncing` (with its pending_count) before `synced`.
    let expected: Vec<&str> = ["sync_status"].into_iter().chain(["sync_operation"; 5]).chain(["sync_status"]).collect();
    assert_eq!(kinds(&replay), expected);
    assert_eq!((replay[0].payload()["status"].clone(), replay[0].payload()["pending_count"].clone()), (json!("syncing"), json!(5)));
    assert_eq!((replay[6].payload()["status"].clone(), replay[6].payload()["pending_count"].clone()), (json!("synced"), json!(0)));
}

#[test]
fn restore_rejects_a_log_with_a_gap() {
    let mut room = Room::new("doc");
    let mut store = MemoryStore::default();
    for seq in 1..=3 {
        store.absorb(&submit(&mut room, 1, seq, seq - 1, &[ins(0, "a")]));
    }
    let mut stored = store.stored();
    stored.tail.remove(1);
    assert!(Room::restore("doc", stored).is_err());
}

#[test]
fn leave_only_when_the_clients_last_socket_closes() {
    let mut room = Room::new("doc");
    let a = session(1, true);
    let mut a2 = a.clone();
    a2.session_id = "s1b".into();
    assert!(room.disconnect(&a, &[a2.clone()]).to_others.is_empty());
    assert_eq!(kinds(&room.disconnect(&a2, &[]).to_others), ["leave"]);
}

#[test]
fn typing_expires_after_five_seconds_and_awareness_clears() {
    let mut room = Room::new("doc");
    let a = session(1, true);
    let fx = room.on_frame(&a, r#"{"type":"typing"}"#, 1_000, &[a.clone()], &NoLookup);
    assert_eq!(kinds(&fx.to_others), ["typing"]);
    assert_eq!(room.next_typing_deadline(), Some(1_000 + limits::TYPING_TIMEOUT_MS));
    assert!(room.expire_typing(5_999).to_others.is_empty());
    let fx = room.expire_typing(6_000);
    assert_eq!(kinds(&fx.to_others), ["stopped_typing"]);
    assert!(matches!(&fx.writes[..], [Write::DeleteTyping(_)]));
    let fx = room.on_frame(&a, r#"{"type":"awareness","payload":{"state":{"cursor":1}}}"#, 1, &[a.clone()], &NoLookup);
    assert!(matches!(&fx.writes[..], [Write::PutAwareness(..)]));
    let fx = room.on_frame(&a, r#"{"type":"awareness","payload":{"state":null}}"#, 1, &[a.clone()], &NoLookup);
    assert!(matches!(&fx.writes[..], [Write::DeleteAwareness(_)]));
    assert_eq!(fx.to_others[0].payload()["state"], Value::Null);
}

#[test]
fn hostile_frames_never_panic() {
    let mut room = Room::new("doc");
    let a = session(1, true);
    let frames = [
        "", "null", "{}", "[]", r#"{"type":5}"#, r#"{"type":"operation"}"#, r#"{"type":"operation","payload":[]}"#,
        r#"{"type":"operation","payload":{"seq":1,"version":0,"type":"delete","position":18446744073709551615,"length":18446744073709551615}}"#,
        r#"{"type":"operation","payload":{"seq":18446744073709551615,"version":0,"type":"insert","position":0,"content":"x"}}"#,
        r#"{"type":"operation","payload":{"seq":1,"version":0,"ops":[]}}"#,
        r#"{"type":"operation","payload":{"seq":1,"version":0,"ops":[{"type":"insert"}]}}"#,
        r#"{"type":"sync","payload":{"since":-1}}"#, r#"{"type":"sync","payload":{"since":99}}"#,
        r#"{"type":"awareness","payload":{"state":[1]}}"#, r#"{"type":"ping","id":{"x":1}}"#,
    ];
    for f in frames {
        let fx = room.on_frame(&a, f, 1, &[a.clone()], &NoLookup);
        assert!(!fx.to_sender.is_empty(), "{f} got no answer");
    }
    assert_eq!(room.version(), 0);
}

/// §1 [1.1]: a client_id belongs to the first user who used it in the document; v1.2 (§5.1): the
/// first user who sent an operation with it, a connect claims nothing.
#[test]
fn a_client_id_is_owned_by_its_first_user() {
    let mut room = Room::new("doc");
    let alice = session(1, true);
    let mut mallory = session(2, true);
    mallory.client_id = alice.client_id.clone();
    let connect = room.admit(&alice, 1, &NoLookup).unwrap();
    assert!(connect.writes.is_empty(), "a connect claims nothing (§5.1 [1.2])");
    assert!(room.admit(&mallory, 1, &NoLookup).is_ok(), "an id nobody has written with is free");
    assert_eq!(ack(&submit(&mut room, 1, 1, 0, &[ins(0, "mine")]))["status"], "accepted");
    assert_eq!(room.admit(&mallory, 2, &NoLookup).unwrap_err().code.as_str(), "client_id_taken");
    // Not even an op over a socket opened before the claim: she cannot pre-empt alice's next seq.
    let fx = room.on_frame(&mallory, &op_frame("m", &alice.client_id, 2, 1, &[ins(0, "evil")]), 2, &[mallory.clone()], &NoLookup);
    assert_eq!(fx.to_sender[0].payload()["code"], "client_id_taken");
    assert!(fx.writes.is_empty());
    // The server's own REST id of a user is that user's alone.
    let mut reserved = session(2, true);
    reserved.client_id = "http:u1".into();
    assert_eq!(room.admit(&reserved, 2, &NoLookup).unwrap_err().code.as_str(), "client_id_taken");
}

/// Ownership survives a wake: it is read back from the stored client record.
#[test]
fn ownership_is_read_from_storage_after_a_wake() {
    let mut store = MemoryStore::default();
    let mut room = Room::new("doc");
    store.absorb(&submit(&mut room, 1, 1, 0, &[ins(0, "a")]));
    let mut woke = Room::restore("doc", store.stored()).unwrap();
    let mut mallory = session(2, true);
    mallory.client_id = "c1".into();
    assert_eq!(woke.admit(&mallory, 2_000, &store).unwrap_err().code.as_str(), "client_id_taken");
}

struct BrokenStore;
impl Lookup for BrokenStore {
    fn client(&self, _: &str) -> StoreRead<ClientRecord> {
        Err("disk on fire".into())
    }
    fn engagement_user(&self, _: &str) -> StoreRead<UserState> {
        Err("disk on fire".into())
    }
    fn comment(&self, _: &str) -> StoreRead<CommentRecord> {
        Err("disk on fire".into())
    }
}

/// A failed storage read fails the operation: nothing applied, written or acked.
#[test]
fn a_failed_read_is_internal_not_absent() {
    let mut room = Room::new("doc");
    let me = session(1, true);
    let fx = room.on_frame(&me, &op_frame("m", "c1", 1, 0, &[ins(0, "x")]), 1, &[me.clone()], &BrokenStore);
    assert_eq!(fx.to_sender[0].payload()["code"], "internal");
    assert!(fx.writes.is_empty() && fx.to_others.is_empty());
    assert_eq!(room.version(), 0);
    assert!(room.admit(&me, 1, &BrokenStore).is_err());
}

/// The log keeps at most its byte budget, and a wake reads no more than that.
#[test]
fn the_log_is_bounded_by_bytes() {
    let mut room = Room::new("doc");
    let mut store = MemoryStore::default();
    let chunk = "y".repeat(60_000);
    for seq in 1..=200u64 {
        let v = room.version();
        let len = room.len_chars();
        let prims = if len > 0 { vec![TextPrimitive::Delete { position: 0, length: len }, ins(0, &chunk)] } else { vec![ins(0, &chunk)] };
        store.absorb(&submit(&mut room, 1, seq, v, &prims));
    }
    assert!(room.retained_bytes() <= limits::LOG_RETAINED_BYTES, "{} bytes retained", room.retained_bytes());
    assert!(room.retained_ops() < 200);
    // An op made against a version older than the retained log is refused, not transformed.
    let code = submit(&mut room, 2, 1, 1, &[ins(0, "x")]).to_sender[0].payload()["code"].clone();
    assert_eq!(code, "version_too_old");
    let woke = Room::restore("doc", store.stored()).unwrap();
    assert_eq!(woke.content(), room.content());
}

/// §4.7: the shipped plugin's RealtimeSync shape over a socket — capitalised type, camelCase,
/// no seq or version — is applied like a REST op (the client's next seq, the current version).
#[test]
fn the_plugins_socket_shape_is_applied() {
    let mut room = Room::new("channel:abc123:description");
    let mut me = session(1, true);
    me.client_id = "12345".into();
    let frame = r#"{"type":"operation","payload":{"operation":null,"type":"Insert","clientId":12345,"timestamp":1702569600123,"position":0,"content":"hello","documentId":"channel:abc123:description"}}"#;
    let fx = room.on_frame(&me, frame, 1, &[me.clone()], &NoLookup);
    assert_eq!(ack(&fx)["status"], "accepted");
    assert_eq!(ack(&fx)["seq"], 1);
    let again = r#"{"type":"operation","payload":{"type":"INSERT","clientId":12345,"position":5,"content":"!"}}"#;
    assert_eq!(ack(&room.on_frame(&me, again, 2, &[me.clone()], &NoLookup))["seq"], 2);
    assert_eq!(room.content(), "hello!");
    // A seq without a version is still the contract's form, and refused for text.
    let half = r#"{"type":"operation","payload":{"seq":3,"type":"insert","position":0,"content":"x"}}"#;
    assert_eq!(room.on_frame(&me, half, 3, &[me.clone()], &NoLookup).to_sender[0].payload()["code"], "bad_request");
}
