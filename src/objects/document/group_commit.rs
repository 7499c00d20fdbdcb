//! Group commit (§9). Each event is applied to the room in memory at once, in arrival order, and
//! queued; the queue is written in ONE storage transaction, then delivered in version order. A
//! lone writer's event is committed at once; events that arrive while a commit is being made
//! durable wait for it and go together in the next one. Acks and broadcasts leave only after
//! their commit (the runtime's output gate holds them until it is durable), so a crash loses only
//! unacked work; a commit that fails acks nothing, and the room is rebuilt from storage.
//!
//! Events that stream stored data (a connect, a viewport change) commit whatever is queued at
//! once, with themselves last, and stream in the same step: storage then holds exactly what the
//! room holds in memory.
//!
//! A Yjs room's events (§7) go the same way with binary frames ([`YFrames`]) instead of JSON
//! messages: every frame, a sync step 2 included (it may carry queued updates), leaves after the
//! commit of its batch.

use std::collections::HashMap;
use std::rc::Rc;

use futures_channel::oneshot;
use worker::WebSocket;

use super::delivery::{plan, Queued, Recipient, YFrames};
use super::host::{Pending, RoomHost};
use crate::model::{Effects, FollowUps, Session, StrokeStream};
use crate::protocol::{Code, Failure, Outgoing};
use crate::room::viewport::Announce;
use crate::room::yjs::relay_frames;
use crate::runtime::clock::{frame_id, now_ms};
use crate::runtime::log;
use crate::runtime::sockets::{close, send, SharedFrame};

/// How a commit ended for one event: its follow-ups, or the storage error.
pub type Receipt = oneshot::Receiver<Result<FollowUps, String>>;

/// Queues an event's effects for the next commit and drives commits while events wait; the
/// event's follow-ups once its commit is made and its messages sent.
pub async fn commit(host: &Rc<RoomHost>, effects: Effects, sender: Option<&Session>) -> Result<FollowUps, String> {
    commit_with(host, effects, YFrames::default(), sender).await
}

/// [`commit`] for an event that also sends binary frames (Yjs).
pub async fn commit_with(host: &Rc<RoomHost>, effects: Effects, frames: YFrames, sender: Option<&Session>) -> Result<FollowUps, String> {
    let receipt = host.enqueue(host.next_order(), effects, frames, sender);
    if !host.committing.get() {
        drain(host).await;
    }
    receipt.await.unwrap_or_else(|_| Err("the commit was abandoned".into()))
}

/// Commits batch after batch until nothing waits; each time a commit is durable, what arrived
/// meanwhile forms the next batch.
async fn drain(host: &RoomHost) {
    host.committing.set(true);
    loop {
        let batch = std::mem::take(&mut *host.queue.borrow_mut());
        if batch.is_empty() {
            break;
        }
        host.note_senders(&batch);
        host.commit_batch(batch);
        // Let the events that arrived meanwhile in (a timer opens the input gate; awaiting
        // storage would not): they form the next batch. The output gate holds this batch's
        // frames until its commit is durable. A lone writer (nothing gathered, nothing queued)
        // does not wait for the timer: its next event starts its own commit.
        let gather = crate::limits::gather_ms(host.distinct_recent_senders());
        if gather == 0 && host.queue.borrow().is_empty() {
            break;
        }
        worker::Delay::from(std::time::Duration::from_millis(gather)).await;
    }
    host.committing.set(false);
}

impl RoomHost {
    /// Remembers who sent the last 64 events (sockets only).
    fn note_senders(&self, batch: &[Pending]) {
        let mut recent = self.recent_senders.borrow_mut();
        for p in batch.iter().filter_map(|p| p.sender.as_ref()) {
            if recent.len() == 64 {
                recent.pop_front();
            }
            recent.push_back(crate::sharding::stable_hash(&p.session_id));
        }
    }

