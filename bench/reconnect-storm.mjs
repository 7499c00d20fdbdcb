// Reconnect storm against the built worker in the local runtime: N sockets over D text documents,
// connected and synced, some edits made; then every socket is dropped at once, as a deploy does
// (the runtime is disposed and a new one started on the same persisted storage, on a new port).
// Each client reconnects after a uniform random delay with `since=<last version it saw>`, retrying
// a failed attempt with the backoff of docs/protocol.md (between ¼ and all of min(10 s, 250 ms·2ⁿ)).
// Prints the time from the drop until every client had `sync_status` again, per-client p50/p99,
// failed attempts by reason, checks that every client sees its document's current version, and
// prints /api/v1/websocket/metrics. Seeded, so a run replays the same schedule.
// Usage: node bench/reconnect-storm.mjs [clients=1000] [docs=50] [jitterMs=3000] [seed=1]
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { api, pool, startWorker, token } from "../miniflare-tests/helpers.mjs";
import { rng } from "../scripts/rng.mjs";

const N = Number(process.argv[2] ?? 1000);
const D = Number(process.argv[3] ?? 50);
const JITTER_MS = Number(process.argv[4] ?? 3000);
const SEED = Number(process.argv[5] ?? 1);
const EDITORS_PER_DOC = 4; // clients that each make one edit before the drop
const CONNECT_TIMEOUT_MS = 15_000; // upgrade + connect sequence, per attempt
const DEADLINE_MS = 180_000; // the storm gives up (and reports who is missing) after this
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Production values (wrangler.toml): a reconnecting client sends nothing, so they never bind here.
const bindings = { SOCKET_RATE_PER_SEC: "20", SOCKET_BURST: "100" };
// API calls of this benchmark, spread over subjects so none nears 100 requests/min. Upgrades are
// not counted by the HTTP limiter at all (only /api/v1 is), and every client is its own user anyway.
const editTok = token("storm-svc-edit", {}, { role: "service" });
const checkTok = token("storm-svc-check", {}, { role: "service" });

/** CPU ms (user + system) of the workerd processes this process started, from /proc. */
function workerdCpuMs() {
  const parent = new Map();
  const cpu = new Map();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(pid, rest[1]);
      if (stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).startsWith("workerd")) cpu.set(pid, (Number(rest[11]) + Number(rest[12])) * 10);
    } catch {
      // the process ended meanwhile
    }
  }
  const mine = (pid) => {
    for (let p = pid; p && p !== "0" && p !== "1"; p = parent.get(p)) if (p === String(process.pid)) return true;
    return false;
  };
  return [...cpu].filter(([pid]) => mine(pid)).reduce((s, [, ms]) => s + ms, 0);
}

/** One client: its socket, the highest document version it has seen, and its attempt record. */
class StormClient {
  constructor(k) {
    this.k = k;
    this.user = `storm-u${k}`;
    this.clientId = `c${k}`;
    this.doc = `channel:storm${k % D}:description`;
    this.tok = token(this.user, { [this.doc]: "write" });
    this.version = 0;
    this.seq = 0;
    this.ws = null;
    this.onDrop = null;
    this.acks = new Map();
    // Its own stream, so its delays do not depend on the order in which sockets saw the drop.
    this.random = rng(SEED * 1_000_003 + k);
    this.stats = { attempts: 0, failures: [], replayed: 0, initialStates: 0, syncedAt: null, upgradeMs: [] };
  }

