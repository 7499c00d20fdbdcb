// Hot documents (§9): many writers on one text document, many sockets liking one post, against
// the built worker in the local runtime. Each writer keeps one operation in flight (the
// protocol's client rule) and sends the next when its ack arrives; every ack is timed. Sockets
// opt into `?batch=1` unless BATCH=0. Each socket's first action (which claims its client id) is
// made before the measured window. Prints ops/s, ack p50/p99 and runtime CPU per op (from
// /proc, the workerd processes this benchmark started), one row per room size.
// Usage: node bench/hot-documents.mjs [seconds=5] [writers=1,8,16,32,64] [likers=1,20,50,100,200,1000]
import WebSocket from "ws";
import { startWorker, token } from "../miniflare-tests/helpers.mjs";
import { workerdCpuMs } from "./proc-cpu.mjs";

const SECONDS = Number(process.argv[2] ?? 5);
const WRITERS = (process.argv[3] ?? "1,8,16,32,64").split(",").map(Number);
const LIKERS = (process.argv[4] ?? "1,20,50,100,200,1000").split(",").map(Number);
const BATCH = process.env.BATCH !== "0";
// The deployed worker declines permessage-deflate on document sockets (src/runtime/sockets.rs),
// but the local runtime's entry worker negotiates it whatever the worker answers; so by default
// these sockets do not offer it, which gives the deployed wire. DEFLATE=1 offers it (as browsers
// and node's `ws` do), which shows what per-socket compression costs the room.
const DEFLATE = process.env.DEFLATE === "1";
const pct = (s, p) => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN);

/** One socket that keeps one operation in flight and times its acks. */
class Writer {
  static async open(url, doc, i) {
    const qs = new URLSearchParams({ token: token(`w${i}`), client_id: `w${i}`, ...(BATCH ? { batch: "1" } : {}) });
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws/documents/${encodeURIComponent(doc)}?${qs}`, { perMessageDeflate: DEFLATE });
    const w = new this(ws, `w${i}`);
    await new Promise((res, rej) => {
      ws.once("error", rej);
      w.onSynced = res;
    });
    if (i === 0) console.log(`negotiated extensions: ${ws.extensions || "none"}`);
    return w;
  }

  constructor(ws, clientId) {
    Object.assign(this, { ws, clientId, version: 0, seq: 0, sentAt: 0, latencies: [], running: false, onSynced: null, onWarm: null, acked: 0 });
    ws.on("message", (data) => this.receive(JSON.parse(data.toString())));
  }

  receive(m) {
    const p = m.payload ?? {};
    if (m.type === "sync_status" && this.onSynced) (this.onSynced(), (this.onSynced = null));
    if (m.type === "initial_state" || m.type === "sync_status") this.version = Math.max(this.version, p.version ?? 0);
    const ops = m.type === "operations" ? p.operations : m.type === "operation" ? [p] : [];
    for (const op of ops) {
      this.version = Math.max(this.version, op.version);
      if (op.client_id === this.clientId && op.seq === this.seq) this.acked_();
    }
    if (m.type === "operation_ack" && p.seq === this.seq) {
      this.version = Math.max(this.version, p.version);
      this.acked_();
    }
    if (m.type === "error") console.error(this.clientId, p.code, p.message);
  }

  /** One action before the measured window: its first claims the client id (a one-time cost). */
  warmUp() {
    return new Promise((resolve) => {
      this.onWarm = resolve;
      this.send();
    });
  }

  acked_() {
    if (this.onWarm) return (this.onWarm(), (this.onWarm = null));
    this.latencies.push(performance.now() - this.sentAt);
    this.acked++;
    if (this.running) this.send();
  }

  send() {
    this.seq++;
    this.sentAt = performance.now();
    this.ws.send(JSON.stringify({ type: "operation", payload: this.op() }));
  }
}

class TextWriter extends Writer {
  op() {
    return { client_id: this.clientId, seq: this.seq, version: this.version, ops: [{ type: "insert", position: 0, content: "x" }] };
  }
}

class Liker extends Writer {
  op() {
    return { client_id: this.clientId, seq: this.seq, type: "modify", action: this.seq % 2 ? "like" : "unlike" };
  }
}

async function run(w, Kind, doc, n) {
  const sockets = [];
  for (let i = 0; i < n; i += 50) sockets.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => Kind.open(w.url, doc, i + j)))));
  await Promise.all(sockets.map((s) => s.warmUp()));
  const cpu0 = workerdCpuMs();
  const t0 = performance.now();
  for (const s of sockets) (s.running = true), s.send();
  await new Promise((r) => setTimeout(r, SECONDS * 1000)); // the measured window
  for (const s of sockets) s.running = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = workerdCpuMs() - cpu0;
  const acked = sockets.reduce((n, s) => n + s.acked, 0);
  const lat = sockets.flatMap((s) => s.latencies).sort((a, b) => a - b);
  await new Promise((r) => setTimeout(r, 500)); // let the last in-flight acks land before closing
  sockets.forEach((s) => s.ws.close());
  const m = await (await fetch(`${w.url}/api/v1/documents/${encodeURIComponent(doc)}/metrics`, { headers: { authorization: `Bearer ${token("bench")}` } })).json();
  const batch = m.since_wake?.events_per_commit ?? {};
  return { n, opsPerSec: acked / elapsed, p50: pct(lat, 50), p99: pct(lat, 99), cpuPerOp: cpu / Math.max(1, acked), batch: `${batch.p50}/${batch.p99}` };
}

const w = await startWorker({ bindings: { SOCKET_RATE_PER_SEC: "100000", SOCKET_BURST: "100000" } });
const fmt = (r, base) => `| ${r.n} | ${r.opsPerSec.toFixed(0)} | ${(r.opsPerSec / base).toFixed(2)}× | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.cpuPerOp.toFixed(3)} | ${r.batch} |`;
console.log(`batch=${BATCH ? 1 : 0}, ${SECONDS} s per row\n`);
console.log("| writers on one text document | ops/s | vs 1 writer | ack p50 ms | ack p99 ms | runtime CPU ms/op | events per commit p50/p99 |\n|---|---|---|---|---|---|---|");
let base;
for (const n of WRITERS) {
  const r = await run(w, TextWriter, `channel:hot-${n}-${Date.now()}:description`, n);
  base ??= r.opsPerSec;
  console.log(fmt(r, base));
}
console.log("\n| sockets liking/unliking one post | actions/s | vs 1 socket | ack p50 ms | ack p99 ms | runtime CPU ms/op | events per commit p50/p99 |\n|---|---|---|---|---|---|---|");
base = undefined;
for (const n of LIKERS) {
  const r = await run(w, Liker, `post:hot-${n}-${Date.now()}`, n);
  base ??= r.opsPerSec;
  console.log(fmt(r, base));
}
await w.mf.dispose();
