//! A Yjs room (§7 [1.2]): the y-websocket protocol over binary frames, on the same room as
//! every other kind (version, log, snapshot, history). Message 0 is sync (step 1 answered with
//! step 2; step 2 and update applied), 1 awareness (relayed; each socket owns the awareness
//! clients it announced, and they are removed when it closes), 3 query awareness, 2 auth
//! (`permission-denied`, to a read-only socket whose non-empty update was dropped).
//!
//! An applied update is logged (`Write::AppendOp`) in the same effects as its relay, so the host
//! makes it durable before any other socket gets it; an update that changes nothing gets no
//! version and is not relayed. Awareness entries are stored under `{session_id}|{yjs client}`, so
//! a room woken from hibernation still knows which socket owns which client.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use yrs::encoding::read::Cursor;
use yrs::sync::protocol::MessageReader;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::DecoderV1;
use yrs::updates::encoder::Encode;
use yrs::block::ClientID;

use super::Room;
use crate::doc::ydoc::{b64, YDoc, YFail};
use crate::doc::{raw_json, Document};
use crate::limits;
use crate::model::{AwarenessEntry, Effects, LogEntry, Session, Write};

pub type YRoom = Room<YDoc>;

/// The reason sent with y-protocols' `permission-denied`.
pub const PERMISSION_DENIED: &str = "permission-denied: read-only access to this document";

/// What one event of a Yjs room produced: binary frames for the sender and for every other
/// socket, the writes and follow-ups (in `effects`, whose JSON messages stay empty), a close of
/// the sender, and the document's version when an update applied.
#[derive(Debug, Default)]
pub struct YEffects {
    pub to_sender: Vec<Vec<u8>>,
    /// Frames for every other socket (awareness).
    pub to_others: Vec<Vec<u8>>,
    /// The effective updates, relayed to every other socket after the commit: those of one
    /// commit as one message ([`relay_frames`]).
    pub updates: Vec<Vec<u8>>,
    pub effects: Effects,
    /// Close the sender with this code and reason (nothing of the frame was applied).
    pub close: Option<(u16, &'static str)>,
    /// Updates that changed the document in this event.
    pub applied: u64,
}

/// An awareness client's latest state as stored (`AwarenessEntry::state`).
#[derive(Serialize, Deserialize)]
struct Stored {
    clock: u32,
    json: String,
}

fn key(session_id: &str, client: u64) -> String {
    format!("{session_id}|{client}")
}

fn encode(m: Message) -> Vec<u8> {
    m.encode_v1()
}

fn awareness_message(clients: HashMap<ClientID, AwarenessUpdateEntry>) -> Vec<u8> {
    encode(Message::Awareness(AwarenessUpdate { clients }))
}

impl YRoom {
    /// What a new socket is sent: sync step 1 (the server's state vector) and the awareness of
    /// the others.
    pub fn y_connect(&self) -> Vec<Vec<u8>> {
        let mut out = vec![encode(Message::Sync(SyncMessage::SyncStep1(self.doc.state_vector())))];
        let states = self.awareness_states();
        if !states.is_empty() {
            out.push(awareness_message(states));
        }
        out
    }

    /// One binary frame of socket `me`.
    pub fn y_message(&mut self, me: &Session, frame: &[u8], now: u64) -> YEffects {
        let mut fx = YEffects::default();
        if frame.len() > limits::YJS_MAX_FRAME_BYTES {
            fx.close = Some((1009, "too_large"));
            return fx;
        }
        let Some(messages) = decode_frame(frame) else {
            fx.close = Some((1007, "malformed y-protocols message"));
            return fx;
        };
        for m in messages {
            match m {
                Message::Sync(SyncMessage::SyncStep1(sv)) => fx.to_sender.push(encode(Message::Sync(SyncMessage::SyncStep2(self.doc.diff(&sv))))),
                Message::Sync(SyncMessage::SyncStep2(u)) | Message::Sync(SyncMessage::Update(u)) => {
                    if !me.can_write {
                        if YDoc::is_nonempty_update(&u) {
                            fx.to_sender.push(encode(Message::Auth(Some(PERMISSION_DENIED.into()))));
                        }
                        continue;
                    }
                    if let Err(f) = self.y_apply(&mut fx, &me.user_id, &me.client_id, &u, now) {
                        fx.close = Some(match f {
                            YFail::TooLarge => (1009, "too_large"),
                            YFail::Malformed(_) => (1007, "malformed Yjs update"),
                        });
                        return fx;
                    }
                }
                Message::Awareness(update) => self.y_awareness(&mut fx, me, update),
                Message::AwarenessQuery => fx.to_sender.push(awareness_message(self.awareness_states())),
                // Auth from a client and custom messages mean nothing to the server.
                Message::Auth(_) | Message::Custom(..) => {}
            }
        }
        fx
    }

