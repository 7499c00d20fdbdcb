// A shared text document with the OT client rule of PROTOCOL §3.3:
//   * one operation in flight; local edits made meanwhile are composed into one pending op;
//   * an incoming op is transformed against the in-flight op, then against the pending op
//     (our client_id byte-wise smaller → our side is 'left': our insert goes first at a tie);
//   * after a reconnect: replay with `since`, then resend the in-flight op under the same seq;
//   * `initial_state` instead of a replay (or `version_too_old`): find out whether the in-flight
//     op was applied (resend it: `duplicate` says yes), then rebase local edits onto the new state.
// The server state at `version` is kept in `base`, so a rebase never loses a local edit.
import { Room, SeqProbe } from "./room.js";
import { applyOp, compose, cpLength, diff, fromWire, invert, toWire, transformPair, transformPosition } from "./ot.js";


export class TextDoc extends Room {
  constructor(client, documentId) {
    super(client, documentId);
    this._value = "";
    /** The server's text at `version`. */
    this.base = "";
    this.version = 0;
    this.hasState = false;
    /** {seq, op, edits, id, awaiting, uncertain, internalRetries} or null */
    this.inflight = null;
    this.pendingOp = [];
    this.pendingEdits = 0;
    this.resetState = null; // {content, version} held while the in-flight op is probed
    this.catchingUp = null; // {content, version} held while the missed ops come from the history
    this.epoch = 0;
    this.held = [];
    this.gapSyncing = false;
    this.needsReset = false;
    this.seqProbe = null;
  }

  /** The local text (server state plus unacknowledged local edits). */
  get value() {
    return this._value;
  }

  /** Length in code points. */
  get length() {
    return cpLength(this._value);
  }

  /** Number of local edits (insert/delete calls) not yet acknowledged by the server. */
  get pending() {
    return (this.inflight?.edits ?? 0) + this.pendingEdits;
  }

  get hasUnsavedChanges() {
    return !!this.inflight || this.pendingOp.length > 0;
  }

  isIdle() {
    return !this.inflight && !this.pendingOp.length && !this.resetState && !this.catchingUp && !this.needsReset && !this.gapSyncing;
  }

  query() {
    // §9: the room's operations come batched, one frame per commit, our acks among them.
    const q = { client_id: this.clientId, batch: "1" };
    if (this.hasState) q.since = String(this.version);
    return q;
  }

  // --- local edits ------------------------------------------------------------------------
  insert(position, text) {
    text = String(text ?? "");
    this.#checkPos(position, 0);
    if (!text) return;
    this.#local(position ? [position, text] : [text]);
  }

  delete(position, length) {
    this.#checkPos(position, length);
    if (!length) return;
    this.#local(position ? [position, { d: length }] : [{ d: length }]);
  }

  /** Replaces `length` code points at `position` with `text` (one edit). */
  replace(position, length, text) {
    this.#checkPos(position, length);
    text = String(text ?? "");
    const op = [];
    if (position) op.push(position);
    if (text) op.push(text);
    if (length) op.push({ d: length });
    if (op.length > (position ? 1 : 0)) this.#local(op);
  }

  /** Sets the whole text, as the smallest replace (common prefix and suffix kept). */
  setValue(text) {
    const op = diff(this._value, String(text));
    if (op.length) this.#local(op);
  }

  /** Applies wire primitives (sequential form of §3.3) as one local edit. */
  applyOps(prims) {
    const op = fromWire(prims);
    if (op.length) this.#local(op);
  }

