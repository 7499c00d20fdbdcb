// Yjs documents under chaos (§7 [1.2]): 8 unchanged `yjs` + `y-websocket` clients make random edits
// through a proxy that cuts their sockets at random, and the runtime is killed (SIGKILL) in the
// middle. Every update a client received before the kill must be in the document the restarted
// runtime serves, before any client could upload it again; in the end every client and the server
// hold the same document.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, eventually, startWorker, token } from "./helpers.mjs";
import { portOf, rng, startProxy } from "./sdk-helpers.mjs";
import * as decoding from "lib0/decoding";

const CLIENTS = 8;
const EDITS_EACH = 120;
const ID = "ydoc:chaos";
const fast = { SOCKET_RATE_PER_SEC: "10000", SOCKET_BURST: "10000" };
const providers = [];

// A provider's awareness keeps a timer (y-protocols) that only destroying its doc stops.
after(() => providers.forEach((p) => (p.destroy(), p.awareness.destroy(), p.doc.destroy())));

/** What the document holds, in a form two replicas share exactly when they converged. */
const contentOf = (doc) => {
  const m = doc.getMap("m").toJSON(); // key order is each replica's own: sort it
  return JSON.stringify([doc.getText("t").toString(), Object.keys(m).sort().map((k) => [k, m[k]]), doc.getArray("a").toArray()]);
};
const svOf = (doc) => Buffer.from(Y.encodeStateVector(doc)).toString("base64");

async function serverDoc(url) {
  const r = await api(url, `/api/v1/documents/${ID}`, { tok: token("auditor") });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const doc = new Y.Doc();
  Y.applyUpdate(doc, Buffer.from(r.json.update, "base64"));
  return doc;
}

/**
 * The updates in the sync messages (step 2 and update) of one frame the server sent. These, and
 * not the client's own "update" events, are what it received: applying a server update in a
 * client that holds edits the server never got (made offline, or sent into a cut) records the
 * local consequences too. A Y.Map value set offline overrides the server's value for that key,
 * and the client's transaction then lists the server's item as deleted; the restarted server
 * rightly still has it (the offline edit never reached it), so such a record would report a
 * "lost delete" that the server never sent.
 */
function syncUpdatesOf(frame) {
  const d = decoding.createDecoder(new Uint8Array(frame));
  const out = [];
  while (decoding.hasContent(d)) {
    const type = decoding.readVarUint(d);
    if (type === 0) {
      const sub = decoding.readVarUint(d);
      const payload = decoding.readVarUint8Array(d);
      if (sub === 1 || sub === 2) out.push(payload);
    } else if (type === 1) decoding.readVarUint8Array(d); // awareness
    else if (type === 2) (decoding.readVarUint(d), decoding.readVarString(d)); // auth
    else if (type !== 3) throw new Error(`unexpected message type ${type} from the server`);
  }
  return out;
}

/** One random edit: insert or delete text, set a map key, push to or delete from the array. */
function randomEdit(doc, next, who) {
  const t = doc.getText("t");
  const a = doc.getArray("a");
  const r = next();
  if (r < 0.45 || t.length < 8) t.insert(Math.floor(next() * (t.length + 1)), `${who}${"xyz".slice(0, 1 + Math.floor(next() * 3))}`);
  else if (r < 0.65) {
    const at = Math.floor(next() * (t.length - 3));
    t.delete(at, 1 + Math.floor(next() * 3));
  } else if (r < 0.8) doc.getMap("m").set(`k${Math.floor(next() * 6)}`, `${who}:${Math.floor(next() * 1000)}`);
  else if (r < 0.92 || a.length === 0) a.push([`${who}-${Math.floor(next() * 1000)}`]);
  else a.delete(Math.floor(next() * a.length), 1);
}