    fn distinct_recent_senders(&self) -> usize {
        let mut ids: Vec<u64> = self.recent_senders.borrow().iter().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    fn enqueue(&self, order: u64, effects: Effects, frames: YFrames, sender: Option<&Session>) -> Receipt {
        let (done, receipt) = oneshot::channel();
        self.queue.borrow_mut().push(Pending { order, sender: sender.cloned(), effects, frames, done: Some(done) });
        receipt
    }

    /// Commits everything queued and then `last` (an event that streams stored data, or a Yjs
    /// connect's greeting), now, in this step; its stream follows its messages. Its follow-ups,
    /// or the storage error.
    pub fn commit_now(&self, order: u64, last: Effects, frames: YFrames, sender: (&WebSocket, &Session)) -> Result<FollowUps, String> {
        let mut receipt = self.enqueue(order, last, frames, Some(sender.1));
        let batch = std::mem::take(&mut *self.queue.borrow_mut());
        let stream = batch.last().and_then(|p| p.effects.follow_ups.stream.clone());
        self.commit_batch(batch);
        let outcome = receipt.try_recv().ok().flatten().unwrap_or_else(|| Err("the commit was abandoned".into()));
        if let (Ok(_), Some(plan)) = (&outcome, stream) {
            self.stream(sender.0, sender.1, &plan);
        }
        outcome
    }

    /// Writes the batch in one transaction, then delivers it; each event's waiter gets its follow-ups.
    fn commit_batch(&self, mut batch: Vec<Pending>) {
        let writes: Vec<_> = batch.iter_mut().flat_map(|p| std::mem::take(&mut p.effects.writes)).collect();
        if let Err(e) = self.store().persist(&writes) {
            return self.fail_batch(batch, &e.to_string());
        }
        self.metrics.commit(batch.len());
        for p in &batch {
            self.metrics.observe(&p.effects);
        }
        self.deliver(&mut batch);
        self.deliver_binary(&mut batch);
        for mut p in batch {
            if let Some(done) = p.done.take() {
                let _ = done.send(Ok(std::mem::take(&mut p.effects.follow_ups)));
            }
        }
    }

    /// The room ran ahead of storage: it is dropped (the next event rebuilds it from what is
    /// durable), every sender hears `internal`, nothing else is sent.
    fn fail_batch(&self, batch: Vec<Pending>, error: &str) {
        self.drop_room();
        log::error("commit", error, &[("events", batch.len().into())]);
        if self.is_yjs() {
            // Yjs sockets may have been greeted with a state vector holding the lost updates:
            // every one reconnects and syncs with what storage holds.
            self.with_peers(|peers| peers.iter().for_each(|p| {
                let _ = p.ws.close(Some(close::UNAVAILABLE), Some("storage write failed; reconnect"));
            }));
        }
        let failure = Failure::new(Code::Internal, "storage write failed; nothing was applied");
        for mut p in batch {
            if let Some(me) = &p.sender {
                let ws = self.with_peers(|peers| peers.iter().find(|x| x.att.session.session_id == me.session_id).map(|x| x.ws.clone()));
                if let Some(ws) = ws {
                    send(&ws, Outgoing::error(&failure, None, None));
                }
            }
            if let Some(done) = p.done.take() {
                let _ = done.send(Err(error.to_string()));
            }
        }
    }

    /// Sends every socket its frames of the batch (`delivery::plan`), and announces versions
    /// that canvas viewports skipped.
    fn deliver(&self, batch: &mut [Pending]) {
        let mut queued: Vec<Queued> = batch
            .iter_mut()
            .map(|p| Queued {
                order: p.order,
                sender: p.sender.as_ref().map(|s| s.session_id.clone()),
                to_sender: std::mem::take(&mut p.effects.to_sender),
                to_others: std::mem::take(&mut p.effects.to_others),
            })
            .collect();
        let document_id = self.with_room(|r, _| r.document_id().to_string()).unwrap_or_default();
        let now = now_ms();
        self.coalesce_counts(&mut queued, now);
        self.with_peers(|peers| {
            let recipients: Vec<Recipient> = peers
                .iter()
                .map(|p| Recipient { session_id: &p.att.session.session_id, since: p.since, batch: p.att.batch, viewport: p.att.viewport.as_ref(), dialect: p.att.dialect() })
                .collect();
            let plan = plan(&document_id, &queued, &recipients, now, &mut frame_id);
            // Each distinct text crosses into JavaScript once, however many sockets get it.
            let mut shared: HashMap<*const u8, SharedFrame> = HashMap::new();
            for (peer, frames) in peers.iter().zip(&plan.frames) {
                for f in frames {
                    shared.entry(f.as_ptr()).or_insert_with(|| SharedFrame::new(f)).send(&peer.ws);
                }
            }
            let mut announcer = self.announcer.borrow_mut();
            for (i, version) in plan.delivered {
                announcer.delivered(&peers[i].att.session.session_id, version);
            }
            for (i, version) in plan.skipped {
                match announcer.skipped(&peers[i].att.session.session_id, &document_id, version, now) {
                    Announce::Now(m) => send(&peers[i].ws, m),
                    Announce::At(at) => self.timer_at(at),
                    Announce::Pending => {}
                }
            }
        });
    }

    /// Yjs: each event's replies to its sender (then the sender's close, if it was refused) and
    /// its awareness relays, in arrival order; then the batch's updates as one relay.
    fn deliver_binary(&self, batch: &mut [Pending]) {
        let mut updates: Vec<(u64, Option<String>, Vec<u8>)> = Vec::new();
        for p in batch.iter_mut() {
            let YFrames { to_sender, to_others, updates: mine, close: close_with } = std::mem::take(&mut p.frames);
            let me = p.sender.as_ref().map(|s| s.session_id.as_str());
            updates.extend(mine.into_iter().map(|u| (p.order, me.map(str::to_string), u)));
            if to_sender.is_empty() && to_others.is_empty() && close_with.is_none() {
                continue;
            }
            let relays: Vec<SharedFrame> = to_others.iter().map(|f| SharedFrame::binary(f)).collect();
            self.with_peers(|peers| {
                for peer in peers.iter() {
                    if Some(peer.att.session.session_id.as_str()) == me {
                        for f in &to_sender {
                            let _ = peer.ws.send_with_bytes(f);
                        }
                        if let Some((code, reason)) = close_with {
                            let _ = peer.ws.close(Some(code), Some(reason));
                        }
                    } else if peer.since < p.order {
                        for f in &relays {
                            f.send(&peer.ws);
                        }
                    }
                }
            });
        }
        self.relay_updates(&updates);
    }

    /// The effective updates of a commit, merged (`relay_frames`): every socket gets those of
    /// the events after its connect in one frame — none when it sent them all itself (a lone
    /// writer), its own among the others' otherwise (the clients skip what they know).
    fn relay_updates(&self, updates: &[(u64, Option<String>, Vec<u8>)]) {
        let Some(first) = updates.first().map(|u| u.0) else { return };
        let frames_of = |since: u64| -> Vec<SharedFrame> {
            let chosen: Vec<&[u8]> = updates.iter().filter(|u| u.0 > since).map(|u| u.2.as_slice()).collect();
            relay_frames(&chosen).iter().map(|f| SharedFrame::binary(f)).collect()
        };
        let all = frames_of(0);
        self.with_peers(|peers| {
            for peer in peers.iter() {
                let me = Some(&peer.att.session.session_id);
                let others = updates.iter().any(|u| u.0 > peer.since && u.1.as_ref() != me);
                if !others {
                    continue;
                }
                let own;
                let frames = if peer.since < first {
                    &all
                } else {
                    own = frames_of(peer.since);
                    &own
                };
                for f in frames {
                    f.send(&peer.ws);
                }
            }
        });
    }

    /// §9: `engagement_update` at most once per 100 ms, the latest counts winning: inside that
    /// window the batch's latest is held for the timer, and the batch sends none.
    fn coalesce_counts(&self, queued: &mut [Queued], now: u64) {
        let is_counts = |m: &Outgoing| m.kind == "engagement_update";
        let latest = queued.iter().rev().find_map(|q| q.to_others.iter().chain(&q.to_sender).find(|m| is_counts(m)).cloned());
        let Some(latest) = latest else { return };
        let due = self.counts_sent_at.get() + crate::limits::ENGAGEMENT_UPDATE_EVERY_MS;
        if now >= due {
            self.counts_sent_at.set(now);
            *self.held_counts.borrow_mut() = None;
            return;
        }
        *self.held_counts.borrow_mut() = Some(latest);
        self.timer_at(due);
        for q in queued.iter_mut() {
            q.to_sender.retain(|m| !is_counts(m));
            q.to_others.retain(|m| !is_counts(m));
        }
    }

    /// Streams stored strokes to `ws` (canvas connect, `sync`, viewport change); on a storage
    /// failure the socket gets the error and is closed, so it reconnects and catches up.
    fn stream(&self, ws: &WebSocket, me: &Session, plan: &StrokeStream) {
        let old = self.with_peers(|p| p.iter().find(|p| p.att.session.session_id == me.session_id).and_then(|p| p.att.viewport));
        let present = self.sessions();
        let streamed = self.with_room(|room, store| match room.as_canvas() {
            Some(canvas) => canvas.stream(me, old.as_ref(), plan, &present, store, &mut |m| send(ws, m)),
            None => Ok(()),
        });
        if let Err(f) = streamed.map_err(|e| Failure::new(Code::Internal, e.message)).and_then(|r| r) {
            send(ws, Outgoing::error(&f, None, None));
            let _ = ws.close(Some(close::UNAVAILABLE), Some("reconnect to catch up"));
            return;
        }
        if let StrokeStream::Viewport { to, .. } = plan {
            self.set_viewport(&me.session_id, *to);
        }
    }
}


