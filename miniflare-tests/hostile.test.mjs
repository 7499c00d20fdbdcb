// What real and hostile clients tried on the v1.0 server (room core v2): identity hijack, the
// anchoring tie-break, panicking headers, path tricks, big numbers, pre-claimed comment ids and
// posts, and a deleted document id that is reused.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { useWorker, Client, api, token, serviceToken, opFrame } from "./helpers.mjs";

const w = useWorker();

const apply = (tok, operation, extra = {}) => api(w.url, "/api/v1/operations/apply", { method: "POST", tok, body: { operation, ...extra } });
/** The status of a WebSocket upgrade of `path`, sent byte for byte. */
function upgradeStatus(path) {
  const { hostname, port } = new URL(w.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path, headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" } });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve(res.statusCode);
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", reject);
    req.end();
  });
}

const content = async (doc) => (await api(w.url, `/api/v1/documents/${encodeURIComponent(doc)}`, { tok: serviceToken() })).json;

describe("hostile and real clients", () => {
  it("a replacement ties with a concurrent insert at its start, in both arrival orders (§3.3 [1.1])", async () => {
    for (const order of ["replace-first", "insert-first"]) {
      const doc = `anchor:${order}`;
      const tok = token(`anchor-${order}`);
      assert.equal((await apply(tok, { document_id: doc, client_id: "setup", type: "insert", position: 0, content: "abc" })).status, 202);
      const replace = { document_id: doc, client_id: "c-a", version: 1, ops: [{ type: "delete", position: 1, length: 1 }, { type: "insert", position: 1, content: "y" }] };
      const insert = { document_id: doc, client_id: "c-b", version: 1, type: "insert", position: 1, content: "x" };
      for (const op of order === "replace-first" ? [replace, insert] : [insert, replace]) {
        assert.equal((await apply(tok, op)).status, 202);
      }
      assert.equal((await content(doc)).content, "ayxc", order);
    }
  });

  // v1.2 §5.1: the claim is made by the first operation (a connect claims nothing), so each
  // owner writes once before the others are refused (before v1.2 the connect alone claimed).
  it("a client_id belongs to its first user: others are refused on upgrade and over REST (409)", async () => {
    const doc = "owned:doc";
    const alice = await Client.join(w.url, doc, { tok: token("alice"), clientId: "laptop" });
    const ack = await alice.submit(opFrame(doc, "laptop", 1, 0, { type: "insert", position: 0, content: "mine" }));
    assert.equal(ack.payload.status, "accepted");
    const bob = await Client.open(w.url, doc, { tok: token("bob"), clientId: "laptop", expectFail: true });
    assert.equal(bob.refusedStatus, 409);
    const rest = await apply(token("bob"), { document_id: doc, client_id: "laptop", seq: 2, type: "insert", position: 0, content: "evil" });
    assert.equal(rest.status, 409);
    assert.equal(rest.json.error.code, "client_id_taken");
    assert.equal((await content(doc)).content, "mine");
    // The plugin's small integer ids too: "12345" of one user is not another's.
    const carol = await Client.join(w.url, doc, { tok: token("carol"), clientId: 12345 });
    await carol.submit(opFrame(doc, "12345", 1, 1, { type: "insert", position: 0, content: "c" }));
    const dave = await Client.open(w.url, doc, { tok: token("dave"), clientId: "12345", expectFail: true });
    assert.equal(dave.refusedStatus, 409);
    alice.close();
    carol.close();
  });

  it("a non-ASCII byte after Bearer is a 401, and the worker keeps serving", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await api(w.url, "/api/v1/documents/x", { headers: { authorization: "Bearer\u00e9abc" } });
      assert.equal(r.status, 401);
    }
    assert.equal((await api(w.url, "/health")).status, 200);
  });

  it("dot segments never reach the personal channel or name a document", async () => {
    const q = `?token=${token("u")}&client_id=c`;
    // Sent as written (no client-side normalisation), as a hostile client would.
    assert.equal(await upgradeStatus(`/ws/documents/..${q}`), 404, "/ws/documents/.. is not the personal channel");
    assert.equal(await upgradeStatus(`/ws/documents/%2E%2E${q}`), 404, "URL parsing treats %2E%2E as ..");
    const rest = await apply(token("u"), { document_id: "..", client_id: "c", type: "insert", position: 0, content: "x" });
    assert.equal(rest.status, 400, "\"..\" is not a document id");
    assert.equal(await upgradeStatus(`/ws/documents/.${q}`), 400, "an empty id");
    assert.equal(await upgradeStatus(`/ws${q}`), 101, "the personal channel itself still answers");
  });

  it("integers above 2^53 in a REST body are read exactly, as on the WebSocket", async () => {
    const doc = "bignum:doc";
    const big = "9007199254740993"; // 2^53 + 1: JSON.parse would make it ...992
    const body = `{"operation":{"document_id":"${doc}","client_id":"c","seq":${big},"type":"insert","position":0,"content":"x"}}`;
    const rest = await api(w.url, "/api/v1/operations/apply", { method: "POST", tok: token("big"), body });
    assert.equal(rest.status, 409);
    assert.equal(rest.json.error.code, "seq_gap");
    assert.match(rest.json.error.message, new RegExp(big));
    const ws = await Client.join(w.url, doc, { tok: token("big"), clientId: "c" });
    ws.send(`{"type":"operation","id":"m","payload":{"seq":${big},"version":0,"type":"insert","position":0,"content":"x"}}`);
    const err = await ws.next("error");
    assert.equal(err.payload.code, "seq_gap");
    assert.equal(err.payload.message, rest.json.error.message);
    ws.close();
  });

  it("comment ids are the server's, and claiming a post needs its write grant", async () => {
    const post = "claimed";
    const thief = await api(w.url, `/api/v1/posts/${post}`, { method: "PUT", tok: token("thief", { "channel:*": "write" }) });
    assert.equal(thief.status, 403, "a user without the post's grant cannot pre-register as its owner");
    const owner = await api(w.url, `/api/v1/posts/${post}`, { method: "PUT", tok: token("author", { [`post:${post}`]: "write" }) });
    assert.equal(owner.status, 200);
    const c1 = await api(w.url, `/api/v1/posts/${post}/comments`, { method: "POST", tok: token("fan1"), body: { text: "first", comment_id: "chosen" } });
    const c2 = await api(w.url, `/api/v1/posts/${post}/comments`, { method: "POST", tok: token("fan2"), body: { text: "second", comment_id: "chosen" } });
    assert.equal(c1.status, 201);
    assert.equal(c2.status, 201, "the second comment is not turned into a noop");
    assert.notEqual(c1.json.comment_id, "chosen");
    assert.notEqual(c1.json.comment_id, c2.json.comment_id);
    assert.equal(c2.json.comment_count, 2);
  });

  it("a deleted document id that is reused starts a new life: history and notifications never mix", async () => {
    const svc = serviceToken();
    const doc = "reborn:doc";
    for (const text of ["old1", "old2", "old3"]) {
      assert.equal((await apply(svc, { document_id: doc, client_id: "svc-w", type: "insert", position: 0, content: text })).status, 202);
    }
    assert.equal((await api(w.url, `/api/v1/documents/${doc}`, { method: "DELETE", tok: svc })).status, 200);
    for (const text of ["new1", "new2"]) {
      assert.equal((await apply(svc, { document_id: doc, client_id: "svc-w", type: "insert", position: 0, content: text })).status, 202);
    }
    const history = await api(w.url, `/api/v1/operations/history/${doc}?since=0`, { tok: svc });
    assert.deepEqual(history.json.operations.map((o) => [o.version, o.ops[0].content]), [[1, "new1"], [2, "new2"]]);

    // A post liked, deleted, created again and liked: the owner hears of both likes.
    const post = "reborn-post";
    const grant = { [`post:${post}`]: "write" };
    const channel = await Client.open(w.url, null, { tok: token("poster") });
    for (let life = 0; life < 2; life++) {
      assert.equal((await api(w.url, `/api/v1/posts/${post}`, { method: "PUT", tok: token("poster", grant) })).status, 200);
      assert.equal((await api(w.url, `/api/v1/posts/${post}/likes`, { method: "POST", tok: token("liker") })).status, 200);
      await channel.next((m) => m.type === "notification" && m.payload.post_id === post);
      if (life === 0) assert.equal((await api(w.url, `/api/v1/documents/post:${post}`, { method: "DELETE", tok: svc })).status, 200);
    }
    channel.close();
  });
});
