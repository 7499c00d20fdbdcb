// The shipped plugin's dialect (§6.1 [1.2]), tried the way the plugin talks: a small client
// written from the plugin's point of view (the old session server's route, `?dialect=plugin`,
// the nested operation with an integer clientId and no seq or version, replies read through
// `transformed_operation`, ISO timestamps and its own integer id) editing next to a v1 SDK client.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { api, applyOps, Client, eventually, opFrame, token, useWorker } from "./helpers.mjs";
import { trackedClients, waitFor } from "./sdk-helpers.mjs";

const w = useWorker({ bindings: { SOCKET_RATE_PER_SEC: "10000", SOCKET_BURST: "10000" } });
const make = trackedClients();
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/**
 * The plugin as it is: it keeps the server's text, applies every operation it hears of in
 * version order (its own through the ack's `transformed_operation`), sends one edit at a time.
 */
class PluginClient {
  constructor(url, docId, tok, clientId) {
    Object.assign(this, { url, docId, tok, clientId, text: "", version: 0, pending: new Map(), statuses: [] });
  }

  async connect(since) {
    const qs = new URLSearchParams({ token: this.tok, client_id: String(this.clientId), dialect: "plugin" });
    if (since !== undefined) qs.set("since", String(since));
    const ws = new WebSocket(`${this.url.replace(/^http/, "ws")}/ws/document/${encodeURIComponent(this.docId)}?${qs}`);
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
    this.sock = new Client(ws);
    ws.on("message", (data) => this.#hear(JSON.parse(data.toString())));
    await this.sock.next((m) => m.type === "sync_status" && m.payload.status === "synced");
    return this;
  }

  #hear(msg) {
    assert.match(msg.timestamp, ISO, `every frame to the plugin has an ISO time: ${msg.type}`);
    const p = msg.payload;
    if (msg.type === "initial_state") [this.text, this.version] = [p.content, p.version];
    if (msg.type === "sync_status") this.statuses.push([p.status, p.pending_count]);
    if (msg.type === "operation" || msg.type === "sync_operation") {
      this.remote = (this.remote ?? 0) + 1;
      assert.ok(typeof p.client_id === "string" || Number.isInteger(p.client_id));
      this.#order(p.version, [p.operation, p.ops]);
    }
    if (msg.type === "operation_ack" && p.status !== "noop") this.#order(p.version, [p.transformed_operation, p.ops]);
  }

  /** Applies operations in version order; one primitive is read as the plugin reads it. */
  #order(version, [first, ops]) {
    this.pending.set(version, ops.length === 1 ? [first] : ops);
    while (this.pending.has(this.version + 1)) {
      this.version += 1;
      this.text = applyOps(this.text, this.pending.get(this.version));
      this.pending.delete(this.version);
    }
  }

  /** The plugin's nested operation: no seq, no version; answered by an ack it reads back. */
  async edit(op) {
    this.sock.send({ type: "operation", payload: { document_id: this.docId, operation: { clientId: this.clientId, timestamp: new Date().toISOString(), ...op } } });
    const ack = await this.sock.next((m) => m.type === "operation_ack" || m.type === "error");
    assert.equal(ack.type, "operation_ack", JSON.stringify(ack.payload));
    return ack;
  }

  close() {
    this.sock.close();
  }
}

