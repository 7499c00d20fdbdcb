// REST surface: health, documents, channels, deletion, routing errors.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, Client, opFrame, serviceToken, token, useWorker } from "./helpers.mjs";

const w = useWorker();

describe("REST", () => {
  it("health answers with a version and a request id", async () => {
    const r = await api(w.url, "/health");
    assert.equal(r.status, 200);
    assert.equal(r.json.status, "ok");
    assert.ok(r.json.version);
    assert.match(r.headers.get("x-request-id"), /^[0-9a-f-]{36}$/);
  });

  it("channel descriptions are edited through the engine and broadcast", async () => {
    const tok = token("owner", { "channel:abc123:*": "write" });
    const s = await Client.join(w.url, "channel:abc123:description", { tok, clientId: "web" });
    let r = await api(w.url, "/api/v1/channels/abc123/description", { method: "PUT", tok, body: { description: "Lo-fi beats 🎧" } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.json.id, r.json.description, r.json.version], ["abc123", "Lo-fi beats 🎧", 1]);
    r = await api(w.url, "/api/v1/channels/abc123/description", { method: "PUT", tok, body: { description: "Lo-fi house beats 🎧", version: 1 } });
    assert.equal(r.json.version, 2);
    const op = (await s.next((m) => m.type === "operation" && m.payload.version === 2)).payload;
    assert.deepEqual(op.ops, [{ type: "insert", position: 6, content: "house " }]);
    const stale = await api(w.url, "/api/v1/channels/abc123/description", { method: "PUT", tok, body: { description: "x", version: 1 } });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.error.code, "version_conflict");
    const g = await api(w.url, "/api/v1/channels/abc123", { tok });
    assert.deepEqual(g.json, { id: "abc123", description: "Lo-fi house beats 🎧", version: 2 });
    const bad = await api(w.url, "/api/v1/channels/abc123/description", { method: "PUT", tok, body: { description: 5 } });
    assert.equal(bad.status, 400);
    s.close();
  });

  it("routing errors use the error shape: 404, 405, 400, 413", async () => {
    const tok = token("u");
    const cases = [
      [await api(w.url, "/nope", { tok }), 404, "not_found"],
      [await api(w.url, "/api/v1/operations/apply", { tok }), 405, "method_not_allowed"],
      [await api(w.url, "/api/v1/operations/apply", { method: "POST", tok, body: "{not json" }), 400, "bad_request"],
      [await api(w.url, "/api/v1/operations/apply", { method: "POST", tok, body: { operation: { document_id: "bad id!" } } }), 400, "bad_request"],
      [await api(w.url, "/api/v1/operations/apply", { method: "POST", tok, body: "x".repeat(300 * 1024) }), 413, "too_large"],
      [await api(w.url, "/api/v1/operations/history/channel:h:description?limit=5000", { tok }), 400, "bad_request"],
    ];
    for (const [r, status, code] of cases) {
      assert.equal(r.status, status, r.text);
      assert.equal(r.json.error.code, code);
      assert.ok(r.headers.get("x-request-id"));
    }
  });

  // v1.2 §5.5 changes this (was 426): a plain GET on a socket URL is a probe answering what the
  // upgrade would get.
  it("a plain GET on the socket endpoint answers what the upgrade would get", async () => {
    const r = await api(w.url, "/ws/documents/channel:x:description", { tok: token("u") });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, "bad_request");
    const ok = await api(w.url, "/ws/documents/channel:x:description?client_id=c", { tok: token("u") });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { ok: true });
  });

  it("CORS preflight is answered", async () => {
    const r = await api(w.url, "/api/v1/operations/apply", { method: "OPTIONS", headers: { origin: "https://app.sidechain.test" } });
    assert.equal(r.status, 204);
    assert.equal(r.headers.get("access-control-allow-origin"), "https://app.sidechain.test");
  });

  it("deleting a document closes its sockets with 4404 and removes its history", async () => {
    const doc = "channel:gone:description";
    const tok = token("u");
    const c = await Client.join(w.url, doc, { tok, clientId: "g" });
    await c.submit(opFrame(doc, "g", 1, 0, { type: "insert", position: 0, content: "bye" }));
    assert.equal((await api(w.url, `/api/v1/operations/history/${doc}`, { tok })).json.operations.length, 1);
    const del = await api(w.url, `/api/v1/documents/${doc}`, { method: "DELETE", tok: serviceToken() });
    assert.equal(del.status, 200, del.text);
    assert.equal(await c.waitClosed(), 4404);
    const after = (await api(w.url, `/api/v1/documents/${doc}`, { tok })).json;
    assert.deepEqual([after.version, after.content], [0, ""]);
    assert.equal((await api(w.url, `/api/v1/operations/history/${doc}`, { tok })).json.operations.length, 0);
  });

  it("document metrics report connections, version and storage", async () => {
    const doc = "channel:metrics:description";
    const tok = token("u");
    const c = await Client.join(w.url, doc, { tok, clientId: "mm" });
    const before = Date.now();
    await c.submit(opFrame(doc, "mm", 1, 0, { type: "insert", position: 0, content: "x" }));
    const read = (await api(w.url, `/api/v1/documents/${doc}`, { tok })).json;
    // §6.2 [1.2]: times are milliseconds since the epoch.
    assert.ok(read.updated_at >= before - 1000 && read.updated_at <= Date.now() + 1000, `updated_at ${read.updated_at} in ms`);
    const m = (await api(w.url, `/api/v1/documents/${doc}/metrics`, { tok })).json;
    assert.equal(m.connections, 1);
    assert.equal(m.version, 1);
    assert.ok(m.storage_bytes > 0);
    assert.ok(m.last_activity > 0);
    c.close();
  });

  it("service metrics count live sockets, rooms and per-minute rates", async () => {
    const tok = token("m");
    const a = await Client.open(w.url, "channel:live-a:description", { tok, clientId: "a" });
    const b = await Client.open(w.url, "channel:live-b:description", { tok, clientId: "b" });
    await a.synced();
    await b.synced();
    await a.submit(opFrame("channel:live-a:description", "a", 1, 0, { type: "insert", position: 0, content: "x" }));
    assert.equal((await api(w.url, "/api/v1/websocket/metrics", { tok })).status, 403);
    const m = (await api(w.url, "/api/v1/websocket/metrics", { tok: serviceToken() })).json;
    assert.ok(m.connections >= 2 && m.active_documents >= 2, JSON.stringify(m));
    assert.ok(Number.isInteger(m.operations_per_minute) && Number.isInteger(m.errors_per_minute));
    a.close();
    b.close();
    const end = Date.now() + 10_000;
    let after;
    do {
      after = (await api(w.url, "/api/v1/websocket/metrics", { tok: serviceToken() })).json;
    } while (after.connections > m.connections - 2 && Date.now() < end && (await new Promise((r) => setTimeout(r, 50))) === undefined);
    assert.equal(after.connections, m.connections - 2, "closed sockets are no longer counted");
  });
});
