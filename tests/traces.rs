//! Every sequential editing trace replays through the room to its recorded final text.

mod common;

use common::load_trace;
use sidechain_edge::model::{Actor, NoLookup, OpRequest};
use sidechain_edge::room::TextRoom as Room;

fn replay(name: &str) {
    let trace = load_trace(name);
    let mut room = Room::new("trace");
    let actor = Actor { user_id: "u".into(), name: "u".into(), can_write: true, is_service: false, post_grant: false };
    if !trace.start.is_empty() {
        panic!("{name}: traces with start content are not expected");
    }
    for (i, prims) in trace.txns.into_iter().enumerate() {
        let req = OpRequest { document_id: None, client_id: "c".into(), seq: Some(i as u64 + 1), version: Some(room.version()), timestamp: None, body: prims };
        let done = room.submit(&actor, req, 0, &NoLookup).unwrap_or_else(|f| panic!("{name} txn {i}: {f:?}"));
        assert_eq!(done.ack()["status"], "accepted");
    }
    assert_eq!(room.content(), trace.end, "{name} diverged from endContent");
}

#[test]
fn sveltecomponent() {
    replay("sveltecomponent");
}

#[test]
fn rustcode() {
    replay("rustcode");
}

#[test]
fn seph_blog1() {
    replay("seph-blog1");
}

#[test]
fn automerge_paper() {
    replay("automerge-paper");
}
