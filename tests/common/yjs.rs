//! A Yjs client for the native tests, on yrs's own types (not the server's): it edits a
//! `Y.Text`, encodes its edits as updates, and reads what the room sends.
#![allow(dead_code)]

use ropey::Rope;
use sidechain_edge::room::yjs::sync_update;
use sidechain_edge::room::YRoom;
use yrs::encoding::read::Cursor;
use yrs::sync::protocol::MessageReader;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::{Doc, GetString, ReadTxn, Text, Transact, Update};

use super::TextPrimitive;

pub struct YClient {
    pub doc: Doc,
    /// The text as chars, to turn trace positions (code points) into yrs's byte offsets.
    mirror: Rope,
}

impl YClient {
    pub fn new(client_id: u64) -> Self {
        YClient { doc: Doc::with_client_id(client_id), mirror: Rope::new() }
    }

    /// Applies one trace transaction to `Y.Text` "t"; returns its update.
    pub fn edit(&mut self, prims: &[TextPrimitive]) -> Vec<u8> {
        let text = self.doc.get_or_insert_text("t");
        let mut txn = self.doc.transact_mut();
        for p in prims {
            match p {
                TextPrimitive::Insert { position, content } => {
                    let at = self.mirror.char_to_byte(*position) as u32;
                    text.insert(&mut txn, at, content);
                    self.mirror.insert(*position, content);
                }
                TextPrimitive::Delete { position, length } => {
                    let from = self.mirror.char_to_byte(*position);
                    let to = self.mirror.char_to_byte(position + length);
                    text.remove_range(&mut txn, from as u32, (to - from) as u32);
                    self.mirror.remove(*position..position + length);
                }
            }
        }
        txn.encode_update_v1()
    }

    pub fn insert(&mut self, at: usize, s: &str) -> Vec<u8> {
        self.edit(&[TextPrimitive::Insert { position: at, content: s.into() }])
    }

    /// Deletes the first occurrence of `s` in the text; its update.
    pub fn delete_all_of(&mut self, s: &str) -> Vec<u8> {
        let text = self.text();
        let at = text.find(s).expect("the text holds it");
        let position = text[..at].chars().count();
        self.edit(&[TextPrimitive::Delete { position, length: s.chars().count() }])
    }

    pub fn text(&self) -> String {
        let t = self.doc.get_or_insert_text("t");
        t.get_string(&self.doc.transact())
    }

    /// Applies the sync messages of a frame the room sent; returns the auth denials seen.
    pub fn receive(&mut self, frame: &[u8]) -> Vec<String> {
        let mut denials = Vec::new();
        let mut decoder = DecoderV1::new(Cursor::new(frame));
        for m in MessageReader::new(&mut decoder) {
            match m.expect("the room sends valid messages") {
                Message::Sync(SyncMessage::SyncStep2(u)) | Message::Sync(SyncMessage::Update(u)) => {
                    self.doc.transact_mut().apply_update(Update::decode_v1(&u).unwrap()).unwrap();
                    self.mirror = Rope::from_str(&self.text());
                }
                Message::Auth(Some(reason)) => denials.push(reason),
                _ => {}
            }
        }
        denials
    }

    /// Whether this client holds updates that wait for a predecessor it lacks.
    pub fn has_pending(&self) -> bool {
        self.doc.transact().has_missing_updates()
    }

    /// Sync step 1 of this client.
    pub fn step1(&self) -> Vec<u8> {
        sidechain_edge::room::yjs::sync_step1(&self.doc.transact().state_vector())
    }
}

/// The text of the room's `Y.Text` "t".
pub fn room_text(room: &YRoom) -> String {
    room.y_text("t")
}

pub fn update_frame(u: Vec<u8>) -> Vec<u8> {
    sync_update(u)
}
