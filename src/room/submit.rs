//! One operation submit, end to end: validate, dedupe, then the document kind's own step
//! (transform and apply text, or check and count engagement), ack and broadcast.
//! The WebSocket and HTTP paths both come through [`Room::submit`].

use serde_json::{json, Map, Value};

use super::{ClientRecord, Effects, LogEntry, Lookup, Room, Write};
use crate::limits;
use crate::ot::canvas::{CanvasOp, StrokeChange, Writer};
use crate::ot::engagement::Modify;
use crate::ot::parse_text_primitives;
use crate::ot::text::{transform, TextOp, TextPrimitive};
use crate::protocol::{opt_u64, parse_client_id, Code, DocKind, Failure, Outgoing};

/// Who submits: the token's user and what they may do here.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: String,
    pub name: String,
    pub can_write: bool,
    /// Service tokens may also moderate (remove others' comments).
    pub is_service: bool,
}

/// The kind-specific body of an operation.
#[derive(Clone, Debug, PartialEq)]
pub enum OpBody {
    Text(Vec<TextPrimitive>),
    Canvas(Vec<CanvasOp>),
    Modify(Modify),
}

/// A parsed `operation` payload.
#[derive(Clone, Debug, PartialEq)]
pub struct OpRequest {
    pub document_id: Option<String>,
    pub client_id: String,
    /// Absent only on HTTP: the server then takes the client's next seq.
    pub seq: Option<u64>,
    /// Absent on HTTP (and for posts, whose ops need no transform): the current version.
    pub version: Option<u64>,
    pub timestamp: Option<u64>,
    pub body: OpBody,
}

impl OpRequest {
    /// Parses an operation object for a document of `kind`. `socket_client_id` is the
    /// connecting client's id on the WebSocket path, where `seq` (and for text `version`) is required.
    pub fn parse(op: &Map<String, Value>, socket_client_id: Option<&str>, kind: DocKind) -> Result<OpRequest, Failure> {
        let document_id = match op.get("document_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(Failure::bad("document_id must be a string")),
        };
        let client_id = match (op.get("client_id"), socket_client_id) {
            (Some(v), socket) if !v.is_null() => {
                let id = parse_client_id(v)?;
                if socket.is_some_and(|s| s != id) {
                    return Err(Failure::bad("client_id differs from the one this socket connected with"));
                }
                id
            }
            (_, Some(socket)) => socket.to_string(),
            (_, None) => return Err(Failure::bad("client_id is required")),
        };
        let seq = opt_u64(op, "seq")?;
        let version = opt_u64(op, "version")?;
        if socket_client_id.is_some() {
            if seq.is_none() {
                return Err(Failure::bad("seq is required"));
            }
            if version.is_none() && kind == DocKind::Text {
                return Err(Failure::bad("version is required"));
            }
        }
        if seq == Some(0) {
            return Err(Failure::bad("seq starts at 1"));
        }
        let timestamp = opt_u64(op, "timestamp")?;
        let body = match kind {
            DocKind::Text => OpBody::Text(parse_text_primitives(op)?),
            DocKind::Engagement => OpBody::Modify(Modify::parse(op)?),
            DocKind::Canvas => OpBody::Canvas(CanvasOp::parse(op)?),
        };
        Ok(OpRequest { document_id, client_id, seq, version, timestamp, body })
    }
}

/// The outcome of a submit: the ack payload (also the HTTP response body) and the effects.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub ack: Value,
    pub effects: Effects,
}

