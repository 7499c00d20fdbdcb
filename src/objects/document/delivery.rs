//! Who gets which frame after a commit (§3.3, §8, §9), as a pure plan the host then sends. The
//! events of one commit are delivered in arrival order; each message's frame text is made once
//! and shared by every socket that gets it. A `?batch=1` socket gets the consecutive operations
//! of the commit — its own included, standing for their acks — as one `operations` frame, and
//! every such socket with the same run shares that text. A canvas operation reaches only the
//! sockets whose viewport it touches; the versions a socket skips are reported back so the
//! host can announce them. `engagement_update`s are coalesced: each socket gets the latest only,
//! and a batch socket gets others' counter actions on a post only through it.

use std::collections::HashMap;
use std::rc::Rc;

use serde::Deserialize;

use crate::dialect::{self, Dialect};
use crate::geom::{Reach, Rect};
use crate::protocol::Outgoing;

/// One event's messages, committed with its batch.
#[derive(Debug, Default)]
pub struct Queued {
    /// Arrival order across the room's life in memory.
    pub order: u64,
    /// The socket (session id) that sent it; None for REST calls and timers.
    pub sender: Option<String>,
    pub to_sender: Vec<Outgoing>,
    pub to_others: Vec<Outgoing>,
}

/// A Yjs event's binary frames (§7), delivered like `Effects`' messages after the commit.
#[derive(Debug, Default)]
pub struct YFrames {
    pub to_sender: Vec<Vec<u8>>,
    /// Awareness relays.
    pub to_others: Vec<Vec<u8>>,
    /// Effective updates, relayed merged with the rest of the batch's.
    pub updates: Vec<Vec<u8>>,
    /// Close the sender after its frames (a frame it sent was refused).
    pub close: Option<(u16, &'static str)>,
}

/// A socket, as the plan sees it.
pub struct Recipient<'a> {
    pub session_id: &'a str,
    /// The order of the event that connected it: messages of earlier events are not for it
    /// (its catch-up already holds them).
    pub since: u64,
    /// `?batch=1`: operations come as `operations` frames.
    pub batch: bool,
    pub viewport: Option<&'a Rect>,
    /// `?dialect=plugin` (§6.1 [1.2]): frames written in the plugin's dialect.
    pub dialect: Dialect,
}

/// What each recipient is sent, in order, and the versions it skipped or got (canvases).
#[derive(Debug, Default)]
pub struct Plan {
    pub frames: Vec<Vec<Rc<str>>>,
    /// (recipient, version) of operations outside its viewport.
    pub skipped: Vec<(usize, u64)>,
    /// (recipient, version) of operations it got (sockets with a viewport only).
    pub delivered: Vec<(usize, u64)>,
}

#[derive(Deserialize)]
struct VersionOf {
    version: u64,
}

fn version_of(m: &Outgoing) -> u64 {
    serde_json::from_str::<VersionOf>(m.payload_json()).map_or(0, |v| v.version)
}

/// Builds frame texts once, however many sockets get them.
struct Frames<'a> {
    document_id: &'a str,
    now: u64,
    ids: &'a mut dyn FnMut() -> String,
    shared: HashMap<(usize, usize, Dialect), Rc<str>>,
    runs: HashMap<(Vec<(usize, usize)>, Dialect), Rc<str>>,
}

impl Frames<'_> {
    fn text(&mut self, m: &Outgoing, d: Dialect) -> Rc<str> {
        Rc::from(dialect::frame(m, d, &(self.ids)(), self.now))
    }

    fn shared(&mut self, key: (usize, usize, Dialect), m: &Outgoing) -> Rc<str> {
        if let Some(t) = self.shared.get(&key) {
            return t.clone();
        }
        let t = self.text(m, key.2);
        self.shared.insert(key, t.clone());
        t
    }

    /// The `operations` frame of a run of operation messages (by event and message index).
    fn run(&mut self, run: Vec<(usize, usize)>, d: Dialect, events: &[Queued]) -> Rc<str> {
        let run = (run, d);
        if let Some(t) = self.runs.get(&run) {
            return t.clone();
        }
        let bytes: usize = run.0.iter().map(|&(e, i)| events[e].to_others[i].payload_json().len() + 1).sum();
        let (m, ()) = Outgoing::with_payload("operations", None, bytes + self.document_id.len() + 48, |buf| {
            buf.push_str("{\"document_id\":");
            buf.push_str(&serde_json::to_string(self.document_id).unwrap_or_default());
            buf.push_str(",\"operations\":[");
            for (n, &(e, i)) in run.0.iter().enumerate() {
                if n > 0 {
                    buf.push(',');
                }
                buf.push_str(events[e].to_others[i].payload_json());
            }
            buf.push_str("]}");
        });
        let t = self.text(&m, d);
        self.runs.insert(run, t.clone());
        t
    }
}

