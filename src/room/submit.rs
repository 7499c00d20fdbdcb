//! One operation submit, end to end: validate, check who owns the client_id, dedupe, bound the
//! version, let the document kind step, then version, log, ack and broadcast. The WebSocket and
//! HTTP paths both come through [`Room::submit`].

use std::borrow::Cow;
use std::rc::Rc;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Room;
use crate::doc::{Applied, Document, Step, StepCtx};
use crate::model::{Actor, ClientRecord, Effects, LogEntry, Lookup, OpRequest, Write};
use crate::protocol::{opt_u64, parse_client_id, Code, Failure, Outgoing};

impl<O> OpRequest<O> {
    /// Parses an operation object for a document of kind `D`. `socket_client_id` is the
    /// connecting client's id on the WebSocket path, where `seq` (and for text `version`) is required.
    pub fn parse<D: Document<Op = O>>(op: &Map<String, Value>, socket_client_id: Option<&str>) -> Result<Self, Failure> {
        let op = crate::plugin_shapes::normalize_operation(op);
        let op = op.as_ref();
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
        // With neither seq nor version (the shipped plugin, §4.7) a socket's op is taken like a
        // REST one: the client's next seq, against the current version.
        if socket_client_id.is_some() && (seq.is_some() || version.is_some()) {
            if seq.is_none() {
                return Err(Failure::bad("seq is required"));
            }
            if version.is_none() && D::KIND == crate::protocol::DocKind::Text {
                return Err(Failure::bad("version is required"));
            }
        }
        if seq == Some(0) {
            return Err(Failure::bad("seq starts at 1"));
        }
        let timestamp = opt_u64(op, "timestamp")?;
        Ok(OpRequest { document_id, client_id, seq, version, timestamp, body: D::parse_op(op)? })
    }
}

/// The outcome of a submit: the ack (also the HTTP response body), serialised once, and the effects.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// The `operation_ack` message (its payload is the HTTP response body).
    pub ack: Outgoing,
    pub effects: Effects,
}

impl Submitted {
    /// The ack parsed back (tests, and the REST routes that read a field).
    pub fn ack(&self) -> Value {
        self.ack.payload()
    }
}

/// The `operation_ack` payload (§3.3), also the body of `POST /operations/apply`.
#[derive(Serialize)]
struct Ack<'a> {
    document_id: &'a str,
    client_id: &'a str,
    seq: u64,
    operation_id: String,
    version: u64,
    server_timestamp: u64,
    status: &'static str,
    transform_needed: bool,
    ops: &'a RawValue,
    original_position: Option<usize>,
    transformed_position: Option<usize>,
    reason: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<&'a RawValue>,
}

fn empty_ops() -> Box<RawValue> {
    crate::doc::raw_json(&[(); 0])
}

/// A client's place in its sequence.
#[derive(Clone, Copy)]
struct Progress {
    last_seq: u64,
    last_version: Option<u64>,
}

fn taken(client_id: &str) -> Failure {
    Failure::new(Code::ClientIdTaken, format!("client_id {client_id:?} belongs to another user in this document"))
}

/// Who a stored client record leaves a client_id to.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    Mine,
    /// Unclaimed, claimed by a connect only (rows from before v1.2), or lapsed.
    Free,
    Taken,
}

/// The claim `r` makes on its client_id for anyone but `user_id` at `now` (§5.1 [1.2]). Rows
/// from before claims had a time (`last_used` 0) never lapse; the table's bound drops them first.
pub fn claim_of(r: &ClientRecord, user_id: &str, now: u64) -> Claim {
    if r.user_id == user_id {
        return Claim::Mine;
    }
    let lapsed = r.last_used > 0 && now.saturating_sub(r.last_used) > crate::limits::CLIENT_CLAIM_LAPSE_MS;
    if r.user_id.is_empty() || r.last_seq == 0 || lapsed {
        Claim::Free
    } else {
        Claim::Taken
    }
}

pub(super) fn read_failed(e: String) -> Failure {
    Failure::new(Code::Internal, format!("storage read failed: {e}"))
}

/// Where a submit stands once its seq and version are checked.
enum Admitted {
    /// Already applied: the original ack is repeated.
    Duplicate(Submitted),
    Fresh { seq: u64, base: u64 },
}

/// What an applied operation is logged with besides the document's own part.
struct Origin<'a> {
    actor: &'a Actor,
    client_id: String,
    seq: u64,
    base: u64,
    timestamp: u64,
    now: u64,
    original_position: Option<usize>,
}

