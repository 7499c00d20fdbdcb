//! Helpers shared by the native tests: a simulated client following the protocol's client rule,
//! and the editing-trace loader.
#![allow(dead_code)]

pub mod reference;
pub mod yjs;

use std::io::Read;
use std::path::PathBuf;

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};
use sidechain_edge::limits;
use sidechain_edge::ot::canvas::Stroke;
use sidechain_edge::ot::canvas_index::StrokeRow;
use sidechain_edge::ot::engagement::{CommentRecord, UserState};
use sidechain_edge::ot::text::TextPrimitive;
use sidechain_edge::model::{ClientRecord, Effects, LogEntry, Lookup, SavedRoom, Session, StoreRead, Write};

pub fn session(n: usize, can_write: bool) -> Session {
    Session {
        session_id: format!("s{n}"),
        client_id: format!("c{n}"),
        user_id: format!("u{n}"),
        name: format!("User {n}"),
        can_write,
    }
}

pub fn op_frame(id: &str, client_id: &str, seq: u64, version: u64, prims: &[TextPrimitive]) -> String {
    json!({"type": "operation", "id": id, "payload": {
        "document_id": "doc", "client_id": client_id, "seq": seq, "version": version, "ops": prims}})
    .to_string()
}

/// What a room's storage holds after its effects, kept the way the object's SQLite keeps it (log
/// rows as JSON text) and read back the way `RoomStore::load` does: every op after the snapshot,
/// older ones within the log's count and byte budgets.
#[derive(Default)]
pub struct MemoryStore {
    pub snapshot_version: u64,
    pub snapshot: String,
    pub incarnation: String,
    pub ops: Vec<(u64, String)>,
    pub clients: HashMap<String, ClientRecord>,
    pub users: HashMap<String, UserState>,
    pub comments: HashMap<String, CommentRecord>,
    /// The strokes table: one row per stroke, its data and index columns.
    pub strokes: BTreeMap<String, Stroke>,
}

impl Lookup for MemoryStore {
    fn client(&self, id: &str) -> StoreRead<ClientRecord> {
        Ok(self.clients.get(id).cloned())
    }
    fn engagement_user(&self, id: &str) -> StoreRead<UserState> {
        Ok(self.users.get(id).cloned())
    }
    fn comment(&self, id: &str) -> StoreRead<CommentRecord> {
        Ok(self.comments.get(id).cloned())
    }
    fn log_entries(&self, after: u64, upto: u64, budget: usize) -> Result<Vec<LogEntry>, String> {
        let mut rows: Vec<&String> = self.ops.iter().filter(|(v, _)| *v > after && *v <= upto).map(|(_, r)| r).collect();
        let mut bytes = 0;
        let fit = rows.iter().rev().take_while(|r| {
            bytes += r.len();
            bytes <= budget
        });
        let keep = fit.count();
        rows.drain(..rows.len() - keep);
        Ok(rows.into_iter().map(|r| serde_json::from_str(r).unwrap()).collect())
    }
    fn strokes(&self, ids: &[&str], each: &mut dyn FnMut(&str, &str)) -> Result<(), String> {
        assert!(ids.len() <= limits::STROKE_READ_IDS, "one read binds at most {} ids", limits::STROKE_READ_IDS);
        for id in ids {
            if let Some(st) = self.strokes.get(*id) {
                each(id, st.data.get());
            }
        }
        Ok(())
    }
}

impl MemoryStore {
    pub fn absorb(&mut self, fx: &Effects) {
        for w in &fx.writes {
            match w {
                Write::AppendOp(e) => self.ops.push((e.version, serde_json::to_string(&**e).unwrap())),
                Write::Snapshot { version, content } => {
                    self.snapshot_version = *version;
                    self.snapshot = content.clone();
                }
                Write::PutClient(id, r) => {
                    self.clients.insert(id.clone(), r.clone());
                }
                Write::PutEngagementUser(id, u) => {
                    self.users.insert(id.clone(), u.clone());
                }
                Write::PutComment(id, c) => {
                    self.comments.insert(id.clone(), c.clone());
                }
                Write::PutStroke(id, st) => {
                    self.strokes.insert(id.clone(), st.clone());
                }
                Write::RemoveStroke(id) => {
                    self.strokes.remove(id);
                }
                Write::ClearStrokes => self.strokes.clear(),
                _ => {}
            }
        }
    }

