// Yjs documents (§7 [1.2]) with the real npm clients, unchanged: `yjs` + `y-websocket`'s
// WebsocketProvider against the built worker. Every provider is made with `disableBc: true`:
// otherwise providers of one process sync through a BroadcastChannel without the server.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, eventually, serviceToken, startWorker, token, useWorker } from "./helpers.mjs";

const w = useWorker();
const open = [];
after(() => open.forEach(destroy));

// A provider's awareness keeps a timer of its own (y-protocols), which only the doc's destruction
// stops: without it, this file's process would never exit.
function destroy(p) {
  if (p.gone) return;
  p.gone = true;
  p.destroy();
  p.awareness.destroy();
  p.doc.destroy();
}

function provider(id, tok, doc = new Y.Doc(), url = w.url) {
  const p = new WebsocketProvider(`${url.replace(/^http/, "ws")}/ws/documents`, id, doc, {
    params: { token: tok },
    WebSocketPolyfill: WebSocket,
    disableBc: true,
  });
  open.push(p);
  return p;
}

const synced = (p) => eventually(() => p.synced, "provider synced");
const textOf = (p) => p.doc.getText("t").toString();
const serverText = async (id, tok) => (await api(w.url, `/api/v1/documents/${id}?text=t`, { tok })).json;

async function postUpdate(id, tok, update) {
  const resp = await fetch(`${w.url}/api/v1/documents/${id}/update`, {
    method: "POST",
    headers: { authorization: `Bearer ${tok}`, "content-type": "application/octet-stream" },
    body: update,
  });
  return { status: resp.status, json: await resp.json() };
}

