// Canvases at scale (§8) against the built worker in the local runtime: a board of N strokes
// (default 100,000) spread over 10 × 10 screens of 1920 × 1080, seeded over 4 sockets.
// 1. Connect to synced (time, bytes, strokes) with a 1920 × 1080 viewport versus none.
// 2. Bytes a viewport client receives while 20 others redraw strokes all over the board (each
//    a stroke_update moving a random stroke to a random place), versus an
//    unfiltered client on the same board at the same time.
// 3. Viewport query time inside the object: the runtime restarts on the same storage (the object
//    wakes with nothing else measured), one socket pans 200 times, and the document's
//    `since_wake.apply_time_ms` (every one of those messages: query, read and send of what entered)
//    is read back; plus the client's round trip. 4. Memory: the room's wasm memory as reported to
//    the metrics, and the workerd processes' RSS.
// Usage: node bench/canvas-viewport.mjs [strokes=100000] [seconds=5] [drawers=20]
import { readdirSync, readFileSync } from "node:fs";
import WebSocket from "ws";
import { api, serviceToken, startWorker, token } from "../miniflare-tests/helpers.mjs";
import { rng } from "../scripts/rng.mjs";

const STROKES = Number(process.argv[2] ?? 100_000);
const SECONDS = Number(process.argv[3] ?? 5);
const DRAWERS = Number(process.argv[4] ?? 20);
const SCREEN = { width: 1920, height: 1080 };
const WORLD = { width: SCREEN.width * 10, height: SCREEN.height * 10 };
const DOC = `canvas:bench-${Date.now()}`;
const NOWHERE = "-1e9,-1e9,0,0"; // writers that must not receive the others' strokes
const BINDINGS = { SOCKET_RATE_PER_SEC: "100000", SOCKET_BURST: "100000" };
const pct = (s, p) => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r = rng(8);
const stroke = () => {
  const [x, y] = [r() * WORLD.width, r() * WORLD.height].map(Math.round);
  const points = Array.from({ length: 3 + Math.floor(r() * 4) }, () => [x + Math.round(r() * 60), y + Math.round(r() * 60)]);
  return { points, width: 2, colour: "#333" };
};

/** A raw socket that counts what it receives and resolves waits on matching frames. */
class Sock {
  static open(url, user, query = {}) {
    const qs = new URLSearchParams({ token: token(user), client_id: user, ...query });
    const s = new Sock(new WebSocket(`${url.replace(/^http/, "ws")}/ws/documents/${encodeURIComponent(DOC)}?${qs}`, { perMessageDeflate: false }), user);
    return s.wait((m) => m.type === "sync_status" && m.payload.status === "synced").then(() => s);
  }

  constructor(ws, user) {
    Object.assign(this, { ws, user, bytes: 0, frames: 0, ops: 0, strokes: 0, version: 0, seq: 0, waits: [], t0: performance.now() });
    ws.on("message", (data) => {
      this.bytes += data.length;
      this.frames++;
      const m = JSON.parse(data.toString());
      const p = m.payload ?? {};
      if (m.type === "initial_state" || m.type === "strokes_in_view") this.strokes += Object.keys(p.strokes ?? {}).length;
      if (m.type === "operation") this.ops++;
      if (m.type === "operations") this.ops += p.operations.length;
      this.version = Math.max(this.version, p.version ?? 0);
      if (m.type === "error") console.error(user, p.code, p.message);
      for (const w of [...this.waits]) if (w.pred(m)) (this.waits.splice(this.waits.indexOf(w), 1), w.resolve(m));
    });
  }

  wait(pred) {
    return new Promise((resolve) => this.waits.push({ pred, resolve }));
  }

  /** Sends one operation of `ops` and resolves with its ack. */
  submit(ops) {
    const seq = ++this.seq;
    this.ws.send(JSON.stringify({ type: "operation", payload: { document_id: DOC, client_id: this.user, seq, version: this.version, ops } }));
    return this.wait((m) => (m.type === "operation_ack" && m.payload.seq === seq) || m.type === "error");
  }

  close() {
    this.ws.close();
  }
}

async function seed(url) {
  const t0 = performance.now();
  const seeders = await Promise.all([0, 1, 2, 3].map((i) => Sock.open(url, `seed${i}`, { viewport: NOWHERE })));
  let next = 0;
  await Promise.all(
    seeders.map(async (s) => {
      while (next < STROKES) {
        const from = next;
        next = Math.min(STROKES, next + 300); // 300 strokes: one frame under 64 KiB
        await s.submit(Array.from({ length: next - from }, (_, k) => ({ type: "stroke_create", stroke_id: `s${from + k}`, data: stroke() })));
      }
    }),
  );
  seeders.forEach((s) => s.close());
  return (performance.now() - t0) / 1000;
}

async function connectRuns(url, withView) {
  const runs = [];
  for (let i = 0; i < 5; i++) {
    const v = [Math.round(r() * (WORLD.width - SCREEN.width)), Math.round(r() * (WORLD.height - SCREEN.height)), SCREEN.width, SCREEN.height];
    const t0 = performance.now();
    const s = await Sock.open(url, `reader${withView ? "v" : "u"}${i}`, withView ? { viewport: v.join(","), batch: "1" } : { batch: "1" });
    runs.push({ ms: performance.now() - t0, bytes: s.bytes, strokes: s.strokes });
    s.close();
  }
  return { ms: median(runs.map((x) => x.ms)), bytes: median(runs.map((x) => x.bytes)), strokes: median(runs.map((x) => x.strokes)) };
}