describe("the plugin's dialect", () => {
  it("a plugin client and a v1 SDK client edit concurrently and converge; the plugin reads its own shapes", async () => {
    const docId = "channel:plugin-mix:description";
    const web = make(w.url, token("wendy"), "web-1").text(docId);
    await web.whenSynced();
    const plugin = await new PluginClient(w.url, docId, token("pete"), 4242).connect();
    const first = await plugin.edit({ type: "Insert", position: 0, content: "plugin " });
    const p = first.payload;
    assert.equal(p.client_id, 4242, "its integer client id comes back an integer");
    assert.equal(typeof p.operation_id, "string");
    assert.equal(p.error, null);
    assert.match(p.timestamp, ISO);
    assert.equal(typeof p.server_timestamp, "number", "v1 fields stay");
    assert.deepEqual(p.transformed_operation, { type: "insert", position: 0, content: "plugin ", original_position: 0, transformed_position: 0 });
    // Both type at once, many times: the plugin's edits go at the end of what it sees.
    const rounds = 15;
    const typing = (async () => {
      for (let i = 0; i < rounds; i++) {
        web.insert(0, `w${i}`);
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 0; i < rounds; i++) {
      await plugin.edit({ type: i % 4 === 3 ? "DELETE" : "insert", position: Array.from(plugin.text).length - (i % 4 === 3 ? 1 : 0), ...(i % 4 === 3 ? { length: 1 } : { content: `p${i}` }) });
    }
    await typing;
    await web.whenSynced();
    const server = (await api(w.url, `/api/v1/documents/${encodeURIComponent(docId)}`, { tok: token("reader") })).json;
    await waitFor(() => web.value === server.content, [web]);
    await eventually(() => plugin.version === server.version, "the plugin to hear every operation");
    assert.equal(plugin.text, server.content, "the plugin converged");
    assert.equal(web.value, server.content, "the SDK converged");
    assert.ok(server.version > rounds + 1 && plugin.remote > 0, `the web client's edits were interleaved (${plugin.remote} heard)`);
    // The SDK (v1) socket saw the plugin's ops with the client id as a v1 string.
    const history = await api(w.url, `/api/v1/operations/history/${encodeURIComponent(docId)}?limit=1000`, { tok: token("reader") });
    assert.ok(history.json.operations.some((o) => o.client_id === "4242"), "v1 readers keep the string");
    plugin.close();
  });

  it("a reconnect with since says syncing (with pending_count) before the replay, then synced", async () => {
    const docId = "channel:plugin-reconnect:description";
    const plugin = await new PluginClient(w.url, docId, token("pete"), 77).connect();
    await plugin.edit({ type: "insert", position: 0, content: "abc" });
    const seen = plugin.version;
    plugin.close();
    const other = await Client.join(w.url, docId, { tok: token("olga"), clientId: "olga-1" });
    for (let i = 0; i < 3; i++) await other.submit(opFrame(docId, "olga-1", i + 1, seen + i, { type: "insert", position: 0, content: `${i}` }));
    const again = await new PluginClient(w.url, docId, token("pete"), 77);
    again.text = plugin.text;
    again.version = seen;
    await again.connect(seen);
    assert.deepEqual(again.statuses, [["syncing", 3], ["synced", 0]]);
    assert.equal(again.text, "210abc");
    // A v1 socket hears the same two statuses (every socket, any dialect).
    const v1 = await Client.open(w.url, docId, { tok: token("olga"), clientId: "olga-2", since: seen });
    const statuses = [];
    for (let i = 0; i < 2; i++) statuses.push((await v1.next("sync_status")).payload);
    assert.deepEqual(statuses.map((s) => [s.status, s.pending_count]), [["syncing", 3], ["synced", 0]]);
    assert.equal((await v1.next("sync_operation")).payload.operation, undefined, "v1 frames get no plugin fields");
    // A transformed ack says why, in every dialect.
    const stale = await other.submit(opFrame(docId, "olga-1", 4, seen, { type: "insert", position: 0, content: "!" }));
    assert.equal(stale.payload.status, "transformed");
    assert.equal(stale.payload.reason, "transformed over 3 concurrent operations by olga");
    for (const c of [again, other, v1]) c.close();
  });

  it("over REST the header asks for the dialect: the ack and history items carry the plugin's fields", async () => {
    const docId = "channel:plugin-rest:description";
    const headers = { "x-sidechain-dialect": "plugin" };
    const body = { operation: { type: "Insert", clientId: 991, position: 0, content: "hey" }, documentId: docId };
    const ack = await api(w.url, "/api/v1/operations/apply", { method: "POST", tok: token("pete"), body, headers });
    assert.equal(ack.status, 202, ack.text);
    assert.equal(ack.json.client_id, 991);
    assert.equal(ack.json.transformed_operation.content, "hey");
    assert.match(ack.json.timestamp, ISO);
    const plain = await api(w.url, "/api/v1/operations/apply", { method: "POST", tok: token("pete"), body: { ...body, operation: { ...body.operation, position: 3 } } });
    assert.equal(plain.json.client_id, "991", "without the header the answer is v1");
    assert.equal(plain.json.transformed_operation, undefined);
    const hist = await eventually(async () => {
      const h = await api(w.url, `/api/v1/operations/history/${encodeURIComponent(docId)}`, { tok: token("pete"), headers });
      return h.json.operations?.length === 2 && h;
    }, "history");
    assert.deepEqual([hist.json.operations[0].type, hist.json.operations[0].position, hist.json.operations[0].content, hist.json.operations[0].client_id], ["insert", 0, "hey", 991]);
    const bad = await api(w.url, "/api/v1/operations/apply", { method: "POST", tok: token("pete"), body, headers: { "x-sidechain-dialect": "klingon" } });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /dialect/);
    const refused = await api(w.url, `/ws/document/${encodeURIComponent(docId)}?client_id=9&dialect=klingon`, { tok: token("pete") });
    assert.equal(refused.status, 400, "an unknown dialect is a clear 400 on the probe too");
    const probe = await api(w.url, `/ws/document/${encodeURIComponent(docId)}?client_id=9&dialect=plugin`, { tok: token("pete") });
    assert.equal(probe.status, 200, "the old route answers like the new one");
  });

  it("a nested operation that is not an object is a clear bad_request, nothing applied", async () => {
    const docId = "channel:plugin-bad:description";
    const c = await Client.join(w.url, docId, { tok: token("pete"), clientId: "5" });
    c.send({ type: "operation", id: "x", payload: { document_id: docId, operation: "insert hello" } });
    const err = await c.next("error");
    assert.deepEqual([err.payload.code, err.reply_to], ["bad_request", "x"]);
    c.send({ type: "operation", id: "y", payload: { document_id: docId, operation: { type: "insert", clientId: 5, timestamp: "last tuesday", position: 0, content: "x" } } });
    assert.equal((await c.next("error")).payload.code, "bad_request");
    const doc = await api(w.url, `/api/v1/documents/${encodeURIComponent(docId)}`, { tok: token("pete") });
    assert.equal(doc.json.version, 0);
    c.close();
  });
});
