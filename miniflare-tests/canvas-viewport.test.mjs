// Canvases at scale (§8) over real sockets: a socket with a viewport gets only what touches it,
// panning brings exactly the strokes an unfiltered socket has there, clear_all reaches everyone,
// filtered clients converge, and the canvas plan's operation shape applies.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Client, opFrame, token, useWorker } from "./helpers.mjs";

const w = useWorker();
const grant = { "canvas:*": "write" };

/** A stroke's box as §8 defines it: its points, widened by width / 2. */
function box(data) {
  const pts = (data?.points ?? []).map((p) => (Array.isArray(p) ? p : [p.x, p.y]));
  if (!pts.length) return null;
  const half = (data.width ?? 0) / 2;
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  return { x0: Math.min(...xs) - half, y0: Math.min(...ys) - half, x1: Math.max(...xs) + half, y1: Math.max(...ys) + half };
}
const touches = (b, v) => b === null || (b.x0 <= v.x + v.width && b.x1 >= v.x && b.y0 <= v.y + v.height && b.y1 >= v.y);
const stroke = (x, y, extra = {}) => ({ points: [[x, y], [x + 10, y + 10]], width: 2, ...extra });

/** A socket that keeps the strokes it was sent, as a client would. */
class Replica {
  static async open(doc, user, query) {
    const c = await Client.open(w.url, doc, { tok: token(user, grant), clientId: user, query });
    const init = (await c.next("initial_state")).payload;
    await c.synced();
    return Object.assign(new Replica(), { c, user, seq: 0, version: init.version, strokes: { ...init.strokes }, init, opsSeen: [] });
  }

  /** Applies the first `n` frames received (all by default), in arrival order. */
  drain(n = this.c.inbox.length) {
    for (const m of this.c.inbox.splice(0, n)) {
      if (m.type === "operation") {
        this.opsSeen.push(m.payload.version);
        this.version = Math.max(this.version, m.payload.version);
        for (const op of m.payload.ops) this.apply(op);
      }
      if (m.type === "strokes_in_view") Object.assign(this.strokes, m.payload.strokes);
      if (m.type === "sync_status") {
        this.version = Math.max(this.version, m.payload.version);
        this.announced = Math.max(this.announced ?? 0, m.payload.version);
      }
    }
  }

  apply(op) {
    if (op.type === "stroke_create") this.strokes[op.stroke_id] = op.data;
    if (op.type === "stroke_update") this.strokes[op.stroke_id] = op.data; // replaces the data (a stroke entering the view arrives whole)
    if (op.type === "stroke_delete") delete this.strokes[op.stroke_id];
    if (op.type === "clear_all") this.strokes = {};
  }

  async submit(op, timestamp) {
    this.drain();
    const frame = opFrame(this.c.docId, this.user, ++this.seq, this.version, op);
    if (timestamp) frame.payload.timestamp = timestamp;
    this.c.send(frame);
    return this.ack(this.seq);
  }

  /**
   * Waits for the ack of `seq` and applies it after every frame that arrived before it: an
   * operation committed ahead of ours reaches us first, and applying ours before it would
   * undo the server's order.
   */
  async ack(seq) {
    let earlier = 0;
    const ack = await this.c.next((m, i) => {
      const hit = (m.type === "operation_ack" && m.payload.seq === seq) || m.type === "error";
      if (hit) earlier = i;
      return hit;
    });
    assert.equal(ack.type, "operation_ack", JSON.stringify(ack.payload));
    this.drain(earlier);
    this.version = Math.max(this.version, ack.payload.version);
    for (const o of ack.payload.ops ?? []) this.apply(o);
    return ack.payload;
  }

  /** Everything sent before now has arrived (ping → pong on the same socket). */
  async settle() {
    const id = `settle-${++Replica.pings}`;
    this.c.send({ type: "ping", id });
    await this.c.next((m) => m.type === "pong" && m.reply_to === id);
    this.drain();
  }

  within(v) {
    return Object.fromEntries(Object.entries(this.strokes).filter(([, d]) => touches(box(d), v)));
  }
}
Replica.pings = 0;

