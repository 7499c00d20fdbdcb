// Several SDK clients edit one text concurrently (the same spots included) while a TCP proxy the
// test controls cuts their connections abruptly at random, one client goes offline for a while,
// and the runtime restarts on the same storage. Every client must end equal to the server and
// every typed token must be there exactly once unless someone deleted it.
//
// Every insert is a unique token like ‹b17😀› placed at a token boundary, every delete removes
// whole tokens, and a replace is a delete and an insert at one spot (the v1.1 anchoring case).
// Tokens therefore stay whole under any interleaving, so the final text tells what was lost or
// doubled. SDK_SEED=n replays a run.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, applyOps, startWorker, token } from "./helpers.mjs";
import { portOf, rng, sdkClient, startProxy, trackWorker, waitFor } from "./sdk-helpers.mjs";

const CLIENTS = ["c-a", "c-B", "c-b", "c-\u00e9"]; // byte order: c-B < c-a < c-b < c-é
const EDITS_PER_CLIENT = Number(process.env.SDK_CHAOS_EDITS ?? 120);
const EMOJI = ["😀", "🎹", "𝄞", "é", "x"];
const TOKEN_RE = /‹[^‹›]+›/gu;

/** Token boundaries of `text` in code points: [0, end of 1st token, …]. */
function boundaries(text) {
  const out = [0];
  let cp = 0;
  for (const m of text.matchAll(TOKEN_RE)) {
    cp += Array.from(m[0]).length;
    out.push(cp);
  }
  return out;
}

/** Tokens of `text` with their code-point start and length. */
function tokens(text) {
  const out = [];
  let cp = 0;
  for (const m of text.matchAll(TOKEN_RE)) {
    const len = Array.from(m[0]).length;
    out.push({ tok: m[0], start: cp, len });
    cp += len;
  }
  return out;
}

