// Where a lone Yjs writer's time goes in the worker: one writer replays the first N transactions
// of automerge-paper with one update in flight (the next leaves when an observer has the last),
// while the worker's isolate is CPU-profiled over the inspector (bench/cdp.mjs). Prints the rate,
// then the functions by self time and by inclusive time (wasm functions by their Rust names).
// Usage: node bench/yjs-profile.mjs [updates=4000] [top=40]
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { gunzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import { startWorker, token } from "../miniflare-tests/helpers.mjs";
import { connect } from "./cdp.mjs";

const [N, TOP] = [4000, 40].map((d, i) => Number(process.argv[2 + i] ?? d));
const ROOT = new URL("..", import.meta.url).pathname;
const trace = JSON.parse(gunzipSync(readFileSync(join(ROOT, "data/editing-traces/automerge-paper.json.gz"))).toString());
const txns = trace.txns.map((tx) => tx.patches).slice(0, N);
const FAST = { SOCKET_RATE_PER_SEC: "100000", SOCKET_BURST: "100000", YJS_RATE_PER_SEC: "100000", YJS_BURST: "100000" };
const port = await new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const { port: free } = s.address();
    s.close(() => resolve(free));
  });
});
const dir = mkdtempSync(join(tmpdir(), "yjs-profile-"));
const w = await startWorker({ persistDir: dir, bindings: FAST, inspectorPort: port });
const cdp = await connect(port, (t) => t.includes("core:user"));

class Plain extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { perMessageDeflate: false });
  }
}
const peer = (user) => {
  const doc = new Y.Doc();
  const p = new WebsocketProvider(`${w.url.replace(/^http/, "ws")}/ws/documents`, "ydoc:profile", doc, { params: { token: token(user) }, WebSocketPolyfill: Plain, disableBc: true });
  return { doc, p };
};
const [writer, observer] = [peer("writer"), peer("observer")];
await new Promise((resolve) => {
  const check = () => (writer.p.synced && observer.p.synced ? resolve() : setTimeout(check, 10));
  check();
});
let arrived = null;
observer.doc.on("update", () => arrived?.());

await cdp.call("Profiler.enable");
await cdp.call("Profiler.setSamplingInterval", { interval: 100 });
await cdp.call("Profiler.start");
const t0 = performance.now();
for (const patches of txns) {
  const got = new Promise((r) => (arrived = r));
  writer.doc.transact(() => {
    const t = writer.doc.getText("t");
    for (const [pos, del, ins] of patches) {
      if (del > 0) t.delete(pos, del);
      if (ins) t.insert(pos, ins);
    }
  });
  await got;
}
const elapsed = performance.now() - t0;
const { profile } = await cdp.call("Profiler.stop");

const name = (n) => (n.callFrame.functionName || "(anonymous)").replace(/::h[0-9a-f]{16}$/, "");
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map(profile.nodes.flatMap((n) => (n.children ?? []).map((c) => [c, n.id])));
const self = new Map();
const inclusive = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i];
  total += dt;
  self.set(name(byId.get(id)), (self.get(name(byId.get(id))) ?? 0) + dt);
  const seen = new Set();
  for (let x = id; x; x = parent.get(x)) seen.add(name(byId.get(x)));
  for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
});
const show = (title, m) => {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    console.log(`${(v / 1000).toFixed(1).padStart(8)} ms ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k.slice(0, 160)}`);
  }
};
console.log(`${N} updates in ${elapsed.toFixed(0)} ms: ${((N / elapsed) * 1000).toFixed(0)} updates/s (profiled); ${(total / 1000).toFixed(0)} ms sampled`);
show("self time", self);
show("inclusive time", inclusive);

writer.p.destroy();
observer.p.destroy();
cdp.close();
await w.mf.dispose();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
