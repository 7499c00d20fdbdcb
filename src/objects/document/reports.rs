//! What the room reports outward (§5.6): each user's socket count here to their channel (so
//! presence reaches this room and says online), and the room's socket count and tally to its
//! stats shard. Reports go after the response, never before it, and are renewed while sockets
//! are open, so a report whose close never came (a runtime restart) lapses by itself.

use std::collections::BTreeMap;

use super::DocumentRoom;
use crate::metrics::Report;
use crate::objects::{channel, stats};
use crate::runtime::clock::now_ms;
use crate::runtime::log;

impl DocumentRoom {
    /// Tells the user's channel how many sockets they hold here and the stats how many the
    /// room holds; makes sure the renewal alarm is set.
    pub(super) fn report_room_change(&self, user_id: &str) {
        let present = self.host.sessions();
        let connections = present.iter().filter(|s| s.user_id == user_id).count() as u32;
        self.send_reports(vec![(user_id.to_string(), connections)], present.len() as u32);
        if !present.is_empty() {
            let at = now_ms() + self.renew_ms;
            let host = self.host.clone();
            self.host.state().wait_until(async move { host.schedule_alarm(at).await });
        }
    }

    /// The alarm's duty: every user in the room and the room itself reported again, once per
    /// renewal period while any socket is open. The next time it is due.
    pub(super) fn renew_reports(&self) -> Option<u64> {
        let present = self.host.sessions();
        if present.is_empty() {
            return None;
        }
        let now = now_ms();
        let due = self.host.reports_renewed_at.get() + self.renew_ms;
        if now < due {
            return Some(due);
        }
        self.host.reports_renewed_at.set(now);
        let mut per_user: BTreeMap<String, u32> = BTreeMap::new();
        for s in present.iter() {
            *per_user.entry(s.user_id.clone()).or_default() += 1;
        }
        self.send_reports(per_user.into_iter().collect(), present.len() as u32);
        Some(now + self.renew_ms)
    }

    fn send_reports(&self, users: Vec<(String, u32)>, room_connections: u32) {
        let Ok(Some(document_id)) = self.host.store().document_id() else { return };
        let (at, seq) = (now_ms(), self.host.next_order());
        let report = Report { document_id: document_id.clone(), connections: Some(room_connections), at, seq, tally: self.host.metrics.take() };
        let env = self.env.clone();
        self.host.state().wait_until(async move {
            for (user_id, connections) in users {
                let room = channel::client::RoomSockets { user_id: user_id.clone(), document_id: document_id.clone(), connections };
                if let Err(e) = channel::client::call(&env, &user_id, &room).await {
                    log::error("room_presence_report", e.message, &[("user_id", user_id.as_str().into())]);
                }
            }
            stats::client::report(&env, &report).await;
        });
    }
}
