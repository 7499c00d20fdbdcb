// What every document socket has besides its operations: who is here, awareness, typing, presence,
// room events, and the per-(document, client_id) seq counter.
import { Connection } from "./connection.js";

/** Awareness (cursors) goes out at most once per this many ms per room, the latest state winning (§8). */
export const AWARENESS_EVERY_MS = 50;

export class Room extends Connection {
  constructor(client, documentId) {
    super(client, `/ws/documents/${encodeURIComponent(documentId)}`);
    this.documentId = documentId;
    this.clientId = client.clientId;
    /** 'write' | 'read' | null until the first initial_state. */
    this.role = null;
    this.sessionId = null;
    /** client_id → {clientId, userId, name, state, typing} for every other client in the room. */
    this._others = new Map();
    /** user_id → presence payload pushed into the room. */
    this.presence = new Map();
    this._typingUsers = new Set();
    this._awareness = undefined; // undefined: never set; null: cleared
    this._awarenessSentAt = -Infinity;
    this._awarenessTimer = null;
    /** Awareness frames this room has sent (the throttle's effect, for apps and tests). */
    this.awarenessSent = 0;
    this._typingSent = 0;
    this._typingStop = null;
    this._seqKey = `sidechain:seq:${this.clientId}:${documentId}`;
    /** The last seq this client used in this document (from storage when there is one). */
    this.seq = Number(client._storageGet(this._seqKey) ?? 0) || 0;
    /** The version when this instance first synced, and whether an ack proved our seq line ours. */
    this.loadedAt = null;
    this.seqConfirmed = false;
  }

  /**
   * A `duplicate` answer means "already applied" — unless the seq belongs to an earlier session of
   * this client_id: the original was applied before this instance loaded the document, or it is
   * the first send ever of a seq that no ack has confirmed yet and no socket was lost meanwhile.
   */
  isStaleDuplicate(p, inf) {
    if (p.status !== "duplicate") return false;
    if (this.loadedAt !== null && (p.ops ?? []).length && Number(p.version) <= this.loadedAt) return true;
    return !inf.everLost && !this.seqConfirmed;
  }

  /** Every other client in the room (not this one), with awareness state and typing flag. */
  get others() {
    return [...this._others.values()].map((o) => ({ ...o, typing: this._typingUsers.has(o.userId) }));
  }

  setAwareness(state) {
    this._awareness = state ?? null;
    this._sendAwareness();
  }

  get awareness() {
    return this._awareness ?? null;
  }

  /**
   * Sends the latest awareness state, at most once per AWARENESS_EVERY_MS: a call inside the
   * window arms one timer for its end, which sends whatever is latest then (the trailing edge).
   */
  _sendAwareness() {
    if (this._awareness === undefined || !this.ready || this.closed) return;
    if (this.rateBlocked) return;
    const wait = this._awarenessSentAt + AWARENESS_EVERY_MS - Date.now();
    if (wait > 0) {
      this._awarenessTimer ??= setTimeout(() => {
        this._awarenessTimer = null;
        this._sendAwareness();
      }, wait);
      return;
    }
    if (this.send("awareness", { state: this._awareness })) {
      this._awarenessSentAt = Date.now();
      this.awarenessSent++;
    }
  }