async function drawing(url) {
  const centre = [(WORLD.width - SCREEN.width) / 2, (WORLD.height - SCREEN.height) / 2, SCREEN.width, SCREEN.height].map(Math.round);
  const viewer = await Sock.open(url, "viewer", { viewport: centre.join(","), batch: "1" });
  const everything = await Sock.open(url, "everything", { batch: "1" });
  const drawers = await Promise.all(Array.from({ length: DRAWERS }, (_, i) => Sock.open(url, `drawer${i}`, { viewport: NOWHERE })));
  const [vb, eb] = [viewer.bytes, everything.bytes];
  let running = true;
  let drawn = 0;
  const loops = drawers.map(async (d) => {
    for (let n = 0; running; n++) {
      // The board is full (100,000 strokes is the limit): drawing moves and reshapes strokes.
      await d.submit([{ type: "stroke_update", stroke_id: `s${Math.floor(r() * STROKES)}`, data: stroke() }]);
      drawn++;
    }
  });
  await new Promise((res) => setTimeout(res, SECONDS * 1000)); // the measured window
  running = false;
  await Promise.all(loops);
  // Both observers have everything sent before this point once their pongs come back.
  for (const s of [viewer, everything]) {
    s.ws.send(JSON.stringify({ type: "ping", id: "end" }));
    await s.wait((m) => m.type === "pong" && m.reply_to === "end");
  }
  const out = { drawn, viewer: viewer.bytes - vb, viewerOps: viewer.ops, everything: everything.bytes - eb, everythingOps: everything.ops };
  [viewer, everything, ...drawers].forEach((s) => s.close());
  return out;
}

async function viewportQueries(url) {
  const s = await Sock.open(url, "panner", { viewport: `0,0,${SCREEN.width},${SCREEN.height}` });
  const rtt = [];
  for (let i = 0; i < 200; i++) {
    // Full-screen jumps across the 10 × 10 grid (and back): every view brings ~1% of the board.
    const cell = (i * 37 + 1) % 100;
    const payload = { x: (cell % 10) * SCREEN.width, y: Math.floor(cell / 10) * SCREEN.height, width: SCREEN.width, height: SCREEN.height };
    const t0 = performance.now();
    s.ws.send(JSON.stringify({ type: "viewport", id: `v${i}`, payload }));
    await s.wait((m) => m.type === "strokes_in_view" && m.reply_to === `v${i}`);
    rtt.push(performance.now() - t0);
  }
  s.close();
  const m = (await api(url, `/api/v1/documents/${encodeURIComponent(DOC)}/metrics`, { tok: token("bench") })).json;
  rtt.sort((a, b) => a - b);
  return { inside: m.since_wake.apply_time_ms, messages: m.since_wake.messages_since_wake, rttP50: pct(rtt, 50), rttP95: pct(rtt, 95) };
}

function workerdRssMiB() {
  let kb = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("workerd")) continue;
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch {}
  }
  return kb / 1024;
}

/** The largest wasm memory a room reported (every 10 s) in the last minute, MiB. */
async function reportedMemoryMiB(url) {
  for (let end = Date.now() + 30_000; Date.now() < end; await new Promise((res) => setTimeout(res, 1000))) {
    const m = (await api(url, "/api/v1/websocket/metrics", { tok: serviceToken() })).json;
    if (m.memory_bytes_max > 0) return m.memory_bytes_max / 2 ** 20;
  }
  return NaN;
}

const mib = (b) => `${(b / 2 ** 20).toFixed(2)} MiB`;
let w = await startWorker({ bindings: BINDINGS });
const seconds = await seed(w.url);
console.log(`${STROKES} strokes over ${WORLD.width} × ${WORLD.height} seeded in ${seconds.toFixed(1)} s (4 sockets, 300 strokes per operation)\n`);
const withView = await connectRuns(w.url, true);
const without = await connectRuns(w.url, false);
console.log("| connect to synced (median of 5) | ms | bytes received | strokes received |\n|---|---|---|---|");
console.log(`| viewport 1920 × 1080 | ${withView.ms.toFixed(0)} | ${mib(withView.bytes)} | ${withView.strokes} |`);
console.log(`| no viewport | ${without.ms.toFixed(0)} | ${mib(without.bytes)} | ${without.strokes} |`);
const d = await drawing(w.url);
console.log(`\n${DRAWERS} drawers, ${SECONDS} s, ${d.drawn} strokes redrawn all over the board:\n`);
console.log("| observer | bytes received | operations received |\n|---|---|---|");
console.log(`| viewport 1920 × 1080 | ${mib(d.viewer)} | ${d.viewerOps} |`);
console.log(`| no viewport | ${mib(d.everything)} | ${d.everythingOps} |`);
console.log(`\nthe viewport client received ${(100 * (1 - d.viewer / d.everything)).toFixed(1)}% fewer bytes`);
const memory = await reportedMemoryMiB(w.url);
const rss = workerdRssMiB();
await w.mf.dispose();
w = await startWorker({ persistDir: w.dir, bindings: BINDINGS }); // the object wakes fresh
const q = await viewportQueries(w.url);
console.log(`\nviewport change inside the object (${q.messages} messages since wake): p50 ${q.inside.p50} ms, p99 ${q.inside.p99} ms; client round trip p50 ${q.rttP50.toFixed(1)} ms, p95 ${q.rttP95.toFixed(1)} ms`);
console.log(`memory: room's wasm memory reported ${memory.toFixed(1)} MiB (max of the last minute); workerd RSS ${rss.toFixed(0)} MiB after the drawing phase`);
await w.mf.dispose();