    /// An update from REST or a socket: applied, logged and relayed when it changes something.
    pub fn y_update(&mut self, user_id: &str, client_id: &str, update: &[u8], now: u64) -> Result<YEffects, YFail> {
        let mut fx = YEffects::default();
        self.y_apply(&mut fx, user_id, client_id, update, now)?;
        Ok(fx)
    }

    fn y_apply(&mut self, fx: &mut YEffects, user_id: &str, client_id: &str, update: &[u8], now: u64) -> Result<(), YFail> {
        let Some(effective) = self.doc.apply(update)? else { return Ok(()) };
        self.version += 1;
        let entry = Rc::new(LogEntry {
            version: self.version,
            client_id: client_id.to_string(),
            user_id: user_id.to_string(),
            seq: self.version,
            timestamp: now,
            server_timestamp: now,
            base_version: self.version - 1,
            ops: raw_json(&b64(&effective)),
            original_position: None,
            transformed_position: None,
        });
        fx.effects.writes.push(Write::AppendOp(Rc::clone(&entry)));
        fx.effects.follow_ups.appended.push(0);
        fx.updates.push(effective);
        fx.applied += 1;
        self.since_snapshot.ops += 1;
        self.since_snapshot.bytes += entry.weight();
        if YDoc::snapshot_due(self.since_snapshot) {
            fx.effects.writes.push(Write::SnapshotBytes { version: self.version, bytes: self.doc.encode_state() });
            self.since_snapshot = Default::default();
        }
        // The room's own log keeps the entry without its update: Yjs sockets never replay from
        // it (a client's step 1 is answered from the document), and memory stays flat.
        let light = LogEntry { ops: raw_json(&""), ..LogEntry::clone(&entry) };
        self.log.push(Rc::new(light), ());
        Ok(())
    }

    /// Applies the awareness entries `me` may set (its own clients, within the bounds) and
    /// relays those to the others.
    fn y_awareness(&mut self, fx: &mut YEffects, me: &Session, update: AwarenessUpdate) {
        let prefix = format!("{}|", me.session_id);
        let mut accepted = HashMap::new();
        for (client, entry) in update.clients {
            let k = key(&me.session_id, client.get());
            let suffix = format!("|{}", client.get());
            let foreign = self.awareness.keys().any(|o| o.ends_with(&suffix) && !o.starts_with(&prefix));
            let mine = self.awareness.keys().filter(|o| o.starts_with(&prefix)).count();
            let current = self.awareness.get(&k).and_then(|a| serde_json::from_str::<Stored>(a.state.get()).ok());
            let removal = &*entry.json == "null";
            let fresh = match &current {
                Some(c) => c.clock < entry.clock || (c.clock == entry.clock && removal),
                None => !removal && mine < limits::YJS_AWARENESS_CLIENTS_PER_SOCKET,
            };
            if foreign || !fresh || entry.json.len() > limits::YJS_MAX_AWARENESS_STATE_BYTES {
                continue;
            }
            if removal {
                self.awareness.remove(&k);
                fx.effects.writes.push(Write::DeleteAwareness(k));
            } else {
                let stored = Stored { clock: entry.clock, json: entry.json.to_string() };
                let state: Box<RawValue> = raw_json(&stored);
                let a = AwarenessEntry { client_id: client.get().to_string(), user_id: me.user_id.clone(), state };
                self.awareness.insert(k.clone(), a.clone());
                fx.effects.writes.push(Write::PutAwareness(k, a));
            }
            accepted.insert(client, entry);
        }
        if !accepted.is_empty() {
            fx.to_others.push(awareness_message(accepted));
        }
    }

