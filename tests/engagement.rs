//! Engagement rules: counts always equal a recount of per-user state, whatever the sequence.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use serde_json::json;
use sidechain_edge::ot::engagement::{Action, Modify};
use sidechain_edge::model::{Actor, NoLookup, OpRequest, SavedRoom, Write};
use sidechain_edge::room::PostRoom as Room;

const ACTIONS: [Action; 8] =
    [Action::Like, Action::Unlike, Action::Repost, Action::Unrepost, Action::Save, Action::Unsave, Action::Comment, Action::Uncomment];

fn actor(u: usize) -> Actor {
    Actor { user_id: format!("u{u}"), name: format!("U{u}"), can_write: true, is_service: false, post_grant: false }
}

fn modify(action: Action, comment: Option<String>) -> Modify {
    let text = (action == Action::Comment).then(|| "nice".to_string());
    Modify { action, emoji: None, comment_id: comment, text }
}

fn submit(room: &mut Room, u: usize, seq: u64, m: Modify) -> sidechain_edge::room::Submitted {
    let req = OpRequest { document_id: None, client_id: format!("c{u}"), seq: Some(seq), version: None, timestamp: None, body: m };
    room.submit(&actor(u), req, 1, &NoLookup).expect("valid modify")
}

#[derive(Default)]
struct Model {
    likes: HashSet<usize>,
    reposts: HashSet<usize>,
    saves: HashSet<usize>,
    comments: HashMap<String, (usize, bool)>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn counts_equal_a_recount(steps in proptest::collection::vec((0usize..6, 0usize..8, 0usize..4), 1..200)) {
        let mut room = Room::new("post:p");
        let mut model = Model::default();
        let mut seqs = [0u64; 6];
        let mut comment_ids: Vec<String> = Vec::new();
        for (user, a, pick) in steps {
            let action = ACTIONS[a];
            let target = (action == Action::Uncomment).then(|| comment_ids.get(pick).cloned().unwrap_or_else(|| "missing".into()));
            let owner_ok = target.as_ref().and_then(|id| model.comments.get(id)).map_or(true, |(author, _)| *author == user);
            seqs[user] += 1;
            let req = OpRequest { document_id: None, client_id: format!("c{user}"), seq: Some(seqs[user]), version: None, timestamp: None, body: modify(action, target.clone()) };
            let result = room.submit(&actor(user), req, 1, &NoLookup);
            if !owner_ok {
                prop_assert!(result.is_err(), "removing another user's comment must be refused");
                seqs[user] -= 1;
                continue;
            }
            let done = result.unwrap();
            let changed = match action {
                Action::Like => model.likes.insert(user),
                Action::Unlike => model.likes.remove(&user),
                Action::Repost => model.reposts.insert(user),
                Action::Unrepost => model.reposts.remove(&user),
                Action::Save => model.saves.insert(user),
                Action::Unsave => model.saves.remove(&user),
                Action::Comment => {
                    let id = done.ack()["ops"][0]["comment_id"].as_str().unwrap().to_string();
                    model.comments.insert(id.clone(), (user, true));
                    comment_ids.push(id);
                    true
                }
                Action::Uncomment => match target.and_then(|id| model.comments.get_mut(&id)) {
                    Some((_, alive)) if *alive => { *alive = false; true }
                    _ => false,
                },
                Action::Import => unreachable!("clients cannot send an import; ACTIONS holds none"),
            };
            prop_assert_eq!(done.ack()["status"] == "accepted", changed);
            let c = room.counts();
            prop_assert_eq!(c.like_count as usize, model.likes.len());
            prop_assert_eq!(c.repost_count as usize, model.reposts.len());
            prop_assert_eq!(c.save_count as usize, model.saves.len());
            prop_assert_eq!(c.comment_count as usize, model.comments.values().filter(|(_, alive)| *alive).count());
        }
    }
}

