// Yjs documents (§7) side by side: the built worker and the reference y-websocket server from npm
// with its LevelDB persistence on, driven by the same unchanged `yjs` + `y-websocket` clients
// (`disableBc: true`, so nothing syncs around the server), one after the other in one run:
// 1. one writer replays an editing trace as Y.Text transactions, one update in flight (the next
//    goes out when a second client has the previous one): updates/s, latency to that observer;
// 2. 16 writers on one document, one update in flight each: updates/s, latency p50/p99;
// 3. a new client syncs the replayed document: time to `synced`, bytes received (median of 5);
// 4. memory (resident set from /proc; the worker's wasm memory as its rooms report it; the V8 heap
//    of the isolate holding the rooms after a GC, read over the inspector) after the replay, and
//    after the kill -9 of 5, a restart and first sync;
// 5. kill -9 while a writer bursts: updates an observer had received that the restarted server
//    lacks (at the first sync, and once the server has loaded what it stored), and the time from
//    the restart until the replayed document's full text is served;
// 6. last: the whole trace, built locally and pushed as one update, synced by new clients.
// Both servers keep their storage under the OS temp directory: `TMPDIR=/dev/shm` puts it in memory
// (no disk sync on either side), which isolates what the local disk's sync costs a durable commit.
// Usage: node bench/yjs.mjs [prefix=8000] [writers=16] [updatesPerWriter=250] [burst=2000] [trace=automerge-paper]
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import { rng } from "../scripts/rng.mjs";
import { referenceServer, workerServer } from "./yjs-servers.mjs";

const [PREFIX, WRITERS, EACH, BURST] = [8000, 16, 250, 2000].map((d, i) => Number(process.argv[2 + i] ?? d));
const TRACE = process.argv[6] ?? "automerge-paper";
const ROOT = new URL("..", import.meta.url).pathname;
const FAST = { SOCKET_RATE_PER_SEC: "100000", SOCKET_BURST: "100000", YJS_RATE_PER_SEC: "100000", YJS_BURST: "100000" };
const DOCS = { replay: "ydoc:bench-replay", many: "ydoc:bench-writers", whole: "ydoc:bench-whole", burst: "ydoc:bench-burst" };
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const median = (xs) => pct(xs, 50);
const since = (t0) => performance.now() - t0;
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/** The trace's transactions as [position, deleted, inserted] patches; Y.Text counts UTF-16 units,
 * the traces count code points, so only ASCII traces are replayed as they are. */
function loadTrace(name) {
  const t = JSON.parse(gunzipSync(readFileSync(join(ROOT, "data/editing-traces", `${name}.json.gz`))).toString());
  const txns = t.txns.map((tx) => tx.patches).filter((ps) => ps.some(([, del, ins]) => del > 0 || ins));
  const ascii = (s) => /^[\x00-\x7f]*$/.test(s);
  if (t.startContent || !ascii(t.endContent) || !txns.every((ps) => ps.every(([, , ins]) => ascii(ins)))) throw new Error(`${name}: pick an ASCII trace that starts empty`);
  return { end: t.endContent, txns };
}

const apply = (doc, patches) =>
  doc.transact(() => {
    const t = doc.getText("t");
    for (const [pos, del, ins] of patches) {
      if (del > 0) t.delete(pos, del);
      if (ins) t.insert(pos, ins);
    }
  });

/** One client: a WebsocketProvider whose socket counts the bytes it receives, the updates that
 * came from the server, and waits on conditions checked at every change. */
class Peer {
  constructor(server, id, user, doc = new Y.Doc()) {
    const peer = this;
    Object.assign(this, { bytes: 0, received: [], waiters: [], doc, changedAt: performance.now() });
    class CountingSocket extends WebSocket {
      constructor(url, protocols) {
        super(url, protocols, { perMessageDeflate: false });
        this.on("message", (data) => (peer.bytes += data.byteLength));
      }
    }
    this.p = new WebsocketProvider(server.wsBase(), id, doc, { params: server.params(user), WebSocketPolyfill: CountingSocket, disableBc: true, maxBackoffTime: 500 });
    doc.on("update", (u, origin) => {
      if (origin === this.p) this.received.push(u);
      this.changedAt = performance.now();
      this.check();
    });
    this.p.on("sync", () => this.check());
  }