describe("yjs documents with y-websocket", () => {
  it("a new client syncs a document that exists, and REST reads the same state", async () => {
    const id = "ydoc:existing";
    const tok = token("alice");
    const a = provider(id, tok);
    await synced(a);
    a.doc.getText("t").insert(0, "hello from alice");
    await eventually(async () => (await serverText(id, tok)).text === "hello from alice", "server has the text");
    destroy(a);

    const b = provider(id, token("bob"));
    await synced(b);
    assert.equal(textOf(b), "hello from alice");
    const state = await serverText(id, tok);
    assert.equal(state.kind, "yjs");
    assert.equal(state.version, 1);
    const copy = new Y.Doc();
    Y.applyUpdate(copy, Buffer.from(state.update, "base64"));
    assert.equal(copy.getText("t").toString(), "hello from alice");
    assert.deepEqual(Buffer.from(state.state_vector, "base64"), Buffer.from(Y.encodeStateVector(b.doc)));
    assert.equal((await api(w.url, `/api/v1/documents/${id}?text=missing`, { tok })).json.text, "");
  });

  it("four clients editing Y.Text, Y.Map and Y.Array at once converge", async () => {
    const id = "ydoc:four";
    const ps = [0, 1, 2, 3].map((i) => provider(id, token(`u${i}`)));
    await Promise.all(ps.map(synced));
    const N = 25;
    await Promise.all(ps.map(async (p, i) => {
      for (let k = 0; k < N; k++) {
        const t = p.doc.getText("t");
        t.insert(Math.floor(Math.random() * (t.length + 1)), `${i}`);
        p.doc.getMap("m").set(`k${k % 5}`, `${i}:${k}`);
        p.doc.getArray("a").push([`${i}-${k}`]);
        if (k % 5 === 0) await new Promise((r) => setImmediate(r));
      }
    }));
    const same = () => {
      const [first, ...rest] = ps.map((p) => Buffer.from(Y.encodeStateAsUpdate(p.doc)).length && JSON.stringify([textOf(p), p.doc.getMap("m").toJSON(), p.doc.getArray("a").toArray()]));
      return ps[0].doc.getArray("a").length === 4 * N && rest.every((r) => r === first);
    };
    await eventually(same, "four replicas identical");
    assert.equal(textOf(ps[0]).length, 4 * N);
    const server = await serverText(id, token("u0"));
    assert.equal(server.text, textOf(ps[0]));
    const copy = new Y.Doc();
    Y.applyUpdate(copy, Buffer.from(server.update, "base64"));
    assert.deepEqual(copy.getMap("m").toJSON(), ps[3].doc.getMap("m").toJSON());
    assert.deepEqual(copy.getArray("a").toArray(), ps[2].doc.getArray("a").toArray());
  });

  it("awareness joins, updates and leaves with its socket", async () => {
    const id = "ydoc:aware";
    const a = provider(id, token("alice"));
    const b = provider(id, token("bob"));
    await Promise.all([synced(a), synced(b)]);
    a.awareness.setLocalStateField("user", { name: "alice", cursor: 1 });
    await eventually(() => b.awareness.getStates().get(a.doc.clientID)?.user?.name === "alice", "bob sees alice");
    a.awareness.setLocalStateField("user", { name: "alice", cursor: 7 });
    await eventually(() => b.awareness.getStates().get(a.doc.clientID)?.user?.cursor === 7, "bob sees alice move");
    b.awareness.setLocalStateField("user", { name: "bob" });
    // A late joiner gets both states on connect.
    const c = provider(id, token("carol"));
    await eventually(() => c.awareness.getStates().get(a.doc.clientID) && c.awareness.getStates().get(b.doc.clientID), "carol sees both");
    // Alice's socket is cut (no goodbye from her client): the server removes her, only her.
    a.shouldConnect = false;
    a.ws.terminate ? a.ws.terminate() : a.ws.close();
    await eventually(() => !b.awareness.getStates().has(a.doc.clientID), "alice removed", 5_000);
    assert.ok(c.awareness.getStates().has(b.doc.clientID), "bob's state stays");
  });

  it("a read-only socket syncs, and its edits are refused with permission-denied", async () => {
    const id = "ydoc:readonly";
    const writer = provider(id, token("wendy"));
    await synced(writer);
    writer.doc.getText("t").insert(0, "original");
    await eventually(async () => (await serverText(id, token("wendy"))).version === 1, "stored");
    const warnings = [];
    const warn = console.warn;
    console.warn = (...args) => warnings.push(args.join(" "));
    try {
      const reader = provider(id, token("rita", { "ydoc:*": "read" }));
      await synced(reader);
      assert.equal(textOf(reader), "original");
      reader.doc.getText("t").insert(0, "vandal ");
      await eventually(() => warnings.some((m) => m.includes("Permission denied") && m.includes("permission-denied")), "permission-denied");
      assert.ok(reader.wsconnected, "the read-only socket stays open");
    } finally {
      console.warn = warn;
    }
    const state = await serverText(id, token("wendy"));
    assert.equal(state.text, "original");
    assert.equal(textOf(writer), "original");
    const denied = await postUpdate(id, token("rita", { "ydoc:*": "read" }), Y.encodeStateAsUpdate(new Y.Doc()));
    assert.equal(denied.status, 403);
  });

  it("a client whose socket is cut reconnects and both sides get what they missed", async () => {
    const id = "ydoc:reconnect";
    const a = provider(id, token("alice"));
    const b = provider(id, token("bob"));
    await Promise.all([synced(a), synced(b)]);
    a.doc.getText("t").insert(0, "A");
    await eventually(() => textOf(b) === "A", "bob has A");
    const reconnected = new Promise((r) => a.on("status", (e) => e.status === "connected" && r()));
    a.ws.terminate();
    a.doc.getText("t").insert(1, "a-offline");
    b.doc.getText("t").insert(0, "b-meanwhile ");
    await reconnected;
    await eventually(() => textOf(a) === textOf(b) && textOf(a).includes("a-offline") && textOf(a).includes("b-meanwhile"), "both converged");
    assert.equal((await serverText(id, token("alice"))).text, textOf(a));
  });

  it("a REST update reaches open sockets; a duplicate changes no version; history and metrics", async () => {
    const id = "ydoc:rest";
    const tok = token("alice");
    const a = provider(id, tok);
    await synced(a);
    const src = new Y.Doc();
    src.getText("t").insert(0, "from REST");
    const update = Y.encodeStateAsUpdate(src);
    const first = await postUpdate(id, tok, update);
    assert.deepEqual([first.status, first.json], [202, { version: 1 }]);
    await eventually(() => textOf(a) === "from REST", "the socket got the REST update");
    assert.deepEqual((await postUpdate(id, tok, update)).json, { version: 1 });
    const json = await api(w.url, `/api/v1/documents/${id}/update`, { method: "POST", tok, body: { update: Buffer.from(Y.encodeStateAsUpdate(a.doc)).toString("base64") } });
    assert.deepEqual([json.status, json.json], [202, { version: 1 }]);
    const notBase64 = await api(w.url, `/api/v1/documents/${id}/update`, { method: "POST", tok, body: { update: "not base64!" } });
    assert.deepEqual([notBase64.status, notBase64.json.error.code], [400, "bad_request"]);
    const garbage = await postUpdate(id, tok, new Uint8Array([255, 255, 255, 255]));
    assert.deepEqual([garbage.status, garbage.json.error.code], [400, "bad_request"]);
    const hist = (await api(w.url, `/api/v1/operations/history/${id}`, { tok })).json;
    assert.equal(hist.operations.length, 1);
    assert.deepEqual(Object.keys(hist.operations[0]).sort(), ["server_timestamp", "update", "user_id", "version"]);
    const metrics = (await api(w.url, `/api/v1/documents/${id}/metrics`, { tok })).json;
    assert.equal(metrics.version, 1);
    assert.ok(metrics.connections >= 1);
  });

  it("DELETE closes the sockets with 4404 and the document reads empty", async () => {
    const id = "ydoc:deleted";
    const tok = token("alice");
    const a = provider(id, tok);
    await synced(a);
    a.doc.getText("t").insert(0, "doomed");
    await eventually(async () => (await serverText(id, tok)).version === 1, "stored");
    const closed = new Promise((r) => a.on("connection-close", (e) => r(e?.code)));
    const del = await api(w.url, `/api/v1/documents/${id}`, { method: "DELETE", tok: serviceToken() });
    assert.equal(del.status, 200);
    assert.equal(await closed, 4404);
    const after = await serverText(id, tok);
    assert.deepEqual([after.version, after.text], [0, ""]);
  });
});

