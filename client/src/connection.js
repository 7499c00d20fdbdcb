// One WebSocket to the server with the life cycle every document shares: connect with a fresh
// token, renew it in-band before it expires (`auth`), heartbeat, reconnect with jittered
// exponential backoff after any close, diagnose a refused upgrade (401 / 403 / 409 / 429) by
// probing the same URL without `Upgrade` (browsers cannot read an upgrade's status), honour
// `rate_limited`.
import { Emitter } from "./emitter.js";

/** Close codes after which reconnecting cannot help. */
const FATAL_CLOSE = new Map([
  [4404, "deleted"],
  [4403, "forbidden"],
]);
/** The server closed the socket because its token expired (or an `auth` was refused). */
const TOKEN_EXPIRED = 4401;
/** How long before the token's `exp` a token function is asked for a new one, sent in-band. */
const REFRESH_BEFORE_MS = 60_000;
/** Upgrade refusals (found by the REST probe) after which reconnecting cannot help by itself. */
const FATAL_HTTP = new Map([
  [403, "forbidden"],
  [409, "client_id_taken"],
  [404, "not_found"],
  [400, "bad_request"],
]);

let nextConnectionId = 0;

export class Connection extends Emitter {
  /**
   * @param {import('./client.js').SidechainClient} client
   * @param {string} path  e.g. /ws/documents/{id}
   */
  constructor(client, path) {
    super();
    this.client = client;
    this.path = path;
    /** 'connecting' | 'syncing' | 'synced' | 'offline' */
    this.status = "offline";
    /** Why the connection stopped retrying (a fatal error code), or null. */
    this.stopped = null;
    this.ws = null;
    this.connected = false;
    this.attempt = 0;
    this.closed = false;
    this.retryTimer = null;
    this.heartbeatTimer = null;
    this.deadTimer = null;
    this.blockedUntil = 0;
    this.msgCounter = 0;
    this.cid = ++nextConnectionId;
    this.stats = { connects: 0, disconnects: 0 };
    /** How long a ready connection must stay up before the reconnect backoff starts over. */
    this.stableMs = 0;
    this.readyAt = 0;
  }

  // --- hooks for subclasses ---------------------------------------------------------------
  /** Extra query parameters of the upgrade URL. */
  query() {
    return {};
  }
  /** Where to ask why an upgrade was refused: the socket URL itself, without `Upgrade` (§5.5). */
  probePath() {
    return this.path;
  }
  onOpen() {}
  onMessage(_msg) {}
  /** A `pong` (the answer to a `ping` this connection sent). */
  onPong(_msg) {}
  onDisconnect() {}
  /** True when nothing local is unacknowledged. */
  isIdle() {
    return true;
  }

  // --- life cycle ---------------------------------------------------------------------------
  start() {
    if (this.closed || !this.client.online) return;
    if (this.ws || this.retryTimer) return;
    this.#connect();
  }

  nextId(prefix = "m") {
    return `${prefix}${this.cid}-${++this.msgCounter}`;
  }

  setStatus(s) {
    if (this.status === s) return;
    this.status = s;
    this.emit("status", s);
    if (s === "synced") this.emit("synced");
    this.client._statusChanged();
  }

  /** Recomputes the status from the connection and the unacknowledged local work. */
  updateStatus() {
    if (!this.connected) this.setStatus(this.ws ? "connecting" : "offline");
    else if (!this.ready || !this.isIdle()) this.setStatus("syncing");
    else this.setStatus("synced");
  }