  text = () => this.doc.getText("t").toString();
  len = () => this.doc.getText("t").length;
  synced = () => this.until(() => this.p.synced, "synced");

  until(pred, what, ms = 60_000) {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, timer: setTimeout(() => (this.waiters.splice(this.waiters.indexOf(w), 1), reject(new Error(`timed out: ${what}`))), ms) };
      this.waiters.push(w);
    });
  }

  check() {
    for (const w of this.waiters.filter((w) => w.pred())) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  close() {
    this.p.destroy();
    this.p.awareness.destroy();
    this.doc.destroy();
  }
}

/** 1. One writer, one update in flight: the next goes out when the observer has the last. */
async function oneWriter(server, txns) {
  const [writer, observer] = [new Peer(server, DOCS.replay, "replay-writer"), new Peer(server, DOCS.replay, "replay-observer")];
  await Promise.all([writer.synced(), observer.synced()]);
  const lat = [];
  const t0 = performance.now();
  for (const patches of txns) {
    const [n, t1] = [observer.received.length, performance.now()];
    apply(writer.doc, patches);
    await observer.until(() => observer.received.length > n, "the observer has the update");
    lat.push(since(t1));
  }
  const rate = txns.length / (since(t0) / 1000);
  if (observer.text() !== writer.text()) throw new Error("the observer's text differs from the writer's");
  return { rate, p50: pct(lat, 50), p99: pct(lat, 99), text: writer.text(), keep: [writer, observer] };
}

/** 2. Many writers on one document, each its own user, one update in flight each. */
async function manyWriters(server) {
  const observer = new Peer(server, DOCS.many, "many-observer");
  const writers = Array.from({ length: WRITERS }, (_, i) => new Peer(server, DOCS.many, `many-writer${i}`));
  await Promise.all([observer, ...writers].map((p) => p.synced()));
  const lat = [];
  const t0 = performance.now();
  await Promise.all(writers.map(async (w, i) => {
    const [t, id, r] = [w.doc.getText("t"), w.doc.clientID, rng(100 + i)];
    for (let k = 0; k < EACH; k++) {
      const t1 = performance.now();
      t.insert(Math.floor(r() * (t.length + 1)), "ab");
      const target = Y.getState(w.doc.store, id);
      await observer.until(() => Y.getState(observer.doc.store, id) >= target, `writer ${i}'s update observed`);
      lat.push(since(t1));
    }
  }));
  const rate = lat.length / (since(t0) / 1000);
  if (observer.len() !== 2 * WRITERS * EACH) throw new Error(`observer has ${observer.len()} characters`);
  [observer, ...writers].forEach((p) => p.close());
  return { rate, p50: pct(lat, 50), p99: pct(lat, 99) };
}

/** 3. New clients syncing `id` (median of `runs`): ms to synced, bytes received, text checked. */
async function syncRuns(server, id, expected, runs = 5) {
  const ms = [];
  const bytes = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const c = new Peer(server, id, `syncer${i}`);
    await c.synced();
    ms.push(since(t0));
    bytes.push(c.bytes);
    if (c.text() !== expected) throw new Error(`${id}: a new client synced ${c.len()} of ${expected.length} characters`);
    c.close();
  }
  return { ms: median(ms), bytes: median(bytes) };
}

/** The whole trace, built locally, reaches the server as one update (a loader's sync step 2). */
async function pushWhole(server, update, end) {
  const observer = new Peer(server, DOCS.whole, "whole-observer");
  await observer.synced();
  const doc = new Y.Doc();
  Y.applyUpdate(doc, update);
  const loader = new Peer(server, DOCS.whole, "whole-loader", doc);
  await observer.until(() => observer.len() === end.length, "the whole trace stored", 120_000);
  return [observer, loader];
}

