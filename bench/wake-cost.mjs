// Wake cost (§9 item 5): the first ack after a wake on a document with a long history versus an
// empty one. Builds EMPTY empty text documents (one op each) and LONG documents of OPS operations
// (10-character inserts, so ~OPS×10 characters), then, ROUNDS times: the runtime is disposed and
// a new one started on the same storage (every object is cold, as after an eviction or deploy),
// and each document gets one socket that resumes (`since=` its version: no state in the reply),
// sends one operation and waits for its ack. Prints, per kind, the time from the upgrade to
// `sync_status` (the wake) and from the upgrade to the ack, p50/p99, and long ÷ empty.
// Usage: node bench/wake-cost.mjs [ops=10000] [long=4] [empty=4] [rounds=5]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { startWorker, token } from "../miniflare-tests/helpers.mjs";

const OPS = Number(process.argv[2] ?? 10_000);
const LONG = Number(process.argv[3] ?? 4);
const EMPTY = Number(process.argv[4] ?? 4);
const ROUNDS = Number(process.argv[5] ?? 5);
const bindings = { SOCKET_RATE_PER_SEC: "100000", SOCKET_BURST: "100000" };
const pct = (s, p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];

/** A socket on `doc` that resumes after `since`; resolves with its timings once `ops` are acked. */
function session(url, doc, clientId, since, ops) {
  const t0 = performance.now();
  const qs = new URLSearchParams({ token: token(clientId), client_id: clientId, batch: "1", ...(since === null ? {} : { since: String(since) }) });
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws/documents/${encodeURIComponent(doc)}?${qs}`);
  return new Promise((resolve, reject) => {
    let version = since ?? 0;
    let seq = 0;
    let synced = 0;
    const send = () => {
      seq++;
      ws.send(JSON.stringify({ type: "operation", payload: { client_id: clientId, seq, version, ops: [{ type: "insert", position: 0, content: "0123456789" }] } }));
    };
    ws.on("error", reject);
    ws.on("message", (data) => {
      const m = JSON.parse(data.toString());
      const p = m.payload ?? {};
      if (m.type === "error") return reject(new Error(`${doc}: ${p.code} ${p.message}`));
      if (m.type === "initial_state" || m.type === "sync_operation") version = Math.max(version, p.version ?? 0);
      if (m.type === "sync_status" && !synced) {
        synced = performance.now() - t0;
        return send();
      }
      for (const op of m.type === "operations" ? p.operations : []) {
        version = Math.max(version, op.version);
        if (op.client_id !== clientId || op.seq !== seq) continue;
        if (seq < ops) send();
        else {
          ws.close();
          resolve({ synced, acked: performance.now() - t0, version });
        }
      }
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), "sc-wake-"));
const docs = [
  ...Array.from({ length: LONG }, (_, i) => ({ kind: "long", id: `channel:wake-long-${i}:description`, ops: OPS })),
  ...Array.from({ length: EMPTY }, (_, i) => ({ kind: "empty", id: `channel:wake-empty-${i}:description`, ops: 1 })),
];
let w = await startWorker({ persistDir: dir, bindings });
const built = performance.now();
for (const d of docs) d.version = (await session(w.url, d.id, `build-${d.id}`, null, d.ops)).version;
console.log(`built ${LONG} documents of ${OPS} operations and ${EMPTY} of one in ${((performance.now() - built) / 1000).toFixed(1)} s\n`);

const times = { long: { synced: [], acked: [] }, empty: { synced: [], acked: [] } };
for (let round = 0; round < ROUNDS; round++) {
  await w.mf.dispose();
  w = await startWorker({ persistDir: dir, bindings });
  // One document at a time, kinds alternating, so neither kind runs on a warmer runtime.
  const [longs, empties] = [docs.filter((d) => d.kind === "long"), docs.filter((d) => d.kind === "empty")];
  const order = Array.from({ length: Math.max(LONG, EMPTY) }, (_, i) => [longs[i], empties[i]]).flat().filter(Boolean);
  for (const d of order) {
    const r = await session(w.url, d.id, `wake-${round}-${d.id}`, d.version, 1);
    d.version = r.version;
    times[d.kind].synced.push(r.synced);
    times[d.kind].acked.push(r.acked);
  }
}
await w.mf.dispose();
rmSync(dir, { recursive: true, force: true });

const row = (what, key) => {
  const [l, e] = [times.long[key], times.empty[key]].map((s) => s.sort((a, b) => a - b));
  return `| ${what} | ${pct(e, 50).toFixed(1)} / ${pct(e, 99).toFixed(1)} | ${pct(l, 50).toFixed(1)} / ${pct(l, 99).toFixed(1)} | ${(pct(l, 50) / pct(e, 50)).toFixed(2)}× |`;
};
console.log(`| after a cold start (${ROUNDS} rounds × ${LONG + EMPTY} documents) | empty p50 / p99 ms | ${OPS} operations p50 / p99 ms | long ÷ empty (p50) |\n|---|---|---|---|`);
console.log(row("upgrade → sync_status (the wake)", "synced"));
console.log(row("upgrade → first ack", "acked"));