    /// A socket closed: its awareness clients (only those) are removed, and the removal is
    /// broadcast to the others.
    pub fn y_disconnect(&mut self, me: &Session) -> YEffects {
        let prefix = format!("{}|", me.session_id);
        let mut fx = YEffects::default();
        let keys: Vec<String> = self.awareness.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
        let mut removed = HashMap::new();
        for k in keys {
            if let Some(a) = self.awareness.remove(&k) {
                let clock = serde_json::from_str::<Stored>(a.state.get()).map_or(0, |s| s.clock);
                if let Ok(client) = a.client_id.parse::<u64>() {
                    removed.insert(ClientID::new(client), AwarenessUpdateEntry { clock: clock.saturating_add(1), json: Arc::from("null") });
                }
            }
            fx.effects.writes.push(Write::DeleteAwareness(k));
        }
        if !removed.is_empty() {
            fx.to_others.push(awareness_message(removed));
        }
        fx
    }

    /// Every current awareness state.
    fn awareness_states(&self) -> HashMap<ClientID, AwarenessUpdateEntry> {
        let mut out = HashMap::new();
        for a in self.awareness.values() {
            let (Ok(s), Ok(client)) = (serde_json::from_str::<Stored>(a.state.get()), a.client_id.parse::<u64>()) else { continue };
            out.insert(ClientID::new(client), AwarenessUpdateEntry { clock: s.clock, json: Arc::from(s.json) });
        }
        out
    }

    /// How many awareness clients the room holds.
    pub fn awareness_clients(&self) -> usize {
        self.awareness.len()
    }

    /// The state vector and the whole document (v1 encodings), for REST reads.
    pub fn y_state(&self) -> (Vec<u8>, Vec<u8>) {
        (yrs::updates::encoder::Encode::encode_v1(&self.doc.state_vector()), self.doc.encode_state())
    }

    pub fn y_text(&self, name: &str) -> String {
        self.doc.text_of(name)
    }
}

/// The messages of one frame, or None when any is malformed or cut short (the reader stops
/// quietly at a cut, so the decoded messages must account for every byte).
fn decode_frame(frame: &[u8]) -> Option<Vec<Message>> {
    let mut decoder = DecoderV1::new(Cursor::new(frame));
    let messages: Vec<Message> = MessageReader::new(&mut decoder).collect::<Result<_, _>>().ok()?;
    let used: usize = messages.iter().map(|m| m.encode_v1().len()).sum();
    (used == frame.len() && !messages.is_empty()).then_some(messages)
}

impl YEffects {
    /// Every frame the other sockets get from this event alone: its updates, then `to_others`.
    pub fn relays(&self) -> Vec<Vec<u8>> {
        let updates: Vec<&[u8]> = self.updates.iter().map(|u| u.as_slice()).collect();
        relay_frames(&updates).into_iter().chain(self.to_others.iter().cloned()).collect()
    }
}

/// The relay of effective updates committed together (§9): one sync update message holding
/// them all, so a socket gets one frame and its client applies one transaction per commit. Two
/// effective updates never hold the same item, so their merge is exact; were it to fail, each
/// goes as its own message.
pub fn relay_frames(updates: &[&[u8]]) -> Vec<Vec<u8>> {
    match updates {
        [] => Vec::new(),
        [one] => vec![sync_update(one.to_vec())],
        many => match yrs::merge_updates_v1(many.iter()) {
            Ok(merged) => vec![sync_update(merged)],
            Err(_) => many.iter().map(|u| sync_update(u.to_vec())).collect(),
        },
    }
}

/// Sync step 1 of a document with state vector `sv` (tests and clients).
pub fn sync_step1(sv: &yrs::StateVector) -> Vec<u8> {
    encode(Message::Sync(SyncMessage::SyncStep1(sv.clone())))
}

/// A sync update message carrying `update`.
pub fn sync_update(update: Vec<u8>) -> Vec<u8> {
    encode(Message::Sync(SyncMessage::Update(update)))
}

/// Whether `D` is the Yjs kind (the host branches once per room).
pub fn is_yjs<D: Document>() -> bool {
    D::KIND == crate::protocol::DocKind::Yjs
}
