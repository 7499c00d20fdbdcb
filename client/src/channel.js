// The user's personal channel (GET /ws): notifications, the unread count, presence of watched users.
// It keeps the highest notification `seq` it has seen and reconnects with `?since_seq=` (PROTOCOL
// §5.3), so a push lost in a half-open socket comes again and nothing is shown twice.
import { Connection } from "./connection.js";

export class Channel extends Connection {
  /** @param {{sinceSeq?: number}} [opts] sinceSeq: the highest seq an earlier session saw */
  constructor(client, { sinceSeq } = {}) {
    super(client, "/ws");
    this.watched = new Set();
    /** user_id → presence */
    this.presence = new Map();
    this.unread = null;
    /** The latest version of each notification seen (an aggregated item is replaced when updated). */
    this.notifications = [];
    /** The highest seq seen; null before any (the first connect then gets the unread ones). */
    this.lastSeq = Number.isSafeInteger(sinceSeq) && sinceSeq >= 0 ? sinceSeq : null;
    // A channel the server keeps closing right after the connect (its inbox unreachable) backs
    // off further each time instead of reconnecting at the initial delay forever.
    this.stableMs = 10_000;
    /** feed → its post ids; their union is the socket's `watch_posts` list (§6.2). */
    this.feeds = new Map();
    this.postsSentAt = 0;
  }

  query() {
    return this.lastSeq === null ? {} : { since_seq: String(this.lastSeq) };
  }

  onOpen() {
    this.watchSentAt = 0;
    if (this.watched.size) this._sendWatch();
    this.postsSentAt = 0;
    if (this.feeds.size) this._sendPostWatch();
  }

  /** A feed's posts changed (an empty list: it closed). */
  _watchPosts(feed, ids) {
    if (ids.length) this.feeds.set(feed, ids);
    else this.feeds.delete(feed);
    this._sendPostWatch();
  }

  /** `watch_posts` at most once a second (the server refuses sooner); the latest list wins. */
  _sendPostWatch() {
    if (!this.connected || this.postsTimer) return;
    const wait = this.postsSentAt + 1_000 - Date.now();
    if (wait > 0) {
      this.postsTimer = setTimeout(() => {
        this.postsTimer = null;
        this._sendPostWatch();
      }, wait);
      return;
    }
    this.postsSentAt = Date.now();
    const ids = [...new Set([...this.feeds.values()].flat())].slice(0, 100);
    this.postWatchId = this.send("watch_posts", { post_ids: ids });
  }

  /** The watch list goes at most once a second (the server refuses sooner, §5.1): changes made
   * meanwhile go together when the second is over. */
  _sendWatch() {
    if (!this.connected || this.watchTimer) return;
    const wait = this.watchSentAt + 1_000 - Date.now();
    if (wait > 0) {
      this.watchTimer = setTimeout(() => {
        this.watchTimer = null;
        this._sendWatch();
      }, wait);
      return;
    }
    this.watchSentAt = Date.now();
    this.send("watch_presence", { user_ids: [...this.watched].slice(0, 100) });
  }

  /** A notification: kept and emitted unless this version of it was seen already. */
  #notification(p) {
    if (Number.isSafeInteger(p.seq)) this.lastSeq = Math.max(this.lastSeq ?? 0, p.seq);
    const i = p.event_id === undefined ? -1 : this.notifications.findIndex((n) => n.event_id === p.event_id);
    if (i >= 0) {
      const known = this.notifications[i];
      if (!p.transient && (known.seq ?? 0) >= (p.seq ?? 0)) return; // seen already
      this.notifications.splice(i, 1);
    }
    this.notifications.push(p);
    if (this.notifications.length > 100) this.notifications.shift();
    this.emit("notification", p);
  }

  onMessage(msg) {
    const p = msg.payload ?? {};
    switch (msg.type) {
      case "notification":
        return this.#notification(p);
      case "notification_count":
        // The connect sequence ends with the count: only then is the channel really up (the
        // server closes a socket whose inbox it could not reach), so the backoff resets here.
        if (!this.ready) this.markReady();
        this.unread = p.unread;
        return this.emit("notification_count", p);
      case "presence":
        this.presence.set(p.user_id, p);
        return this.emit("presence", p);
      case "activity_update":
        return this.emit("activity", p);
      case "playback_started":
      case "playback_stopped":
        return this.emit("playback", { ...p, state: msg.type === "playback_started" ? "started" : "stopped" });
      case "engagement_update":
        return this.emit("engagement_update", p);
      case "error":
        if (p.code === "rate_limited" && msg.reply_to && msg.reply_to === this.postWatchId) {
          this.postsSentAt = Date.now() + Number(p.retry_after_ms ?? 1000) - 1_000;
          return this._sendPostWatch();
        }
        if (msg.reply_to && msg.reply_to === this.postWatchId) this.emit("watch_error", p);
        if (p.code === "rate_limited") this.backOffFor(Number(p.retry_after_ms ?? 1000), () => this._sendWatch());
        return this.emit("error", p);
      default:
        return this.emit("message", msg);
    }
  }

  /** Subscribes to the presence of these users (≤ 100 in all); their current presence follows. */
  watchPresence(userIds) {
    for (const u of userIds) this.watched.add(String(u));
    this._sendWatch();
  }

  /**
   * PUT /api/v1/me/presence: {status: 'online'|'away'|'offline', in_studio, daw_type?, visible?, ttl?}.
   * With `ttl` (1–300 s) the status holds without any open socket until the lease lapses.
   */
  setPresence(presence) {
    return this.client.api("/api/v1/me/presence", { method: "PUT", body: presence });
  }

  /** Tells the user's watchers (within their presence audience) that playback started or stopped. */
  setPlayback(state, { trackId, positionMs } = {}) {
    const payload = { state };
    if (trackId !== undefined) payload.track_id = trackId;
    if (positionMs !== undefined) payload.position_ms = positionMs;
    this.send("playback", payload);
  }

  markRead(eventIds) {
    if (eventIds === "all") return this.client.api("/api/v1/me/notifications/read", { method: "POST", body: { all: true } });
    return this.client.api("/api/v1/me/notifications/read", { method: "POST", body: { event_ids: eventIds } });
  }

  close() {
    clearTimeout(this.watchTimer);
    clearTimeout(this.postsTimer);
    super.close();
    this.client._forget(this);
  }
}
