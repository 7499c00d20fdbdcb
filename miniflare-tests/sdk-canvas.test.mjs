// The SDK's canvases at scale (§8) against the built worker: `client.canvas(id, {viewport})`
// holds exactly the strokes in its view (checked against an unfiltered SDK client and the REST
// state), `setViewport()` brings the new rectangle's strokes, `clear_all` reaches it, two filtered
// clients editing one stroke converge, a reconnect keeps the view; and the awareness throttle
// turns a burst of 100 cursor moves into two frames (counted by the server), the last delivered.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, token, useWorker } from "./helpers.mjs";
import { trackedClients, waitFor } from "./sdk-helpers.mjs";
import { inView, strokeBox } from "../client/src/index.js";

const w = useWorker({ bindings: { SOCKET_RATE_PER_SEC: "10000", SOCKET_BURST: "10000" } });
const make = trackedClients();
const grant = { "canvas:*": "write" };

const line = (x, y, extra = {}) => ({ points: [[x, y], [x + 20, y + 15]], width: 4, ...extra });
/** The strokes of `map` in `view`, as a sorted [id, data] list. */
const within = (map, view) => [...map].filter(([, d]) => inView(d, view)).sort(([a], [b]) => (a < b ? -1 : 1));
const ids = (map) => [...map.keys()].sort();
const restStrokes = async (doc) => new Map(Object.entries((await api(w.url, `/api/v1/documents/${encodeURIComponent(doc)}`, { tok: token("reader", grant) })).json.strokes));

/** Submits a marker stroke in `view` through `writer` and waits until `reader` has it: every
 * earlier operation that touches the view has then reached `reader` too (one socket, in order). */
async function barrier(writer, reader, view) {
  const id = `marker-${Math.random().toString(36).slice(2)}`;
  await writer.submit([{ type: "stroke_create", stroke_id: id, data: line(view.x, view.y) }]);
  await waitFor(() => reader.strokes.has(id), [reader], { describe: () => `marker ${id} at ${reader.documentId}` });
  await writer.deleteStroke(id);
  await waitFor(() => !reader.strokes.has(id), [reader]);
}

