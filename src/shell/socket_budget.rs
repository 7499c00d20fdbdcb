//! Per-socket message budgets (§3.4) for the objects that hold sockets. Kept in memory: an
//! object only hibernates when its sockets are quiet, and a quiet socket has a full budget anyway.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::WebSocket;

use super::document_room::now_ms;
use crate::protocol::{parse_frame, Code, Failure, Outgoing};
use crate::ratelimit::{Admit, SocketBudget, SocketRate};

/// Close code for a socket that keeps flooding (policy violation).
const CLOSE_POLICY: u16 = 1008;

pub struct Budgets {
    rate: SocketRate,
    sockets: RefCell<HashMap<String, SocketBudget>>,
}

impl Budgets {
    /// The protocol's 20/s with bursts of 100, unless `SOCKET_RATE_PER_SEC` / `SOCKET_BURST`
    /// say otherwise (load tests raise them).
    pub fn from_env(env: &worker::Env) -> Self {
        let var = |name: &str| env.var(name).ok().and_then(|v| v.to_string().parse::<f64>().ok()).filter(|v| *v >= 1.0);
        let d = SocketRate::default();
        let rate = SocketRate { per_sec: var("SOCKET_RATE_PER_SEC").unwrap_or(d.per_sec), burst: var("SOCKET_BURST").unwrap_or(d.burst) };
        Budgets { rate, sockets: RefCell::new(HashMap::new()) }
    }

    /// Whether the message may be handled; otherwise the socket has been answered or closed.
    pub fn admit(&self, ws: &WebSocket, session_id: &str, text: &str) -> bool {
        let now = now_ms();
        let rate = self.rate;
        let verdict = self.sockets.borrow_mut().entry(session_id.to_string()).or_insert_with(|| SocketBudget::new(now, rate)).admit(now);
        match verdict {
            Admit::Accept => true,
            Admit::Refuse { retry_after_ms } => {
                let id = parse_frame(text).ok().and_then(|f| f.id);
                let f = Failure::new(Code::RateLimited, "more than 20 messages a second on this socket; slow down");
                let m = Outgoing::error_with(&f, id, None, Some(retry_after_ms));
                let _ = ws.send_with_str(m.into_frame(&super::frame_id(), now));
                false
            }
            Admit::Close => {
                self.forget(session_id);
                let _ = ws.close(Some(CLOSE_POLICY), Some("rate limit exceeded"));
                false
            }
        }
    }

    pub fn forget(&self, session_id: &str) {
        self.sockets.borrow_mut().remove(session_id);
    }
}
