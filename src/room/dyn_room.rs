//! A room of any kind behind one object-safe interface, for the document's Durable Object: it
//! picks the kind from the document id once, when it restores the room, and never branches on it
//! again.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Room, Submitted};
use crate::model::{Actor, Effects, Lookup, OpRequest, SavedRoom, Session};
use crate::doc::{CanvasDoc, Document, PostDoc, TextDoc, YDoc};
use crate::protocol::{DocKind, Failure};

pub trait DynRoom {
    fn document_id(&self) -> &str;
    fn kind(&self) -> DocKind;
    fn version(&self) -> u64;
    fn retained_ops(&self) -> usize;
    fn retained_bytes(&self) -> usize;
    fn updated_at(&self) -> u64;
    fn owner(&self) -> Option<&str>;
    fn set_owner(&mut self, owner: Option<String>);
    /// The state field's name and its JSON text.
    fn state(&self) -> (&'static str, String);
    fn summary(&self) -> Option<Box<RawValue>>;
    fn text(&self) -> Option<String>;

    fn on_frame(&mut self, me: &Session, text: &str, now: u64, present: &[Session], lookup: &dyn Lookup) -> Effects;
    fn admit(&mut self, me: &Session, now: u64, lookup: &dyn Lookup) -> Result<Effects, Failure>;
    fn connect(&self, me: &Session, since: Option<u64>, present: &[Session]) -> Effects;
    /// Before a connect with `since`: the older operations its replay needs, read back.
    fn ensure_log(&mut self, since: u64, lookup: &dyn Lookup) -> Result<(), Failure>;
    fn disconnect(&mut self, me: &Session, remaining: &[Session]) -> Effects;
    /// The HTTP path: parses an `operation` object and submits it.
    fn submit_json(&mut self, actor: &Actor, op: &Map<String, Value>, now: u64, lookup: &dyn Lookup) -> Result<Submitted, Failure>;
    /// Submits an operation the server built (a text diff) as `client_id`'s next seq.
    fn submit_text(&mut self, actor: &Actor, client_id: &str, version: u64, prims: Vec<crate::ot::text::TextPrimitive>, now: u64, lookup: &dyn Lookup) -> Result<Submitted, Failure>;
    /// The main backend's import into a post (§6.3), as one operation of `client_id`.
    fn submit_import(&mut self, actor: &Actor, client_id: &str, batch: crate::post_import::ImportBatch, now: u64, lookup: &dyn Lookup) -> Result<Submitted, Failure>;
    fn expire_typing(&mut self, now: u64) -> Effects;
    fn next_typing_deadline(&self) -> Option<u64>;
    /// Coalesced awareness (§8): relays at most every 50 ms per socket, storage at most once a
    /// second. Turn on only where the host honours `FollowUps::awareness_due`.
    fn coalesce_awareness(&mut self, on: bool);
    /// Due awareness relays and checkpoint, at the time `FollowUps::awareness_due` named.
    fn tick_awareness(&mut self, now: u64) -> Effects;
    /// The canvas room behind this one, for what only canvases do (streaming stroke data).
    fn as_canvas(&self) -> Option<&super::CanvasRoom>;
    /// The Yjs room behind this one (binary frames, §7 [1.2]).
    fn as_yjs(&mut self) -> Option<&mut super::YRoom>;
}

impl<D: Document + 'static> DynRoom for Room<D>
where
    D::Op: 'static,
    D::Cached: 'static,
{
    fn document_id(&self) -> &str {
        &self.document_id
    }
    fn kind(&self) -> DocKind {
        D::KIND
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn retained_ops(&self) -> usize {
        Room::retained_ops(self)
    }
    fn retained_bytes(&self) -> usize {
        Room::retained_bytes(self)
    }
    fn updated_at(&self) -> u64 {
        Room::updated_at(self)
    }
    fn owner(&self) -> Option<&str> {
        Room::owner(self)
    }
    fn set_owner(&mut self, owner: Option<String>) {
        Room::set_owner(self, owner)
    }
    fn state(&self) -> (&'static str, String) {
        (D::STATE_FIELD, self.state_json())
    }
    fn summary(&self) -> Option<Box<RawValue>> {
        self.doc.summary(&self.document_id, self.version)
    }
    fn text(&self) -> Option<String> {
        self.doc.text()
    }
    fn on_frame(&mut self, me: &Session, text: &str, now: u64, present: &[Session], lookup: &dyn Lookup) -> Effects {
        Room::on_frame(self, me, text, now, present, lookup)
    }
    fn admit(&mut self, me: &Session, now: u64, lookup: &dyn Lookup) -> Result<Effects, Failure> {
        Room::admit(self, me, now, lookup)
    }
    fn connect(&self, me: &Session, since: Option<u64>, present: &[Session]) -> Effects {
        Room::connect(self, me, since, present)
    }
    fn ensure_log(&mut self, since: u64, lookup: &dyn Lookup) -> Result<(), Failure> {
        Room::ensure_log(self, since, lookup)
    }
    fn disconnect(&mut self, me: &Session, remaining: &[Session]) -> Effects {
        Room::disconnect(self, me, remaining)
    }
    fn submit_json(&mut self, actor: &Actor, op: &Map<String, Value>, now: u64, lookup: &dyn Lookup) -> Result<Submitted, Failure> {
        let req = OpRequest::parse::<D>(op, None)?;
        self.submit(actor, req, now, lookup)
    }
    fn submit_text(&mut self, actor: &Actor, client_id: &str, version: u64, prims: Vec<crate::ot::text::TextPrimitive>, now: u64, lookup: &dyn Lookup) -> Result<Submitted, Failure> {
        let op: Map<String, Value> = serde_json::json!({"ops": prims}).as_object().cloned().unwrap_or_default();
        let body = D::parse_op(&op)?;
        let req = OpRequest { document_id: None, client_id: client_id.to_string(), seq: None, version: Some(version), timestamp: None, body };
        self.submit(actor, req, now, lookup)
    }
    fn submit_import(&mut self, actor: &Actor, client_id: &str, batch: crate::post_import::ImportBatch, now: u64, lookup: &dyn Lookup) -> Result<Submitted, Failure> {
        let body = D::import_op().ok_or_else(|| Failure::bad("only posts take an engagement import"))?;
        self.doc_mut().stage_import(batch)?;
        let req = OpRequest { document_id: None, client_id: client_id.to_string(), seq: None, version: None, timestamp: None, body };
        self.submit(actor, req, now, lookup)
    }
    fn expire_typing(&mut self, now: u64) -> Effects {
        Room::expire_typing(self, now)
    }
    fn next_typing_deadline(&self) -> Option<u64> {
        Room::next_typing_deadline(self)
    }
    fn coalesce_awareness(&mut self, on: bool) {
        Room::coalesce_awareness(self, on)
    }
    fn tick_awareness(&mut self, now: u64) -> Effects {
        Room::tick_awareness(self, now)
    }
    fn as_canvas(&self) -> Option<&super::CanvasRoom> {
        (self as &dyn std::any::Any).downcast_ref()
    }
    fn as_yjs(&mut self) -> Option<&mut super::YRoom> {
        (self as &mut dyn std::any::Any).downcast_mut()
    }
}

/// Restores the room of `document_id`, of the kind its prefix names.
pub fn restore_room(document_id: &str, stored: SavedRoom) -> Result<Box<dyn DynRoom>, String> {
    Ok(match DocKind::of(document_id) {
        DocKind::Text => Box::new(Room::<TextDoc>::restore(document_id, stored)?),
        DocKind::Canvas => Box::new(Room::<CanvasDoc>::restore(document_id, stored)?),
        DocKind::Engagement => Box::new(Room::<PostDoc>::restore(document_id, stored)?),
        DocKind::Yjs => Box::new(Room::<YDoc>::restore(document_id, stored)?),
    })
}
