// The entry point: one SidechainClient per user and device, holding the documents it opened.
import { Emitter } from "./emitter.js";
import { TextDoc } from "./text.js";
import { PostDoc } from "./queued.js";
import { CanvasDoc } from "./canvas.js";
import { Channel } from "./channel.js";
import { Feed } from "./feed.js";
import { YjsRoom } from "./yjs.js";

export class ApiError extends Error {
  constructor(status, body, headers) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? `http_${status}`;
    this.details = body?.error?.details;
    this.body = body;
    const ra = headers?.get?.("retry-after");
    this.retryAfterMs = ra ? Number(ra) * 1000 : undefined;
  }
}

const memoryStorage = () => {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => void m.set(k, String(v)) };
};

function defaultStorage() {
  try {
    if (typeof globalThis.localStorage === "object" && globalThis.localStorage) return globalThis.localStorage;
  } catch {}
  return memoryStorage();
}

/** Seconds since the epoch at which a JWT expires, or undefined. */
function jwtExpiry(token) {
  try {
    const part = String(token).split(".")[1];
    const json = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
    return typeof json.exp === "number" ? json.exp : undefined;
  } catch {
    return undefined;
  }
}

const randomId = () => `c-${Math.random().toString(36).slice(2, 10)}${Date.now().toString(36).slice(-4)}`;

export class SidechainClient extends Emitter {
  /**
   * @param {object} o
   * @param {string} o.url  http(s):// or ws(s):// base of the worker
   * @param {string | (() => string | Promise<string>)} o.token
   * @param {string} [o.clientId]  per device/tab; random when absent
   * @param {any} [o.WebSocket]  a WebSocket constructor (Node 20 has none: pass `ws`)
   */
  constructor({
    url,
    token,
    clientId,
    WebSocket,
    fetch,
    storage,
    backoff = {},
    heartbeatMs = 25_000,
    heartbeatTimeoutMs = 10_000,
    typingTimeoutMs = 2_000,
    preventUnsavedChanges = true,
    historyCatchUp = true,
  } = {}) {
    super();
    if (!url) throw new TypeError("url is required");
    if (token === undefined || token === null) throw new TypeError("token is required");
    this.WebSocket = WebSocket ?? globalThis.WebSocket;
    if (!this.WebSocket) throw new TypeError("no WebSocket implementation: pass one as the WebSocket option");
    this.fetch = fetch ?? (globalThis.fetch ? globalThis.fetch.bind(globalThis) : undefined);
    const base = String(url).replace(/\/+$/, "");
    this.httpBase = base.replace(/^ws(s?):/, "http$1:");
    this.wsBase = base.replace(/^http(s?):/, "ws$1:");
    this.token = token;
    this.clientId = String(clientId ?? randomId());
    this.storage = storage ?? defaultStorage();
    this.backoff = { initialMs: 250, maxMs: 10_000, ...backoff };
    this.heartbeatMs = heartbeatMs;
    this.heartbeatTimeoutMs = heartbeatTimeoutMs;
    this.typingTimeoutMs = typingTimeoutMs;
    /** After a reset, fetch the missed operations from the REST history to rebase precisely. */
    this.historyCatchUp = historyCatchUp;
    this.online = true;
    this.closed = false;
    this.docs = new Map();
    this._yjs = new Map();
    this._channel = null;
    this._cachedToken = null;
    this._unsaved = false;
    this._status = "offline";
    if (preventUnsavedChanges && typeof globalThis.addEventListener === "function" && typeof globalThis.document === "object") {
      this._beforeUnload = (e) => {
        if (!this.hasUnsavedChanges) return;
        e.preventDefault();
        e.returnValue = "";
        return "";
      };
      globalThis.addEventListener("beforeunload", this._beforeUnload);
    }
  }

  get canRefreshToken() {
    return typeof this.token === "function";
  }

  /** The `exp` of a JWT (seconds since the epoch), or undefined. */
  _tokenExpiry(token) {
    return jwtExpiry(token);
  }

  /** The token to connect with; a token function is called again when forced or near expiry. */
  async _getToken(force = false) {
    if (typeof this.token !== "function") return String(this.token);
    const exp = this._cachedToken ? jwtExpiry(this._cachedToken) : undefined;
    const stale = exp !== undefined && exp * 1000 - Date.now() < 30_000;
    if (force || !this._cachedToken || stale) this._cachedToken = String(await this.token());
    return this._cachedToken;
  }

  _storageGet(k) {
    try {
      return this.storage.getItem(k);
    } catch {
      return null;
    }
  }

  _storageSet(k, v) {
    try {
      this.storage.setItem(k, v);
    } catch {}
  }