describe("SDK: chaos", () => {
  it("clients converge with the server through cut connections, offline spells and a restart; nothing lost or doubled", async () => {
    const seed = Number(process.env.SDK_SEED ?? Math.floor(Math.random() * 1e9));
    const rand = rng(seed);
    const note = `seed ${seed}`;
    const dir = mkdtempSync(join(tmpdir(), "sc-sdk-chaos-"));
    let w = trackWorker(await startWorker({ persistDir: dir }));
    const proxy = await startProxy(portOf(w.url));
    const url = `http://127.0.0.1:${proxy.port}`;
    const docId = `channel:chaos${seed}:description`;
    const clients = CLIENTS.map((id, i) => sdkClient(url, token(`user${i}`), id));
    const docs = clients.map((c) => c.text(docId));
    // What each client sent (for the failure report only), and any disagreement between the
    // server's transform and the client's (the SDK reports it as error `diverged`).
    const sentOps = new Map();
    const diverged = [];
    for (const d of docs) {
      d.on("error", (e) => e.code === "diverged" && diverged.push({ client: d.clientId, ...e }));
      const send = d.send.bind(d);
      d.send = (type, payload, id) => {
        if (type === "operation") sentOps.set(`${d.clientId}#${payload.seq}`, [...(sentOps.get(`${d.clientId}#${payload.seq}`) ?? []), { version: payload.version, ops: payload.ops, status: d.status }]);
        return send(type, payload, id);
      };
    }
    await Promise.all(docs.map((d) => d.whenSynced({ timeoutMs: 10_000 })));

    const inserted = new Set();
    const deleted = new Set();
    const stats = { inserts: 0, deletes: 0, replaces: 0, sameSpot: 0, offlineEdits: 0, cuts: 0, restarts: 0 };
    let lastInsertPos = 0;
    const pace = () => new Promise((r) => setTimeout(r, 5 + rand() * 25)); // typing speed, not a wait for state

    const edit = (d, who, n) => {
      const text = d.value;
      const toks = tokens(text);
      const r = rand();
      const fresh = `‹${who}${n}${EMOJI[Math.floor(rand() * EMOJI.length)]}›`;
      if (!d.client.online) stats.offlineEdits++;
      if (r < 0.55 || !toks.length) {
        const b = boundaries(text);
        // Often at the start or where someone else just typed: concurrent inserts at one spot.
        const pick = rand();
        let pos = pick < 0.25 ? 0 : pick < 0.5 && b.includes(lastInsertPos) ? lastInsertPos : b[Math.floor(rand() * b.length)];
        if (pos === lastInsertPos || pos === 0) stats.sameSpot++;
        d.insert(pos, fresh);
        lastInsertPos = pos;
        inserted.add(fresh);
        stats.inserts++;
      } else if (r < 0.85) {
        // Delete one or two neighbouring whole tokens (overlapping deletes happen across clients).
        const i = Math.floor(rand() * toks.length);
        const j = Math.min(toks.length - 1, i + (rand() < 0.3 ? 1 : 0));
        const len = toks.slice(i, j + 1).reduce((s, t) => s + t.len, 0);
        d.delete(toks[i].start, len);
        for (const t of toks.slice(i, j + 1)) deleted.add(t.tok);
        stats.deletes++;
      } else {
        const t = toks[Math.floor(rand() * toks.length)];
        d.replace(t.start, t.len, fresh);
        deleted.add(t.tok);
        inserted.add(fresh);
        stats.replaces++;
      }
    };

    let editing = true;
    const editors = docs.map(async (d, i) => {
      const who = String.fromCharCode(97 + i);
      for (let n = 0; n < EDITS_PER_CLIENT; n++) {
        await pace();
        edit(d, who, n);
        // Client 0 goes offline for a stretch in the middle and keeps typing.
        if (i === 0 && n === Math.floor(EDITS_PER_CLIENT / 3)) clients[0].goOffline();
        if (i === 0 && n === Math.floor((2 * EDITS_PER_CLIENT) / 3)) clients[0].goOnline();
      }
    });

    const chaos = (async () => {
      let restarted = false;
      while (editing) {
        await new Promise((r) => setTimeout(r, 20 + rand() * 60));
        if (!editing) break;
        if (!restarted && stats.inserts + stats.deletes + stats.replaces > (CLIENTS.length * EDITS_PER_CLIENT) / 2) {
          restarted = true;
          proxy.accepting = false;
          proxy.cutAll();
          await w.mf.dispose();
          w = trackWorker(await startWorker({ persistDir: dir }));
          proxy.target = portOf(w.url);
          proxy.accepting = true;
          stats.restarts++;
        } else if (proxy.cutOne()) stats.cuts++;
      }
    })();

    await Promise.all(editors);
    editing = false;
    await chaos;
    clients[0].goOnline();

    const state = (d) =>
      JSON.stringify({
        client: d.clientId, status: d.status, ready: d.ready, connected: d.connected, version: d.version, stopped: d.stopped,
        inflight: d.inflight && { seq: d.inflight.seq, awaiting: d.inflight.awaiting, uncertain: d.inflight.uncertain, sent: d.inflight.sent },
        ws: d.ws === null ? null : d.ws?.readyState ?? "marker", retry: !!d.retryTimer, attempt: d.attempt, stats: d.stats,
        pending: d.pendingOp.length, resetState: !!d.resetState, catchingUp: !!d.catchingUp, needsReset: d.needsReset, gapSyncing: d.gapSyncing, rateBlocked: d.rateBlocked,
      });
    const errors = [];
    docs.forEach((d) => d.on("error", (e) => errors.push(`${d.clientId}: ${e.code} ${e.message ?? ""}`)));

    await Promise.all(docs.map((d) => d.whenSynced({ timeoutMs: 30_000 }))).catch((e) => {
      throw new Error(`${note}: ${e.message}\n${docs.map(state).join("\n")}\nerrors: ${errors.slice(-10).join("; ")}`);
    });
    const server = (await api(w.url, `/api/v1/documents/${encodeURIComponent(docId)}`, { tok: token("user0") })).json;
    await waitFor(() => docs.every((d) => d.version === server.version && d.value === server.content), docs, {
      timeoutMs: 20_000,
      describe: () => `${note}; server v${server.version}; clients ${docs.map((d) => `v${d.version}/${d.status}`).join(" ")}`,
    });

    assert.deepEqual(diverged, [], `${note}: the server and the client transformed differently`);
    // The whole text is tokens, each at most once, exactly the inserted ones nobody deleted.
    const final = server.content;
    const history = async () => {
      const ops = [];
      for (let since = 0; ; ) {
        const h = (await api(w.url, `/api/v1/operations/history/${encodeURIComponent(docId)}?since=${since}&limit=1000`, { tok: token("user0") })).json;
        ops.push(...h.operations);
        if (!h.has_more) break;
        since = h.next_since;
      }
      return ops;
    };
    if (final.replace(TOKEN_RE, "") !== "") {
      // Find the first operation after which the text is not whole tokens.
      let text = "";
      let culprit = "none: the history replays to whole tokens";
      for (const o of await history()) {
        const before = text;
        text = applyOps(text, o.ops);
        if (text.replace(TOKEN_RE, "") !== "") {
          culprit = `v${o.version} ${o.client_id}#${o.seq} ${JSON.stringify(o.ops)}; sent as ${JSON.stringify(sentOps.get(`${o.client_id}#${o.seq}`))}; text before: ${before}`;
          break;
        }
      }
      assert.fail(`${note}: stray characters in ${final}\nfirst broken by ${culprit}`);
    }
    const seen = final.match(TOKEN_RE) ?? [];
    assert.equal(new Set(seen).size, seen.length, `${note}: a token appears twice`);
    const expected = [...inserted].filter((t) => !deleted.has(t)).sort();
    if (JSON.stringify([...seen].sort()) !== JSON.stringify(expected)) {
      // Tell which operation removed a lost token (or kept a deleted one) from the server's history.
      const lost = expected.filter((t) => !seen.includes(t));
      const extra = seen.filter((t) => !expected.includes(t));
      const ops = await history();
      let text = "";
      const story = [];
      for (const o of ops) {
        const before = text;
        text = applyOps(text, o.ops);
        for (const t of [...lost, ...extra]) {
          if (before.includes(t) !== text.includes(t))
            story.push(
              `${t} ${text.includes(t) ? "inserted" : "removed"} by v${o.version} ${o.client_id}#${o.seq} ${JSON.stringify(o.ops)}; sent as ${JSON.stringify(sentOps.get(`${o.client_id}#${o.seq}`))}; ` +
                `text before: ${before}`,
            );
        }
      }
      assert.fail(`${note}: lost ${JSON.stringify(lost)}, resurrected ${JSON.stringify(extra)}; history replays to the final text: ${text === final}\n${story.join("\n")}`);
    }
    assert.ok(stats.cuts >= 5, `${note}: too few cuts (${stats.cuts})`);
    assert.equal(stats.restarts, 1);

    const disconnects = docs.reduce((s, d) => s + d.stats.disconnects, 0);
    console.log(
      `# chaos ${note}: ${CLIENTS.length} clients, ${stats.inserts + stats.deletes + stats.replaces} edits ` +
        `(${stats.inserts} inserts, ${stats.deletes} deletes, ${stats.replaces} replaces, ${stats.sameSpot} at a shared spot, ` +
        `${stats.offlineEdits} offline), ${server.version} versions, ${stats.cuts} cuts + ${stats.restarts} restart, ` +
        `${disconnects} client disconnects, ${proxy.connections} proxied connections`,
    );
    clients.forEach((c) => c.close());
    await proxy.close();
    await w.mf.dispose();
  });
});
