// The user's personal channel (GET /ws): notifications, the unread count, presence of watched users.
import { Connection } from "./connection.js";

export class Channel extends Connection {
  constructor(client) {
    super(client, "/ws");
    this.watched = new Set();
    /** user_id → presence */
    this.presence = new Map();
    this.unread = null;
    this.notifications = [];
  }

  onOpen() {
    this.markReady();
    this.watchSentAt = 0;
    if (this.watched.size) this._sendWatch();
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

  onMessage(msg) {
    const p = msg.payload ?? {};
    switch (msg.type) {
      case "notification":
        this.notifications.push(p);
        if (this.notifications.length > 100) this.notifications.shift();
        return this.emit("notification", p);
      case "notification_count":
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
      case "error":
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
    super.close();
    this.client._forget(this);
  }
}
