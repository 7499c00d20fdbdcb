// Publish-API fan-out against the built worker in the local runtime: N users with their personal
// channel open plus M offline, all named in one POST /api/v1/notify. Prints how long until the last
// socket had the notification, p50/p99 of the per-socket delivery time, and how long until every
// offline user's inbox held it. Usage: node bench/notify-fanout.mjs [online=1000] [offline=9000]
import { api, Client, pool, startWorker, token, serviceToken } from "../miniflare-tests/helpers.mjs";

const online = Number(process.argv[2] ?? 1000);
const offline = Number(process.argv[3] ?? 9000);
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];


const w = await startWorker({ bindings: { SOCKET_RATE_PER_SEC: "100000", SOCKET_BURST: "100000" } });
const users = Array.from({ length: online + offline }, (_, i) => `bench${i}`);
// Online users are spread through the list, so they sit in every queue message.
const step = Math.max(1, Math.floor(users.length / Math.max(online, 1)));
const onlineUsers = users.filter((_, i) => i % step === 0).slice(0, online);
const onlineSet = new Set(onlineUsers);
const sockets = await pool(onlineUsers, 25, (u) => Client.open(w.url, null, { tok: token(u) }));

const t0 = performance.now();
const res = await api(w.url, "/api/v1/notify", { method: "POST", tok: serviceToken(), body: { kind: "new_post", user_ids: users, payload: { post_id: "bench" } } });
const accepted = performance.now() - t0;
if (res.status !== 202) throw new Error(res.text);
const eventId = res.json.event_id;
const times = await Promise.all(
  sockets.map((c) => c.next((m) => m.type === "notification" && m.payload.event_id === eventId, 600_000).then(() => performance.now() - t0)),
);
times.sort((a, b) => a - b);
const lastSocket = times[times.length - 1];
const offlineUsers = users.filter((u) => !onlineSet.has(u));
const inboxOk = await pool(offlineUsers, 50, async (u) => {
  const r = await api(w.url, "/api/v1/me/notifications?limit=5", { tok: token(u) });
  return r.json.notifications.some((n) => n.event_id === eventId);
});
const allInboxes = performance.now() - t0;

console.log(`| online | offline | 202 after ms | last socket s | p50 socket s | p99 socket s | inboxes holding it | all checked after s |`);
console.log(`|---|---|---|---|---|---|---|---|`);
console.log(
  `| ${online} | ${offline} | ${accepted.toFixed(0)} | ${(lastSocket / 1000).toFixed(1)} | ${(pct(times, 50) / 1000).toFixed(1)} | ${(pct(times, 99) / 1000).toFixed(1)} | ${inboxOk.filter(Boolean).length} / ${offlineUsers.length} | ${(allInboxes / 1000).toFixed(1)} |`,
);
sockets.forEach((c) => c.close());
await w.mf.dispose();
