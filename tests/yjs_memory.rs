//! The memory budget of a Yjs room (§7 [1.2]: any sequence of valid messages keeps the room
//! under 48 MiB), measured with a counting allocator for the worst valid sequences: many tiny
//! updates (the longest editing trace, one update per keystroke), one large paste after another
//! up to the 16 MiB document limit, deep delete churn, and many awareness clients. Each is
//! measured awake and while waking from the snapshot and the log tail. Figures are printed
//! (`cargo test --release --test yjs_memory -- --nocapture`).

mod common;

use common::yjs::{update_frame, YClient};
use common::{load_trace, session};
use sidechain_edge::limits;
use sidechain_edge::model::{LogEntry, SavedRoom, Write};
use sidechain_edge::ot::text::TextPrimitive;
use sidechain_edge::room::YRoom;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::Message;
use yrs::updates::encoder::Encode;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{peak_during, BUDGET, MIB};

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

/// Drives `updates` through one writer's socket; returns the room and what storage would hold
/// at the end: the last snapshot and the log rows after it.
/// Measured runs keep nothing (`keep` false): storage is the object's SQLite, not the room.
fn drive(updates: &[Vec<u8>], keep: bool) -> (YRoom, SavedRoom) {
    let me = session(1, true);
    let mut room = YRoom::new("ydoc:m");
    let mut saved = SavedRoom::default();
    for (i, u) in updates.iter().enumerate() {
        let fx = room.y_message(&me, &update_frame(u.clone()), i as u64);
        assert!(fx.close.is_none(), "update {i} is valid");
        for w in fx.effects.writes.into_iter().filter(|_| keep) {
            match w {
                Write::AppendOp(e) => saved.tail.push(LogEntry::clone(&e)),
                Write::SnapshotBytes { version, bytes } => {
                    saved.snapshot_version = version;
                    saved.snapshot_bytes = bytes;
                    saved.tail.retain(|e| e.version > version);
                }
                _ => {}
            }
        }
    }
    (room, saved)
}

/// Awake and waking peaks of a room fed `updates`.
fn measure(updates: Vec<Vec<u8>>) -> (usize, usize, usize) {
    let ((room, _), awake) = peak_during(|| drive(&updates, false));
    drop(room);
    let (room, saved) = drive(&updates, true);
    drop(updates);
    let tail = saved.tail.len();
    assert!(tail < limits::YJS_MERGE_EVERY_UPDATES as usize, "a wake replays {tail} updates");
    let (woke, waking) = peak_during(|| YRoom::restore("ydoc:m", saved).unwrap());
    assert_eq!(woke.y_state(), room.y_state(), "the woken room holds the same document");
    (awake, waking, tail)
}

fn trace_updates(name: &str) -> Vec<Vec<u8>> {
    let trace = load_trace(name);
    let mut client = YClient::new(7);
    trace.txns.iter().map(|t| client.edit(t)).collect()
}

#[test]
fn worst_valid_yjs_sequences_stay_within_the_budget() {
    let mut report: Vec<(&str, usize, usize)> = Vec::new();

    // 1. Many tiny updates: the longest trace, one update per keystroke (~260,000).
    let updates = trace_updates("automerge-paper");
    let (awake, waking, _) = measure(updates);
    report.push(("automerge-paper trace, one update per edit", awake, waking));

    // 2. One large paste after another (1 MB updates) up to the 16 MiB document limit.
    let mut client = YClient::new(8);
    let paste = "p".repeat(1_000_000);
    let updates: Vec<Vec<u8>> = (0..15).map(|_| client.insert(0, &paste)).collect();
    drop(client);
    let (awake, waking, _) = measure(updates);
    report.push(("15 pastes of 1 MB (15 MB document)", awake, waking));

    // 3. Deep delete churn: 2,000 rounds of typing 500 characters one by one and deleting them.
    let mut client = YClient::new(9);
    let mut updates = Vec::new();
    for _ in 0..200 {
        for k in 0..500 {
            updates.push(client.insert(k, "x"));
        }
        updates.push(client.edit(&[TextPrimitive::Delete { position: 0, length: 500 }]));
    }
    drop(client);
    let (awake, waking, _) = measure(updates);
    report.push(("delete churn: 100,000 inserts deleted 500 at a time", awake, waking));

    // 4. Many awareness clients: 2,000 sockets, each at the bound of clients and state size.
    let ((), awake) = peak_during(|| {
        let mut room = YRoom::new("ydoc:aw");
        let state = format!("{{\"pad\":\"{}\"}}", "a".repeat(limits::YJS_MAX_AWARENESS_STATE_BYTES - 12));
        for s in 0..2_000 {
            let me = session(s, true);
            let mut clients = std::collections::HashMap::new();
            for c in 0..limits::YJS_AWARENESS_CLIENTS_PER_SOCKET as u64 + 2 {
                clients.insert(yrs::block::ClientID::new(s as u64 * 100 + c + 1), AwarenessUpdateEntry { clock: 1, json: state.as_str().into() });
            }
            let frame = Message::Awareness(AwarenessUpdate { clients }).encode_v1();
            room.y_message(&me, &frame, 1);
        }
        assert_eq!(room.awareness_clients(), 2_000 * limits::YJS_AWARENESS_CLIENTS_PER_SOCKET);
    });
    report.push(("2,000 sockets x 4 awareness clients of 2 KiB", awake, 0));

    for (name, a, w) in &report {
        println!("yjs memory: {name}: awake {:.1} MiB, waking {:.1} MiB", *a as f64 / MIB as f64, *w as f64 / MIB as f64);
    }
    for (name, a, w) in report {
        assert!(a <= BUDGET && w <= BUDGET, "{name}: awake {a}, waking {w} bytes; budget {BUDGET}");
    }
}
