// The auth matrix of PROTOCOL §2, over HTTP and WebSocket upgrades.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { signToken } from "../scripts/token.mjs";
import { api, Client, opFrame, SECRET, token, useWorker } from "./helpers.mjs";

const w = useWorker();

const DOC = "channel:auth:description";
const now = () => Math.floor(Date.now() / 1000);
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");

const refused = {
  "no token": [undefined, 401],
  expired: [signToken({ sub: "u", exp: now() - 5, docs: { "*": "write" } }, SECRET), 401],
  "bad signature": [signToken({ sub: "u", docs: { "*": "write" } }, "another-secret"), 401],
  "alg none": [`${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "u", exp: now() + 600, docs: { "*": "write" } })}.`, 401],
  "alg HS512": [signToken({ sub: "u", docs: { "*": "write" } }, SECRET, { alg: "HS512", typ: "JWT" }), 401],
  "missing sub": [signToken({ docs: { "*": "write" } }, SECRET), 401],
  garbage: ["not.a.jwt", 401],
  "no grant": [token("u", { "channel:other:*": "write" }), 403],
};

describe("authentication and grants", () => {
  for (const [name, [tok, status]] of Object.entries(refused)) {
    it(`refuses ${name} with ${status} over HTTP and before upgrading`, async () => {
      const r = await api(w.url, `/api/v1/documents/${DOC}`, { tok });
      assert.equal(r.status, status, r.text);
      assert.equal(r.json.error.code, status === 401 ? "unauthorized" : "forbidden");
      assert.ok(r.json.error.message.length > 0);
      const c = await Client.open(w.url, DOC, { tok, clientId: "x", expectFail: true });
      assert.equal(c.refusedStatus, status);
    });
  }

  it("a read-only grant may watch but not write", async () => {
    const reader = token("reader", { "channel:auth:*": "read" });
    const c = await Client.open(w.url, DOC, { tok: reader, clientId: "r" });
    assert.equal((await c.next("initial_state")).payload.role, "read");
    c.send(opFrame(DOC, "r", 1, 0, { type: "insert", position: 0, content: "nope" }));
    const err = await c.next("error");
    assert.equal(err.payload.code, "forbidden");
    assert.equal(err.payload.operation_id, "r:1");
    const r = await api(w.url, "/api/v1/operations/apply", {
      method: "POST",
      tok: reader,
      body: { operation: { document_id: DOC, client_id: "r", type: "insert", position: 0, content: "x" } },
    });
    assert.equal(r.status, 403);
    assert.equal((await api(w.url, `/api/v1/documents/${DOC}`, { tok: reader })).json.version, 0);
    c.close();
  });

  it("the most specific grant wins and the header works like ?token=", async () => {
    const tok = token("mixed", { "channel:*": "read", "channel:auth:*": "write", [DOC]: "read" });
    const r = await api(w.url, "/api/v1/operations/apply", {
      method: "POST",
      tok,
      body: { operation: { document_id: DOC, client_id: "m", type: "insert", position: 0, content: "x" } },
    });
    assert.equal(r.status, 403, "the exact id (read) beats the longer prefix (write)");
    const w2 = token("mixed", { "channel:*": "read", "channel:auth:*": "write" });
    const ok = await api(w.url, "/api/v1/operations/apply", {
      method: "POST",
      tok: w2,
      body: { operation: { document_id: DOC, client_id: "m", type: "insert", position: 0, content: "x" } },
    });
    assert.equal(ok.status, 202, ok.text);
  });

  it("HTTP does not accept ?token= (it would leak into logs)", async () => {
    const r = await api(w.url, `/api/v1/documents/${DOC}?token=${token("u")}`);
    assert.equal(r.status, 401);
  });

  it("only a service token deletes a document", async () => {
    const r = await api(w.url, `/api/v1/documents/${DOC}`, { method: "DELETE", tok: token("u") });
    assert.equal(r.status, 403);
  });
});