/// The latest `engagement_update` of the batch: (event, in `to_sender`?, index).
fn last_engagement(events: &[Queued]) -> Option<usize> {
    events.iter().rposition(|e| e.to_others.iter().chain(&e.to_sender).any(|m| m.kind == "engagement_update"))
}

/// Plans the delivery of one commit's events to `recipients`.
pub fn plan(document_id: &str, events: &[Queued], recipients: &[Recipient], now: u64, ids: &mut dyn FnMut() -> String) -> Plan {
    let latest_counts = last_engagement(events);
    // Versions matter only to sockets with a viewport (announcements); read each once.
    let viewports = recipients.iter().any(|r| r.viewport.is_some());
    let versions: HashMap<(usize, usize), u64> = if viewports {
        let ops = events.iter().enumerate().flat_map(|(e, q)| q.to_others.iter().enumerate().filter(|(_, m)| m.kind == "operation").map(move |(i, m)| ((e, i), m)));
        ops.map(|(key, m)| (key, version_of(m))).collect()
    } else {
        HashMap::new()
    };
    let version = |key: (usize, usize)| versions.get(&key).copied().unwrap_or(0);
    let mut frames = Frames { document_id, now, ids, shared: HashMap::new(), runs: HashMap::new() };
    let mut plan = Plan { frames: Vec::with_capacity(recipients.len()), ..Plan::default() };
    for (r_index, r) in recipients.iter().enumerate() {
        let mut out: Vec<Rc<str>> = Vec::new();
        let mut run: Vec<(usize, usize)> = Vec::new();
        for (e_index, e) in events.iter().enumerate().filter(|(_, e)| e.order >= r.since) {
            let stale_counts = |m: &Outgoing| m.kind == "engagement_update" && Some(e_index) != latest_counts;
            if e.sender.as_deref() == Some(r.session_id) {
                let own_op = e.to_others.iter().position(|m| m.kind == "operation");
                for m in e.to_sender.iter().filter(|m| !stale_counts(m)) {
                    match own_op {
                        // Its own operation in the run stands for the ack (§9).
                        Some(i) if r.batch && m.kind == "operation_ack" => run.push((e_index, i)),
                        _ => {
                            flush(&mut run, r.dialect, &mut out, &mut frames, events);
                            out.push(frames.text(m, r.dialect));
                        }
                    }
                }
                if let (Some(i), Some(_)) = (own_op, r.viewport) {
                    plan.delivered.push((r_index, version((e_index, i))));
                }
                continue;
            }
            for (m_index, m) in e.to_others.iter().enumerate().filter(|(_, m)| !stale_counts(m)) {
                let is_op = m.kind == "operation";
                if r.batch && m.reach == Reach::Unbatched {
                    continue;
                }
                if !m.reach.reaches(r.viewport) {
                    if is_op {
                        plan.skipped.push((r_index, version((e_index, m_index))));
                    }
                    continue;
                }
                if is_op && r.viewport.is_some() {
                    plan.delivered.push((r_index, version((e_index, m_index))));
                }
                if is_op && r.batch {
                    run.push((e_index, m_index));
                } else {
                    flush(&mut run, r.dialect, &mut out, &mut frames, events);
                    out.push(frames.shared((e_index, m_index, r.dialect), m));
                }
            }
        }
        flush(&mut run, r.dialect, &mut out, &mut frames, events);
        plan.frames.push(out);
    }
    plan
}

fn flush(run: &mut Vec<(usize, usize)>, d: Dialect, out: &mut Vec<Rc<str>>, frames: &mut Frames, events: &[Queued]) {
    if !run.is_empty() {
        out.push(frames.run(std::mem::take(run), d, events));
    }
}