  #stopAwarenessTimer() {
    clearTimeout(this._awarenessTimer);
    this._awarenessTimer = null;
  }

  /** Marks the user as typing; a `stopped_typing` follows automatically after a quiet spell. */
  typing() {
    const now = Date.now();
    // The server drops a typing flag after 5 s: refresh well before that while typing goes on.
    if (now - this._typingSent > 3000 && this.ready && !this.rateBlocked) {
      if (this.send("typing", {})) this._typingSent = now;
    }
    clearTimeout(this._typingStop);
    this._typingStop = setTimeout(() => this.stopTyping(), this.client.typingTimeoutMs);
  }

  stopTyping() {
    clearTimeout(this._typingStop);
    this._typingStop = null;
    if (this._typingSent) {
      this._typingSent = 0;
      this.send("stopped_typing", {});
    }
  }

  _persistSeq(seq) {
    if (seq > (this._storedSeq ?? 0)) {
      this._storedSeq = seq;
      this.client._storageSet(this._seqKey, String(seq));
    }
  }

  onOpen() {
    this._typingSent = 0;
  }

  onDisconnect() {
    // The reconnect sends the latest state once synced (afterSync).
    this.#stopAwarenessTimer();
    this._others.clear();
    this._typingUsers.clear();
    this.emit("others", this.others);
    // An op awaiting its ack may or may not have been applied: the reconnect finds out.
    const inf = this.inflight;
    if (inf && inf.awaiting) {
      inf.awaiting = false;
      inf.uncertain = true;
      inf.everLost = true;
    }
  }

  /** Whether an `error` answers the op in flight (by the message id, else by its operation id). */
  answersInflight(p, replyTo) {
    const inf = this.inflight;
    return Boolean(inf && (replyTo ? replyTo === inf.id : p.operation_id === `${this.clientId}:${inf.seq}`));
  }

  /**
   * The refusals every kind answers alike; true when `p` was one of them (or not about the op in
   * flight). `rate_limited`: wait `retry_after_ms`, then resend the same seq, pending edits and
   * awareness; `client_id_taken`: stop.
   */
  sharedRefusal(p, ours, resend, flush) {
    if (p.code === "rate_limited") {
      if (ours) this.inflight.awaiting = false;
      this.emit("error", { ...p });
      this.backOffFor(Number(p.retry_after_ms ?? 1000), () => {
        if (this.inflight && !this.inflight.awaiting) resend();
        flush();
        this._sendAwareness();
      });
      return true;
    }
    if (p.code === "client_id_taken") {
      this.stopWith("client_id_taken", p.message ?? "client_id belongs to another user");
      return true;
    }
    if (!ours) {
      this.emit("error", { ...p });
      return true;
    }
    return false;
  }

  /** Handles the messages every kind shares; returns true when handled. */
  handleRoomMessage(msg) {
    const p = msg.payload ?? {};
    switch (msg.type) {
      case "initial_state":
        this.role = p.role ?? this.role;
        this.sessionId = p.session_id ?? this.sessionId;
        this._others.clear();
        for (const u of p.users ?? [])
          for (const c of u.client_ids ?? [])
            if (c !== this.clientId) this._others.set(c, { clientId: c, userId: u.user_id, name: u.name, state: null });
        for (const a of p.awareness ?? []) {
          const o = this._others.get(a.client_id);
          if (o) o.state = a.state;
        }
        this.emit("others", this.others);
        return false; // the kind handles the content
      case "join": {
        const c = p.client_id;
        if (c !== undefined && c !== this.clientId && !this._others.has(c))
          this._others.set(c, { clientId: c, userId: p.user?.id, name: p.user?.name, state: null });
        this.emit("join", p);
        this.emit("others", this.others);
        return true;
      }
      case "leave":
        this._others.delete(p.client_id);
        this.emit("leave", p);
        this.emit("others", this.others);
        return true;
      case "awareness": {
        if (p.client_id === this.clientId) return true;
        const o = this._others.get(p.client_id) ?? { clientId: p.client_id, userId: p.user_id, name: p.user_id, state: null };
        o.state = p.state;
        this._others.set(p.client_id, o);
        this.emit("awareness", p);
        this.emit("others", this.others);
        return true;
      }
      case "typing":
      case "stopped_typing":
        if (msg.type === "typing") this._typingUsers.add(p.user_id);
        else this._typingUsers.delete(p.user_id);
        this.emit(msg.type, p);
        this.emit("others", this.others);
        return true;
      case "presence":
        this.presence.set(p.user_id, p);
        this.emit("presence", p);
        return true;
      case "room_event":
        this.emit("room_event", p);
        return true;
      default:
        return false;
    }
  }

  /** Leaves the room: no timer of it stays armed. */
  close() {
    super.close();
    this.#stopAwarenessTimer();
    clearTimeout(this._typingStop);
    this._typingStop = null;
  }

  /** After the connect sequence: resend what the server forgot with the socket. */
  afterSync() {
    this._sendAwareness();
  }
}

/**
 * Seq probing for a client_id used before by an earlier session whose seq we do not know.
 * A `duplicate` for a seq sent for the first time means the seq is stale; `seq_gap` means too
 * high. Binary search between the two finds the next free seq in O(log n) round trips.
 */
export class SeqProbe {
  constructor() {
    this.lo = 0; // every seq ≤ lo is used
    this.hi = Infinity; // seq ≥ hi skips ahead
  }
  stale(seq) {
    this.lo = Math.max(this.lo, seq);
    return this.next();
  }
  gap(seq) {
    this.hi = Math.min(this.hi, seq);
    return this.next();
  }
  next() {
    if (this.hi === Infinity) return this.lo + Math.max(1, this.lo); // doubles
    return Math.max(this.lo + 1, Math.floor((this.lo + this.hi) / 2));
  }
}