impl<D: Document> Room<D> {
    pub fn submit(&mut self, actor: &Actor, req: OpRequest<D::Op>, now: u64, lookup: &dyn Lookup) -> Result<Submitted, Failure> {
        let (seq, base) = match self.admit_op(actor, &req, now, lookup)? {
            Admitted::Duplicate(done) => return Ok(done),
            Admitted::Fresh { seq, base } => (seq, base),
        };
        let original_position = D::original_position(&req.body);
        let ctx = StepCtx {
            document_id: &self.document_id,
            incarnation: &self.incarnation,
            actor,
            client_id: &req.client_id,
            base,
            version: self.version + 1,
            timestamp: req.timestamp.unwrap_or(now),
            now,
            owner: self.owner.as_deref(),
        };
        let timestamp = ctx.timestamp;
        match self.doc.step(&ctx, req.body, &self.log, lookup)? {
            Step::Noop(reason) => {
                let ack = self.ack(&req.client_id, seq, self.version, now, "noop", &empty_ops(), (original_position, None), base < self.version, Some(reason.into()));
                let write = self.record_client(&req.client_id, &actor.user_id, seq, None, now);
                Ok(Submitted { ack, effects: Effects { writes: vec![write], ..Effects::default() } })
            }
            Step::Applied(applied) => {
                let origin = Origin { actor, client_id: req.client_id, seq, base, timestamp, now, original_position };
                Ok(self.append(origin, applied))
            }
        }
    }

    /// Checks the document, the grant, the client's seq and the version an op was made against.
    fn admit_op(&mut self, actor: &Actor, req: &OpRequest<D::Op>, now: u64, lookup: &dyn Lookup) -> Result<Admitted, Failure> {
        if req.document_id.as_deref().is_some_and(|d| d != self.document_id) {
            return Err(Failure::new(Code::InvalidOperation, "document_id is not this socket's document"));
        }
        if !actor.can_write {
            return Err(Failure::new(Code::Forbidden, "no write grant for this document"));
        }
        let record = self.progress(&req.client_id, &actor.user_id, now, lookup)?;
        let seq = req.seq.unwrap_or(record.last_seq.saturating_add(1));
        if seq <= record.last_seq {
            // Its original ack is in the log if still retained: the version it landed at, or
            // (an older seq) anywhere in what is held.
            let needed = if seq == record.last_seq { record.last_version.map_or(u64::MAX, |v| v.saturating_sub(1)) } else { 0 };
            self.ensure_log(needed, lookup)?;
            return Ok(Admitted::Duplicate(self.duplicate(&req.client_id, seq, &record)));
        }
        if seq > record.last_seq.saturating_add(1) {
            return Err(Failure::new(
                Code::SeqGap,
                format!("seq {seq} skips ahead: the last applied seq of this client is {}", record.last_seq),
            ));
        }
        let base = req.version.unwrap_or(self.version);
        if base > self.version {
            return Err(Failure::new(Code::VersionAhead, format!("version {base} is ahead of the document (version {})", self.version)));
        }
        self.ensure_log(base, lookup)?;
        if base < self.held_from() {
            return Err(Failure::new(
                Code::VersionTooOld,
                format!("operations after version {base} are no longer held; sync and rebase"),
            ));
        }
        Ok(Admitted::Fresh { seq, base })
    }

    /// Versions, logs, acks and broadcasts an operation the document applied.
    fn append(&mut self, o: Origin, applied: Applied<D::Cached>) -> Submitted {
        let Applied { ops, cached, transformed, transformed_position, writes, notifications, summary_changed, to_all, reach } = applied;
        let reason = transformed.then(|| self.transform_reason(o.base).into());
        self.version += 1;
        let entry = Rc::new(LogEntry {
            version: self.version,
            client_id: o.client_id,
            user_id: o.actor.user_id.clone(),
            seq: o.seq,
            timestamp: o.timestamp,
            server_timestamp: o.now,
            base_version: o.base,
            ops,
            original_position: o.original_position,
            transformed_position,
        });
        let status = if transformed { "transformed" } else { "accepted" };
        let positions = (o.original_position, transformed_position);
        let ack = self.ack(&entry.client_id, o.seq, self.version, o.now, status, &entry.ops, positions, transformed, reason);
        let mut effects = Effects::default();
        effects.writes.push(Write::AppendOp(Rc::clone(&entry)));
        effects.writes.extend(writes);
        effects.follow_ups.appended.push(self.version - o.base - 1);
        effects.follow_ups.counts_changed = summary_changed;
        effects.follow_ups.notifications_queued = !notifications.is_empty();
        effects.writes.extend(notifications.into_iter().map(Write::QueueNotification));
        effects.writes.push(self.record_client(&entry.client_id, &o.actor.user_id, o.seq, Some(self.version), o.now));
        let mut broadcast = entry.broadcast("operation", &self.document_id, None);
        broadcast.reach = reach;
        effects.to_others.push(broadcast);
        self.since_snapshot.ops += 1;
        self.since_snapshot.bytes += entry.weight();
        if let Some(content) = self.doc.snapshot(self.since_snapshot) {
            effects.writes.push(Write::Snapshot { version: self.version, content });
            self.since_snapshot = Default::default();
        }
        self.log.push(entry, cached);
        effects.to_sender.extend(to_all.iter().cloned());
        effects.to_others.extend(to_all);
        Submitted { ack, effects }
    }