#[test]
fn every_change_is_followed_by_an_update_to_everyone() {
    let mut room = Room::new("post:p");
    let done = submit(&mut room, 1, 1, modify(Action::Like, None));
    assert_eq!(done.effects.to_sender[0].kind, "engagement_update");
    assert_eq!(done.effects.to_sender[0].payload(), json!({"post_id": "p", "like_count": 1, "comment_count": 0, "repost_count": 0, "save_count": 0, "reactions": {}, "version": 1}));
    assert_eq!(done.effects.to_others.iter().map(|o| o.kind).collect::<Vec<_>>(), ["operation", "engagement_update"]);
    let again = submit(&mut room, 1, 2, modify(Action::Like, None));
    assert_eq!(again.ack()["status"], "noop");
    assert!(again.effects.to_others.is_empty());
}

#[test]
fn the_owner_is_notified_of_others_not_of_themselves() {
    let mut room = Room::new("post:p");
    room.set_owner(Some("u0".into()));
    let notes = |s: &sidechain_edge::room::Submitted| {
        s.effects.writes.iter().filter_map(|w| if let Write::QueueNotification(n) = w { Some(n.clone()) } else { None }).collect::<Vec<_>>()
    };
    assert!(notes(&submit(&mut room, 0, 1, modify(Action::Like, None))).is_empty());
    let n = notes(&submit(&mut room, 1, 1, modify(Action::Like, None)));
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].user_id, "u0");
    assert_eq!(n[0].event_id, "post:p@2");
    assert_eq!(n[0].payload["kind"], "post_liked");
    assert_eq!(n[0].payload["actor"], json!({"id": "u1", "name": "U1"}));
    assert_eq!(n[0].payload["counts"]["like_count"], 2);
    assert!(notes(&submit(&mut room, 2, 1, modify(Action::Save, None))).is_empty(), "saves notify nobody");
    assert_eq!(notes(&submit(&mut room, 2, 2, modify(Action::Comment, None)))[0].payload["kind"], "new_comment");
    assert_eq!(notes(&submit(&mut room, 2, 3, modify(Action::Repost, None)))[0].payload["kind"], "post_reposted");
}

#[test]
fn counters_survive_a_restore_from_their_snapshot() {
    let mut room = Room::new("post:p");
    let mut snapshot = None;
    for u in 0..5 {
        for w in submit(&mut room, u, 1, modify(Action::Like, None)).effects.writes {
            if let Write::Snapshot { version, content } = w {
                snapshot = Some((version, content));
            }
        }
    }
    let (version, content) = snapshot.unwrap();
    let woke = Room::restore("post:p", SavedRoom { snapshot_version: version, snapshot: content, ..SavedRoom::default() }).unwrap();
    assert_eq!((woke.version(), woke.counts().like_count), (5, 5));
}

/// §3.3 [1.1]: comment ids are the server's; an id a client sends with `comment` is ignored, so
/// nobody can take or pre-empt another user's comment.
#[test]
fn comment_ids_are_assigned_by_the_server() {
    let mut room = Room::new("post:p");
    let mut m = modify(Action::Comment, Some("victims-id".into()));
    m.comment_id = Some("victims-id".into());
    let a = submit(&mut room, 1, 1, m.clone());
    let b = submit(&mut room, 2, 1, m);
    let (ida, idb) = (a.ack()["ops"][0]["comment_id"].clone(), b.ack()["ops"][0]["comment_id"].clone());
    assert_ne!(ida, json!("victims-id"));
    assert_ne!(ida, idb);
    assert_eq!(b.ack()["status"], "accepted", "the second comment is not a noop");
    assert_eq!(room.counts().comment_count, 2);
}

