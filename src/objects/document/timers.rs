//! In-memory timers, for what must happen a few milliseconds later and is not worth a storage
//! write: coalesced awareness relays (§8, every 50 ms), version announcements to canvas sockets
//! that skipped operations (§8, once a second), and the held `engagement_update` (§9, at most one
//! every 100 ms). One task per room waits for the earliest; it shares the host (`Rc`), so it
//! never delays the event that set it, and a pending timer keeps the object awake.

use std::rc::Rc;
use std::time::Duration;

use worker::Delay;

use super::group_commit::commit;
use super::host::RoomHost;
use crate::runtime::clock::now_ms;
use crate::runtime::sockets::send;


/// Starts the room's timer task if a timer is due and none runs.
pub fn start(host: &Rc<RoomHost>) {
    if host.timers_running.get() || !host.timer_pending() {
        return;
    }
    host.timers_running.set(true);
    let task = host.clone();
    host.state().wait_until(async move {
        while let Some(at) = task.take_timer() {
            let wait = at.saturating_sub(now_ms());
            if wait > 0 {
                Delay::from(Duration::from_millis(wait)).await;
            }
            fire(&task).await;
        }
        task.timers_running.set(false);
    });
}

async fn fire(host: &Rc<RoomHost>) {
    let now = now_ms();
    if let Ok(effects) = host.with_room(|room, _| room.tick_awareness(now)) {
        let awareness_due = effects.follow_ups.awareness_due;
        if !effects.writes.is_empty() || !effects.to_others.is_empty() {
            let _ = Box::pin(commit(host, effects, None)).await;
        }
        if let Some(at) = awareness_due {
            host.timer_at(at);
        }
    }
    send_held_counts(host, now);
    announce_versions(host, now);
}

/// The held `engagement_update`, if its 100 ms are over.
fn send_held_counts(host: &RoomHost, now: u64) {
    let due = host.counts_sent_at.get() + crate::limits::ENGAGEMENT_UPDATE_EVERY_MS;
    if now < due {
        if host.held_counts.borrow().is_some() {
            host.timer_at(due);
        }
        return;
    }
    let held = host.held_counts.borrow_mut().take();
    if let Some(m) = held {
        host.counts_sent_at.set(now);
        host.broadcast(m);
    }
}

/// `sync_status` to canvas sockets whose viewport made them skip versions.
fn announce_versions(host: &RoomHost, now: u64) {
    let Ok(document_id) = host.with_room(|r, _| r.document_id().to_string()) else { return };
    let (due, next) = host.announcer.borrow_mut().due(&document_id, now);
    if let Some(at) = next {
        host.timer_at(at);
    }
    host.with_peers(|peers| {
        for (session_id, m) in due {
            if let Some(p) = peers.iter().find(|p| p.att.session.session_id == session_id) {
                send(&p.ws, m);
            }
        }
    });
}