/** 5a. A burst of single-character updates; the server is killed once the observer has half. */
async function killDuringBurst(server) {
  const [writer, observer] = [new Peer(server, DOCS.burst, "burst-writer"), new Peer(server, DOCS.burst, "burst-observer")];
  await Promise.all([writer.synced(), observer.synced()]);
  // Counted in characters (one per update): the worker relays the updates of one commit as one
  // message (§9).
  const killed = observer.until(() => observer.len() >= BURST / 2, "half the burst observed").then(() => {
    const dead = server.kill9(); // the SIGKILL goes out before anything below runs
    const seen = observer.received.slice();
    writer.close(); // no client may upload its copy to the restarted server
    observer.close();
    return dead.then(() => seen);
  });
  const t = writer.doc.getText("t");
  for (let i = 0; i < BURST; i++) t.insert(t.length, "x");
  const seen = await killed;
  // Each update the observer received, by the writer's clock it ends at (a merged message holds
  // several consecutive ones).
  const id = writer.doc.clientID;
  const ends = seen.flatMap((u) => {
    const meta = Y.parseUpdateMeta(u);
    const [from, to] = [meta.from.get(id) ?? 0, meta.to.get(id) ?? 0];
    return Array.from({ length: Math.max(0, to - from) }, (_, k) => from + k + 1);
  });
  return { writerId: id, ends };
}

/** 5b. Restart on the same storage; fresh clients open the replayed and the burst documents. */
async function restart(server, replayText, burst) {
  const t0 = performance.now();
  await server.start();
  const accepting = since(t0);
  const [a, d] = [new Peer(server, DOCS.replay, "after-replay"), new Peer(server, DOCS.burst, "after-burst")];
  const missing = () => burst.ends.filter((end) => end > Y.getState(d.doc.store, burst.writerId)).length;
  await a.synced();
  const firstSync = since(t0);
  const fullAtFirstSync = a.text() === replayText;
  const fullMs = await a.until(() => a.len() === replayText.length && a.text() === replayText, "the full text", 30_000).then(() => since(t0), () => NaN);
  await d.synced();
  const missingAtSync = missing();
  // What the server loads later reaches this open client as updates: wait for none missing, or
  // for 3 s without a change (30 s at most).
  const settled = () => missing() === 0 || since(t0) > 30_000 || performance.now() - Math.max(d.changedAt, a.changedAt) > 3_000;
  while (!settled()) await pause(100);
  return { accepting, firstSync, fullAtFirstSync, fullMs, missingAtSync, lost: missing(), keep: [a, d] };
}

async function measure(server, trace, wholeUpdate) {
  await server.start();
  const idle = server.memory().rssMiB;
  const one = await oneWriter(server, trace.txns.slice(0, PREFIX));
  const awake = server.memory().rssMiB;
  const awakeWasm = await server.wasmMiB();
  const awakeHeap = await server.heapMiB();
  const many = await manyWriters(server);
  const syncReplay = await syncRuns(server, DOCS.replay, one.text);
  one.keep.forEach((p) => p.close());
  const burst = await killDuringBurst(server);
  const after = await restart(server, one.text, burst);
  const woken = server.memory().rssMiB;
  // One character on the woken document: its commit sets the object's alarm, which reports the
  // room's metrics, memory included (every Yjs frame schedules that report; the edit makes sure one comes).
  after.keep[0].doc.getText("t").insert(0, ".");
  const wokenWasm = await server.wasmMiB();
  const wokenHeap = await server.heapMiB();
  // Last, so that the memory figures above do not include it.
  const whole = await pushWhole(server, wholeUpdate, trace.end);
  const syncWhole = await syncRuns(server, DOCS.whole, trace.end);
  [...after.keep, ...whole].forEach((p) => p.close());
  await server.stop();
  return { one, many, syncReplay, syncWhole, idle, awake, awakeWasm, awakeHeap, woken, wokenWasm, wokenHeap, received: burst.ends.length, after };
}

