// A canvas: a map stroke_id → data with last-writer-wins per stroke (decided by the server).
// With a viewport (PROTOCOL §8) the socket connects with `?viewport=x,y,w,h` and the doc holds
// only the strokes in view (plus those without a box): `setViewport()` drops what left the view,
// sends `viewport` and merges the `strokes_in_view` answer; operations come only when they touch
// the view, so versions skip, and the server announces skipped versions by `sync_status`.
import { QueuedDoc } from "./queued.js";
import { checkViewport, inView, sameViewport } from "./geom.js";

export class CanvasDoc extends QueuedDoc {
  constructor(client, documentId, { viewport } = {}) {
    super(client, documentId);
    this.confirmed = new Map();
    this._strokes = new Map();
    /** The view `{x, y, width, height}`, or null for the whole canvas. */
    this.viewport = checkViewport(viewport);
    /** All strokes of the canvas (`strokes_total` of the last connect), or null before it. */
    this.strokesTotal = null;
    this._viewSeq = 0; // bumped by every setViewport that changes the view
    this._settledSeq = -1; // the latest view whose strokes are all here
    this._viewWaiters = [];
    this._viewPings = new Map(); // ping id → view seq it follows
    this._queryView = null; // the viewport this socket was opened with
    this._filtered = false; // this socket may skip versions
  }

  /** The strokes as shown: the server's, with unacknowledged local ops on top. */
  get strokes() {
    return this._strokes;
  }

  batchSize() {
    return 50;
  }

  query() {
    const q = super.query();
    this._queryView = this.viewport;
    this._filtered = this.viewport !== null;
    this._viewPings.clear();
    const v = this.viewport;
    if (v) q.viewport = [v.x, v.y, v.width, v.height].join(",");
    return q;
  }

  gapsExpected() {
    return this._filtered;
  }

  onOpen() {
    super.onOpen();
    // The view changed while this socket was being opened: tell the server now.
    if (!sameViewport(this._queryView, this.viewport)) this.#sendViewport();
  }

  afterSync() {
    super.afterSync();
    if (sameViewport(this._queryView, this.viewport)) this.#settle(this._viewSeq);
  }

  onPong(msg) {
    const seq = this._viewPings.get(msg.reply_to);
    if (seq === undefined) return;
    this._viewPings.delete(msg.reply_to);
    this.#settle(seq);
  }

  onMessage(msg) {
    const p = msg.payload ?? {};
    if (msg.type === "strokes_in_view") return this.#strokesInView(p);
    if (msg.type === "sync_status" && this.ready && this._filtered && p.status === "synced") {
      // §8: versions outside the view were skipped; nothing to fetch.
      if (Number(p.version) > this.version) {
        this.version = Number(p.version);
        this.emit("version", this.version);
      }
      return;
    }
    super.onMessage(msg);
  }

  loadState(p) {
    this.confirmed = new Map(Object.entries(p.strokes ?? {}).filter(([, d]) => inView(d, this.viewport)));
    this.strokesTotal = Number(p.strokes_total ?? Object.keys(p.strokes ?? {}).length);
  }

  applyConfirmed(ops) {
    if (!this._filtered) return applyCanvas(this.confirmed, ops);
    // The server sends only what took effect: a stroke entering the view arrives whole in its
    // update; one that left it is dropped (it is no longer kept current).
    for (const o of ops) {
      if (o.type === "clear_all") this.confirmed.clear();
      else if (o.type === "stroke_delete") this.confirmed.delete(o.stroke_id);
      else if (o.type === "stroke_create" || o.type === "stroke_update") {
        if (inView(o.data, this.viewport)) this.confirmed.set(o.stroke_id, o.data);
        else this.confirmed.delete(o.stroke_id);
      }
    }
  }

  #strokesInView(p) {
    for (const [id, data] of Object.entries(p.strokes ?? {})) if (inView(data, this.viewport)) this.confirmed.set(id, data);
    if (this._filtered && Number(p.version) > this.version) this.version = Number(p.version);
    this.stateChanged("view");
  }

  stateChanged(why) {
    const view = new Map(this.confirmed);
    for (const i of [...(this.inflight?.items ?? []), ...this.queue]) applyCanvas(view, i.prims);
    this._strokes = view;
    this.emit("change", { reason: why, strokes: view, version: this.version });
  }

  /**
   * Changes the view (null: the whole canvas). Strokes outside it are dropped at once; resolves
   * once the strokes of the new view are here (after a reconnect too).
   */
  setViewport(viewport) {
    const v = checkViewport(viewport);
    if (!sameViewport(v, this.viewport)) {
      this.viewport = v;
      this._viewSeq++;
      if (v) for (const [id, d] of this.confirmed) if (!inView(d, v)) this.confirmed.delete(id);
      this.stateChanged("view");
      this.#sendViewport();
    }
    const seq = this._viewSeq;
    if (this._settledSeq >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => this._viewWaiters.push({ seq, resolve, reject }));
  }

  /** `viewport`, then a `ping` whose `pong` says the answer (if any) has arrived. */
  #sendViewport() {
    if (!this.connected) return; // the next connect carries it in its query
    const v = this.viewport;
    if (!this.send("viewport", v && { x: v.x, y: v.y, width: v.width, height: v.height })) return;
    if (v) this._filtered = true;
    const ping = this.send("ping", {}, this.nextId("vp"));
    if (ping) this._viewPings.set(ping, this._viewSeq);
  }

  #settle(seq) {
    this._settledSeq = Math.max(this._settledSeq, seq);
    const due = this._viewWaiters.filter((w) => w.seq <= seq);
    this._viewWaiters = this._viewWaiters.filter((w) => w.seq > seq);
    for (const w of due) w.resolve();
  }

  /** Adds a stroke; returns its id (generated when not given). */
  createStroke(data, strokeId = `${this.clientId}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`) {
    this.submit([{ type: "stroke_create", stroke_id: strokeId, data }]).catch(() => {});
    return strokeId;
  }

  updateStroke(strokeId, data) {
    return this.submit([{ type: "stroke_update", stroke_id: strokeId, data }]);
  }

  deleteStroke(strokeId) {
    return this.submit([{ type: "stroke_delete", stroke_id: strokeId }]);
  }

  clear() {
    return this.submit([{ type: "clear_all" }]);
  }

  close() {
    super.close();
    const err = Object.assign(new Error("document closed"), { code: "closed" });
    for (const w of this._viewWaiters.splice(0)) w.reject(err);
  }
}

function applyCanvas(map, ops) {
  for (const o of ops) {
    switch (o.type) {
      case "stroke_create":
        if (!map.has(o.stroke_id)) map.set(o.stroke_id, o.data);
        break;
      case "stroke_update":
        if (map.has(o.stroke_id)) map.set(o.stroke_id, o.data);
        break;
      case "stroke_delete":
        map.delete(o.stroke_id);
        break;
      case "clear_all":
        map.clear();
        break;
    }
  }
}