  #checkPos(position, length) {
    if (this.role === "read") throw Object.assign(new Error("this document is read-only for this token"), { code: "forbidden" });
    const len = this.length;
    if (!Number.isInteger(position) || position < 0 || position > len) throw new RangeError(`position ${position} outside 0..${len}`);
    if (!Number.isInteger(length) || length < 0 || position + length > len) throw new RangeError(`length ${length} at ${position} outside the text (${len})`);
  }

  #local(op) {
    this._value = applyOp(this._value, op);
    this.pendingOp = compose(this.pendingOp, op);
    this.pendingEdits++;
    this.emit("change", { local: true, ops: toWire(op), version: this.version });
    this.#flush();
    this.updateStatus();
  }

  /** Moves a position in the local text over a change event's ops. */
  static transformPosition(position, ops) {
    return transformPosition(position, fromWire(ops));
  }

  // --- sending ------------------------------------------------------------------------------
  #flush() {
    if (!this.ready || this.inflight || !this.pendingOp.length || this.needsReset || this.resetState || this.catchingUp || this.rateBlocked) return;
    this.seq += 1;
    this.inflight = { seq: this.seq, op: this.pendingOp, edits: this.pendingEdits, awaiting: false, uncertain: false, internalRetries: 0 };
    this.pendingOp = [];
    this.pendingEdits = 0;
    this.#sendInflight();
  }

  #sendInflight(version = this.version) {
    const inf = this.inflight;
    if (!inf || !this.connected || this.rateBlocked) return;
    const id = this.send("operation", {
      document_id: this.documentId,
      client_id: this.clientId,
      seq: inf.seq,
      version,
      ops: toWire(inf.op),
    });
    if (id) {
      inf.id = id;
      inf.awaiting = true;
      inf.sent = { version, ops: toWire(inf.op) };
    }
  }

  // --- receiving ----------------------------------------------------------------------------
  onMessage(msg) {
    const p = msg.payload ?? {};
    if (this.handleRoomMessage(msg)) return;
    switch (msg.type) {
      case "initial_state":
        return this.#onInitialState(p);
      case "operation":
      case "sync_operation":
        return this.#onRemote(p);
      case "operations":
        for (const op of p.operations ?? []) this.#onBatched(op);
        return;
      case "sync_status":
        return this.#onSyncStatus(p);
      case "operation_ack":
        return this.#onAck(p, msg.reply_to);
      case "error":
        return this.#onError(p, msg.reply_to);
    }
  }

  #onInitialState(p, useHistory = true) {
    const content = typeof p.content === "string" ? p.content : "";
    const version = Number(p.version ?? 0);
    this.needsReset = false;
    const inf = this.inflight;
    if (useHistory && this.client.historyCatchUp && this.client.fetch && this.hasState && version > this.version && !inf?.awaiting) {
      // We missed more than the server replays: fetch exactly what happened from the history
      // and integrate it like a replay, so local edits are transformed precisely (and an op of
      // ours among them is its ack). If that fails, fall back to the probe / diff below.
      this.catchingUp = { content, version };
      this.held = [];
      this.#catchUp(this.epoch);
      return;
    }
    if (inf && (inf.uncertain || inf.awaiting)) {
      // We cannot tell from the state whether the in-flight op was applied: resend it under its
      // seq against the version it was made for and let the answer decide (see #onProbeAnswer).
      // If it is still awaiting an answer on this socket, that answer decides.
      this.resetState = { content, version };
      this.held = [];
      if (!inf.awaiting) this.#sendInflight(this.version);
      return;
    }
    if (inf?.applied) {
      // The server told us it applied our in-flight op: the state includes it.
      this.inflight = null;
      this._persistSeq(inf.seq);
      return this.#reset(applyOp(this.base, inf.op), content, version, this.pendingOp);
    }
    if (inf?.id) {
      // Sent and answered, but with nothing conclusive: let a resend under its seq decide.
      this.resetState = { content, version };
      this.held = [];
      this.#sendInflight(this.version);
      return;
    }
    let local = this.pendingOp;
    if (inf) {
      // Never sent: it simply joins the pending edits and gives back its seq.
      local = compose(inf.op, this.pendingOp);
      this.pendingEdits += inf.edits;
      this.seq = inf.seq - 1;
      this.inflight = null;
    }
    this.#reset(this.base, content, version, local);
  }

  async #catchUp(epoch) {
    const { content, version: target } = this.catchingUp;
    const alive = () => epoch === this.epoch && this.catchingUp;
    try {
      while (this.version < target) {
        const h = await this.client.api(`/api/v1/operations/history/${encodeURIComponent(this.documentId)}?since=${this.version}&limit=1000`);
        if (!alive()) return;
        let progressed = false;
        for (const o of h?.operations ?? []) {
          const v = Number(o.version);
          if (v <= this.version) continue;
          if (v > target) break;
          if (v !== this.version + 1) throw new Error(`history jumps from ${this.version} to ${v}`);
          this.#integrate(o);
          progressed = true;
        }
        if (!progressed) throw new Error("the history does not reach the state");
      }
      if (this.base !== content) throw new Error("the history does not lead to the state");
      this.catchingUp = null;
    } catch (e) {
      if (!alive()) return;
      this.catchingUp = null;
      this.emit("error", { code: "history_unavailable", message: String(e?.message ?? e) });
      const held = this.held;
      this.#onInitialState({ content, version: target }, false);
      if (this.resetState) {
        this.held = held.concat(this.held);
        return; // the probe answer completes the sync
      }
    }
    const held = this.held;
    this.held = [];
    for (const op of held) this.#onRemote(op);
    this.#onSyncStatus({ version: this.version });
  }

  /**
   * Adopts `content` at `version` as the server state. `local` is every unacknowledged local
   * edit, made against `from`; it is rebased over the difference between `from` and `content`.
   */
  #reset(from, content, version, local) {
    const old = this._value;
    const d = diff(from, content);
    const [rebased] = local.length && d.length ? transformPair(local, this.clientId, d, "") : [local];
    this.base = content;
    this.version = version;
    this.hasState = true;
    this.pendingOp = rebased;
    this._value = applyOp(content, rebased);
    if (old !== this._value) this.emit("change", { local: false, ops: toWire(diff(old, this._value)), version, reset: true });
  }

  /** An operation of a §9 batch: ours, answering what this socket sent, is its ack. */
  #onBatched(p) {
    const inf = this.inflight;
    if (inf?.awaiting && p.client_id === this.clientId && Number(p.seq) === inf.seq) return this.#onAck(p, null);
    this.#onRemote(p);
  }

  #onRemote(p) {
    if (this.resetState || this.catchingUp) {
      this.held.push(p);
      return;
    }
    const v = Number(p.version);
    if (v <= this.version) return; // already have it (replay overlap)
    if (v !== this.version + 1) return this.#requestSync();
    this.#integrate(p);
  }

  /** Integrates the server's operation at version + 1 (ours: its ack; others': transformed in). */
  #integrate(p) {
    const v = Number(p.version);
    const inf = this.inflight;
    if (inf && p.client_id === this.clientId && Number(p.seq) === inf.seq) return this.#acked(p.ops, v);
    const op = fromWire(p.ops ?? []);
    let remote = op;
    if (inf) [inf.op, remote] = transformPair(inf.op, this.clientId, remote, p.client_id);
    if (this.pendingOp.length) [this.pendingOp, remote] = transformPair(this.pendingOp, this.clientId, remote, p.client_id);
    this.base = applyOp(this.base, op);
    this._value = applyOp(this._value, remote);
    this.version = v;
    this.emit("change", { local: false, ops: toWire(remote), version: v, clientId: p.client_id, userId: p.user_id });
    this.updateStatus();
  }

  #requestSync() {
    if (this.gapSyncing) return;
    this.gapSyncing = true;
    this.send("sync", { since: this.version });
  }

  #acked(ops, version) {
    const inf = this.inflight;
    const applied = fromWire(ops ?? []);
    const expected = applyOp(this.base, inf.op);
    const actual = applyOp(this.base, applied);
    if (expected !== actual) {
      // The server transformed our op differently from how we transformed the ops we received:
      // adopt the server's result (rebase later edits over the difference) and report it.
      const d = diff(expected, actual);
      if (this.pendingOp.length) [this.pendingOp] = transformPair(this.pendingOp, this.clientId, d, "");
      const old = this._value;
      this._value = applyOp(actual, this.pendingOp);
      this.emit("error", {
        code: "diverged",
        message: "the server applied our operation differently from our transform; adopted the server's text",
        seq: inf.seq,
        version,
        sent: inf.sent,
        ours: toWire(inf.op),
        server: ops,
        base: this.base,
      });
      if (old !== this._value) this.emit("change", { local: false, ops: toWire(diff(old, this._value)), version, reset: true });
    }
    this.base = actual;
    this.version = version;
    this.inflight = null;
    this.seqProbe = null;
    this.seqConfirmed = true;
    this._persistSeq(inf.seq);
    this.emit("ack", { seq: inf.seq, version });
    this.#flush();
    this.updateStatus();
  }

  #onSyncStatus(p) {
    // v1.2 §6.1: `syncing` announces a replay (pending_count operations follow); `synced` ends it.
    if (p.status === "syncing") return;
    this.gapSyncing = false;
    if (this.resetState || this.catchingUp) return; // ready once the probe is answered / the history is in
    this.needsReset = false; // whatever came (replay or state), we are at the current version
    const wasReady = this.ready;
    this.ready = true;
    this.attempt = 0;
    this.loadedAt ??= this.version;
    if (Number(p.version) > this.version) this.#requestSync();
    const inf = this.inflight;
    if (inf && !inf.awaiting) {
      // Resend under the same seq. A replay that did not carry it proves it was not applied.
      if (!wasReady) inf.uncertain = false;
      this.#sendInflight();
    }
    this.#flush();
    if (!wasReady) this.afterSync();
    this.updateStatus();
  }

  #onAck(p, replyTo) {
    const inf = this.inflight;
    if (!inf || Number(p.seq) !== inf.seq || (replyTo && inf.id && replyTo !== inf.id)) return;
    inf.awaiting = false;
    if (this.resetState) return this.#onProbeAnswer(p, null);
    const v = Number(p.version);
    switch (p.status) {
      case "noop":
        this.inflight = null;
        this.seqProbe = null;
        this.seqConfirmed = true;
        this._persistSeq(inf.seq);
        this.emit("ack", { seq: inf.seq, version: this.version, noop: true });
        this.#flush();
        return this.updateStatus();
      case "duplicate": {
        if (this.isStaleDuplicate(p, inf)) return this.#staleSeq();
        // Applied on a socket we lost. The answer repeats the original ack: its version is ours + 1
        // unless we missed something; no ops means it was a noop (or is too old to tell).
        const ops = p.ops ?? [];
        if (ops.length && v === this.version + 1) return this.#acked(ops, v);
        if (!ops.length && !inf.op.length) {
          // A noop both for the server and for us.
          this.inflight = null;
          this.seqProbe = null;
          this.seqConfirmed = true;
          this._persistSeq(inf.seq);
          this.#flush();
          return this.updateStatus();
        }
        if (v > this.version + 1) return this.drop(4002); // the replay after reconnect sorts it out
        // Applied, but not as we have it: reload the state, which includes it.
        inf.applied = true;
        return this.#reload();
      }
      default:
        if (v !== this.version + 1) return this.drop(4002); // the replay after reconnect sorts it out
        return this.#acked(p.ops, v);
    }
  }

  /** Our seq was used by an earlier session of this client_id: find the next free one. */
  #staleSeq(gap = false) {
    const inf = this.inflight;
    this.seqProbe ??= new SeqProbe();
    inf.seq = gap ? this.seqProbe.gap(inf.seq) : this.seqProbe.stale(inf.seq);
    this.seq = inf.seq;
    this.#sendInflight();
  }

  /** Reconnects without `since` to adopt a fresh state (see #onInitialState). */
  #reload() {
    this.needsReset = true;
    this.hasState = false;
    this.drop(4003);
  }

  #onError(p, replyTo) {
    const inf = this.inflight;
    const ours = this.answersInflight(p, replyTo);
    const resend = () => this.#sendInflight(this.resetState ? this.version : undefined);
    if (this.sharedRefusal(p, ours, resend, () => this.#flush())) return;
    inf.awaiting = false;
    if (this.resetState) return this.#onProbeAnswer(null, p);
    switch (p.code) {
      case "version_too_old":
        // Not applied. Take the op back into the pending edits and reload the state.
        this.pendingOp = compose(inf.op, this.pendingOp);
        this.pendingEdits += inf.edits;
        this.seq = inf.seq - 1;
        this.inflight = null;
        this.needsReset = true;
        this.emit("error", { ...p });
        this.send("sync", { since: this.version });
        return this.updateStatus();
      case "seq_gap":
        return this.#staleSeq(true);
      case "internal":
        if (++inf.internalRetries <= 3) {
          this.emit("error", { ...p });
          return this.backOffFor(500 * inf.internalRetries, () => this.#sendInflight());
        }
      // fall through: give up on this op
      default:
        return this.#reject(p);
    }
  }

  /** The server refused the in-flight op for good: undo it locally, keep later edits. */
  #reject(p) {
    const inf = this.inflight;
    this.inflight = null;
    this.seq = inf.seq - 1;
    const old = this._value;
    if (p.code === "forbidden") {
      this.role = "read";
      this.pendingOp = [];
      this.pendingEdits = 0;
      this._value = this.base;
    } else {
      const inv = invert(inf.op, this.base); // applies after inf.op
      let undo = inv;
      if (this.pendingOp.length && inv.length) [this.pendingOp, undo] = transformPair(this.pendingOp, this.clientId, inv, this.clientId);
      this._value = applyOp(this._value, undo);
    }
    this.emit("error", { ...p, rejected: toWire(inf.op) });
    if (old !== this._value) this.emit("change", { local: false, ops: toWire(diff(old, this._value)), version: this.version, rejected: true });
    this.#flush();
    this.updateStatus();
  }

  /** The answer to the in-flight op resent after an initial_state (ack `p` or error `e`). */
  #onProbeAnswer(p, e) {
    const { content, version } = this.resetState;
    if (e && e.code === "rate_limited") return; // resent after the wait, still probing
    const inf = this.inflight;
    this.resetState = null;
    this.inflight = null;
    const afterInf = applyOp(this.base, inf.op);
    if (p && (p.status === "duplicate" || p.status === "noop")) {
      if (this.isStaleDuplicate(p, inf)) {
        // First send of this seq ever and it is taken: stale seq, the op was never applied.
        this.inflight = inf;
        this.resetState = { content, version };
        return this.#staleSeq();
      }
      if (p.status === "duplicate" && Number(p.version) > version) {
        // Applied after the state we were sent: it will come as an operation. Start over.
        this.inflight = inf;
        inf.uncertain = true;
        return this.drop(4002);
      }
      this._persistSeq(inf.seq);
      this.#reset(afterInf, content, version, this.pendingOp);
    } else if (p) {
      // Applied just now, on top of `content`.
      this._persistSeq(inf.seq);
      if (Number(p.version) !== version + 1) {
        this.#reset(afterInf, content, version, this.pendingOp);
        this.hasState = false;
        return this.drop(4002);
      }
      this.#reset(afterInf, applyOp(content, fromWire(p.ops ?? [])), Number(p.version), this.pendingOp);
    } else if (e.code === "version_too_old" || e.code === "seq_gap" || e.code === "internal") {
      // Not applied: it joins the pending edits, rebased onto the new state.
      this.pendingEdits += inf.edits;
      this.seq = inf.seq - 1;
      if (e.code === "seq_gap") {
        this.seqProbe ??= new SeqProbe();
        this.seq = this.seqProbe.gap(inf.seq) - 1;
      }
      this.#reset(this.base, content, version, compose(inf.op, this.pendingOp));
    } else {
      // Refused for good: dropped (the rebase from afterInf removes its effect).
      this.seq = inf.seq - 1;
      this.emit("error", { ...e, rejected: toWire(inf.op) });
      this.#reset(afterInf, content, version, this.pendingOp);
    }
    const held = this.held;
    this.held = [];
    for (const op of held) this.#onRemote(op);
    this.#onSyncStatus({ version: this.version });
  }

  onOpen() {
    super.onOpen();
    this.epoch = (this.epoch ?? 0) + 1;
    this.gapSyncing = false;
  }

  onDisconnect() {
    super.onDisconnect();
    if (this.resetState || this.catchingUp) {
      this.resetState = null;
      this.catchingUp = null;
      this.held = [];
    }
    this.gapSyncing = false;
  }

  /** Leaves the document (closes its socket); the client forgets it. */
  close() {
    super.close();
    this.client._forget(this);
  }
}