  async #connect() {
    if (this.closed || !this.client.online || this.ws || this.stopped) return;
    this.ready = false;
    this.setStatus("connecting");
    const marker = {};
    this.ws = marker; // reserves the slot while the token is fetched
    let token;
    try {
      token = await this.client._getToken(this.refreshToken);
      this.refreshToken = false;
    } catch (e) {
      this.ws = null;
      this.emit("error", { code: "token_failed", message: String(e?.message ?? e) });
      this.#scheduleRetry();
      return;
    }
    if (this.ws !== marker || this.closed || !this.client.online) {
      if (this.ws === marker) this.ws = null;
      this.updateStatus();
      return;
    }
    const qs = new URLSearchParams({ token, ...this.query() });
    const url = `${this.client.wsBase}${this.path}?${qs}`;
    this.lastQuery = qs;
    let ws;
    try {
      ws = new this.client.WebSocket(url);
    } catch (e) {
      this.ws = null;
      this.emit("error", { code: "connect_failed", message: String(e?.message ?? e) });
      this.#scheduleRetry();
      return;
    }
    this.ws = ws;
    let opened = false;
    let refused = 0; // the upgrade's HTTP status when the implementation tells it (ws does)
    // A handshake that hangs (a half-open connection, a stalled proxy) is given up like a silent
    // socket, after heartbeatTimeoutMs, and tried again; nothing else would ever end it.
    clearTimeout(this.openTimer);
    if (this.client.heartbeatTimeoutMs) {
      this.openTimer = setTimeout(() => {
        if (this.ws === ws && !opened) this.#lost(1006, false, token);
      }, this.client.heartbeatTimeoutMs);
    }
    ws.onopen = () => {
      if (this.ws !== ws) return;
      clearTimeout(this.openTimer);
      opened = true;
      this.connected = true;
      this.stats.connects++;
      this.#armHeartbeat();
      this.#armRefresh(token);
      this.onOpen();
      this.updateStatus();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.#armHeartbeat();
      const raw = typeof ev.data === "string" ? ev.data : String(ev.data);
      let msg;
      try {
        msg = JSON.parse(raw);
      } catch {
        return;
      }
      if (msg.type === "pong") return this.onPong(msg);
      if (msg.type === "auth_ok") return this.#renewed(msg.payload ?? {});
      if (msg.type === "error" && msg.reply_to && msg.reply_to === this.authId) return this.#renewalRefused(msg.payload ?? {}, token);
      this.onMessage(msg);
    };
    ws.onerror = (ev) => {
      const m = /Unexpected server response: (\d{3})/.exec(String(ev?.message ?? ev?.error?.message ?? ""));
      if (m) refused = Number(m[1]);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.#lost(ev?.code ?? 1006, opened, token, refused);
    };
  }

  /** The socket is gone (closed by either side, or found dead by the heartbeat). */
  #lost(code, opened, token, refused = 0) {
    const ws = this.ws;
    this.ws = null;
    if (ws && typeof ws === "object" && ws.close) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.onerror = () => {}; // closing a connecting socket reports an error: ignore it
      try {
        ws.close();
      } catch {}
    }
    const wasConnected = this.connected;
    this.connected = false;
    this.ready = false;
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.deadTimer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.openTimer);
    if (wasConnected) this.stats.disconnects++;
    this.onDisconnect();
    this.emit("disconnect", { code });
    if (this.closed || !this.client.online || this.stopped) return this.updateStatus();
    if (FATAL_CLOSE.has(code)) return this.#stop(FATAL_CLOSE.get(code), `closed by the server (${code})`);
    if (code === TOKEN_EXPIRED) {
      this.emit("error", { code: "unauthorized", message: "the server closed the socket: token expired (4401)" });
      if (!this.client.canRefreshToken) return this.#stop("unauthorized", "the token expired and cannot be refreshed");
      this.refreshToken = true;
    }
    if (!opened) return this.#diagnose(token, refused);
    this.#scheduleRetry();
  }

  /** With a token function: a new token is sent in-band before the current one expires. */
  #armRefresh(token) {
    clearTimeout(this.refreshTimer);
    const exp = this.client._tokenExpiry(token);
    if (!this.client.canRefreshToken || exp === undefined) return;
    const delay = Math.max(1000, exp * 1000 - Date.now() - REFRESH_BEFORE_MS);
    this.refreshTimer = setTimeout(async () => {
      try {
        const fresh = await this.client._getToken(true);
        if (this.connected) this.authId = this.send("auth", { token: fresh });
      } catch (e) {
        this.emit("error", { code: "token_failed", message: String(e?.message ?? e) });
        this.#armRefresh(token); // try again later; the server closes with 4401 if it is too late
      }
    }, Math.min(delay, 2 ** 31 - 1));
  }

  /** An `auth` answered with an error (e.g. the token function gave no later token): said, and
   * tried again a little later; the server closes with 4401 if it never gets one. */
  #renewalRefused(payload, token) {
    this.emit("error", { code: payload.code ?? "token_failed", message: `token renewal refused: ${payload.message ?? ""}` });
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.#armRefresh(token), 5_000);
  }

  /** `auth_ok` {exp}: the socket lives on with the new token; the next renewal is planned. */
  #renewed({ exp }) {
    this.emit("token_renewed", { exp });
    if (this.client._cachedToken) this.#armRefresh(this.client._cachedToken);
  }

  /** An upgrade was refused or failed: probe why, so 401 refreshes the token, 403 and 409 stop,
   * 429 waits for `Retry-After`. */
  async #diagnose(token, refused) {
    const path = this.probePath();
    let status = refused;
    let code = null;
    let retryAfterMs = 0;
    if (path && this.client.fetch) {
      try {
        const qs = new URLSearchParams(this.lastQuery ?? { token });
        // The probe may hang like the handshake did: it gets the same deadline.
        const ms = this.client.heartbeatTimeoutMs;
        const signal = ms && typeof AbortSignal !== "undefined" && AbortSignal.timeout ? AbortSignal.timeout(ms) : undefined;
        const r = await this.client.fetch(`${this.client.httpBase}${path}?${qs}`, { headers: { authorization: `Bearer ${token}` }, signal });
        status = r.status;
        retryAfterMs = Number(r.headers?.get?.("retry-after") ?? 0) * 1000;
        code = (await r.json().catch(() => null))?.error?.code ?? null;
      } catch {
        status = status || 0; // the network is down: keep retrying
      }
    }
    if (this.closed || !this.client.online) return this.updateStatus();
    if (status === 401) {
      this.emit("error", { code: "unauthorized", message: "the token was refused (401)" });
      if (!this.client.canRefreshToken) return this.#stop("unauthorized", "the token was refused and cannot be refreshed");
      this.refreshToken = true;
    } else if (status === 429) {
      this.emit("error", { code: code ?? "rate_limited", message: "the server refused the connection for now (429)", retry_after_ms: retryAfterMs });
      return this.#scheduleRetry(retryAfterMs || 1000);
    } else if (FATAL_HTTP.has(status)) {
      return this.#stop(code && status !== 400 ? code : FATAL_HTTP.get(status), `the server refused the connection (${status}${code ? ` ${code}` : ""})`);
    }
    this.#scheduleRetry();
  }

  /** Stops retrying (the app must act: new token, other client_id, …); goOnline() tries again. */
  stopWith(code, message) {
    this.#stop(code, message);
    const ws = this.ws;
    if (ws && typeof ws === "object") this.#lost(1000, this.connected);
  }

  #stop(code, message) {
    this.stopped = code;
    this.updateStatus();
    this.emit("error", { code, message, fatal: true });
  }

  #scheduleRetry(minDelay = 0) {
    if (this.closed || !this.client.online || this.retryTimer) return;
    const { initialMs, maxMs } = this.client.backoff;
    // The backoff starts over only after a connection that stayed up (a server that accepts
    // and then closes at once must not be hammered).
    if (this.readyAt && Date.now() - this.readyAt >= this.stableMs) this.attempt = 0;
    this.readyAt = 0;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    // Full jitter: anywhere between a quarter and the whole ceiling, so a restart does not make
    // every client come back in the same instant.
    const delay = Math.max(minDelay, ceiling * (0.25 + 0.75 * Math.random()));
    this.updateStatus();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.#connect();
    }, delay);
  }

  /** Called by subclasses once the connect sequence is complete. */
  markReady() {
    this.ready = true;
    this.readyAt = Date.now();
    this.updateStatus();
  }

  #armHeartbeat() {
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.deadTimer);
    const ms = this.client.heartbeatMs;
    if (!ms) return;
    this.heartbeatTimer = setTimeout(() => {
      this.sendRaw('{"type":"ping"}');
      // Any frame proves the socket alive; none within the timeout means a dead connection.
      this.deadTimer = setTimeout(() => this.#lost(4000, true), this.client.heartbeatTimeoutMs);
    }, ms);
  }

  sendRaw(text) {
    const ws = this.ws;
    if (!this.connected || !ws || typeof ws !== "object") return false;
    try {
      ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  /** Sends one envelope; false when not connected (the caller keeps it for later). */
  send(type, payload = {}, id = this.nextId()) {
    return this.sendRaw(JSON.stringify({ type, id, timestamp: Date.now(), payload })) ? id : null;
  }

  /** Drops the socket (it will reconnect unless offline/closed). Used by tests and recovery. */
  drop(code = 4001) {
    if (this.ws && typeof this.ws === "object") this.#lost(code, this.connected);
  }

  /** Client went offline: close the socket, keep local state. */
  pause() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    if (ws && typeof ws === "object") this.#lost(1000, this.connected);
    else this.ws = null;
    this.updateStatus();
  }

  resume() {
    this.stopped = null;
    this.attempt = 0;
    this.start();
  }

  close() {
    this.closed = true;
    this.pause();
    this.emit("close");
  }

  /** A `rate_limited` error: nothing is sent before `retry_after_ms`, then `fn` runs. */
  backOffFor(ms, fn) {
    this.blockedUntil = Math.max(this.blockedUntil, Date.now() + ms);
    clearTimeout(this.rateTimer);
    this.rateTimer = setTimeout(() => {
      this.rateTimer = null;
      // The wait is over when the timer fires (it may run a millisecond before Date.now() agrees).
      this.blockedUntil = 0;
      fn();
    }, Math.max(0, this.blockedUntil - Date.now()));
  }

  get rateBlocked() {
    return Date.now() < this.blockedUntil;
  }

  /** Resolves when the status is 'synced'; rejects if the connection stops for good. */
  whenSynced({ timeoutMs } = {}) {
    if (this.status === "synced") return Promise.resolve();
    return new Promise((resolve, reject) => {
      let timer;
      const offs = [];
      const done = (err) => {
        clearTimeout(timer);
        offs.forEach((f) => f());
        err ? reject(err) : resolve();
      };
      offs.push(this.on("synced", () => done()));
      offs.push(this.on("error", (e) => e.fatal && done(Object.assign(new Error(e.message), { code: e.code }))));
      offs.push(this.on("close", () => done(Object.assign(new Error("closed"), { code: "closed" }))));
      if (timeoutMs) timer = setTimeout(() => done(Object.assign(new Error("whenSynced timed out"), { code: "timeout" })), timeoutMs);
    });
  }
}
