// Documents whose operations need no client-side transform (canvas strokes, post engagement):
// the server decides (last-writer-wins, per-user rules), so the client keeps the confirmed state
// from `initial_state` and the server's operations, shows local ops on top until acknowledged,
// and sends them one op at a time. Every (re)connect loads the full state (these states are
// small); the in-flight op is resent under its seq, so a lost ack never applies it twice.
import { Room, SeqProbe } from "./room.js";

export class QueuedDoc extends Room {
  constructor(client, documentId) {
    super(client, documentId);
    this.version = 0;
    this.hasState = false;
    this.queue = []; // [{prims, resolve, reject}]
    this.inflight = null; // {seq, items, id, awaiting, uncertain}
    this.seqProbe = null;
  }

  // hooks
  /** Adopts the state of an initial_state payload. */
  loadState(_p) {}
  /** Applies primitives as the server applied them to the confirmed state. */
  applyConfirmed(_ops, _payload) {}
  /** How many queued items go out as one op. */
  batchSize() {
    return 1;
  }
  /** Extra fields of the operation payload. */
  opFields() {
    return {};
  }
  stateChanged(_why) {}
  /** True when the socket may skip versions (a canvas viewport, §8). */
  gapsExpected() {
    return false;
  }

  get pending() {
    return (this.inflight?.items.length ?? 0) + this.queue.length;
  }

  get hasUnsavedChanges() {
    return this.pending > 0;
  }

  isIdle() {
    return this.pending === 0;
  }

  query() {
    // §9: the room's operations come batched, one frame per commit, our acks among them.
    return { client_id: this.clientId, batch: "1" };
  }

  /** Queues primitives; resolves with the ack payload once the server applied them. */
  submit(prims) {
    return new Promise((resolve, reject) => {
      this.queue.push({ prims, resolve, reject });
      this.stateChanged("local");
      this.flush();
      this.updateStatus();
    });
  }

  flush() {
    if (!this.ready || this.inflight || !this.queue.length || this.rateBlocked) return;
    const items = this.queue.splice(0, this.batchSize());
    this.seq += 1;
    this.inflight = { seq: this.seq, items, awaiting: false, uncertain: false, retries: 0 };
    this.sendInflight();
  }

  sendInflight() {
    const inf = this.inflight;
    if (!inf || !this.connected || this.rateBlocked) return;
    const prims = inf.items.flatMap((i) => i.prims);
    const id = this.send("operation", {
      document_id: this.documentId,
      client_id: this.clientId,
      seq: inf.seq,
      version: this.version,
      timestamp: Date.now(),
      ...this.opFields(),
      ...(prims.length === 1 ? prims[0] : { ops: prims }),
    });
    if (id) {
      inf.id = id;
      inf.awaiting = true;
      inf.sentVersion = this.version;
    }
  }

  onMessage(msg) {
    const p = msg.payload ?? {};
    if (this.handleRoomMessage(msg)) return;
    switch (msg.type) {
      case "initial_state":
        this.loadState(p);
        this.version = Number(p.version ?? 0);
        this.hasState = true;
        this.stateChanged("reset");
        return;
      case "operations":
        for (const op of p.operations ?? []) this.#onBatched(op);
        return;
      case "operation":
      case "sync_operation": {
        const v = Number(p.version);
        if (v <= this.version) return;
        const inf = this.inflight;
        if (inf && p.client_id === this.clientId && Number(p.seq) === inf.seq) return this.#done(p, p.ops);
        this.applyConfirmed(p.ops ?? [], p);
        this.version = v;
        this.stateChanged("remote");
        return;
      }
      case "sync_status": {
        if (p.status === "syncing") return; // a replay follows (v1.2 §6.1); `synced` ends it
        const wasReady = this.ready;
        this.ready = true;
        this.loadedAt ??= this.version;
        this.attempt = 0;
        if (this.inflight && !this.inflight.awaiting) this.sendInflight();
        this.flush();
        if (!wasReady) this.afterSync();
        return this.updateStatus();
      }
      case "operation_ack":
        return this.#onAck(p, msg.reply_to);
      case "error":
        return this.#onError(p, msg.reply_to);
      default:
        return this.onOtherMessage(msg);
    }
  }

  onOtherMessage(_msg) {}

