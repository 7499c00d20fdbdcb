//! Viewports (§8): reading them from the connect URL and the `viewport` message, and the
//! `sync_status` announcements a socket gets for versions its viewport made it skip.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::geom::Rect;
use crate::limits;
use crate::protocol::{Failure, Outgoing};

fn bad_viewport(why: &str) -> Failure {
    Failure::bad(format!("viewport {why}"))
}

fn checked(x: f64, y: f64, width: f64, height: f64) -> Result<Rect, Failure> {
    if !(x.is_finite() && y.is_finite() && width.is_finite() && height.is_finite()) {
        return Err(bad_viewport("values must be finite numbers"));
    }
    if width < 0.0 || height < 0.0 {
        return Err(bad_viewport("width and height must not be negative"));
    }
    Rect::from_view(x, y, width, height).ok_or_else(|| bad_viewport("is too large"))
}

/// `?viewport=x,y,w,h` (the value already percent-decoded).
pub fn parse_viewport_query(value: &str) -> Result<Rect, Failure> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let [x, y, w, h] = parts[..] else {
        return Err(bad_viewport("must be four numbers x,y,w,h"));
    };
    let num = |s: &str| s.parse::<f64>().map_err(|_| bad_viewport("must be four numbers x,y,w,h"));
    checked(num(x)?, num(y)?, num(w)?, num(h)?)
}

/// The `viewport` message's payload: `{"x","y","width","height"}`, or `null` (which arrives as
/// an empty payload) for everything.
pub fn parse_viewport_payload(p: &Map<String, Value>) -> Result<Option<Rect>, Failure> {
    if p.is_empty() {
        return Ok(None);
    }
    let num = |key: &str| match p.get(key) {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| bad_viewport("values must be finite numbers")),
        Some(_) => Err(bad_viewport(&format!("{key} must be a number"))),
        None => Err(bad_viewport(&format!("needs {key} (or a null payload for everything)"))),
    };
    checked(num("x")?, num("y")?, num("width")?, num("height")?).map(Some)
}

/// What the host does about a socket that skipped a version.
#[derive(Debug, PartialEq)]
pub enum Announce {
    /// Send this `sync_status` now.
    Now(Outgoing),
    /// Call [`Announcer::due`] at this time (a timer).
    At(u64),
    /// An announcement is already scheduled.
    Pending,
}

#[derive(Default)]
struct Skipped {
    /// The newest version skipped and not yet announced or delivered.
    pending: Option<u64>,
    last_sent: Option<u64>,
}

/// Per socket, in the host's memory only (a lost announcement is harmless: the next operation
/// or announcement carries a newer version): versions a socket's viewport made it skip are
/// announced by `sync_status` `{"status":"synced","version"}` at most once a second (§8).
#[derive(Default)]
pub struct Announcer {
    sockets: HashMap<String, Skipped>,
}

impl Announcer {
    /// `session_id` received an operation (or its ack) of `version`: skips up to it need no
    /// announcement.
    pub fn delivered(&mut self, session_id: &str, version: u64) {
        if let Some(s) = self.sockets.get_mut(session_id) {
            if s.pending.is_some_and(|p| p <= version) {
                s.pending = None;
            }
        }
    }

    /// `session_id` did not receive the operation of `version` (its viewport).
    pub fn skipped(&mut self, session_id: &str, document_id: &str, version: u64, now: u64) -> Announce {
        let s = self.sockets.entry(session_id.to_string()).or_default();
        let was_pending = s.pending.is_some();
        s.pending = Some(s.pending.map_or(version, |p| p.max(version)));
        match s.last_sent {
            _ if was_pending => Announce::Pending,
            Some(t) if now < t + limits::VERSION_ANNOUNCE_MS => Announce::At(t + limits::VERSION_ANNOUNCE_MS),
            _ => {
                s.pending = None;
                s.last_sent = Some(now);
                Announce::Now(status(document_id, version))
            }
        }
    }

    /// The announcements due at `now`, and when to call again (None: nothing pending).
    pub fn due(&mut self, document_id: &str, now: u64) -> (Vec<(String, Outgoing)>, Option<u64>) {
        let mut out = Vec::new();
        let mut next: Option<u64> = None;
        for (session_id, s) in &mut self.sockets {
            let Some(version) = s.pending else { continue };
            let at = s.last_sent.map_or(now, |t| t + limits::VERSION_ANNOUNCE_MS);
            if at <= now {
                s.pending = None;
                s.last_sent = Some(now);
                out.push((session_id.clone(), status(document_id, version)));
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        (out, next)
    }

    /// The socket closed.
    pub fn forget(&mut self, session_id: &str) {
        self.sockets.remove(session_id);
    }
}

fn status(document_id: &str, version: u64) -> Outgoing {
    Outgoing::new("sync_status", json!({"document_id": document_id, "status": "synced", "pending_count": 0, "version": version}))
}