describe("SDK canvas viewports (§8)", () => {
  it("holds exactly the strokes in its view, live; setViewport brings the new view's; a reconnect keeps it; clear_all reaches it", async () => {
    const doc = "canvas:sdk-vp-exact";
    const all = make(w.url, token("painter", grant), "vp-all").canvas(doc);
    await all.whenSynced();
    // 400 strokes over 4000 × 4000, and one without a box (in every view).
    for (let b = 0; b < 8; b++) {
      await all.submit(Array.from({ length: 50 }, (_, i) => ({ type: "stroke_create", stroke_id: `s${b * 50 + i}`, data: line(((b * 50 + i) * 397) % 4000, ((b * 50 + i) * 211) % 4000) })));
    }
    await all.submit([{ type: "stroke_create", stroke_id: "label", data: { text: "no points" } }]);
    const view = { x: 1000, y: 1000, width: 900, height: 700 };
    const viewer = make(w.url, token("viewer", grant), "vp-view").canvas(doc, { viewport: view });
    await viewer.whenSynced();
    assert.equal(viewer.strokesTotal, 401);
    assert.ok(viewer.strokes.size > 5 && viewer.strokes.size < 100, `a few strokes in view: ${viewer.strokes.size}`);
    assert.deepEqual(within(viewer.strokes, view), within(all.strokes, view));
    assert.deepEqual(ids(viewer.strokes), within(all.strokes, view).map(([id]) => id), "nothing outside the view");
    assert.deepEqual(within(viewer.strokes, view), within(await restStrokes(doc), view), "the REST state agrees");

    // Live: an update in view, one far away, one moving a far stroke in, one moving a stroke out.
    const outside = [...all.strokes.keys()].find((id) => id !== "s1" && strokeBox(all.strokes.get(id)) && !inView(all.strokes.get(id), view));
    const inside = ids(viewer.strokes).find((id) => id.startsWith("s"));
    const leaving = ids(viewer.strokes).filter((id) => id.startsWith("s") && id !== inside)[0];
    await all.updateStroke(inside, line(1100, 1100, { colour: "red" }));
    await all.updateStroke("s1", line(3900, 3900, { colour: "far" }));
    await all.updateStroke(outside, line(1500, 1500, { colour: "moved in" }));
    await all.updateStroke(leaving, line(3000, 100));
    await all.submit([{ type: "stroke_create", stroke_id: "far-new", data: line(3500, 3500) }]);
    await barrier(all, viewer, view);
    assert.deepEqual(within(viewer.strokes, view), within(all.strokes, view));
    assert.deepEqual(ids(viewer.strokes), within(all.strokes, view).map(([id]) => id));
    assert.equal(viewer.strokes.get(outside).colour, "moved in", "a stroke entering the view arrives whole");
    assert.ok(!viewer.strokes.has(leaving), "a stroke that left the view is dropped");

    // The versions it skipped are announced: no sync needed, and its version catches up.
    await all.updateStroke("far-new", line(3600, 3600)); // outside the view: announced, not sent
    await waitFor(() => viewer.version >= all.version, [viewer], { events: ["version", "change"], describe: () => `v${viewer.version} < v${all.version}` });

    // Pan: the new rectangle's strokes, exactly.
    const panned = { x: 2800, y: 2800, width: 1300, height: 1300 };
    await viewer.setViewport(panned);
    assert.deepEqual(within(viewer.strokes, panned), within(all.strokes, panned));
    assert.deepEqual(ids(viewer.strokes), within(all.strokes, panned).map(([id]) => id));
    assert.equal(viewer.strokes.get("s1").colour, "far", "strokes arrive as they are now");

    // A reconnect keeps the view (the new socket's query carries it).
    const connects = viewer.stats.connects;
    viewer.drop();
    await waitFor(() => viewer.stats.connects > connects && viewer.status === "synced", [viewer]);
    await all.updateStroke(inside, line(1100, 1100, { colour: "unseen" }));
    await all.updateStroke("s1", line(3900, 3900, { colour: "after the reconnect" }));
    await barrier(all, viewer, panned);
    assert.deepEqual(ids(viewer.strokes), within(all.strokes, panned).map(([id]) => id));
    assert.ok(!viewer.strokes.has(inside));
    assert.equal(viewer.strokes.get("s1").colour, "after the reconnect");

    // null: the whole canvas.
    await viewer.setViewport(null);
    assert.deepEqual([...viewer.strokes].sort(), [...all.strokes].sort());

    await viewer.setViewport(view);
    await all.clear();
    await waitFor(() => viewer.strokes.size === 0 && all.strokes.size === 0, [viewer, all]);
  });

  it("two filtered clients editing one stroke converge, in and out of each other's view", async () => {
    const doc = "canvas:sdk-vp-converge";
    const a = make(w.url, token("ana", grant), "vp-a").canvas(doc, { viewport: { x: 0, y: 0, width: 200, height: 200 } });
    const b = make(w.url, token("ben", grant), "vp-b").canvas(doc, { viewport: { x: 100, y: 100, width: 200, height: 200 } });
    await Promise.all([a.whenSynced(), b.whenSynced()]);
    const id = a.createStroke(line(140, 140));
    await waitFor(() => b.strokes.has(id), [b]);
    for (let round = 0; round < 5; round++) {
      // Concurrent updates of the same stroke from both sides: one wins everywhere.
      await Promise.all([a.updateStroke(id, line(140, 140, { by: "a", round })), b.updateStroke(id, line(150, 150, { by: "b", round }))]);
      await waitFor(() => JSON.stringify(a.strokes.get(id)) === JSON.stringify(b.strokes.get(id)) && a.strokes.get(id)?.round === round, [a, b], {
        describe: () => `${JSON.stringify(a.strokes.get(id))} vs ${JSON.stringify(b.strokes.get(id))}`,
      });
    }
    // a moves it out of b's view (b drops it), then back in (b gets it whole).
    await a.updateStroke(id, line(10, 10, { by: "a", step: "out" }));
    await waitFor(() => !b.strokes.has(id), [b]);
    await a.updateStroke(id, line(180, 180, { by: "a", step: "back" }));
    await waitFor(() => b.strokes.get(id)?.step === "back", [b]);
    assert.deepEqual(a.strokes.get(id), b.strokes.get(id));
  });

  it("setViewport checks its rectangle; a canvas opened again with a viewport moves it", async () => {
    const c = make(w.url, token("cat", grant), "vp-c");
    const d = c.canvas("sdk-vp-args", { viewport: { x: 0, y: 0, width: 10, height: 10 } });
    await d.whenSynced();
    assert.throws(() => d.setViewport({ x: 0, y: 0, width: -1, height: 3 }), RangeError);
    assert.throws(() => d.setViewport({ x: "0", y: 0, width: 1, height: 3 }), TypeError);
    assert.throws(() => c.canvas("other", { viewport: { x: NaN, y: 0, width: 1, height: 1 } }), TypeError);
    assert.equal(c.canvas("sdk-vp-args", { viewport: { x: 5, y: 5, width: 10, height: 10 } }), d);
    assert.deepEqual(d.viewport, { x: 5, y: 5, width: 10, height: 10 });
    await d.setViewport({ x: 5, y: 5, width: 10, height: 10 });
  });
});

describe("SDK awareness throttle", () => {
  it("a burst of 100 cursor moves goes out as two frames (counted by the server), the last one delivered", async () => {
    const doc = "canvas:sdk-throttle";
    const quiet = { heartbeatMs: 0 }; // no pings: every frame the server counts is awareness
    const a = make(w.url, token("mover", grant), "th-a", quiet).canvas(doc);
    const b = make(w.url, token("watcher", grant), "th-b", quiet).canvas(doc);
    await Promise.all([a.whenSynced(), b.whenSynced()]);
    await waitFor(() => a.others.some((o) => o.clientId === "th-b"), [a]);
    const relayed = [];
    b.on("awareness", (p) => p.client_id === "th-a" && relayed.push(p.state.cursor));
    const metrics = async () => (await api(w.url, `/api/v1/documents/${encodeURIComponent(doc)}/metrics`, { tok: token("reader", grant) })).json.since_wake.messages_since_wake;
    const before = await metrics();
    for (let i = 0; i < 100; i++) a.setAwareness({ cursor: i });
    await waitFor(() => b.others.find((o) => o.clientId === "th-a")?.state?.cursor === 99, [b], { describe: () => JSON.stringify(relayed) });
    assert.equal(a.awarenessSent, 2, "the first move at once, the latest at the end of the window");
    assert.equal((await metrics()) - before, 2, "the server handled exactly the frames the SDK sent");
    assert.ok(relayed.length <= 2 && relayed.at(-1) === 99, JSON.stringify(relayed));

    // Closing with a trailing send pending leaves no timer behind.
    a.setAwareness({ cursor: 100 });
    a.setAwareness({ cursor: 101 });
    assert.ok(a._awarenessTimer, "a trailing send is pending");
    a.close();
    assert.equal(a._awarenessTimer, null);
  });
});