describe("yjs documents under chaos", () => {
  it("8 clients, random cuts and a kill -9: nothing received is lost, everyone converges", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sc-ychaos-"));
    let runtime = await startWorker({ persistDir: dir, bindings: fast });
    const proxy = await startProxy(portOf(runtime.url));
    try {
      const received = [];
      // Every client's sockets record the server's updates as they arrive, before the provider
      // applies them.
      class Recording extends WebSocket {
        constructor(...args) {
          super(...args);
          this.on("message", (data, binary) => binary && received.push(...syncUpdatesOf(data)));
        }
      }
      for (let i = 0; i < CLIENTS; i++) {
        const p = new WebsocketProvider(`ws://127.0.0.1:${proxy.port}/ws/documents`, ID, new Y.Doc(), {
          params: { token: token(`chaos${i}`) },
          WebSocketPolyfill: Recording,
          disableBc: true, // otherwise the clients of this process would sync without the server
          maxBackoffTime: 400,
        });
        providers.push(p);
      }
      await eventually(() => providers.every((p) => p.synced), "all synced");

      let edits = 0;
      let killAt = null;
      const writers = providers.map(async (p, i) => {
        const next = rng(1000 + i);
        for (let k = 0; k < EDITS_EACH; k++) {
          randomEdit(p.doc, next, String.fromCharCode(65 + i));
          edits++;
          if (next() < 0.03) proxy.cutOne(); // an abrupt disconnect of someone
          // Pacing of the load (a typing rhythm), not a wait for anything.
          await new Promise((r) => setTimeout(r, 2 + next() * 8));
          if (killAt) await killAt; // edits go on offline; the writer just waits for the restart here
        }
      });

      // Mid-burst: refuse new connections, kill the runtime, and remember what clients had received.
      await eventually(() => edits >= (CLIENTS * EDITS_EACH) / 2, "half the edits made", 60_000);
      let restarted;
      killAt = new Promise((r) => (restarted = r));
      proxy.accepting = false;
      await runtime.mf.dispose();
      runtime = null; // disposed: a failure from here on must not be masked by a second dispose
      proxy.cutAll();
      const beforeKill = received.slice();
      // The server relays the updates of one commit as one message (§9), so count what they hold.
      const heard = new Y.Doc();
      beforeKill.forEach((u) => Y.applyUpdate(heard, u));
      const clocks = [...Y.decodeStateVector(Y.encodeStateVector(heard)).values()].reduce((a, b) => a + b, 0);
      assert.ok(clocks >= 200, `clients received ${beforeKill.length} updates holding ${clocks} items before the kill`);

      // The restarted runtime, before any client reconnects: everything received is there.
      runtime = await startWorker({ persistDir: dir, bindings: fast });
      const first = await serverDoc(runtime.url);
      const [sv, content] = [svOf(first), contentOf(first)];
      // Applied one by one, in the order received (Y.mergeUpdates of overlapping partial updates
      // is not faithful enough for this check).
      for (const u of beforeKill) Y.applyUpdate(first, u);
      assert.equal(first.store.pendingStructs, null, "nothing received waits on something the server lacks");
      assert.equal(svOf(first), sv, "no insert a client had received is missing after the restart");
      assert.equal(contentOf(first), content, "no delete a client had received is missing after the restart");

      proxy.target = portOf(runtime.url);
      proxy.accepting = true;
      restarted();
      await Promise.all(writers);

      // Everyone, the server included, ends with one document.
      await eventually(async () => {
        if (!providers.every((p) => p.synced && p.wsconnected)) return false;
        const svs = new Set(providers.map((p) => svOf(p.doc)));
        const contents = new Set(providers.map((p) => contentOf(p.doc)));
        if (svs.size !== 1 || contents.size !== 1) return false;
        const server = await serverDoc(runtime.url);
        return svs.has(svOf(server)) && contents.has(contentOf(server));
      }, "every client and the server identical", 60_000);
      const final = JSON.parse(contentOf(providers[0].doc));
      assert.ok(final[0].length > 100, "the text holds the edits");
      assert.ok(proxy.cuts >= CLIENTS, `sockets were cut (${proxy.cuts})`);
    } finally {
      await proxy.close();
      await runtime?.mf.dispose();
    }
  });
});