describe("canvas viewports (§8)", () => {
  it("a filtered socket gets exactly what touches its view, and panning brings what the unfiltered one has there", async () => {
    const doc = "canvas:vp-exact";
    const all = await Replica.open(doc, "painter");
    all.c.docId = doc;
    await all.submit({ ops: [
      { type: "stroke_create", stroke_id: "near", data: stroke(10, 10) },
      { type: "stroke_create", stroke_id: "far", data: stroke(5000, 5000) },
      { type: "stroke_create", stroke_id: "mid", data: stroke(400, 400) },
      { type: "stroke_create", stroke_id: "label", data: { text: "no points: always in view" } },
    ] });
    const view = { x: 0, y: 0, width: 100, height: 100 };
    const vp = await Replica.open(doc, "viewer", { viewport: "0,0,100,100" });
    vp.c.docId = doc;
    assert.deepEqual(Object.keys(vp.init.strokes).sort(), ["label", "near"]);
    assert.equal(vp.init.strokes_total, 4);

    // Operations: one in view, one far away, one moving a far stroke into the view (after counts),
    // one moving an in-view stroke out (before counts).
    const expected = [];
    expected.push((await all.submit({ type: "stroke_update", stroke_id: "near", data: stroke(10, 10, { color: "red" }) })).version);
    await all.submit({ type: "stroke_update", stroke_id: "far", data: stroke(5000, 5000, { color: "blue" }) });
    expected.push((await all.submit({ type: "stroke_update", stroke_id: "mid", data: stroke(50, 50) })).version);
    await all.submit({ type: "stroke_create", stroke_id: "far2", data: stroke(7000, 7000) });
    expected.push((await all.submit({ type: "stroke_update", stroke_id: "near", data: stroke(3000, 3000) })).version);
    await vp.settle();
    assert.deepEqual(vp.opsSeen, expected, "exactly the operations that touch the view, before or after");
    all.drain();
    assert.deepEqual(vp.within(view), all.within(view));

    // Pan: what entered the view arrives as strokes_in_view; the view matches the unfiltered socket.
    const panned = { x: 4990, y: 4990, width: 2100, height: 2100 };
    vp.c.send({ type: "viewport", id: "pan", payload: panned });
    const entered = await vp.c.next((m) => m.type === "strokes_in_view");
    assert.deepEqual(Object.keys(entered.payload.strokes).sort(), ["far", "far2"]);
    vp.c.inbox.unshift(entered);
    await vp.settle();
    assert.deepEqual(vp.within(panned), all.within(panned));
    assert.equal(vp.strokes.far.color, "blue", "the stroke arrives as it is now");

    // Skipped versions need no sync: the socket knows the latest version (delivered or announced).
    const skipped = (await all.submit({ type: "stroke_create", stroke_id: "far3", data: stroke(9000, 9000) })).version;
    if (vp.version < skipped) await vp.c.next((m) => m.type === "sync_status" && m.payload.version >= skipped, 5000);
    assert.ok(!vp.opsSeen.includes(skipped), "an operation outside the view is not sent");

    // clear_all reaches every socket, whatever its view.
    const cleared = (await all.submit({ type: "clear_all" })).version;
    await vp.settle();
    assert.ok(vp.opsSeen.includes(cleared));
    assert.deepEqual([vp.strokes, all.strokes], [{}, {}]);
    all.c.close();
    vp.c.close();
  });

  it("two filtered clients editing one stroke converge, and the canvas plan's shape applies", async () => {
    const doc = "canvas:vp-converge";
    const a = await Replica.open(doc, "ana", { viewport: "0,0,200,200" });
    const b = await Replica.open(doc, "ben", { viewport: "100,100,200,200" });
    a.c.docId = b.c.docId = doc;
    await a.submit({ type: "stroke_create", stroke_id: "s", data: stroke(140, 140) });
    await b.settle();
    // Concurrent updates against the same version: the later timestamp wins everywhere, whichever
    // the server commits first (each order is forced by awaiting the first ack before the second send).
    for (const [round, first] of [[1, "late"], [2, "early"]]) {
      const base = a.version;
      const send = (r, color, timestamp) => {
        r.c.send({ type: "operation", id: `${r.user}-${round}`, payload: { document_id: doc, client_id: r.user, seq: ++r.seq, version: base, type: "stroke_update", stroke_id: "s", data: stroke(140, 140, { color: `${color}-${round}` }), timestamp } });
        return r.ack(r.seq);
      };
      const late = () => send(a, "late", 2000 * round);
      const early = () => send(b, "early", 2000 * round - 1000);
      if (first === "late") await late().then(early);
      else await early().then(late);
      await a.settle();
      await b.settle();
      assert.equal(a.strokes.s.color, `late-${round}`, `round ${round}: ${first} committed first`);
      assert.deepEqual(a.strokes.s, b.strokes.s);
    }

    // The canvas plan's own operation shape (§8), normalised at the edge of parsing.
    b.c.send({ type: "operation", room: doc, timestamp: 3000, data: { operation_type: "stroke_create", stroke_data: { stroke_id: "plan", ...stroke(150, 150) }, client_version: b.version } });
    const ack = await b.c.next((m) => m.type === "operation_ack" || m.type === "error");
    assert.equal(ack.type, "operation_ack", JSON.stringify(ack.payload));
    await a.settle();
    assert.equal(a.strokes.plan.stroke_id, "plan");
    a.c.close();
    b.c.close();
  });
});