/// A post that was deleted and created again (a new incarnation) never repeats a comment id or
/// a notification event id of its earlier life.
#[test]
fn ids_are_unique_across_incarnations() {
    let mut ids = Vec::new();
    for incarnation in ["first", "second"] {
        let mut room = Room::restore("post:p", SavedRoom { incarnation: incarnation.into(), owner: Some("owner".into()), ..SavedRoom::default() }).unwrap();
        let done = submit(&mut room, 1, 1, modify(Action::Comment, None));
        ids.push(done.ack()["ops"][0]["comment_id"].as_str().unwrap().to_string());
        for w in &done.effects.writes {
            if let Write::QueueNotification(n) = w {
                ids.push(n.event_id.clone());
            }
        }
    }
    assert_eq!(ids.len(), 4);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 4, "{ids:?}");
}

/// `version` is bounded for posts too.
#[test]
fn post_versions_older_than_the_log_are_too_old() {
    let mut room = Room::new("post:p");
    for u in 0..1_002 {
        submit(&mut room, u, 1, modify(Action::Like, None));
    }
    let req = OpRequest { document_id: None, client_id: "late".into(), seq: Some(1), version: Some(0), timestamp: None, body: modify(Action::Save, None) };
    let err = room.submit(&actor(9_999), req, 1, &NoLookup).unwrap_err();
    assert_eq!(err.code.as_str(), "version_too_old");
}

/// §4.3 [1.1]: likes with an emoji are counted per emoji; the owner hears the emoji of a like and
/// the id and text of a comment.
#[test]
fn reactions_and_notification_details() {
    let mut room = Room::new("post:p");
    room.set_owner(Some("u0".into()));
    let like = |emoji: Option<&str>| Modify { action: Action::Like, emoji: emoji.map(str::to_string), comment_id: None, text: None };
    let first = submit(&mut room, 1, 1, like(Some("🔥")));
    submit(&mut room, 2, 1, like(Some("🔥")));
    submit(&mut room, 3, 1, like(Some("🎹")));
    submit(&mut room, 4, 1, like(None));
    assert_eq!(room.counts().reactions, [("🎹".to_string(), 1), ("🔥".to_string(), 2)].into_iter().collect());
    assert_eq!(room.counts().like_count, 4);
    let update = first.effects.to_sender.iter().find(|m| m.kind == "engagement_update").unwrap().payload();
    assert_eq!(update["reactions"], json!({"🔥": 1}));
    submit(&mut room, 1, 2, modify(Action::Unlike, None));
    assert_eq!(room.counts().reactions["🔥"], 1);
    let notes = |s: &sidechain_edge::room::Submitted| {
        s.effects.writes.iter().filter_map(|w| if let Write::QueueNotification(n) = w { Some(n.payload.clone()) } else { None }).collect::<Vec<_>>()
    };
    let liked = notes(&submit(&mut room, 5, 1, like(Some("🎧"))));
    assert_eq!(liked[0]["emoji"], "🎧");
    assert_eq!(notes(&submit(&mut room, 6, 1, like(None)))[0]["emoji"], serde_json::Value::Null);
    let commented = submit(&mut room, 7, 1, modify(Action::Comment, None));
    let n = &notes(&commented)[0];
    assert_eq!(n["text"], "nice");
    assert_eq!(n["comment_id"], commented.ack()["ops"][0]["comment_id"]);
}

/// A hostile client cannot grow the reactions without bound.
#[test]
fn distinct_reactions_are_bounded() {
    let mut room = Room::new("post:p");
    for u in 0..sidechain_edge::ot::engagement::MAX_REACTIONS {
        submit(&mut room, u, 1, Modify { action: Action::Like, emoji: Some(format!("e{u}")), comment_id: None, text: None });
    }
    let req = OpRequest { document_id: None, client_id: "late".into(), seq: Some(1), version: None, timestamp: None, body: Modify { action: Action::Like, emoji: Some("new".into()), comment_id: None, text: None } };
    assert_eq!(room.submit(&actor(999), req, 1, &NoLookup).unwrap_err().code.as_str(), "too_large");
    assert_eq!(room.counts().like_count as usize, sidechain_edge::ot::engagement::MAX_REACTIONS);
}
