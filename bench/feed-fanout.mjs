// Feed fan-out (§6.2 watch_posts) against the built worker in the local runtime.
//   one:  N personal channels (N users, one socket each) watch one post; L likes arrive one at a
//         time, each after the previous one's push reached every watcher and the post's one-second
//         coalescing window passed, so every like is pushed on its own.
//   many: N channels each watch K posts out of a pool of P (each post watched by N·K/P channels);
//         L likes, each on a different post, 200 ms apart.
// For each like: the time from sending the POST to the last watcher of that post hearing the new
// count (p50/p99 over likes), and p50/p99 over every (like, watcher) delivery. Calls per change
// come from the posts' own metrics: post → inbox shard calls (`watch_calls`) and shard → channel
// calls (`watch_channel_calls`) per push (`watch_pushes`).
// SOCKETS=S: N watchers on ceil(N / S) users' channels, S sockets each (a user's devices and tabs;
// each socket is one feed). The local runtime holds at most ~1,300 channel objects, so 10,000
// watchers are measured as 1,250 channels × 8 sockets.
// Usage: node bench/feed-fanout.mjs one [channels=2000] [likes=10]
//        node bench/feed-fanout.mjs many [channels=1000] [posts per channel=100] [pool=1000] [likes=20]
import WebSocket from "ws";
import { api, pool, startWorker, token, serviceToken } from "../miniflare-tests/helpers.mjs";

const mode = process.argv[2] ?? "one";
const arg = (i, d) => Number(process.argv[i] ?? d);
const N = arg(3, mode === "one" ? 2000 : 1000);
const K = mode === "one" ? 1 : arg(4, 100);
const P = mode === "one" ? 1 : arg(5, 1000);
const LIKES = mode === "one" ? arg(4, 10) : arg(6, 20);
const SOCKETS = Math.max(1, Number(process.env.SOCKETS ?? 1));
const CHANNELS = Math.ceil(N / SOCKETS);
const pct = (s, p) => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN);
const ms = (x) => x.toFixed(0);
const tick = (t) => new Promise((r) => setTimeout(r, t)); // pacing of the load, not synchronisation

const w = await startWorker({ bindings: { SOCKET_RATE_PER_SEC: "100000", SOCKET_BURST: "100000" } });
const run = `ff${Date.now().toString(36)}`;
const posts = Array.from({ length: P }, (_, i) => `${run}-p${i}`);
/** Channel i watches K consecutive posts of the pool, starting at a stride spreading them evenly. */
const watchedBy = (i) => Array.from({ length: K }, (_, k) => posts[(i * K + k) % P]);

/** One personal channel socket: resolves once the answers to its watch (one per post) are in. */
function openFeed(i) {
  const postIds = watchedBy(i);
  // Socket i belongs to user i mod CHANNELS: every user's first socket opens before any second one.
  const ws = new WebSocket(`${w.url.replace(/^http/, "ws")}/ws?token=${token(`${run}-u${i % CHANNELS}`)}`, { perMessageDeflate: false });
  const feed = { ws, postIds, latest: new Map(), waiters: new Set() };
  return new Promise((resolve, reject) => {
    let answered = 0;
    const timer = setTimeout(() => reject(new Error(`feed ${i}: no answer to its watch in 120 s`)), 120_000);
    ws.on("error", reject);
    ws.on("close", (code) => feed.ready || reject(new Error(`feed ${i} closed ${code}`)));
    ws.on("message", (d) => {
      const m = JSON.parse(d.toString());
      if (m.type === "notification_count" && !feed.sent) {
        feed.sent = true;
        ws.send(JSON.stringify({ type: "watch_posts", id: "w", payload: { post_ids: postIds } }));
      }
      if (m.type === "error" && m.payload.code === "rate_limited") {
        // A user's watches are accepted once a second: send it again after the wait named.
        setTimeout(() => ws.send(JSON.stringify({ type: "watch_posts", id: "w", payload: { post_ids: postIds } })), m.payload.retry_after_ms);
        return;
      }
      if (m.type === "error") reject(new Error(`feed ${i}: ${JSON.stringify(m.payload)}`));
      if (m.type !== "engagement_update") return;
      feed.latest.set(m.payload.post_id, m.payload.like_count);
      for (const fn of [...feed.waiters]) fn(m.payload);
      if (m.reply_to === "w" && ++answered === postIds.length) {
        clearTimeout(timer);
        feed.ready = true;
        resolve(feed);
      }
    });
  });
}

