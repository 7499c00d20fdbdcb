//! Coalesced awareness (§8): at most one relay per socket per 50 ms with the latest state, no
//! storage write per frame, a checkpoint at most once a second, and after a wake only live
//! sockets' states.

mod common;

use std::collections::HashMap;

use common::session;
use proptest::prelude::*;
use serde_json::{json, Value};
use sidechain_edge::model::{AwarenessEntry, Effects, NoLookup, SavedRoom, Session, Write};
use sidechain_edge::room::CanvasRoom;

fn room() -> CanvasRoom {
    let mut r = CanvasRoom::new("canvas:a");
    r.coalesce_awareness(true);
    r
}

fn cursor(me: &Session, room: &mut CanvasRoom, state: Value, now: u64) -> Effects {
    let frame = json!({"type": "awareness", "payload": {"state": state}}).to_string();
    room.on_frame(me, &frame, now, &[me.clone()], &NoLookup)
}

fn relayed(fx: &Effects) -> Vec<Value> {
    fx.to_others.iter().filter(|m| m.kind == "awareness").map(|m| m.payload()["state"].clone()).collect()
}

#[test]
fn a_burst_is_relayed_once_per_50_ms_with_the_latest_state_and_written_once() {
    let mut r = room();
    let a = session(1, true);
    let first = cursor(&a, &mut r, json!({"x": 0}), 1_000);
    assert_eq!(relayed(&first), [json!({"x": 0})], "the first frame goes at once");
    assert!(first.writes.is_empty(), "no storage write per frame");
    assert_eq!(first.follow_ups.awareness_due, Some(2_000), "the checkpoint");
    for (i, t) in [1_010, 1_020, 1_030, 1_040].into_iter().enumerate() {
        let fx = cursor(&a, &mut r, json!({"x": i + 1}), t);
        assert!(fx.to_others.is_empty() && fx.writes.is_empty());
        assert_eq!(fx.follow_ups.awareness_due, Some(1_050));
    }
    assert!(r.tick_awareness(1_049).to_others.is_empty());
    let tick = r.tick_awareness(1_050);
    assert_eq!(relayed(&tick), [json!({"x": 4})], "only the latest state");
    assert!(tick.writes.is_empty());
    assert_eq!(tick.follow_ups.awareness_due, Some(2_000));
    // The next frame inside the new window waits for it.
    assert_eq!(cursor(&a, &mut r, json!({"x": 5}), 1_060).follow_ups.awareness_due, Some(1_100));
    let tick = r.tick_awareness(2_000);
    assert_eq!(relayed(&tick), [json!({"x": 5})]);
    let AwarenessEntry { state, .. } = match &tick.writes[..] {
        [Write::PutAwareness(sid, entry)] if sid == "s1" => entry.clone(),
        other => panic!("one checkpoint write, got {other:?}"),
    };
    assert_eq!(state.get(), r#"{"x":5}"#);
    assert_eq!(tick.follow_ups.awareness_due, None, "nothing left to do");
    // Each socket has its own window.
    let b = session(2, true);
    assert_eq!(relayed(&cursor(&b, &mut r, json!({"y": 1}), 2_010)).len(), 1);
}

#[test]
fn clearing_is_relayed_and_checkpointed_and_a_closed_socket_leaves_nothing_behind() {
    let mut r = room();
    let a = session(1, true);
    cursor(&a, &mut r, json!({"x": 1}), 0);
    r.tick_awareness(1_000); // checkpointed: storage has a row for s1
    let fx = cursor(&a, &mut r, Value::Null, 1_010);
    assert_eq!(relayed(&fx), [Value::Null]);
    let tick = r.tick_awareness(2_010);
    assert!(matches!(&tick.writes[..], [Write::DeleteAwareness(sid)] if sid == "s1"));
    // A pending relay of a socket that closes is dropped; its row is deleted.
    cursor(&a, &mut r, json!({"x": 2}), 3_000);
    cursor(&a, &mut r, json!({"x": 3}), 3_010);
    let bye = r.disconnect(&a, &[]);
    assert!(bye.writes.contains(&Write::DeleteAwareness("s1".into())));
    let tick = r.tick_awareness(5_000);
    assert!(tick.to_others.is_empty() && tick.writes.is_empty());
    assert_eq!(tick.follow_ups.awareness_due, None);
}

#[test]
fn after_a_wake_only_live_sockets_show_their_state() {
    let (a, b) = (session(1, true), session(2, true));
    let mut r = room();
    cursor(&a, &mut r, json!({"x": 1}), 0);
    cursor(&b, &mut r, json!({"x": 2}), 0);
    let rows: Vec<(String, AwarenessEntry)> = r
        .tick_awareness(1_000)
        .writes
        .into_iter()
        .filter_map(|w| match w {
            Write::PutAwareness(sid, e) => Some((sid, e)),
            _ => None,
        })
        .collect();
    assert_eq!(rows.len(), 2);
    // The room hibernates; b's socket vanishes meanwhile. The host keeps live sessions' rows.
    let mut saved = SavedRoom { awareness: rows, ..SavedRoom::default() };
    saved.retain_live(&["s1"]);
    let mut woke = CanvasRoom::restore("canvas:a", saved).unwrap();
    woke.coalesce_awareness(true);
    let me = session(3, false);
    let plan = woke.connect(&me, None, &[a.clone(), me.clone()]).follow_ups.stream.unwrap();
    let mut frames = Vec::new();
    woke.stream(&me, None, &plan, &[a.clone(), me.clone()], &NoLookup, &mut |m| frames.push(m)).unwrap();
    assert_eq!(frames[0].payload()["awareness"], json!([{"client_id": "c1", "user_id": "u1", "state": {"x": 1}}]));
}

proptest! {
    /// Any interleaving of frames and ticks: per socket, relays are ≥ 50 ms apart; after ticking
    /// past everything due, each socket's last relay is its latest state; writes only at ticks.
    #[test]
    fn relays_are_spaced_and_end_with_the_latest_state(events in proptest::collection::vec((0u64..40, 0usize..3, proptest::option::of(0u32..100), any::<bool>()), 1..80)) {
        let mut r = room();
        let sessions: Vec<Session> = (1..=3).map(|n| session(n, true)).collect();
        let mut now = 0;
        let mut last_relay: HashMap<String, u64> = HashMap::new();
        let mut latest: HashMap<String, Value> = HashMap::new();
        let mut last_sent: HashMap<String, Value> = HashMap::new();
        let mut due: Option<u64> = None;
        let check = |fx: &Effects, now: u64, last_relay: &mut HashMap<String, u64>, last_sent: &mut HashMap<String, Value>| -> Result<(), TestCaseError> {
            for m in fx.to_others.iter().filter(|m| m.kind == "awareness") {
                let p = m.payload();
                let client = p["client_id"].as_str().unwrap().to_string();
                if let Some(t) = last_relay.insert(client.clone(), now) {
                    prop_assert!(now >= t + 50, "{client} relayed at {t} and {now}");
                }
                last_sent.insert(client, p["state"].clone());
            }
            Ok(())
        };
        for (dt, who, state, tick) in events {
            now += dt;
            if tick || due.is_some_and(|d| d <= now) {
                // The frame below reports the room's next due time, after this tick's.
                check(&r.tick_awareness(now), now, &mut last_relay, &mut last_sent)?;
            }
            let me = &sessions[who];
            let state = state.map_or(Value::Null, |x| json!({"x": x}));
            latest.insert(me.client_id.clone(), state.clone());
            let fx = cursor(me, &mut r, state, now);
            prop_assert!(fx.writes.is_empty(), "a frame wrote something");
            check(&fx, now, &mut last_relay, &mut last_sent)?;
            due = fx.follow_ups.awareness_due;
        }
        while let Some(d) = due {
            now = now.max(d);
            let fx = r.tick_awareness(now);
            check(&fx, now, &mut last_relay, &mut last_sent)?;
            due = fx.follow_ups.awareness_due;
        }
        prop_assert_eq!(last_sent, latest);
    }
}