/// What the kind-specific step decided.
pub(super) enum Step {
    /// Nothing to apply; the seq is consumed.
    Noop(&'static str),
    Applied {
        ops: Value,
        /// The text traversal as applied, cached in the log for later transforms.
        traversal: Option<TextOp>,
        transformed: bool,
        /// Extra writes (per-user state, notifications) and messages to everyone.
        writes: Vec<Write>,
        to_all: Vec<Outgoing>,
    },
}

impl Room {
    pub fn submit(&mut self, actor: &Actor, req: OpRequest, now: u64, lookup: &dyn Lookup) -> Result<Submitted, Failure> {
        if req.document_id.as_deref().is_some_and(|d| d != self.document_id) {
            return Err(Failure::new(Code::InvalidOperation, "document_id is not this socket's document"));
        }
        if !actor.can_write {
            return Err(Failure::new(Code::Forbidden, "no write grant for this document"));
        }
        let record = self.client_record(&req.client_id, lookup);
        let seq = req.seq.unwrap_or(record.last_seq.saturating_add(1));
        if seq <= record.last_seq {
            return Ok(self.duplicate(&req.client_id, seq, &record));
        }
        if seq > record.last_seq.saturating_add(1) {
            return Err(Failure::new(
                Code::SeqGap,
                format!("seq {seq} skips ahead: the last applied seq of this client is {}", record.last_seq),
            ));
        }
        let base = req.version.unwrap_or(self.version);
        if base > self.version {
            return Err(Failure::new(
                Code::VersionAhead,
                format!("version {base} is ahead of the document (version {})", self.version),
            ));
        }
        let original_position = match &req.body {
            OpBody::Text(prims) => prims.first().map(TextPrimitive::position),
            OpBody::Canvas(_) | OpBody::Modify(_) => None,
        };
        let step = match &req.body {
            OpBody::Text(prims) => self.text_step(&req.client_id, base, prims)?,
            OpBody::Canvas(ops) => self.canvas_step(&req.client_id, base, ops, req.timestamp.unwrap_or(now))?,
            OpBody::Modify(m) => self.engagement_step(actor, m, &format!("{}:{seq}", req.client_id), lookup)?,
        };
        let (ops, traversal, transformed, extra_writes, to_all) = match step {
            Step::Noop(reason) => {
                let mut ack = self.ack_payload(&req.client_id, seq, self.version, now, "noop", json!([]), original_position, None, base < self.version);
                ack["reason"] = json!(reason);
                let effects = self.record_client(&req.client_id, seq, &ack);
                return Ok(Submitted { ack, effects });
            }
            Step::Applied { ops, traversal, transformed, writes, to_all } => (ops, traversal, transformed, writes, to_all),
        };

        self.version += 1;
        let entry = LogEntry {
            version: self.version,
            client_id: req.client_id.clone(),
            user_id: actor.user_id.clone(),
            seq,
            timestamp: req.timestamp.unwrap_or(now),
            server_timestamp: now,
            base_version: base,
            ops,
            original_position,
        };
        let status = if transformed { "transformed" } else { "accepted" };
        let ack = self.ack_payload(
            &req.client_id,
            seq,
            self.version,
            now,
            status,
            entry.ops.clone(),
            original_position,
            entry.transformed_position(),
            transformed,
        );
        let mut effects = Effects { writes: vec![Write::AppendOp(entry.clone())], ..Effects::default() };
        effects.writes.extend(extra_writes);
        effects.to_others.push(Outgoing::new("operation", entry.broadcast_payload(&self.document_id)));
        effects.writes.extend(self.record_client(&req.client_id, seq, &ack).writes);
        // Posts snapshot their small counters on every op and canvases keep their strokes in rows,
        // so both are current with every op; text snapshots every SNAPSHOT_EVERY_OPS versions.
        if self.kind != DocKind::Text || self.version - self.snapshot_version >= limits::SNAPSHOT_EVERY_OPS {
            self.snapshot_version = self.version;
            let snapshot = match self.kind {
                DocKind::Text => self.content(),
                DocKind::Engagement => json!(self.counts).to_string(),
                DocKind::Canvas => String::new(),
            };
            effects.writes.push(Write::Snapshot { version: self.version, content: snapshot });
        }
        self.log.push_back((entry, traversal));
        self.trim_log();
        effects.to_sender.extend(to_all.iter().cloned());
        effects.to_others.extend(to_all);
        Ok(Submitted { ack, effects })
    }

    /// Transforms a text op over everything accepted after `base`, checks the size limit, applies it.
    fn text_step(&mut self, client_id: &str, base: u64, prims: &[TextPrimitive]) -> Result<Step, Failure> {
        if base < self.oldest_replayable() {
            return Err(Failure::new(
                Code::VersionTooOld,
                format!("operations after version {base} are no longer held; sync and rebase"),
            ));
        }
        if prims.is_empty() {
            return Ok(Step::Noop("the operation is empty"));
        }
        let concurrent: Vec<&(LogEntry, Option<TextOp>)> = self.log.iter().filter(|(e, _)| e.version > base).collect();
        let base_len = concurrent
            .iter()
            .fold(self.doc.len_chars() as isize, |len, (_, op)| len - op.as_ref().map_or(0, TextOp::len_delta)) as usize;
        let mut op = TextOp::from_primitives(prims, base_len).map_err(|e| Failure::new(Code::InvalidOperation, e.to_string()))?;
        for (entry, other) in &concurrent {
            if let Some(other) = other {
                let mine_first = client_id.as_bytes() < entry.client_id.as_bytes();
                op = transform(&op, other, mine_first);
            }
        }
        if op.is_noop() {
            return Ok(Step::Noop("the operation was transformed into nothing by concurrent edits"));
        }
        // Transforms preserve lengths; if that ever failed, refuse rather than let the rope panic.
        if op.base_len() > self.doc.len_chars() {
            return Err(Failure::new(Code::Internal, "transformed operation does not fit the document"));
        }
        let new_bytes = self.doc.len_bytes() + op.inserted_bytes() - op.deleted_bytes(&self.doc);
        if new_bytes > limits::MAX_TEXT_BYTES {
            return Err(Failure::new(Code::TooLarge, "the document would exceed 1 MiB of text"));
        }
        op.apply(&mut self.doc);
        let ops = json!(op.to_primitives());
        Ok(Step::Applied { ops, traversal: Some(op), transformed: !concurrent.is_empty(), writes: vec![], to_all: vec![] })
    }

