// A Yjs document (§3.6, PROTOCOL §7): the socket speaks the y-websocket protocol, so this is the
// npm `y-websocket` provider, unchanged, with what the SDK adds around it: the client's token
// (a token function is asked again when the server closed for an expired token, or the upgrade
// failed), no BroadcastChannel shortcut between tabs (every edit goes through the server, which
// stores it before relaying), a deleted document ends the connection for good, and `close()`
// also stops the awareness timer.
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import { Emitter } from "./emitter.js";

/** Close codes after which reconnecting is pointless. */
const FATAL = new Map([[4404, "deleted"]]);
const TOKEN_EXPIRED = 4401;

export class YjsRoom extends Emitter {
  /**
   * @param {import("./client.js").SidechainClient} client
   * @param {string} documentId  `ydoc:…`
   * @param {{ doc?: Y.Doc }} [opts]  bring your own `Y.Doc` (e.g. one an editor binding made)
   */
  constructor(client, documentId, { doc } = {}) {
    super();
    this.client = client;
    this.documentId = documentId;
    this.ownsDoc = !doc;
    this.doc = doc ?? new Y.Doc();
    this.closed = false;
    this.provider = new WebsocketProvider(`${client.wsBase}/ws/documents`, documentId, this.doc, {
      connect: false,
      params: {},
      WebSocketPolyfill: client.WebSocket,
      disableBc: true,
      maxBackoffTime: client.backoff.maxMs,
      shouldReconnect: (ev) => !FATAL.has(ev?.code),
    });
    /** The y-protocols awareness (cursors, names): give it to an editor binding. */
    this.awareness = this.provider.awareness;
    this.opened = false;
    this.provider.on("status", ({ status }) => {
      if (status === "connected") this.opened = true;
      this.emit("status", status);
    });
    this.provider.on("sync", (synced) => synced && this.emit("synced", true));
    this.provider.on("connection-close", (ev) => this.#closed(ev));
    this.provider.on("closed", ({ code }) => this.emit("error", { code: FATAL.get(code) ?? "closed", message: `closed by the server (${code})` }));
    this.#connect(false);
  }

  get synced() {
    return this.provider.synced;
  }

  /** Resolves once the document holds the server's state (at once when it already does). */
  whenSynced() {
    if (this.provider.synced) return Promise.resolve();
    return new Promise((resolve) => {
      const on = (s) => s && (this.provider.off("sync", on), resolve());
      this.provider.on("sync", on);
    });
  }

  /** Disconnects and releases the provider; the `Y.Doc` is destroyed only if the SDK made it. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.provider.destroy();
    this.awareness.destroy();
    if (this.ownsDoc) this.doc.destroy();
    this.client._forgetYjs(this);
  }

  async #connect(force) {
    try {
      this.provider.params = { token: await this.client._getToken(force) };
    } catch (e) {
      this.emit("error", { code: "token_failed", message: String(e?.message ?? e) });
    }
    if (!this.closed) this.provider.connect();
  }

  /** A socket ended: the provider retries after its backoff; the token is refreshed before it
   * when the server said it expired, or when the upgrade never opened (maybe a 401). */
  #closed(ev) {
    const opened = this.opened;
    this.opened = false;
    if (this.closed) return;
    const force = ev?.code === TOKEN_EXPIRED || !opened;
    this.client
      ._getToken(force)
      .then((token) => (this.provider.params = { token }))
      .catch((e) => this.emit("error", { code: "token_failed", message: String(e?.message ?? e) }));
  }
}

export { Y };