  /** One attempt: resolves once `sync_status` arrived, rejects with a short reason otherwise. */
  connect(url, since) {
    this.stats.attempts++;
    const qs = new URLSearchParams({ token: this.tok, client_id: this.clientId });
    if (since !== undefined) qs.set("since", String(since));
    const t0 = performance.now();
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws/documents/${encodeURIComponent(this.doc)}?${qs}`, { handshakeTimeout: CONNECT_TIMEOUT_MS });
    return new Promise((resolve, reject) => {
      let synced = false;
      const fail = (reason) => {
        clearTimeout(timer);
        ws.removeAllListeners();
        ws.on("error", () => {});
        ws.terminate();
        reject(new Error(reason));
      };
      const timer = setTimeout(() => fail("no sync_status in time"), CONNECT_TIMEOUT_MS);
      ws.once("unexpected-response", (_req, res) => fail(`HTTP ${res.statusCode}`));
      ws.on("error", (e) => !synced && fail(e.code ?? e.message));
      ws.on("close", (code) => (synced ? this.onDrop?.() : fail(`closed ${code} before sync`)));
      ws.on("message", (data) => {
        const m = JSON.parse(data.toString());
        const v = m.payload?.version;
        if (typeof v === "number" && v > this.version) this.version = v;
        if (m.type === "sync_operation") this.stats.replayed++;
        if (m.type === "initial_state") this.stats.initialStates++;
        if (m.type === "operation_ack") this.acks.get(m.reply_to)?.(m);
        if (m.type === "sync_status" && !synced) {
          synced = true;
          clearTimeout(timer);
          this.ws = ws;
          this.stats.syncedAt = performance.now();
          this.stats.upgradeMs.push(this.stats.syncedAt - t0);
          resolve();
        }
      });
    });
  }

  /** Submits one insert at the start and resolves with its ack. */
  edit(text) {
    const id = `e-${this.k}-${++this.seq}`;
    const acked = new Promise((resolve) => this.acks.set(id, resolve));
    this.ws.send(JSON.stringify({ type: "operation", id, payload: { document_id: this.doc, client_id: this.clientId, seq: this.seq, version: this.version, type: "insert", position: 0, content: text } }));
    return acked;
  }
}

/** Reconnects after a jittered delay, retrying with backoff, until synced or past the deadline. */
async function reconnect(c, urlNow, deadline) {
  await sleep(c.random() * JITTER_MS);
  for (let n = 1; ; n++) {
    try {
      return await c.connect(urlNow(), c.version);
    } catch (e) {
      c.stats.failures.push(e.message);
      if (performance.now() > deadline) return;
      await sleep(Math.min(10_000, 250 * 2 ** n) * (0.25 + 0.75 * c.random()));
    }
  }
}

/** `api` retried on a dropped connection (counted: seen under load as "other side closed"). */
const dropped = new Map();
async function apiRetry(url, path, opts) {
  for (let n = 1; ; n++) {
    try {
      return await api(url, path, opts);
    } catch (e) {
      const why = `${opts?.method ?? "GET"} ${path.split("/")[3]}: ${e.cause?.code ?? e.message}`;
      dropped.set(why, (dropped.get(why) ?? 0) + 1);
      if (n === 3) throw e;
      await sleep(200 * n);
    }
  }
}

async function documentVersions(url) {
  const out = new Map();
  await pool([...Array(D).keys()], 10, async (d) => {
    const doc = `channel:storm${d}:description`;
    const r = await apiRetry(url, `/api/v1/documents/${encodeURIComponent(doc)}`, { tok: checkTok });
    if (r.status !== 200) throw new Error(`GET ${doc}: ${r.status} ${r.text}`);
    out.set(doc, r.json.version);
  });
  return out;
}

/** Waits until every client's last seen version is its document's current one (live ops may still travel). */
async function settle(clients, versions, ms = 10_000) {
  const lagging = () => clients.filter((c) => c.version !== versions.get(c.doc));
  for (const end = performance.now() + ms; lagging().length && performance.now() < end; ) await sleep(100);
  return lagging();
}

// 1. N clients, synced; EDITORS_PER_DOC of each document's clients make one edit each.
const dir = mkdtempSync(join(tmpdir(), "sc-storm-"));
const first = await startWorker({ persistDir: dir, bindings });
const clients = Array.from({ length: N }, (_, k) => new StormClient(k));
await pool(clients, 25, (c) => c.connect(first.url));
const editors = clients.filter((c) => Math.floor(c.k / D) < EDITORS_PER_DOC);
await pool(editors, 10, (c) => c.edit(`edit ${c.k} ${c.random().toString(36).slice(2, 6)}\n`));
const before = await documentVersions(first.url);
const unsettled = await settle(clients, before);
if (unsettled.length) throw new Error(`${unsettled.length} clients behind before the drop`);
for (const c of clients) Object.assign(c.stats, { attempts: 0, failures: [], replayed: 0, initialStates: 0, syncedAt: null, upgradeMs: [] });

// 2. The drop: every socket closes at once; clients start their jittered reconnect on their close.
let url = first.url;
const deadline = performance.now() + DEADLINE_MS;
const storm = clients.map((c) => new Promise((resolve) => (c.onDrop = () => {
  c.onDrop = null;
  resolve(reconnect(c, () => url, deadline));
})));
const tDrop = performance.now();
await first.mf.dispose();
const second = await startWorker({ persistDir: dir, bindings });
url = second.url;
const restartMs = performance.now() - tDrop;
const cpu0 = workerdCpuMs();
const node0 = process.cpuUsage();
// Meanwhile someone edits each document over REST, so some reconnects have ops to replay. With an
// explicit seq a retried request is a `duplicate`, never a second edit.
const missed = pool([...Array(D).keys()], 5, (d) =>
  apiRetry(url, "/api/v1/operations/apply", { method: "POST", tok: editTok, body: { operation: { document_id: `channel:storm${d}:description`, client_id: "storm-rest", seq: 1, type: "insert", position: 0, content: "(meanwhile)\n" } } }),
).catch((e) => e);
// A socket that never saw its close would hang the run: stop waiting past the deadline.
let guard;
await Promise.race([Promise.all(storm), new Promise((r) => (guard = setTimeout(r, DEADLINE_MS + CONNECT_TIMEOUT_MS)))]);
clearTimeout(guard);
const tAll = Math.max(...clients.map((c) => c.stats.syncedAt ?? Infinity)) - tDrop;
const cpuMs = workerdCpuMs() - cpu0;
const nodeCpu = process.cpuUsage(node0);
const restStatuses = await missed;
if (restStatuses instanceof Error) throw restStatuses;

// 3. Checks: every client synced after the drop and holds its document's current version.
const after = await documentVersions(url);
const synced = clients.filter((c) => c.stats.syncedAt !== null);
const behind = await settle(synced, after);
const times = synced.map((c) => (c.stats.syncedAt - tDrop) / 1000).sort((a, b) => a - b);
const upgrade = synced.flatMap((c) => c.stats.upgradeMs).sort((a, b) => a - b);
const attempts = clients.reduce((s, c) => s + c.stats.attempts, 0);
const reasons = new Map();
for (const r of clients.flatMap((c) => c.stats.failures)) reasons.set(r, (reasons.get(r) ?? 0) + 1);
const failed = [...reasons.values()].reduce((a, b) => a + b, 0);
const replayed = clients.reduce((s, c) => s + c.stats.replayed, 0);
const initial = clients.reduce((s, c) => s + c.stats.initialStates, 0);
const versionSum = (m) => [...m.values()].reduce((a, b) => a + b, 0);

console.log(`seed ${SEED}: ${N} clients over ${D} documents, reconnect jitter 0–${JITTER_MS} ms; ${versionSum(before)} versions before the drop, ${versionSum(after)} after (REST edits meanwhile: ${restStatuses.filter((r) => r.status === 202).length}/${D} accepted)`);
console.log("| clients | runtime restart s | all synced after drop s | p50 s | p99 s | attempts | failed | retries | connect p50 ms | connect p99 ms | replayed ops | initial_state | synced at current version |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
console.log(
  `| ${N} | ${(restartMs / 1000).toFixed(1)} | ${(tAll / 1000).toFixed(1)} | ${pct(times, 50)?.toFixed(2)} | ${pct(times, 99)?.toFixed(2)} | ${attempts} | ${failed} | ${attempts - N} | ${pct(upgrade, 50)?.toFixed(0)} | ${pct(upgrade, 99)?.toFixed(0)} | ${replayed} | ${initial} | ${synced.length - behind.length} / ${N} |`,
);
const perSecond = [];
for (const t of times) perSecond[Math.floor(t)] = (perSecond[Math.floor(t)] ?? 0) + 1;
console.log(`synced per second after the drop: ${Array.from(perSecond, (n, i) => `${i}–${i + 1} s: ${n ?? 0}`).join(", ")}`);
console.log(`failed attempts by reason: ${failed ? [...reasons].map(([r, n]) => `${r} × ${n}`).join(", ") : "none"}`);
if (dropped.size) console.log(`REST requests retried after a dropped connection: ${[...dropped].map(([r, n]) => `${r} × ${n}`).join(", ")}`);
console.log(`CPU from the new runtime's start to the last sync: workerd ${(cpuMs / 1000).toFixed(1)} s, this process ${((nodeCpu.user + nodeCpu.system) / 1e6).toFixed(1)} s`);
const metrics = await api(url, "/api/v1/websocket/metrics", { tok: checkTok });
console.log(`/api/v1/websocket/metrics (${metrics.status}): ${metrics.text}`);

for (const c of clients) c.ws?.terminate();
await second.mf.dispose();
rmSync(dir, { recursive: true, force: true });
const missing = clients.length - synced.length;
if (missing || behind.length) {
  console.error(`FAILED: ${missing} clients never synced, ${behind.length} synced behind their document`);
  process.exit(1);
}
