// node bench/connect-latency.mjs [BUILD=dir N=200]: connect latency (upgrade → sync_status) of N
// sequential sockets of distinct users (§5.1 adds one call to the user's RateLimiter per upgrade).
import { Miniflare } from "miniflare";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { signToken } from "../scripts/token.mjs";
const build = process.env.BUILD ?? new URL("../build", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "bench-"));
const mf = new Miniflare({
  scriptPath: join(build, "index.js"), modules: true,
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  compatibilityDate: "2026-04-20",
  durableObjects: { DOCUMENT_ROOM: { className: "DocumentRoom", useSQLite: true }, RATE_LIMITER: { className: "RateLimiter", useSQLite: true }, USER_CHANNEL: { className: "UserChannel", useSQLite: true }, INBOX_SHARD: { className: "InboxShard", useSQLite: true }, STATS: { className: "Stats", useSQLite: true } },
  d1Databases: ["DB", "HISTORY_1"], kvNamespaces: ["ENGAGEMENT_CACHE"], analyticsEngineDatasets: { METRICS: { dataset: "m" } },
  queueProducers: { NOTIFY_QUEUE: { queueName: "q" } },
  durableObjectsPersist: join(dir, "do"), d1Persist: join(dir, "d1"), kvPersist: join(dir, "kv"),
  bindings: { JWT_SECRET: "s", CORS_ORIGIN: "*", JWT_ISSUER: "", JWT_AUDIENCE: "", HISTORY_SHARDS: "DB,HISTORY_1" },
  handleRuntimeStdio: () => {},
});
const url = (await mf.ready).toString().replace(/\/$/, "").replace(/^http/, "ws");
const N = Number(process.env.N ?? 200);
const times = [];
for (let i = 0; i < N + 20; i++) {
  const tok = signToken({ sub: `u${i}`, docs: { "*": "write" } }, "s");
  const t0 = performance.now();
  const ws = new WebSocket(`${url}/ws/documents/bench:${i % 10}?token=${tok}&client_id=c${i}`);
  await new Promise((res, rej) => { ws.on("message", (d) => { if (String(d).includes('"sync_status"')) res(); }); ws.on("error", rej); });
  if (i >= 20) times.push(performance.now() - t0);
  ws.close();
}
times.sort((a, b) => a - b);
const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(2);
console.log(JSON.stringify({ build, sockets: N, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99) }));
await mf.dispose();