  #open(id, Kind, opts) {
    if (this.closed) throw new Error("client is closed");
    let d = this.docs.get(id);
    if (d) {
      if (!(d instanceof Kind)) throw new TypeError(`${id} is already open as another kind`);
      return d;
    }
    d = new Kind(this, id, opts);
    this.docs.set(id, d);
    d.start();
    return d;
  }

  /** A text document (any id not starting with post: or canvas:). */
  text(documentId) {
    if (/^(post|canvas|ydoc):/.test(documentId)) throw new TypeError(`${documentId} is not a text document`);
    return this.#open(documentId, TextDoc);
  }

  /**
   * A canvas. `viewport` ({x, y, width, height}, §8): only the strokes in that rectangle are
   * loaded and kept current; `canvas.setViewport()` moves it. Opening an open canvas again with
   * a viewport moves its view.
   */
  canvas(id, opts = {}) {
    const docId = id.startsWith("canvas:") ? id : `canvas:${id}`;
    const open = this.docs.get(docId);
    const d = this.#open(docId, CanvasDoc, opts);
    if (open === d && opts.viewport !== undefined) d.setViewport(opts.viewport).catch(() => {});
    return d;
  }

  /**
   * A Yjs document (`ydoc:…`, §3.6): `{doc, provider, awareness, whenSynced(), close()}` on the
   * npm `y-websocket` provider, so any Yjs editor binding works with it. `opts.doc`: your own Y.Doc.
   */
  yjs(id, opts) {
    if (this.closed) throw new Error("client is closed");
    const documentId = id.startsWith("ydoc:") ? id : `ydoc:${id}`;
    let room = this._yjs.get(documentId);
    if (!room) {
      room = new YjsRoom(this, documentId, opts);
      this._yjs.set(documentId, room);
    }
    return room;
  }

  _forgetYjs(room) {
    if (this._yjs.get(room.documentId) === room) this._yjs.delete(room.documentId);
  }

  post(id) {
    return this.#open(id.startsWith("post:") ? id : `post:${id}`, PostDoc);
  }

  /**
   * Many posts' counts (§6.2): `{postId: counts}`, asked 100 ids at a time (one request per 100).
   */
  async feedCounts(postIds) {
    const ids = [...new Set(postIds.map((id) => (id.startsWith("post:") ? id.slice(5) : id)))];
    const out = {};
    for (let i = 0; i < ids.length; i += 100) {
      const chunk = ids.slice(i, i + 100).map(encodeURIComponent).join(",");
      Object.assign(out, (await this.api(`/api/v1/posts/engagement?ids=${chunk}`)).posts);
    }
    return out;
  }

  /**
   * A live map of posts' counts (§6.2): a batch read now, then `watch_posts` on the personal
   * channel (at most one update a second per post); it survives reconnects. `feed.close()` ends it.
   */
  feed(postIds) {
    return new Feed(this, postIds);
  }

  /**
   * The user's personal channel: notifications and presence. `sinceSeq`: the highest
   * notification seq an earlier session saw (`channel.lastSeq`), to resume from it.
   */
  channel(opts) {
    if (!this._channel) {
      this._channel = new Channel(this, opts);
      this._channel.start();
    }
    return this._channel;
  }

  _forget(conn) {
    if (conn === this._channel) this._channel = null;
    else if (this.docs.get(conn.documentId) === conn) this.docs.delete(conn.documentId);
    this._statusChanged();
  }

  get connections() {
    return [...this.docs.values(), ...(this._channel ? [this._channel] : [])];
  }

  /** True while any document has local edits the server has not acknowledged. */
  get hasUnsavedChanges() {
    return [...this.docs.values()].some((d) => d.hasUnsavedChanges);
  }

  /** 'synced' when every connection is; else the least advanced status. */
  get status() {
    const order = ["offline", "connecting", "syncing", "synced"];
    let s = 3;
    for (const c of this.connections) s = Math.min(s, order.indexOf(c.status));
    return this.connections.length ? order[s] : this.online ? "synced" : "offline";
  }

  _statusChanged() {
    const unsaved = this.hasUnsavedChanges;
    if (unsaved !== this._unsaved) {
      this._unsaved = unsaved;
      this.emit("unsaved", unsaved);
    }
    const s = this.status;
    if (s !== this._status) {
      this._status = s;
      this.emit("status", s);
    }
  }

  /** Resolves when every open document is synced. */
  whenSynced(opts) {
    return Promise.all([...this.docs.values()].map((d) => d.whenSynced(opts))).then(() => {});
  }

  /** Closes every socket; edits go on locally and are sent after goOnline(). */
  goOffline() {
    this.online = false;
    for (const c of this.connections) c.pause();
    this._statusChanged();
  }

  goOnline() {
    if (this.closed) return;
    this.online = true;
    for (const c of this.connections) c.resume();
    this._statusChanged();
  }

  close() {
    this.closed = true;
    this.online = false;
    for (const c of this.connections) c.close();
    for (const y of [...this._yjs.values()]) y.close();
    if (this._beforeUnload) globalThis.removeEventListener("beforeunload", this._beforeUnload);
  }

  /** A REST call with the token; a 401 calls the token function again and retries once. */
  async api(path, { method = "GET", body, headers = {} } = {}) {
    if (!this.fetch) throw new Error("no fetch implementation");
    for (let attempt = 0; ; attempt++) {
      const token = await this._getToken(attempt > 0);
      const h = { authorization: `Bearer ${token}`, ...headers };
      if (body !== undefined) h["content-type"] = "application/json";
      const r = await this.fetch(`${this.httpBase}${path}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await r.text();
      let json;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      if (r.status === 401 && attempt === 0 && this.canRefreshToken) continue;
      if (!r.ok) throw new ApiError(r.status, json, r.headers);
      return json;
    }
  }
}