    pub fn stored(&self) -> SavedRoom {
        let mut bytes = 0;
        let mut rows: Vec<&String> = Vec::new();
        for (version, row) in self.ops.iter().rev().take(limits::LOG_RETAINED_OPS as usize) {
            bytes += row.len();
            if bytes > limits::LOG_RETAINED_BYTES && *version <= self.snapshot_version {
                break;
            }
            rows.push(row);
        }
        let tail: Vec<LogEntry> = rows.into_iter().rev().map(|r| serde_json::from_str(r).unwrap()).collect();
        SavedRoom { stroke_rows: self.stroke_rows(), ..self.stored_without_strokes(tail) }
    }

    /// What `RoomStore::load` gives: the tail after the snapshot, the older retained operations
    /// left in storage for `Lookup::log_entries`.
    pub fn stored_lazily(&self) -> SavedRoom {
        let mut saved = self.stored();
        let retained_after = saved.tail.first().map(|e| e.version - 1).filter(|&v| v < saved.snapshot_version);
        let snapshot_version = saved.snapshot_version;
        saved.tail.retain(|e| e.version > snapshot_version);
        SavedRoom { retained_after, ..saved }
    }

    /// The index rows a canvas wakes from: `SELECT stroke_id, min_x, …, bytes FROM strokes`.
    pub fn stroke_rows(&self) -> Vec<StrokeRow> {
        self.strokes
            .iter()
            .map(|(id, st)| StrokeRow {
                stroke_id: id.clone(),
                bbox: st.bbox,
                version: st.version,
                timestamp: st.timestamp,
                client_id: st.client_id.clone(),
                bytes: st.data.get().len() as u32,
            })
            .collect()
    }

    fn stored_without_strokes(&self, tail: Vec<LogEntry>) -> SavedRoom {
        SavedRoom {
            incarnation: self.incarnation.clone(),
            snapshot_version: self.snapshot_version,
            snapshot: self.snapshot.clone(),
            tail,
            ..SavedRoom::default()
        }
    }
}

/// A client running the protocol's rule: one op in flight, later local edits kept as a pending
/// op, incoming ops transformed against both before they touch the local text. Its transforms
/// come from [`reference`], not from the server's engine.
pub struct SimClient {
    pub session: Session,
    pub text: String,
    pub version: u64,
    /// Length of the text at `version` (what the in-flight op is based on).
    server_len: usize,
    pub seq: u64,
    pub inflight: Option<(u64, Vec<TextPrimitive>)>,
    /// Local edits made after the in-flight op, in sequence (composition is concatenation).
    pub pending: Vec<TextPrimitive>,
}

