// Replays real editing traces over one WebSocket against the built worker in the local runtime,
// each op waiting for its ack; prints ops/s and ack latency, checks the final text, and reports
// the size of the release wasm. Runtime CPU per op is read from /proc for the workerd processes
// the benchmark started (8,000 ops first, as the issue measures it).
// Usage: node bench/ws-replay.mjs [maxOpsPerTrace] [tracesDir]   (CPU_ONLY=1: just the 8,000 ops)
// Traces come from data/editing-traces/ in this repository; a directory given as the second
// argument or in SIDECHAIN_TRACES_DIR (e.g. a full checkout of the editing-traces collection) wins.
import { existsSync, readFileSync } from "node:fs";
import { gunzipSync, gzipSync } from "node:zlib";
import { join } from "node:path";
import { api, Client, startWorker, token } from "../miniflare-tests/helpers.mjs";
import { workerdCpuMs } from "./proc-cpu.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const limit = Number(process.argv[2] && process.argv[2] !== "all" ? process.argv[2] : Infinity);
const TRACES = process.argv[3] ?? process.env.SIDECHAIN_TRACES_DIR ?? join(ROOT, "data/editing-traces");

function tracesDir() {
  if (!existsSync(TRACES)) throw new Error(`editing traces not found in ${TRACES}; pass a directory or set SIDECHAIN_TRACES_DIR`);
  return TRACES;
}

function loadTrace(name) {
  const t = JSON.parse(gunzipSync(readFileSync(join(tracesDir(), `${name}.json.gz`))).toString());
  const txns = t.txns
    .map((tx) => tx.patches.flatMap(([position, del, ins]) => [
      ...(del > 0 ? [{ type: "delete", position, length: del }] : []),
      ...(ins ? [{ type: "insert", position, content: ins }] : []),
    ]))
    .filter((ops) => ops.length);
  return { end: t.endContent, txns };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function replay(w, name, max = limit) {
  const trace = loadTrace(name);
  const txns = trace.txns.slice(0, max);
  const doc = `bench:${name}:${Date.now()}`;
  const tok = token("bench");
  const c = await Client.open(w.url, doc, { tok, clientId: "bench" });
  await c.synced();
  const lat = [];
  let version = 0;
  const cpu0 = workerdCpuMs();
  const start = performance.now();
  for (let i = 0; i < txns.length; i++) {
    const t0 = performance.now();
    c.send({ type: "operation", id: `b${i}`, payload: { client_id: "bench", seq: i + 1, version, ops: txns[i] } });
    const ack = await c.next((m) => m.type === "operation_ack" || m.type === "error", 30_000);
    if (ack.type === "error") throw new Error(`${name} op ${i}: ${JSON.stringify(ack.payload)}`);
    version = ack.payload.version;
    lat.push(performance.now() - t0);
    c.inbox.length = 0;
  }
  const secs = (performance.now() - start) / 1000;
  const cpuMs = workerdCpuMs() - cpu0;
  const final = (await api(w.url, `/api/v1/documents/${doc}`, { tok })).json.content;
  c.close();
  lat.sort((a, b) => a - b);
  const matches = txns.length === trace.txns.length ? final === trace.end : "(partial)";
  return { name, ops: txns.length, opsPerSec: txns.length / secs, p50: pct(lat, 50), p99: pct(lat, 99), matches, cpuPerOp: cpuMs / txns.length };
}

// One op in flight, as fast as acks return: lift the per-socket budget for the measurement.
const w = await startWorker({ bindings: { SOCKET_RATE_PER_SEC: "100000", SOCKET_BURST: "100000" } });
console.log("| trace | ops | ops/s | p50 ack ms | p99 ack ms | runtime CPU ms/op | final == endContent |");
console.log("|---|---|---|---|---|---|---|");
const runs = process.env.CPU_ONLY ? [["sveltecomponent", 8000]] : [["sveltecomponent", 8000], ["sveltecomponent", limit], ["seph-blog1", limit]];
for (const [name, max] of runs) {
  const r = await replay(w, name, max);
  console.log(`| ${r.name} | ${r.ops} | ${r.opsPerSec.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.cpuPerOp.toFixed(3)} | ${r.matches} |`);
}
await w.mf.dispose();

const wasm = readFileSync(join(ROOT, "build/index_bg.wasm"));
console.log(`\nrelease wasm: ${(wasm.length / 1024).toFixed(0)} KiB raw, ${(gzipSync(wasm, { level: 9 }).length / 1024).toFixed(0)} KiB gzipped`);