  /** An operation of a §9 batch: ours, answering what this socket sent, is its ack. */
  #onBatched(p) {
    const inf = this.inflight;
    if (!(inf?.awaiting && p.client_id === this.clientId && Number(p.seq) === inf.seq)) return this.onMessage({ type: "operation", payload: p });
    const transformed = Number(p.version) !== inf.sentVersion + 1;
    this.#onAck({ ...p, status: transformed ? "transformed" : "accepted", operation_id: `${p.client_id}:${p.seq}` }, null);
  }

  #onAck(p, replyTo) {
    const inf = this.inflight;
    if (!inf || Number(p.seq) !== inf.seq || (replyTo && inf.id && replyTo !== inf.id)) return;
    inf.awaiting = false;
    if (this.isStaleDuplicate(p, inf)) {
      // Taken by an earlier session of this client_id: find the next free seq.
      this.seqProbe ??= new SeqProbe();
      inf.seq = this.seq = this.seqProbe.stale(inf.seq);
      return this.sendInflight();
    }
    // A duplicate of an op applied on a lost socket is already in the state we loaded since.
    // A canvas with a viewport skips the versions outside it: any later version follows on.
    const next = this.gapsExpected() ? Number(p.version) > this.version : Number(p.version) === this.version + 1;
    const applies = p.status !== "noop" && p.status !== "duplicate" && next;
    if (p.status !== "noop" && p.status !== "duplicate" && !applies) {
      // An op we have not seen came first: reload everything.
      this.#done(p, null);
      this.hasState = false;
      return this.drop(4002);
    }
    this.#done(p, applies ? p.ops : null);
  }

  #done(p, ops) {
    const inf = this.inflight;
    this.inflight = null;
    this.seqProbe = null;
    if (p.status !== "duplicate") this.seqConfirmed = true;
    this._persistSeq(inf.seq);
    if (ops) {
      this.applyConfirmed(ops, p);
      this.version = Number(p.version);
    }
    for (const i of inf.items) i.resolve(p);
    this.stateChanged("ack");
    this.flush();
    this.updateStatus();
  }

  #onError(p, replyTo) {
    const inf = this.inflight;
    const ours = this.answersInflight(p, replyTo);
    if (this.sharedRefusal(p, ours, () => this.sendInflight(), () => this.flush())) return;
    inf.awaiting = false;
    if (p.code === "seq_gap") {
      this.seqProbe ??= new SeqProbe();
      inf.seq = this.seq = this.seqProbe.gap(inf.seq);
      return this.sendInflight();
    }
    if (p.code === "version_too_old" || (p.code === "internal" && ++inf.retries <= 3)) {
      // Not applied: reload the state and send it again against the new version.
      this.emit("error", { ...p });
      inf.uncertain = false;
      this.hasState = false;
      return this.drop(4003);
    }
    this.inflight = null;
    this.seq = inf.seq - 1;
    const err = Object.assign(new Error(p.message ?? p.code), { code: p.code, payload: p });
    for (const i of inf.items) i.reject(err);
    this.emit("error", { ...p });
    this.stateChanged("rejected");
    this.flush();
    this.updateStatus();
  }

  close() {
    super.close();
    const err = Object.assign(new Error("document closed"), { code: "closed" });
    for (const i of [...(this.inflight?.items ?? []), ...this.queue]) i.reject(err);
    this.inflight = null;
    this.queue = [];
    this.client._forget(this);
  }
}

const EMPTY_COUNTS = { like_count: 0, comment_count: 0, repost_count: 0, save_count: 0 };

/** A post's live engagement: counts pushed by the server, actions as `modify` operations. */
export class PostDoc extends QueuedDoc {
  constructor(client, documentId) {
    super(client, documentId);
    this.postId = documentId.slice("post:".length);
    this.counts = { ...EMPTY_COUNTS };
  }

  loadState(p) {
    if (p.counts) this.counts = { ...EMPTY_COUNTS, ...p.counts };
  }

  /**
   * §9 as built: a batched post socket is not sent others' likes, reposts and saves (their
   * counts come in `engagement_update`), so versions skip; nothing here needs them in order.
   */
  gapsExpected() {
    return true;
  }

  onOtherMessage(msg) {
    if (msg.type === "engagement_update") {
      const { post_id: _, version, ...counts } = msg.payload ?? {};
      this.counts = { ...this.counts, ...counts };
      if (version !== undefined && Number(version) > this.version) this.version = Number(version);
      this.emit("change", { reason: "counts", counts: this.counts, version: this.version });
    }
  }

  stateChanged(why) {
    if (why === "reset") this.emit("change", { reason: why, counts: this.counts, version: this.version });
  }

  /** Comments made or removed, anyone's (broadcasts) and ours (acks), as `comment` / `uncomment`. */
  applyConfirmed(ops, p) {
    for (const o of ops) {
      if (o.type !== "modify" || !o.comment_id) continue;
      if (o.action === "comment") {
        this.emit("comment", {
          comment_id: o.comment_id,
          user_id: p.user_id ?? null, // an ack (our own comment) names no user
          text: o.text,
          created_at: Number(p.server_timestamp ?? Date.now()),
          local: p.user_id === undefined,
        });
      } else if (o.action === "uncomment") this.emit("uncomment", { comment_id: o.comment_id, user_id: p.user_id ?? null });
    }
  }

  #modify(action, extra = {}) {
    return this.submit([{ type: "modify", action, ...extra }]);
  }

  like(emoji) {
    return this.#modify("like", emoji ? { emoji } : {});
  }
  unlike() {
    return this.#modify("unlike");
  }
  repost() {
    return this.#modify("repost");
  }
  unrepost() {
    return this.#modify("unrepost");
  }
  save() {
    return this.#modify("save");
  }
  unsave() {
    return this.#modify("unsave");
  }
  /** Comments; resolves with the server-assigned `comment_id` (and the ack). */
  async comment(text) {
    const ack = await this.#modify("comment", { text });
    const op = (ack.ops ?? []).find((o) => o.comment_id !== undefined);
    return { commentId: op?.comment_id ?? null, ack };
  }
  uncomment(commentId) {
    return this.#modify("uncomment", { comment_id: commentId });
  }
  /**
   * One page of the post's comments, newest first (REST, §6.2): `{comments, next_before}`;
   * pass `next_before` back as `before` for the next page (null on the last).
   */
  comments({ limit, before } = {}) {
    const q = new URLSearchParams();
    if (limit !== undefined) q.set("limit", String(limit));
    if (before) q.set("before", String(before));
    const qs = q.toString();
    return this.client.api(`/api/v1/posts/${encodeURIComponent(this.postId)}/comments${qs ? `?${qs}` : ""}`);
  }
}