impl SimClient {
    pub fn new(session: Session) -> Self {
        SimClient { session, text: String::new(), version: 0, server_len: 0, seq: 0, inflight: None, pending: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.text.chars().count()
    }

    pub fn local_edit(&mut self, prim: TextPrimitive) {
        self.text = reference::apply(&self.text, std::slice::from_ref(&prim));
        self.pending.push(prim);
    }

    /// The frame to send, if the client may send now.
    pub fn flush(&mut self) -> Option<String> {
        if self.inflight.is_some() || self.pending.is_empty() {
            return None;
        }
        let op = std::mem::take(&mut self.pending);
        self.seq += 1;
        let frame = op_frame(&format!("m{}", self.seq), &self.session.client_id, self.seq, self.version, &op);
        self.inflight = Some((self.seq, op));
        Some(frame)
    }

    /// The frame re-sending the in-flight op after a reconnect (same seq, rebased).
    pub fn resend(&self) -> Option<String> {
        let (seq, op) = self.inflight.as_ref()?;
        Some(op_frame("resend", &self.session.client_id, *seq, self.version, op))
    }

    fn integrate(&mut self, remote: Vec<TextPrimitive>, remote_client: &str) {
        let me_first = self.session.client_id.as_bytes() < remote_client.as_bytes();
        let base = self.server_len;
        self.server_len = reference::length_after(&remote, base);
        let mut remote = remote;
        let mut pending_base = base;
        if let Some((seq, mine)) = self.inflight.take() {
            let (mine2, remote2) = reference::transform_pair(&mine, &remote, base, me_first);
            pending_base = reference::length_after(&mine, base);
            remote = remote2;
            self.inflight = Some((seq, mine2));
        }
        if !self.pending.is_empty() {
            let (mine2, remote2) = reference::transform_pair(&self.pending, &remote, pending_base, me_first);
            remote = remote2;
            self.pending = mine2;
        }
        self.text = reference::apply(&self.text, &remote);
    }

    fn acked(&mut self) {
        if let Some((_, op)) = self.inflight.take() {
            self.server_len = reference::length_after(&op, self.server_len);
        }
    }

    /// Handles one server frame. Returns an error string on a protocol violation.
    pub fn receive(&mut self, frame: &Value) -> Result<(), String> {
        let p = &frame["payload"];
        match frame["type"].as_str().unwrap_or("") {
            "initial_state" => {
                self.text = p["content"].as_str().unwrap().to_string();
                self.server_len = self.len();
                self.version = p["version"].as_u64().unwrap();
            }
            "operation" | "sync_operation" => {
                let version = p["version"].as_u64().unwrap();
                if version <= self.version {
                    return Ok(()); // already seen (a replay overlapping live delivery)
                }
                if version != self.version + 1 {
                    return Err(format!("gap: at {} got {}", self.version, version));
                }
                let client = p["client_id"].as_str().unwrap().to_string();
                let seq = p["seq"].as_u64().unwrap();
                if client == self.session.client_id && self.inflight.as_ref().is_some_and(|(s, _)| *s == seq) {
                    self.acked(); // our own op in a replay is its ack
                } else {
                    let prims: Vec<TextPrimitive> = serde_json::from_value(p["ops"].clone()).unwrap();
                    self.integrate(prims, &client);
                }
                self.version = version;
            }
            "operation_ack" => {
                let status = p["status"].as_str().unwrap();
                let version = p["version"].as_u64().unwrap();
                let applied = status == "accepted" || status == "transformed";
                if applied && version != self.version + 1 {
                    return Err(format!("ack out of order: at {} got {}", self.version, version));
                }
                if applied {
                    self.version = version;
                    self.acked();
                } else {
                    // noop: nothing applied; duplicate: already counted when its version arrived.
                    self.inflight = None;
                }
            }
            "error" => return Err(format!("error: {p}")),
            _ => {}
        }
        Ok(())
    }
}

/// Where the editing traces live: the repository's own copy (data/editing-traces), or another
/// directory named by SIDECHAIN_TRACES_DIR.
pub fn traces_dir() -> PathBuf {
    let dir = std::env::var("SIDECHAIN_TRACES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/editing-traces"));
    assert!(dir.join("sveltecomponent.json.gz").exists(), "editing traces not found in {}", dir.display());
    dir
}

pub struct Trace {
    pub start: String,
    pub end: String,
    pub txns: Vec<Vec<TextPrimitive>>,
}

pub fn load_trace(name: &str) -> Trace {
    let path = traces_dir().join(format!("{name}.json.gz"));
    let mut raw = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("open trace"))
        .read_to_string(&mut raw)
        .expect("gunzip trace");
    let v: Value = serde_json::from_str(&raw).expect("trace JSON");
    let txns = v["txns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let mut prims = Vec::new();
            for patch in t["patches"].as_array().unwrap() {
                let pos = patch[0].as_u64().unwrap() as usize;
                let del = patch[1].as_u64().unwrap() as usize;
                let ins = patch[2].as_str().unwrap();
                if del > 0 {
                    prims.push(TextPrimitive::Delete { position: pos, length: del });
                }
                if !ins.is_empty() {
                    prims.push(TextPrimitive::Insert { position: pos, content: ins.to_string() });
                }
            }
            prims
        })
        .filter(|p: &Vec<TextPrimitive>| !p.is_empty())
        .collect();
    Trace {
        start: v["startContent"].as_str().unwrap_or("").to_string(),
        end: v["endContent"].as_str().unwrap().to_string(),
        txns,
    }
}

/// A document's storage on a fresh in-memory SQLite, its schema applied and a life begun, as the
/// document object has it before its first event.
pub fn room_store() -> sidechain_edge::objects::document::storage::RoomStore<sidechain_edge::runtime::sql_sqlite::MemorySql> {
    let s = sidechain_edge::objects::document::storage::RoomStore::new(sidechain_edge::runtime::sql_sqlite::MemorySql::new());
    s.ensure_schema().unwrap();
    s.begin_incarnation("doc", "life1").unwrap();
    s
}

/// One text insert of `text` at `at`.
pub fn insert_at(at: usize, text: &str) -> Vec<TextPrimitive> {
    vec![TextPrimitive::Insert { position: at, content: text.into() }]
}
