// Publish-API fan-out against the built worker in the local runtime: N users with their personal
// channel open plus M offline, all named in one POST /api/v1/notify. Prints how long until the last
// socket had the notification, p50/p99 of the per-socket delivery time, and how long until every
// recipient's inbox held it (asked of the 64 inbox shards, as miniflare-tests/publish does).
// Usage: node bench/notify-fanout.mjs [online=1000] [offline=9000] [runs=1]
import { api, Client, inboxShard, pool, startWorker, token, serviceToken, objectCall } from "../miniflare-tests/helpers.mjs";

const online = Number(process.argv[2] ?? 1000);
const offline = Number(process.argv[3] ?? 9000);
const runs = Number(process.argv[4] ?? 1);
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const s = (ms) => (ms / 1000).toFixed(2);

const w = await startWorker({ bindings: { SOCKET_RATE_PER_SEC: "100000", SOCKET_BURST: "100000" } });
const users = Array.from({ length: online + offline }, (_, i) => `bench${i}`);
// Online users are spread through the list, so they sit in every shard.
const step = Math.max(1, Math.floor(users.length / Math.max(online, 1)));
const onlineUsers = users.filter((_, i) => i % step === 0).slice(0, online);
const sockets = await pool(onlineUsers, 25, (u) => Client.open(w.url, null, { tok: token(u) }));
await Promise.all(sockets.map((c) => c.next("notification_count"))); // registered with their shards

// Recipients per shard: a shard is asked again only until it holds all of its own.
const expected = new Map();
for (const u of users) expected.set(inboxShard(u), (expected.get(inboxShard(u)) ?? 0) + 1);

/** Resolves with the time at which every recipient's shard held the event (polled every 50 ms). */
async function allKept(eventId, t0) {
  const pending = new Set(expected.keys());
  while (pending.size) {
    await Promise.all([...pending].map(async (name) => {
      const r = await objectCall(w.mf, "INBOX_SHARD", name, "/holders", { event_id: eventId });
      if (r.json.user_ids.length === expected.get(name)) pending.delete(name);
    }));
    if (pending.size) await new Promise((r) => setTimeout(r, 50)); // polling interval
  }
  return performance.now() - t0;
}

console.log(`| run | online | offline | 202 after ms | last socket s | p50 socket s | p99 socket s | all ${users.length} inboxes hold it after s |`);
console.log(`|---|---|---|---|---|---|---|---|`);
for (let run = 1; run <= runs; run++) {
  const t0 = performance.now();
  const res = await api(w.url, "/api/v1/notify", { method: "POST", tok: serviceToken(), body: { kind: "new_post", user_ids: users, payload: { post_id: `bench${run}` } } });
  const accepted = performance.now() - t0;
  if (res.status !== 202) throw new Error(res.text);
  const eventId = res.json.event_id;
  const kept = allKept(eventId, t0);
  const times = await Promise.all(
    sockets.map((c) => c.next((m) => m.type === "notification" && m.payload.event_id === eventId, 600_000).then(() => performance.now() - t0)),
  );
  times.sort((a, b) => a - b);
  console.log(`| ${run} | ${online} | ${offline} | ${accepted.toFixed(0)} | ${s(times[times.length - 1])} | ${s(pct(times, 50))} | ${s(pct(times, 99))} | ${s(await kept)} |`);
}
sockets.forEach((c) => c.close());
await w.mf.dispose();
