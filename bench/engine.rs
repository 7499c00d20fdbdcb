//! Native engine benchmarks (figures, not pass/fail): `cargo bench --bench engine`.
//! 1. automerge-paper replayed through the room (validate, dedupe, transform, apply, log, ack)
//!    versus a bare rope making the same edits.
//! 2. Cost of one op against documents of 1k, 100k and 1M code points, in sync and 10 versions
//!    behind (so it is transformed).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use ropey::Rope;
use sidechain_edge::ot::text::TextPrimitive;
use sidechain_edge::model::{Actor, NoLookup, OpRequest, SavedRoom};
use sidechain_edge::room::TextRoom as Room;

fn actor() -> Actor {
    Actor { user_id: "bench".into(), name: "bench".into(), can_write: true, is_service: false }
}

fn req(client: &str, seq: u64, version: u64, prims: Vec<TextPrimitive>) -> OpRequest<Vec<TextPrimitive>> {
    OpRequest { document_id: None, client_id: client.into(), seq: Some(seq), version: Some(version), timestamp: None, body: prims }
}

fn replay_vs_rope() {
    let trace = common::load_trace("automerge-paper");
    let n = trace.txns.len();

    let start = Instant::now();
    let mut rope = Rope::new();
    for prims in &trace.txns {
        for p in prims {
            match p {
                TextPrimitive::Insert { position, content } => rope.insert(*position, content),
                TextPrimitive::Delete { position, length } => rope.remove(*position..position + length),
            }
        }
    }
    let bare = start.elapsed();
    assert_eq!(rope.to_string(), trace.end);

    let start = Instant::now();
    let mut room = Room::new("bench");
    for (i, prims) in trace.txns.iter().enumerate() {
        let v = room.version();
        room.submit(&actor(), req("c", i as u64 + 1, v, prims.clone()), 0, &NoLookup).expect("trace op applies");
    }
    let engine = start.elapsed();
    assert_eq!(room.content(), trace.end);

    // The whole socket path: the client's frame text parsed, submitted, and the ack and the
    // broadcast serialised into frame text (the frames the client sends are made beforehand).
    let me = common::session(1, true);
    let present = [me.clone(), common::session(2, true)];
    let frames: Vec<String> =
        trace.txns.iter().enumerate().map(|(i, prims)| common::op_frame("m", &me.client_id, i as u64 + 1, i as u64, prims)).collect();
    let start = Instant::now();
    let mut room = Room::new("doc");
    let mut bytes = 0;
    for frame in &frames {
        let fx = room.on_frame(&me, frame, 0, &present, &NoLookup);
        for m in fx.to_sender.into_iter().chain(fx.to_others) {
            bytes += m.into_frame("f-1", 0).len();
        }
    }
    let socket_path = start.elapsed();
    assert_eq!(room.content(), trace.end);
    assert!(bytes > 0);

    println!("automerge-paper ({n} ops)");
    println!("| path | total ms | ns/op | ops/s |");
    println!("|---|---|---|---|");
    for (name, d) in [("bare rope", bare), ("room submit", engine), ("frame in → ack + broadcast frames out", socket_path)] {
        println!("| {name} | {:.1} | {:.0} | {:.0} |", d.as_secs_f64() * 1e3, d.as_nanos() as f64 / n as f64, n as f64 / d.as_secs_f64());
    }
    println!("submit / rope: {:.1}x; socket path / rope: {:.1}x\n", engine.as_secs_f64() / bare.as_secs_f64(), socket_path.as_secs_f64() / bare.as_secs_f64());
}

fn room_with(len: usize) -> Room {
    let content: String = "lorem ipsum dolor sit amet ".chars().cycle().take(len).collect();
    Room::restore("bench", SavedRoom { snapshot: content, ..SavedRoom::default() }).expect("restore")
}

fn per_op_cost() {
    const OPS: u64 = 2000;
    println!("| document (code points) | in sync µs/op | 10 behind (transformed) µs/op |");
    println!("|---|---|---|");
    for len in [1_000usize, 100_000, 1_000_000] {
        let mut room = room_with(len);
        let start = Instant::now();
        for seq in 1..=OPS {
            let pos = (seq as usize * 7919) % room.len_chars();
            let v = room.version();
            room.submit(&actor(), req("a", seq, v, vec![TextPrimitive::Insert { position: pos, content: "x".into() }]), 0, &NoLookup).unwrap();
        }
        let in_sync = start.elapsed().as_secs_f64() * 1e6 / OPS as f64;
        let start = Instant::now();
        for seq in 1..=OPS {
            let pos = (seq as usize * 104_729) % (len / 2);
            let v = room.version() - 10;
            room.submit(&actor(), req("b", seq, v, vec![TextPrimitive::Delete { position: pos, length: 1 }]), 0, &NoLookup).unwrap();
        }
        let behind = start.elapsed().as_secs_f64() * 1e6 / OPS as f64;
        println!("| {len} | {in_sync:.2} | {behind:.2} |");
    }
}

fn main() {
    replay_vs_rope();
    per_op_cost();
}
