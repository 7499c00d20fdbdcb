//! Helpers shared by the native tests: a simulated client following the protocol's client rule,
//! and the editing-trace loader.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

use ropey::Rope;
use serde_json::{json, Value};
use sidechain_edge::ot::text::{compose, transform, TextOp, TextPrimitive};
use sidechain_edge::room::Session;

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

/// A client running the protocol's rule: one op in flight, later local edits composed into a
/// pending op, incoming ops transformed against both before they touch the local text.
pub struct SimClient {
    pub session: Session,
    pub text: Rope,
    pub version: u64,
    pub seq: u64,
    pub inflight: Option<(u64, TextOp)>,
    pub pending: Option<TextOp>,
}

impl SimClient {
    pub fn new(session: Session) -> Self {
        SimClient { session, text: Rope::new(), version: 0, seq: 0, inflight: None, pending: None }
    }

    pub fn local_edit(&mut self, prim: TextPrimitive) {
        let op = TextOp::from_primitives(&[prim], self.text.len_chars()).expect("valid local edit");
        op.apply(&mut self.text);
        self.pending = Some(match self.pending.take() {
            Some(p) => compose(&p, &op),
            None => op,
        });
    }

    /// The frame to send, if the client may send now.
    pub fn flush(&mut self) -> Option<String> {
        if self.inflight.is_some() {
            return None;
        }
        let op = self.pending.take().filter(|p| !p.is_noop())?;
        self.seq += 1;
        let frame = op_frame(&format!("m{}", self.seq), &self.session.client_id, self.seq, self.version, &op.to_primitives());
        self.inflight = Some((self.seq, op));
        Some(frame)
    }

    /// The frame re-sending the in-flight op after a reconnect (same seq, rebased).
    pub fn resend(&self) -> Option<String> {
        let (seq, op) = self.inflight.as_ref()?;
        Some(op_frame("resend", &self.session.client_id, *seq, self.version, &op.to_primitives()))
    }

    fn integrate(&mut self, remote: TextOp, remote_client: &str) {
        let me_first = self.session.client_id.as_bytes() < remote_client.as_bytes();
        let mut remote = remote;
        if let Some((seq, mine)) = self.inflight.take() {
            let mine2 = transform(&mine, &remote, me_first);
            remote = transform(&remote, &mine, !me_first);
            self.inflight = Some((seq, mine2));
        }
        if let Some(mine) = self.pending.take() {
            let mine2 = transform(&mine, &remote, me_first);
            remote = transform(&remote, &mine, !me_first);
            self.pending = Some(mine2);
        }
        remote.apply(&mut self.text);
    }

    /// Handles one server frame. Returns an error string on a protocol violation.
    pub fn receive(&mut self, frame: &Value) -> Result<(), String> {
        let p = &frame["payload"];
        match frame["type"].as_str().unwrap_or("") {
            "initial_state" => {
                self.text = Rope::from_str(p["content"].as_str().unwrap());
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
                    self.inflight = None; // our own op in a replay is its ack
                } else {
                    let prims: Vec<TextPrimitive> = serde_json::from_value(p["ops"].clone()).unwrap();
                    self.integrate(TextOp::from_applied(&prims), &client);
                }
                self.version = version;
            }
            "operation_ack" => {
                let status = p["status"].as_str().unwrap();
                let version = p["version"].as_u64().unwrap();
                if status != "noop" && status != "duplicate" && version != self.version + 1 {
                    return Err(format!("ack out of order: at {} got {}", self.version, version));
                }
                if status != "noop" && status != "duplicate" {
                    self.version = version;
                }
                self.inflight = None;
            }
            "error" => return Err(format!("error: {p}")),
            _ => {}
        }
        Ok(())
    }
}

/// Where the shared editing traces live.
pub fn traces_dir() -> PathBuf {
    let candidates = [
        std::env::var("SIDECHAIN_TRACES_DIR").ok().map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/editing-traces")),
        Some(PathBuf::from("/work/shared/data/editing-traces")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("sveltecomponent.json.gz").exists())
        .expect("editing traces not found: set SIDECHAIN_TRACES_DIR to shared/data/editing-traces")
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
