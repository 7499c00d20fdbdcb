// Differential OT test: the real server against ot-text-unicode (npm), an implementation we did
// not write, used as the client-side engine (primitives converted by the SDK's ot.js, itself
// checked by the vectors). Random concurrent pairs go over REST; random
// multi-client histories go over WebSockets with clients following the protocol's client rule
// on ot-text-unicode, their incoming messages delivered in a random interleaving.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type as tu } from "ot-text-unicode";
import { fromWire as toTu, toWire as fromTu } from "../client/src/ot.js";
import { rng } from "../scripts/rng.mjs";
import { useWorker, Client, api, token, serviceToken } from "./helpers.mjs";

const below = (r, n) => Math.floor(r() * n);
const WORDS = ["a", "bc", "é", "👋", "xyz", " ", "🎧🎧"];
const len = (s) => Array.from(s).length;


/** A random edit (one or two primitives: a replace is delete + insert at one spot). */
function randomEdit(r, text) {
  const n = len(text);
  const kind = below(r, 4);
  const word = WORDS[below(r, WORDS.length)];
  if (n > 0 && kind === 0) {
    const position = below(r, n);
    return [{ type: "delete", position, length: 1 + below(r, Math.min(4, n - position)) }];
  }
  if (n > 0 && kind === 1) {
    const position = below(r, n);
    const length = 1 + below(r, Math.min(3, n - position));
    return [{ type: "delete", position, length }, { type: "insert", position, content: word }];
  }
  return [{ type: "insert", position: below(r, n + 1), content: word }];
}

const w = useWorker();

describe("OT against ot-text-unicode", () => {
  it("random concurrent pairs end as ot-text-unicode says", async () => {
    const ids = ["c-a", "c-b", "laptop", "12345", "9", "Z"];
    const r = rng(20261122);
    for (let i = 0; i < 120; i++) {
      const doc = `diffpair:${i}`;
      const svc = token(`pair-${i}`); // one user per pair: the HTTP rate limit is per user
      const base = Array.from({ length: 1 + below(r, 6) }, () => WORDS[below(r, WORDS.length)]).join("");
      const setup = await api(w.url, "/api/v1/operations/apply", { method: "POST", tok: svc, body: { operation: { document_id: doc, client_id: "setup", type: "insert", position: 0, content: base } } });
      assert.equal(setup.status, 202, setup.text);
      const [ida, idb] = [ids[below(r, ids.length)], ids[below(r, ids.length)]].map((x, k) => `${x}${k}`);
      const a = randomEdit(r, base);
      const b = randomEdit(r, base);
      for (const [id, ops] of [[ida, a], [idb, b]]) {
        const res = await api(w.url, "/api/v1/operations/apply", { method: "POST", tok: svc, body: { operation: { document_id: doc, client_id: id, version: 1, ops } } });
        assert.equal(res.status, 202, res.text);
      }
      const server = (await api(w.url, `/api/v1/documents/${encodeURIComponent(doc)}`, { tok: svc })).json.content;
      // b arrived second: it is transformed over a; b goes left of a at a tie when its id is smaller.
      const side = Buffer.compare(Buffer.from(idb), Buffer.from(ida)) < 0 ? "left" : "right";
      const expected = tu.apply(tu.apply(base, toTu(a)), tu.transform(toTu(b), toTu(a), side));
      assert.equal(server, expected, `pair ${i}: base ${JSON.stringify(base)} a(${ida}) ${JSON.stringify(a)} b(${idb}) ${JSON.stringify(b)}`);
    }
  });

  it("random multi-client histories converge on every client and the server", async () => {
    for (const seed of [1, 2, 3]) {
      const r = rng(seed * 7919);
      const doc = `diffhist:${seed}`;
      const clients = [];
      for (let i = 0; i < 4; i++) {
        const id = ["c-a", "c-b", "laptop", "12"][i];
        const c = await Client.open(w.url, doc, { tok: token(`u${i}`), clientId: id });
        clients.push({ c, id, text: "", version: 0, seq: 0, inflight: null, pending: null, seen: 0 });
      }
      // Each client follows §3.3: one op in flight, later edits composed, remote ops transformed.
      const handle = (cl, m) => {
        const p = m.payload;
        if (m.type === "initial_state") {
          cl.text = p.content;
          cl.version = p.version;
        } else if (m.type === "operation") {
          assert.equal(p.version, cl.version + 1, `gap at ${cl.id}`);
          let remote = toTu(p.ops);
          const side = (mine) => (Buffer.compare(Buffer.from(cl.id), Buffer.from(p.client_id)) < 0 ? "left" : "right");
          for (const key of ["inflight", "pending"]) {
            if (!cl[key]) continue;
            const mine = cl[key];
            cl[key] = tu.transform(mine, remote, side(mine));
            remote = tu.transform(remote, mine, side(mine) === "left" ? "right" : "left");
          }
          cl.text = tu.apply(cl.text, remote);
          cl.version = p.version;
        } else if (m.type === "operation_ack") {
          assert.ok(["accepted", "transformed", "noop"].includes(p.status), JSON.stringify(p));
          if (p.status !== "noop") {
            assert.equal(p.version, cl.version + 1, `ack out of order at ${cl.id}`);
            cl.version = p.version;
          }
          cl.inflight = null;
        } else if (m.type === "error") {
          assert.fail(`${cl.id}: ${JSON.stringify(p)}`);
        }
      };
      const deliver = (cl, max) => {
        let n = 0;
        while (cl.c.inbox.length && n < max) {
          handle(cl, cl.c.inbox.shift());
          n++;
        }
      };
      const flush = (cl) => {
        if (cl.inflight || !cl.pending) return;
        cl.inflight = cl.pending;
        cl.pending = null;
        cl.seq++;
        cl.c.send({ type: "operation", payload: { client_id: cl.id, seq: cl.seq, version: cl.version, ops: fromTu(cl.inflight) } });
      };
      for (const cl of clients) await cl.c.next("sync_status").then(() => deliver(cl, Infinity));
      for (let step = 0; step < 160; step++) {
        const cl = clients[below(r, clients.length)];
        const what = below(r, 6);
        if (what <= 2) {
          const edit = toTu(randomEdit(r, cl.text));
          cl.text = tu.apply(cl.text, edit);
          cl.pending = cl.pending ? tu.compose(cl.pending, edit) : edit;
        } else if (what === 3) {
          flush(cl);
        } else {
          // Let whatever the server has sent so far arrive, then deliver a random part of it.
          await new Promise((res) => setImmediate(res));
          deliver(cl, below(r, 4));
        }
      }
      // Quiesce: every client sends what it has and integrates everything until acks are in.
      for (let round = 0; round < 200 && clients.some((cl) => cl.inflight || cl.pending || cl.c.inbox.length); round++) {
        for (const cl of clients) {
          deliver(cl, Infinity);
          flush(cl);
        }
        const waiting = clients.find((cl) => cl.inflight);
        if (waiting) handle(waiting, await waiting.c.next((m) => m.type === "operation_ack" || m.type === "operation" || m.type === "error"));
      }
      const server = (await api(w.url, `/api/v1/documents/${encodeURIComponent(doc)}`, { tok: serviceToken() })).json;
      for (const cl of clients) {
        // Drain operations that reached the socket after the last ack.
        while (cl.version < server.version) handle(cl, await cl.c.next("operation"));
        assert.equal(cl.text, server.content, `seed ${seed}: ${cl.id} diverged`);
        cl.c.close();
      }
    }
  });
});