    /// Applies canvas primitives with the per-stroke rules; nothing to transform.
    fn canvas_step(&mut self, client_id: &str, base: u64, ops: &[CanvasOp], timestamp: u64) -> Result<Step, Failure> {
        let writer = Writer { base_version: base, version: self.version + 1, timestamp, client_id };
        let (applied, changes) = self.canvas.apply(ops, &writer)?;
        if applied.is_empty() {
            return Ok(Step::Noop("nothing to do: the strokes are gone, or a later concurrent update won"));
        }
        let writes = changes
            .into_iter()
            .map(|c| match c {
                StrokeChange::Put(id, s) => Write::PutStroke(id, s),
                StrokeChange::Remove(id) => Write::RemoveStroke(id),
                StrokeChange::Clear => Write::ClearStrokes,
            })
            .collect();
        let ops = Value::Array(applied.iter().map(CanvasOp::to_json).collect());
        Ok(Step::Applied { ops, traversal: None, transformed: base < self.version, writes, to_all: vec![] })
    }

    fn client_record(&mut self, client_id: &str, lookup: &dyn Lookup) -> ClientRecord {
        if let Some(r) = self.clients.get(client_id) {
            return r.clone();
        }
        let record = lookup.client(client_id).unwrap_or(ClientRecord { last_seq: 0, last_ack: Value::Null });
        self.clients.insert(client_id.to_string(), record.clone());
        record
    }

    fn record_client(&mut self, client_id: &str, seq: u64, ack: &Value) -> Effects {
        let record = ClientRecord { last_seq: seq, last_ack: ack.clone() };
        self.clients.insert(client_id.to_string(), record.clone());
        Effects { writes: vec![Write::PutClient(client_id.to_string(), record)], ..Effects::default() }
    }

    /// A (client_id, seq) seen before: repeat its original ack, apply nothing.
    fn duplicate(&self, client_id: &str, seq: u64, record: &ClientRecord) -> Submitted {
        let mut ack = if seq == record.last_seq && record.last_ack.is_object() {
            record.last_ack.clone()
        } else if let Some((e, _)) = self.log.iter().find(|(e, _)| e.client_id == client_id && e.seq == seq) {
            let transformed = e.base_version + 1 < e.version;
            self.ack_payload(client_id, seq, e.version, e.server_timestamp, "", e.ops.clone(), e.original_position, e.transformed_position(), transformed)
        } else {
            // Applied long ago and no longer held: its exact ack is gone, the fact is not.
            self.ack_payload(client_id, seq, self.version, 0, "", json!([]), None, None, false)
        };
        ack["status"] = json!("duplicate");
        ack["reason"] = json!("this (client_id, seq) was already applied");
        Submitted { ack, effects: Effects::default() }
    }

    #[allow(clippy::too_many_arguments)]
    fn ack_payload(
        &self,
        client_id: &str,
        seq: u64,
        version: u64,
        now: u64,
        status: &str,
        ops: Value,
        original_position: Option<usize>,
        transformed_position: Option<usize>,
        transform_needed: bool,
    ) -> Value {
        let mut ack = json!({
            "document_id": self.document_id,
            "client_id": client_id,
            "seq": seq,
            "operation_id": format!("{client_id}:{seq}"),
            "version": version,
            "server_timestamp": now,
            "status": status,
            "transform_needed": transform_needed,
            "ops": ops,
            "original_position": original_position,
            "transformed_position": transformed_position,
            "reason": Value::Null,
        });
        if self.kind == DocKind::Engagement {
            ack["counts"] = json!(self.counts);
        }
        ack
    }
}
