// The SDK's Yjs documents (`client.yjs(id)`, §3.6) against the built worker: two clients converge
// through the server (no BroadcastChannel shortcut), a refused upgrade asks the token function
// again, an expired token's socket comes back with a fresh one, and a deleted document stops.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { api, eventually, serviceToken, token, useWorker } from "./helpers.mjs";
import { trackedClients } from "./sdk-helpers.mjs";
import { Y } from "../client/src/index.js";

const w = useWorker({ bindings: { TOKEN_GRACE_MS: "0" } });
const make = trackedClients();

const serverText = async (id) => (await api(w.url, `/api/v1/documents/${id}?text=t`, { tok: token("reader") })).json;

/** Resolves when `check()` holds, tested on every change of the docs (no polling). */
function whenDocs(docs, check, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), 10_000);
    const test = () => check() && (clearTimeout(timer), docs.forEach((d) => d.off("update", test)), resolve());
    docs.forEach((d) => d.on("update", test));
    test();
  });
}

describe("SDK: Yjs documents", () => {
  it("two clients edit one Y.Text and converge; the server stores what they see", async () => {
    const a = make(w.url, token("ann"), "y-a").yjs("sdk-notes");
    const b = make(w.url, token("ben"), "y-b").yjs("ydoc:sdk-notes");
    assert.equal(a.documentId, "ydoc:sdk-notes");
    await Promise.all([a.whenSynced(), b.whenSynced()]);
    a.doc.getText("t").insert(0, "hello ");
    b.doc.getText("t").insert(0, "world ");
    a.doc.getMap("m").set("tempo", 124);
    const same = () => a.doc.getText("t").toString() === b.doc.getText("t").toString() && b.doc.getMap("m").get("tempo") === 124;
    await whenDocs([a.doc, b.doc], () => same() && a.doc.getText("t").length === 12, "both edits on both sides");
    const server = await serverText("ydoc:sdk-notes");
    assert.equal(server.text, a.doc.getText("t").toString());
    const copy = new Y.Doc();
    Y.applyUpdate(copy, Buffer.from(server.update, "base64"));
    assert.equal(copy.getMap("m").get("tempo"), 124);
    // The same id twice is the same room; a text id is refused.
    assert.equal(a.client.yjs("sdk-notes"), a);
    assert.throws(() => a.client.text("ydoc:sdk-notes"), TypeError);
  });

  it("a refused upgrade (bad token) calls the token function again and connects", async () => {
    let calls = 0;
    const tok = () => (++calls === 1 ? "not-a-jwt" : token("ann"));
    const room = make(w.url, tok, "y-401").yjs("sdk-401");
    await room.whenSynced();
    assert.ok(calls >= 2, `token function calls: ${calls}`);
  });

  it("the server closes the socket when its token expires (4401); a fresh token reconnects", async () => {
    let calls = 0;
    // The first token lapses in 2 s; later ones last an hour.
    const tok = () => token("ann", { "*": "write" }, { exp: Math.floor(Date.now() / 1000) + (++calls === 1 ? 2 : 3600) });
    const room = make(w.url, tok, "y-exp").yjs("sdk-exp");
    await room.whenSynced();
    const closes = [];
    room.provider.on("connection-close", (ev) => closes.push(ev?.code));
    const back = new Promise((resolve) => room.provider.on("sync", (s) => s && closes.length && resolve()));
    await back;
    assert.deepEqual(closes, [4401]);
    assert.ok(calls >= 2);
    room.doc.getText("t").insert(0, "after renewal");
    await eventually(async () => (await serverText("ydoc:sdk-exp")).text === "after renewal", "the edit after the reconnect stored");
  });

  it("a deleted document ends the connection for good with a `deleted` error", async () => {
    const room = make(w.url, token("ann"), "y-del").yjs("sdk-deleted");
    await room.whenSynced();
    const stopped = new Promise((resolve) => room.on("error", resolve));
    const r = await api(w.url, `/api/v1/documents/ydoc:sdk-deleted`, { method: "DELETE", tok: serviceToken() });
    assert.equal(r.status, 200);
    assert.equal((await stopped).code, "deleted");
    assert.equal(room.provider.shouldConnect, false, "no reconnect after 4404");
  });
});
