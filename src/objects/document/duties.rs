//! What follows a commit, and what the alarm does. The room says what happened (its
//! follow-ups); this file turns that into alarm times, and the alarm into named duties, each
//! independent of the others' failures.

use super::delivery::YFrames;
use super::DocumentRoom;
use crate::limits;
use crate::model::{Effects, FollowUps, Session};
use crate::runtime::clock::now_ms;
use crate::runtime::log;

/// How soon a duty that failed tries again.
const RETRY_MS: u64 = 5_000;

impl DocumentRoom {
    /// Commits an event's effects with the next group commit (`group_commit.rs`), then
    /// schedules what follows it. False when the commit failed (nothing was applied).
    pub(super) async fn commit(&self, effects: Effects, sender: Option<&Session>) -> bool {
        self.commit_with(effects, YFrames::default(), sender).await
    }

    /// [`Self::commit`] for an event that also sends binary frames (Yjs).
    pub(super) async fn commit_with(&self, effects: Effects, frames: YFrames, sender: Option<&Session>) -> bool {
        match super::group_commit::commit_with(&self.host, effects, frames, sender).await {
            Ok(follow) => {
                self.schedule(follow).await;
                true
            }
            Err(_) => false,
        }
    }

    /// What follows a commit: the history flush, the counts cache, the owner outbox, typing
    /// deadlines, and the in-memory timers (coalesced awareness).
    pub(super) async fn schedule(&self, follow: FollowUps) {
        let now = now_ms();
        if !follow.appended.is_empty() {
            self.host.schedule_alarm(now + self.history_flush_delay()).await;
        }
        if follow.counts_changed {
            // Watchers (§6.2) hear of it with the alarm the cache write sets.
            self.watchers_stale();
            self.counts_changed().await;
        }
        if follow.notifications_queued {
            if let Some(retry) = self.deliver_outbox().await {
                self.host.schedule_alarm(retry).await;
            }
        }
        if let Some(deadline) = follow.typing_deadline {
            self.host.schedule_alarm(deadline).await;
        }
        if let Some(at) = follow.awareness_due {
            self.host.timer_at(at);
        }
        // A commit may also have held something back for a timer (coalesced counts, announcements).
        super::timers::start(&self.host);
    }

    /// The alarm: every duty runs, and the next alarm is the earliest any of them asks for.
    pub(super) async fn run_alarm(&self) {
        self.host.alarm_cleared();
        let next = [
            self.expire_typing().await,
            self.deliver_outbox().await,
            self.flush_counts_cache().await,
            self.push_watchers().await,
            self.flush_history_duty().await,
            self.report_tally().await,
            self.expire_sockets().await,
            self.renew_reports(),
        ];
        if let Some(at) = next.into_iter().flatten().min() {
            self.host.schedule_alarm(at).await;
        }
    }

    /// `stopped_typing` for every typing flag past its deadline; the next deadline.
    async fn expire_typing(&self) -> Option<u64> {
        // A room that cannot load must not block the other duties.
        let effects = self.host.with_room(|room, _| room.expire_typing(now_ms())).ok()?;
        self.commit(effects, None).await;
        self.host.with_room(|room, _| room.next_typing_deadline()).ok().flatten()
    }

    /// How soon acked operations go to D1: sooner for a document with a backlog (limits.rs).
    fn history_flush_delay(&self) -> u64 {
        let version = self.host.with_room(|r, _| r.version()).unwrap_or(0);
        // Read once per wake and then kept by the flush: it only times the flush, and this runs
        // after every commit of a busy document.
        let flushed = self.host.flushed_hint.get().unwrap_or_else(|| {
            let stored = self.host.store().meta_u64("d1_flushed").unwrap_or(0);
            self.host.flushed_hint.set(Some(stored));
            stored
        });
        limits::history_flush_delay_ms(version.saturating_sub(flushed))
    }

    /// Copies acked operations to D1; retried soon while any remain or it failed.
    async fn flush_history_duty(&self) -> Option<u64> {
        let flushed = self.flush_history().await;
        if let Err(e) = &flushed {
            log::error("history_flush", format!("{e}; retrying"), &[]);
        }
        let pending = self.host.store().unflushed(1).map_or(true, |u| !u.is_empty());
        (flushed.is_err() || pending).then(|| now_ms() + RETRY_MS)
    }

    /// Reports what the room handled since the last report.
    async fn report_tally(&self) -> Option<u64> {
        let tally = self.host.metrics.take();
        let Ok(Some(document_id)) = self.host.store().document_id() else { return None };
        if !tally.is_empty() {
            let report = crate::metrics::Report { document_id, connections: None, at: now_ms(), seq: 0, tally };
            crate::objects::stats::client::report(&self.env, &report).await;
        }
        None
    }

    /// Retries the owner outbox while it holds anything.
    pub(super) fn outbox_retry(&self) -> Option<u64> {
        let pending = self.host.store().outbox().map_or(true, |o| !o.is_empty());
        pending.then(|| now_ms() + RETRY_MS)
    }
}