/** Resolves with the time (ms after t0) at which this feed heard `post` at `likes` or more. */
function heard(feed, post, likes, t0) {
  if ((feed.latest.get(post) ?? 0) >= likes) return Promise.resolve(performance.now() - t0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`a watcher never heard ${post} at ${likes} likes`)), 60_000);
    const fn = (p) => {
      if (p.post_id === post && p.like_count >= likes) {
        clearTimeout(timer);
        feed.waiters.delete(fn);
        resolve(performance.now() - t0);
      }
    };
    feed.waiters.add(fn);
  });
}

const metrics = async (post) => (await api(w.url, `/api/v1/documents/post:${post}/metrics`, { tok: serviceToken() })).json;
const sumMetrics = async (ids) => {
  const all = await pool(ids, 10, metrics);
  return ["watch_pushes", "watch_calls", "watch_channel_calls", "watch_shards"].reduce((o, k) => ({ ...o, [k]: all.reduce((n, m) => n + Number(m[k] ?? 0), 0) }), {});
};

const tOpen = performance.now();
const feeds = await pool(Array.from({ length: N }, (_, i) => i), 50, openFeed);
const opened = (performance.now() - tOpen) / 1000;
const watchers = new Map(posts.map((p) => [p, []]));
for (const f of feeds) for (const p of f.postIds) watchers.get(p).push(f);

const liked = mode === "one" ? Array(LIKES).fill(posts[0]) : Array.from({ length: LIKES }, (_, i) => posts[(i * 7919) % P]);
await tick(1_100); // the watches' first answers are a push: start past that window
const before = await sumMetrics([...new Set(liked)]);
const lastTimes = [];
const allTimes = [];
const counts = new Map();
const pending = [];
for (const [i, post] of liked.entries()) {
  const n = (counts.get(post) ?? 0) + 1;
  counts.set(post, n);
  const t0 = performance.now();
  const r = await api(w.url, `/api/v1/posts/${post}/likes`, { method: "POST", tok: serviceToken(), body: { on_behalf_of: `${run}-liker${i}` } });
  if (r.status !== 200) throw new Error(`like: ${r.status} ${r.text}`);
  const done = Promise.all(watchers.get(post).map((f) => heard(f, post, n, t0))).then((times) => {
    allTimes.push(...times);
    lastTimes.push(Math.max(...times));
  });
  if (mode === "one") {
    await done;
    await tick(1_100); // past the post's one-second coalescing window: the next like is pushed alone
  } else {
    pending.push(done);
    await tick(200);
  }
}
await Promise.all(pending);
const after = await sumMetrics([...new Set(liked)]);
const d = (k) => after[k] - before[k];
lastTimes.sort((a, b) => a - b);
allTimes.sort((a, b) => a - b);
const perPost = (watchers.get(liked[0]) ?? []).length;
console.log(`mode ${mode}: ${N} watchers on ${CHANNELS} channels (${SOCKETS} sockets each) × ${K} posts (pool ${P}, ${perPost} watchers of each liked post); sockets opened and watching in ${opened.toFixed(1)} s`);
console.log("| watchers (channels × sockets) | posts each | watchers per post | likes | like → last watcher p50 ms | p99 ms | max ms | like → each watcher p50 ms | p99 ms | pushes | post→shard calls per push | shard→channel calls per push |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
const pushes = d("watch_pushes");
console.log(`| ${N} (${CHANNELS} × ${SOCKETS}) | ${K} | ${perPost} | ${LIKES} | ${ms(pct(lastTimes, 50))} | ${ms(pct(lastTimes, 99))} | ${ms(lastTimes.at(-1))} | ${ms(pct(allTimes, 50))} | ${ms(pct(allTimes, 99))} | ${pushes} | ${(d("watch_calls") / pushes).toFixed(1)} | ${(d("watch_channel_calls") / pushes).toFixed(1)} |`);
for (const f of feeds) f.ws.close();
await w.mf.dispose();
process.exit(0);
