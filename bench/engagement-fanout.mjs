// Engagement fan-out against the built worker in the local runtime: SOCKETS sockets spread over
// POSTS posts, likes arriving at RATE per minute, then a 10x burst. Every socket must receive every
// engagement_update of its post (none lost, versions without gaps); prints delivery latency.
// Usage: node bench/engagement-fanout.mjs [sockets=1000] [posts=10] [ratePerMin=100] [seconds=30]
import { api, Client, startWorker, token } from "../miniflare-tests/helpers.mjs";

const [SOCKETS = 1000, POSTS = 10, RATE = 100, SECONDS = 30] = process.argv.slice(2).map(Number);
const pct = (s, p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];

const w = await startWorker();
const sockets = [];
for (let i = 0; i < SOCKETS; i++) {
  const post = `bench-${i % POSTS}`;
  const c = await Client.open(w.url, `post:${post}`, { tok: token(`watcher-${i}`), clientId: `w${i}` });
  await c.synced();
  c.post = post;
  c.lastVersion = 0;
  c.gaps = 0;
  c.received = 0;
  sockets.push(c);
}
const sentAt = new Map(); // "post@version" -> { t0, phase }
const arrivals = []; // [key, ms]
for (const c of sockets) {
  c.ws.on("message", (data) => {
    const m = JSON.parse(data.toString());
    if (m.type !== "engagement_update") return;
    const v = m.payload.version;
    if (v !== c.lastVersion + 1) c.gaps++;
    c.lastVersion = v;
    c.received++;
    arrivals.push([`${c.post}@${v}`, performance.now()]);
  });
  c.inbox.length = 0;
}

let likes = 0;
async function phase(name, perMinute, seconds) {
  const interval = 60_000 / perMinute;
  const end = performance.now() + seconds * 1000;
  const pending = [];
  while (performance.now() < end) {
    const n = likes++;
    const post = `bench-${n % POSTS}`;
    const t0 = performance.now();
    pending.push(
      api(w.url, `/api/v1/posts/${post}/likes`, { method: "POST", tok: token(`liker-${n}`) }).then((r) => {
        if (r.status !== 200) throw new Error(r.text);
        sentAt.set(`${post}@${r.json.version}`, { t0, phase: name });
      }),
    );
    await new Promise((r) => setTimeout(r, interval));
  }
  await Promise.all(pending);
  return { name, likes: pending.length };
}

const phases = [await phase(`${RATE} likes/min`, RATE, SECONDS), await phase(`${RATE * 10} likes/min burst`, RATE * 10, SECONDS / 2)];
// Wait until every socket has its post's final version (or give up after 30 s and count losses).
const finalVersion = {};
for (let p = 0; p < POSTS; p++) {
  finalVersion[`bench-${p}`] = (await api(w.url, `/api/v1/documents/post:bench-${p}`, { tok: token("reader") })).json.version;
}
const deadline = Date.now() + 30_000;
while (Date.now() < deadline && sockets.some((c) => c.lastVersion < finalVersion[c.post])) await new Promise((r) => setTimeout(r, 100));

const expected = sockets.reduce((n, c) => n + finalVersion[c.post], 0);
const received = sockets.reduce((n, c) => n + c.received, 0);
const gaps = sockets.reduce((n, c) => n + c.gaps, 0);
console.log(`| phase | likes | deliveries | p50 ms | p99 ms |`);
console.log(`|---|---|---|---|---|`);
for (const ph of phases) {
  const slice = arrivals
    .filter(([k]) => sentAt.get(k)?.phase === ph.name)
    .map(([k, t]) => t - sentAt.get(k).t0)
    .sort((a, b) => a - b);
  console.log(`| ${ph.name} | ${ph.likes} | ${slice.length} | ${pct(slice, 50)?.toFixed(1)} | ${pct(slice, 99)?.toFixed(1)} |`);
}
console.log(`\n${SOCKETS} sockets on ${POSTS} posts: ${received}/${expected} updates delivered, ${expected - received} lost, ${gaps} out-of-order/gaps`);
for (const c of sockets) c.close();
await w.mf.dispose();
process.exit(expected === received && gaps === 0 ? 0 : 1);
