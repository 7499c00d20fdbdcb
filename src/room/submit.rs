//! One operation submit, end to end: validate, dedupe, transform, apply, ack and broadcast.
//! The WebSocket and HTTP paths both come through [`Room::submit`].

use serde_json::{json, Map, Value};

use super::{ClientRecord, Effects, LogEntry, Room, Write};
use crate::limits;
use crate::ot::parse_text_primitives;
use crate::ot::text::{transform, TextOp, TextPrimitive};
use crate::protocol::{opt_u64, parse_client_id, Code, Failure, Outgoing};

/// Who submits: the token's user and whether they may write this document.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: String,
    pub can_write: bool,
}

/// A parsed `operation` payload.
#[derive(Clone, Debug, PartialEq)]
pub struct OpRequest {
    pub document_id: Option<String>,
    pub client_id: String,
    /// Absent only on HTTP: the server then takes the client's next seq.
    pub seq: Option<u64>,
    /// Absent only on HTTP: the op then applies to the current version.
    pub version: Option<u64>,
    pub timestamp: Option<u64>,
    pub prims: Vec<TextPrimitive>,
}

impl OpRequest {
    /// Parses an operation object. `socket_client_id` is the connecting client's id on the
    /// WebSocket path, where `seq` and `version` are required.
    pub fn parse(op: &Map<String, Value>, socket_client_id: Option<&str>) -> Result<OpRequest, Failure> {
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
            if version.is_none() {
                return Err(Failure::bad("version is required"));
            }
        }
        if seq == Some(0) {
            return Err(Failure::bad("seq starts at 1"));
        }
        let timestamp = opt_u64(op, "timestamp")?;
        let prims = parse_text_primitives(op)?;
        Ok(OpRequest { document_id, client_id, seq, version, timestamp, prims })
    }
}

/// The outcome of a submit: the ack payload (also the HTTP response body) and the effects.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub ack: Value,
    pub effects: Effects,
}

impl Room {
    pub fn submit(&mut self, actor: &Actor, req: OpRequest, now: u64) -> Result<Submitted, Failure> {
        if req.document_id.as_deref().is_some_and(|d| d != self.document_id) {
            return Err(Failure::new(Code::InvalidOperation, "document_id is not this socket's document"));
        }
        if !actor.can_write {
            return Err(Failure::new(Code::Forbidden, "no write grant for this document"));
        }
        let record = match self.clients.get(&req.client_id) {
            Some(r) => r.clone(),
            None if self.clients_complete => ClientRecord { last_seq: 0, last_ack: Value::Null },
            None => return Err(Failure::new(Code::Internal, "client record was not loaded")),
        };
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
        if base < self.oldest_replayable() {
            return Err(Failure::new(
                Code::VersionTooOld,
                format!("operations after version {base} are no longer held; sync and rebase"),
            ));
        }

        let concurrent: Vec<&(LogEntry, TextOp)> = self.log.iter().filter(|(e, _)| e.version > base).collect();
        let base_len = concurrent
            .iter()
            .fold(self.doc.len_chars() as isize, |len, (_, op)| len - op.len_delta()) as usize;
        let mut op = TextOp::from_primitives(&req.prims, base_len)
            .map_err(|e| Failure::new(Code::InvalidOperation, e.to_string()))?;
        for (entry, other) in &concurrent {
            let mine_first = req.client_id.as_bytes() < entry.client_id.as_bytes();
            op = transform(&op, other, mine_first);
        }
        let transformed = !concurrent.is_empty();
        let original_position = req.prims.first().map(TextPrimitive::position);

        if op.is_noop() {
            let ack = self.ack_payload(&req.client_id, seq, self.version, now, "noop", &[], original_position, None, transformed);
            let mut ack = ack;
            ack["reason"] = json!("the operation was transformed into nothing by concurrent edits");
            let effects = self.record_client(&req.client_id, seq, &ack);
            return Ok(Submitted { ack, effects });
        }

        let new_bytes = self.doc.len_bytes() + op.inserted_bytes() - op.deleted_bytes(&self.doc);
        if new_bytes > limits::MAX_TEXT_BYTES {
            return Err(Failure::new(Code::TooLarge, "the document would exceed 1 MiB of text"));
        }

        op.apply(&mut self.doc);
        self.version += 1;
        let entry = LogEntry {
            version: self.version,
            client_id: req.client_id.clone(),
            user_id: actor.user_id.clone(),
            seq,
            timestamp: req.timestamp.unwrap_or(now),
            server_timestamp: now,
            base_version: base,
            ops: op.to_primitives(),
            original_position,
        };
        let status = if transformed { "transformed" } else { "accepted" };
        let ack = self.ack_payload(
            &req.client_id,
            seq,
            self.version,
            now,
            status,
            &entry.ops,
            original_position,
            entry.transformed_position(),
            transformed,
        );
        let mut effects = Effects { writes: vec![Write::AppendOp(entry.clone())], ..Effects::default() };
        effects.to_others.push(Outgoing::new("operation", entry.broadcast_payload(&self.document_id)));
        effects.writes.extend(self.record_client(&req.client_id, seq, &ack).writes);
        if self.version - self.snapshot_version >= limits::SNAPSHOT_EVERY_OPS {
            self.snapshot_version = self.version;
            effects.writes.push(Write::Snapshot { version: self.version, content: self.content() });
        }
        self.log.push_back((entry, op));
        self.trim_log();
        Ok(Submitted { ack, effects })
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
            self.ack_payload(client_id, seq, e.version, e.server_timestamp, "", &e.ops, e.original_position, e.transformed_position(), transformed)
        } else {
            // Applied long ago and no longer held: its exact ack is gone, the fact is not.
            self.ack_payload(client_id, seq, self.version, 0, "", &[], None, None, false)
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
        ops: &[TextPrimitive],
        original_position: Option<usize>,
        transformed_position: Option<usize>,
        transform_needed: bool,
    ) -> Value {
        json!({
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
        })
    }
}