describe("yjs socket budgets", () => {
  /** A writer and a watcher on `id`; the writer's close codes are recorded. */
  async function pair(id, url) {
    const writer = provider(id, token("budget-writer"), new Y.Doc(), url);
    const watcher = provider(id, token("budget-watcher"), new Y.Doc(), url);
    const closes = [];
    writer.on("connection-close", (e) => closes.push(e?.code));
    await Promise.all([synced(writer), synced(watcher)]);
    return { writer, watcher, closes };
  }

  /** `n` one-character updates from one user at once, far past 60 a second. */
  const burst = (p, n) => {
    for (let i = 0; i < n; i++) p.doc.getText("t").insert(i, "x");
  };

  it("by default, a user past 200 updates at once is closed with 1008 and resyncs", async () => {
    const { writer, watcher, closes } = await pair("ydoc:budget-default", w.url);
    burst(writer, 500);
    await eventually(() => closes.includes(1008), "the writer closed with 1008");
    await eventually(() => textOf(watcher).length === 500, "the watcher has every update after the resync", 20_000);
  });

  it("YJS_RATE_PER_SEC / YJS_BURST raise the budget: 2,000 updates at once, no close", async () => {
    const raised = await startWorker({ bindings: { YJS_RATE_PER_SEC: "100000", YJS_BURST: "100000" } });
    try {
      const { writer, watcher, closes } = await pair("ydoc:budget-raised", raised.url);
      burst(writer, 2_000);
      await eventually(() => textOf(watcher).length === 2_000, "the watcher has every update", 30_000);
      assert.deepEqual(closes, [], "the writer's socket was never closed");
      assert.ok(writer.wsconnected);
      destroy(writer);
      destroy(watcher);
    } finally {
      await raised.mf.dispose();
    }
  });
});

describe("yjs documents across a restart", () => {
  it("every update another client received is there after the runtime restarts, on the first sync", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sc-yjs-"));
    const fast = { SOCKET_RATE_PER_SEC: "10000", SOCKET_BURST: "10000" };
    const first = await startWorker({ persistDir: dir, bindings: fast });
    const id = "ydoc:restart";
    const writer = provider(id, token("alice"), new Y.Doc(), first.url);
    const watcher = provider(id, token("bob"), new Y.Doc(), first.url);
    await Promise.all([synced(writer), synced(watcher)]);
    // More than 1,000 updates, so the log is merged and a wake reads the snapshot and the tail.
    for (let i = 0; i < 1_200; i++) {
      writer.doc.getText("t").insert(writer.doc.getText("t").length, `${i % 10}`);
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    await eventually(() => textOf(watcher).length === 1_200, "the watcher received every update", 30_000);
    const seen = textOf(watcher);
    destroy(writer);
    destroy(watcher);
    await first.mf.dispose();

    const second = await startWorker({ persistDir: dir, bindings: fast });
    try {
      const late = provider(id, token("carol"), new Y.Doc(), second.url);
      await synced(late);
      assert.equal(textOf(late), seen, "the first sync after the restart has everything");
      const state = (await api(second.url, `/api/v1/documents/${id}?text=t`, { tok: token("carol") })).json;
      assert.equal(state.text, seen);
      // A burst past the Yjs budget (60/s, bursts of 200) closes the writer's socket (1008), and
      // it resyncs in fewer, larger updates: the version counts updates that changed something.
      assert.ok(state.version > 0, `version ${state.version}`);
      destroy(late);
    } finally {
      await second.mf.dispose();
    }
  });
});