    /// Where the client is, refusing a client_id that belongs to another user here (§1). A claim
    /// is made by an operation (§5.1 [1.2]) and lapses after 30 days without one: a lapsed claim
    /// of another user, or a row written by a connect before v1.2 (no seq), starts afresh.
    fn progress(&mut self, client_id: &str, user_id: &str, now: u64, lookup: &dyn Lookup) -> Result<Progress, Failure> {
        // `http:{user}` is the id the server itself uses for that user's REST calls.
        if client_id.strip_prefix("http:").is_some_and(|owner| owner != user_id) {
            return Err(taken(client_id));
        }
        let record = match self.clients.get(client_id) {
            Some(r) => r.clone(),
            None => lookup.client(client_id).map_err(read_failed)?.unwrap_or_default(),
        };
        let record = match claim_of(&record, user_id, now) {
            Claim::Mine => record,
            Claim::Free => ClientRecord::default(),
            Claim::Taken => return Err(taken(client_id)),
        };
        let progress = Progress { last_seq: record.last_seq, last_version: record.last_version };
        self.clients.insert(client_id, record);
        Ok(progress)
    }

    /// Whether `me` may use its client_id here; nothing is claimed (a socket that only reads
    /// claims nothing, §5.1 [1.2]).
    pub fn check_client(&mut self, client_id: &str, user_id: &str, now: u64, lookup: &dyn Lookup) -> Result<(), Failure> {
        self.progress(client_id, user_id, now, lookup).map(|_| ())
    }

    fn record_client(&mut self, client_id: &str, user_id: &str, seq: u64, version: Option<u64>, now: u64) -> Write {
        let record = ClientRecord { user_id: user_id.to_string(), last_seq: seq, last_version: version, last_used: now };
        self.clients.insert(client_id, record.clone());
        Write::PutClient(client_id.to_string(), record)
    }

    /// A (client_id, seq) seen before: repeat its original ack, apply nothing.
    fn duplicate(&self, client_id: &str, seq: u64, record: &Progress) -> Submitted {
        let reason = || Some(Cow::Borrowed("this (client_id, seq) was already applied"));
        let held = if seq == record.last_seq {
            record.last_version.and_then(|v| self.log.get(v)).map(|(e, _)| e)
        } else {
            self.log.after(self.oldest_replayable()).map(|(e, _)| e).find(|e| e.client_id == client_id && e.seq == seq)
        };
        let ack = match held.filter(|e| e.client_id == client_id && e.seq == seq) {
            Some(e) => self.ack(
                client_id,
                seq,
                e.version,
                e.server_timestamp,
                "duplicate",
                &e.ops,
                (e.original_position, e.transformed_position),
                e.base_version + 1 < e.version,
                reason(),
            ),
            // A noop, or applied long ago and no longer held: its exact ack is gone, the fact is not.
            None => self.ack(client_id, seq, self.version, 0, "duplicate", &empty_ops(), (None, None), false, reason()),
        };
        Submitted { ack, effects: Effects::default() }
    }

    /// Why an ack is `transformed` (§6.1 [1.2]): how many concurrent operations, by whom (the
    /// first few distinct users, in version order).
    fn transform_reason(&self, base: u64) -> String {
        let mut count = 0usize;
        let mut users: Vec<&str> = Vec::new();
        for (e, _) in self.log.after(base) {
            count += 1;
            if users.len() < 5 && !users.contains(&e.user_id.as_str()) {
                users.push(&e.user_id);
            }
        }
        let noun = if count == 1 { "operation" } else { "operations" };
        let more = if users.len() == 5 { " and others" } else { "" };
        format!("transformed over {count} concurrent {noun} by {}{more}", users.join(", "))
    }

    #[allow(clippy::too_many_arguments)]
    fn ack(
        &self,
        client_id: &str,
        seq: u64,
        version: u64,
        now: u64,
        status: &'static str,
        ops: &RawValue,
        (original_position, transformed_position): (Option<usize>, Option<usize>),
        transform_needed: bool,
        reason: Option<Cow<'static, str>>,
    ) -> Outgoing {
        let counts = self.doc.summary(&self.document_id, self.version);
        let ack = Ack {
            document_id: &self.document_id,
            client_id,
            seq,
            operation_id: format!("{client_id}:{seq}"),
            version,
            server_timestamp: now,
            status,
            transform_needed,
            ops,
            original_position,
            transformed_position,
            reason,
            counts: counts.as_deref(),
        };
        Outgoing::new("operation_ack", &ack)
    }
}