process.setMaxListeners(100); // y-websocket adds an exit listener per provider in node
const trace = loadTrace(TRACE);
const built = new Y.Doc();
for (const patches of trace.txns) apply(built, patches);
if (built.getText("t").toString() !== trace.end) throw new Error(`${TRACE}: the replay does not give endContent`);
const wholeUpdate = Y.encodeStateAsUpdate(built);
console.error(`${TRACE}: ${trace.txns.length} transactions, ${trace.end.length} characters, ${wholeUpdate.length} bytes as one update`);
const dirs = ["yb-worker-", "yb-ref-"].map((p) => mkdtempSync(join(tmpdir(), p)));
const servers = [workerServer(dirs[0], FAST), referenceServer(dirs[1])];
const results = [];
for (const s of servers) {
  results.push(await measure(s, trace, wholeUpdate));
  console.error(`measured: ${s.name}`);
}

const f = (v, d = 0) => (Number.isFinite(v) ? v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }) : "—");
const wasm = (m) => (Number.isFinite(m) ? ` (wasm ${f(m, 1)})` : "");
const isolate = (heap, w) => (Number.isFinite(w) ? `${f(heap + w, 1)} (${f(heap, 1)} + ${f(w, 1)})` : f(heap, 1));
const kb = (b) => `${f(b / 1000, 1)} KB`;
const rows = [
  [`one writer, ${TRACE} first ${f(Math.min(PREFIX, trace.txns.length))} txns: updates/s`, (r) => f(r.one.rate)],
  ["one writer: latency to the observer p50 / p99 ms", (r) => `${f(r.one.p50, 2)} / ${f(r.one.p99, 2)}`],
  [`${WRITERS} writers × ${EACH} updates, one document: updates/s`, (r) => f(r.many.rate)],
  [`${WRITERS} writers: latency p50 / p99 ms`, (r) => `${f(r.many.p50, 1)} / ${f(r.many.p99, 1)}`],
  ["new client syncs the replayed document: ms to synced / bytes received", (r) => `${f(r.syncReplay.ms, 1)} / ${kb(r.syncReplay.bytes)}`],
  [`new client syncs the whole ${TRACE} (${f(trace.txns.length)} txns, pushed as one update): ms / bytes`, (r) => `${f(r.syncWhole.ms, 1)} / ${kb(r.syncWhole.bytes)}`],
  ["server RSS MiB when started, before any document", (r) => f(r.idle)],
  ["memory after the replay, awake: RSS MiB (worker: + the isolate's wasm memory)", (r) => `${f(r.awake)}${wasm(r.awakeWasm)}`],
  ["memory after kill -9, restart and first sync: RSS MiB (worker: + wasm memory)", (r) => `${f(r.woken)}${wasm(r.wokenWasm)}`],
  ["the rooms' isolate after the replay: V8 heap after a GC (+ wasm memory), MiB", (r) => isolate(r.awakeHeap, r.awakeWasm)],
  ["… after kill -9, restart and first sync, MiB", (r) => isolate(r.wokenHeap, r.wokenWasm)],
  [`kill -9 during a ${f(BURST)}-update burst: updates the observer had received`, (r) => f(r.received)],
  ["… of those missing at the first sync after the restart / missing for good", (r) => `${f(r.after.missingAtSync)} / ${f(r.after.lost)} (${f((100 * r.after.lost) / r.received, 1)} %)`],
  ["restart → accepting connections / first sync of the replayed document, ms", (r) => `${f(r.after.accepting)} / ${f(r.after.firstSync)}`],
  ["replayed document's full text on that first sync? / restart → full text served, ms", (r) => `${r.after.fullAtFirstSync ? "yes" : "no"} / ${Number.isFinite(r.after.fullMs) ? f(r.after.fullMs) : "not within 30 s"}`],
];
console.log(`| measure | ${servers.map((s) => s.name).join(" | ")} |\n|---|${servers.map(() => "---|").join("")}`);
for (const [label, cell] of rows) console.log(`| ${label} | ${results.map(cell).join(" | ")} |`);
dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
process.exit(0);
